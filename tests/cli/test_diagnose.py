"""``lamina trace CONFIG|MODEL`` and ``lamina lr-find CONFIG``, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

import lamina as lm
from tests.cli.test_cli import EXAMPLES, lamina


def test_trace_of_a_config_and_of_a_saved_model(tmp_path: Path) -> None:
    result = lamina("trace", EXAMPLES / "spiral.toml", "--samples", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("One training step of Model(2 layers, 387 params) on 3 samples")
    assert any(line.startswith("backward  dense_1") and "(ŷ − y) / N" in line for line in lines)
    assert any(line.startswith("update") and "m̂ / (√v̂ + ε)" in line for line in lines)

    out = tmp_path / "run"
    trained = lamina("train", EXAMPLES / "spiral.toml", "--epochs", "5", "--out", out)
    assert trained.returncode == 0, trained.stderr
    before = (out / "model.lamina").read_bytes()
    result = lamina("trace", out / "model.lamina", "--values", "2")
    assert result.returncode == 0, result.stderr
    assert "forward   dense/relu" in result.stdout
    assert (out / "model.lamina").read_bytes() == before


def test_lr_find_prints_the_suggestion_and_writes_the_curve(tmp_path: Path) -> None:
    result = lamina("lr-find", EXAMPLES / "spiral.toml", "--steps", "40", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "learning-rate range test, " in result.stdout
    assert "suggested learning rate" in result.stdout and "minimum/10" in result.stdout
    assert (tmp_path / "lr_find.png").stat().st_size > 0


def test_trace_of_a_model_without_loss_is_one_error_line(tmp_path: Path) -> None:
    model = lm.Model([lm.layers.Dense(2, 3)])
    model.save(tmp_path / "bare.lamina")
    result = lamina("trace", tmp_path / "bare.lamina")
    assert result.returncode == 2
    assert result.stderr.startswith("lamina: error: ") and len(result.stderr.splitlines()) == 1
