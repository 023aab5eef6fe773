"""The README's Python example and the `make run` script run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_problems import load_example

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # it saves fashion.lamina in the working folder
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert code is not None, "README has no Python example"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    result = namespace["model"].evaluate(namespace["X_test"], namespace["y_test"])  # type: ignore[attr-defined]
    assert result["accuracy"] > 0.8
    assert namespace["confidences"].shape == (3, 10)  # type: ignore[attr-defined]
    assert (tmp_path / "fashion.lamina").exists()


def test_make_run_script_trains_and_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = load_example("fashion_mnist_mlp").main(
        ["--epochs", "1", "--out", str(tmp_path), "--verbose", "0"]
    )
    assert 0.7 < result["accuracy"] <= 1
    assert {p.name for p in tmp_path.iterdir()} == {
        "weights.safetensors",
        "history.csv",
        "curves.png",
    }
    assert "test accuracy" in capsys.readouterr().out
    assert (tmp_path / "weights.safetensors").stat().st_mode & 0o044  # readable like any file
