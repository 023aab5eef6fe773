"""Binary logistic regression (notes §1.7): 2-class spiral, Sigmoid output, binary CE, L2.

Run: ``python examples/binary_logistic_regression.py [--epochs N]``.
"""

from __future__ import annotations

import argparse

import lamina as lm
from lamina.layers import Dense


def train(
    epochs: int = 10_000, seed: int = 0, verbose: int = 0
) -> tuple[lm.Model, lm.callbacks.History]:
    X, y = lm.datasets.spiral(samples=100, classes=2, seed=0)
    model = lm.Model(
        [
            Dense(
                2, 64, activation="relu", weight_init="glorot_uniform", weight_l2=5e-4, bias_l2=5e-4
            ),
            Dense(64, 1, activation="sigmoid", weight_init="glorot_uniform"),
        ],
        seed=seed,
    )
    model.compile(
        loss="binary_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=0.005, decay=5e-7),
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
        f"binary logistic regression: training accuracy "
        f"{history.history['accuracy'][-1]:.3f}, loss {history.history['loss'][-1]:.3f}"
    )


if __name__ == "__main__":
    main()
