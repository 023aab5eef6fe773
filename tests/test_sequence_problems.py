"""The sequence examples learn (issue 15, must-show 3), in reduced runs of seconds: the full
runs — 50 steps, test MSE < 0.01 for the adding problem, ≥ 5× the last-value baseline for
the sine forecast — are the scripts in examples/ and their figures are in their docstrings."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_problems import load_example


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_adding_problem_learns_far_below_the_constant_predictor(cell: str) -> None:
    example = load_example("adding_problem")
    _, _, _, y_test = example.data(3000, steps=10)
    constant = float(np.mean((y_test - 1.0) ** 2))
    _, mse = example.train(cell, samples=3000, steps=10, epochs=4, batch_size=32)
    assert constant == pytest.approx(1 / 6, abs=0.02)
    assert mse < constant / 4


def test_sine_forecast_beats_the_last_value() -> None:
    _, mse, baseline = load_example("sine_forecast").train(samples=2000, steps=20, epochs=3)
    assert baseline == pytest.approx(0.10, abs=0.02)
    assert mse < baseline / 3


def test_the_scripts_print_their_figures(capsys: pytest.CaptureFixture[str]) -> None:
    results = load_example("adding_problem").main(["--samples", "200", "--epochs", "1"])
    assert set(results) == {"constant 1", "gru", "lstm"}
    out = capsys.readouterr().out
    assert "predicting 1 gives test MSE" in out and "GRU: test MSE" in out and "LSTM" in out
    results = load_example("sine_forecast").main(["--samples", "200", "--epochs", "1"])
    assert set(results) == {"gru", "last value"}
    assert "repeating the last value" in capsys.readouterr().out
