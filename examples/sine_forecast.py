"""Forecasting a noisy sine (issue 15): a GRU reads 50 noisy steps of a sine of unknown
frequency and phase and predicts its next, noise-free value, beating the "repeat the last
value" baseline by far more than 5× in test MSE.

5,000 training windows, 10 epochs of batches of 32, Adam at 0.003, gradients clipped to
norm 1. Test MSE over 2,000 windows, seeds 0, 1, 2 (2 cores): GRU 0.0022, 0.0030, 0.0024
against 0.101, 0.105, 0.105 for the last value (35–45× better); 50–100 s.

Run: ``python examples/sine_forecast.py [--epochs N] [--samples N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lamina as lm
from lamina.layers import GRU, Dense

STEPS = 50
TEST_SAMPLES = 2000


def data(
    samples: int, steps: int = STEPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and test sets: one draw of ``samples + TEST_SAMPLES`` sines, split."""
    X, y = lm.datasets.noisy_sine(samples + TEST_SAMPLES, steps, noise=0.1, seed=seed)
    return X[:samples], y[:samples], X[samples:], y[samples:]


def last_value_mse(X: np.ndarray, y: np.ndarray) -> float:
    """MSE of repeating each window's last observed value (the baseline to beat)."""
    return float(np.mean((X[:, -1, :] - y) ** 2))


def train(
    *,
    samples: int = 5000,
    steps: int = STEPS,
    units: int = 32,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 0.003,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[lm.Model, float, float]:
    """Train a GRU of ``units`` into one linear output; returns the model, its test MSE and
    the last-value baseline's test MSE."""
    X, y, X_test, y_test = data(samples, steps, seed)
    model = lm.Model([GRU(1, units), Dense(units, 1, activation="linear")], seed=seed)
    model.compile(
        loss="mean_squared_error",
        optimizer=lm.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0),
    )
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model, model.evaluate(X_test, y_test)["loss"], last_value_mse(X_test, y_test)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    _, mse, baseline = train(samples=args.samples, epochs=args.epochs, seed=args.seed)
    print(
        f"sine forecast, {STEPS} steps: GRU test MSE {mse:.4f}, repeating the last value "
        f"{baseline:.4f} ({baseline / mse:.1f}× better; {time.perf_counter() - start:.0f} s)"
    )
    return {"gru": mse, "last value": baseline}


if __name__ == "__main__":
    main()
