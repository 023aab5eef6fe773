"""Spiral classification (notes §1.2–§1.4): 3 classes, Dense 64 ReLU, Softmax, Adam.

Run: ``python examples/spiral.py [--epochs N]``.
"""

from __future__ import annotations

import argparse

import lamina as lm
from lamina.layers import Dense


def train(
    epochs: int = 10_000, seed: int = 0, verbose: int = 0
) -> tuple[lm.Model, lm.callbacks.History]:
    X, y = lm.datasets.spiral(samples=100, classes=3, seed=0)
    model = lm.Model(
        [
            Dense(2, 64, activation="relu", weight_init="glorot_uniform"),
            Dense(64, 3, activation="softmax", weight_init="glorot_uniform"),
        ],
        seed=seed,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=0.02, decay=1e-5),
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
        f"spiral: training accuracy {history.history['accuracy'][-1]:.3f}, "
        f"loss {history.history['loss'][-1]:.3f}"
    )


if __name__ == "__main__":
    main()
