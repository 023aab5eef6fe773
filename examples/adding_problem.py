"""The adding problem (Hochreiter & Schmidhuber 1997) with 50 steps: a GRU and an LSTM learn
to add the two marked values of a sequence, reaching a test MSE below 0.01 where predicting
the constant 1 scores 1/6 ≈ 0.167. The gradients are clipped to a global norm of 1 (notes
§2.2: a recurrent network's gradients can explode through the time steps).

10,000 training sequences, 6 epochs of batches of 32, Adam at 0.003. Test MSE over 2,000
sequences, seeds 0, 1, 2 (2 cores): GRU 0.0004, 0.0006, 0.0008; LSTM 0.0007, 0.0009, 0.0015;
about 140 s for both. The LSTM stays at ≈ 0.167 for its first epoch or two before it finds
the markers; the GRU finds them within one.

Run: ``python examples/adding_problem.py [--epochs N] [--samples N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lamina as lm
from lamina.layers import GRU, LSTM, Dense

STEPS = 50
TEST_SAMPLES = 2000
CELLS = {"gru": GRU, "lstm": LSTM}


def data(
    samples: int, steps: int = STEPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and test sets: one draw of ``samples + TEST_SAMPLES`` sequences, split."""
    X, y = lm.datasets.adding_problem(samples + TEST_SAMPLES, steps, seed=seed)
    return X[:samples], y[:samples], X[samples:], y[samples:]


def train(
    cell: str = "gru",
    *,
    samples: int = 10_000,
    steps: int = STEPS,
    units: int = 32,
    epochs: int = 6,
    batch_size: int = 32,
    learning_rate: float = 0.003,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[lm.Model, float]:
    """Train a ``cell`` ("gru" or "lstm") of ``units`` into one linear output; returns the
    model and its test MSE."""
    X, y, X_test, y_test = data(samples, steps, seed)
    model = lm.Model([CELLS[cell](2, units), Dense(units, 1, activation="linear")], seed=seed)
    model.compile(
        loss="mean_squared_error",
        optimizer=lm.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0),
    )
    model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model, model.evaluate(X_test, y_test)["loss"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _, _, _, y_test = data(args.samples, STEPS, args.seed)
    results = {"constant 1": float(np.mean((y_test - 1.0) ** 2))}
    print(f"adding problem, {STEPS} steps: predicting 1 gives test MSE {results['constant 1']:.3f}")
    for cell in CELLS:
        start = time.perf_counter()
        _, mse = train(cell, samples=args.samples, epochs=args.epochs, seed=args.seed)
        results[cell] = mse
        print(f"{cell.upper()}: test MSE {mse:.4f} ({time.perf_counter() - start:.0f} s)")
    return results


if __name__ == "__main__":
    main()
