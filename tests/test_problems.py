"""The notes' three problem types learn, through the runnable scripts in examples/
(notes §1.2–§1.4 classification, §1.7 binary logistic regression, §1.8 regression)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROBLEMS = ["spiral", "binary_logistic_regression", "sine_regression"]


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[Any, Any]]:
    return {name: load_example(name).train() for name in PROBLEMS}


@pytest.mark.parametrize("name", PROBLEMS)
def test_problem_learns_to_090(name: str, trained: dict[str, tuple[Any, Any]]) -> None:
    _, history = trained[name]
    assert history.history["accuracy"][-1] >= 0.90
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_sine_predictions_follow_the_sine(trained: dict[str, tuple[Any, Any]]) -> None:
    model, _ = trained["sine_regression"]
    X = np.linspace(0.05, 0.95, 50, dtype=np.float32).reshape(-1, 1)
    np.testing.assert_allclose(model.predict(X)[:, 0], np.sin(2 * np.pi * X[:, 0]), atol=0.02)


@pytest.mark.parametrize("name", PROBLEMS)
def test_example_runs_from_the_command_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    load_example(name).main(["--epochs", "5"])
    assert "accuracy" in capsys.readouterr().out
