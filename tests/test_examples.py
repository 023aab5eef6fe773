"""The README's Python examples and the `make run` script run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lamina as lm
from tests.test_problems import load_example

ROOT = Path(__file__).resolve().parents[1]


def readme_section_code(heading: str) -> list[str]:
    """The ```python blocks of the README section under ``## heading``."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def run_block(code: str, name: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(code, f"README.md ({name})", "exec"), namespace)
    return namespace


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


def test_your_own_data_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Must-show 7 of issue 14: imbalanced classes, regression in the targets' units,
    intervals, a custom layer saved and loaded — each does what its text says."""
    monkeypatch.chdir(tmp_path)  # the custom-layer example saves scaled.lamina here
    blocks = readme_section_code("Your own data")
    assert len(blocks) == 4

    imbalanced = run_block(blocks[0], "imbalanced")
    recall = imbalanced["minority_recall"]
    assert recall("balanced") > recall(None) + 0.2  # type: ignore[operator]
    assert "recall of the 1s" in capsys.readouterr().out

    run_block(blocks[1], "regression")
    printed = re.fullmatch(r"training MAE (\S+), test MAE (\S+)\n", capsys.readouterr().out)
    assert printed is not None and float(printed.group(2)) < 12  # the noise's MAE is 8

    intervals = run_block(blocks[2], "intervals")
    assert 0.9 <= float(intervals["inside"].mean()) <= 0.98  # type: ignore[attr-defined]
    assert "inside their 95 % interval" in capsys.readouterr().out

    try:
        custom = run_block(blocks[3], "custom_layer")
        assert capsys.readouterr().out.startswith("gradcheck passed")
        assert type(lm.load_model(tmp_path / "scaled.lamina").layers[0]) is custom["Scale"]
    finally:
        if "scale" in lm.layers.base.LAYERS:
            lm.registration.unregister(lm.layers.base.LAYERS.lookup("scale"))


def test_sequence_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's "Sequences" section: masked variable-length ids through a GRU (its own
    assert: padding does not change predictions), and a forecast that beats the last
    value."""
    blocks = readme_section_code("Sequences")
    assert len(blocks) == 2
    run_block(blocks[0], "padded ids")
    accuracy = re.fullmatch(r"test accuracy (\S+)\n", capsys.readouterr().out)
    assert accuracy is not None and float(accuracy.group(1)) > 0.95
    run_block(blocks[1], "forecast")
    printed = re.fullmatch(
        r"GRU MSE (\S+), repeating the last value (\S+)\n", capsys.readouterr().out
    )
    assert printed is not None and float(printed.group(1)) < float(printed.group(2)) / 3


def test_watching_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's "Watching it learn": the dead layer named, a traced step, a rate."""
    (block,) = readme_section_code("Watching it learn")
    run_block(block, "watching")
    out = capsys.readouterr().out
    assert "100% of dense's ReLUs were dead all epoch" in out and "notes §2.2" in out
    assert "∂L/∂W = Xᵀ·δ" in out and "The model was left unchanged" in out
    rate = re.search(r"suggested learning rate (\S+) \(minimum/10", out)
    assert rate is not None and 1e-4 < float(rate.group(1)) < 1
