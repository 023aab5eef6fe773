"""Sine regression (notes §1.8): Linear output, mean squared error, regression accuracy.

Run: ``python examples/sine_regression.py [--epochs N]``.
"""

from __future__ import annotations

import argparse

import lamina as lm
from lamina.layers import Dense


def train(
    epochs: int = 10_000, seed: int = 0, verbose: int = 0
) -> tuple[lm.Model, lm.callbacks.History]:
    X, y = lm.datasets.sine(samples=1000)
    init = "glorot_uniform"  # the notes' 0.01·N(0,1) start does not learn here (notes §1.8)
    model = lm.Model(
        [
            Dense(1, 64, activation="relu", weight_init=init),
            Dense(64, 64, activation="relu", weight_init=init),
            Dense(64, 1, activation="linear", weight_init=init),
        ],
        seed=seed,
    )
    model.compile(
        loss="mean_squared_error",
        optimizer=lm.optimizers.Adam(learning_rate=0.01, decay=1e-3),
        metrics=["accuracy"],
    )
    history = model.fit(X, y, epochs=epochs, batch_size=None, verbose=verbose)
    return model, history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10_000)
    args = parser.parse_args(argv)
    _, history = train(args.epochs)
    print(
        f"sine regression: regression accuracy {history.history['accuracy'][-1]:.3f}, "
        f"loss {history.history['loss'][-1]:.2e}"
    )


if __name__ == "__main__":
    main()
