"""The notes' Fashion-MNIST model (notes §1.9, §1.10; workload W1 of DESIGN §8).

784 → Dense 128 ReLU → Dense 128 ReLU → Dense 10 Softmax, Adam 1e-3, batch 128, 10 epochs,
with the last 10 % of the training images held out for validation. Prints test accuracy
and writes the weights, the history and the learning curves to ``--out``.

Run: ``python examples/fashion_mnist_mlp.py [--epochs N] [--out DIR]`` (``make run``).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import lamina as lm
from lamina.layers import Dense


def flatten(images: np.ndarray) -> np.ndarray:
    """28×28 images as rows of 784 float32 pixel values (notes §1.9 "Flattening")."""
    return images.reshape(len(images), -1).astype(np.float32)


def build(seed: int = 0) -> lm.Model:
    model = lm.Model(
        [
            Dense(784, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 10, activation="softmax", weight_init="glorot_uniform"),
        ],
        seed=seed,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    return model


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/fashion_mnist_mlp"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    (X_train, y_train), (X_test, y_test) = lm.datasets.fashion_mnist()
    X_train, X_test = flatten(X_train), flatten(X_test)
    # standardisation, fitted on the training images only (notes §1.5, §1.9)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-3
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    model = build(args.seed)
    model.summary()
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        epochs=args.epochs,
        batch_size=128,
        validation_split=0.1,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    result = model.evaluate(X_test, y_test)
    print(
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} "
        f"({args.epochs} epochs in {seconds:.1f} s)"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.out / "weights.safetensors")
    with open(args.out / "history.csv", "w", newline="") as file:
        writer = csv.writer(file)
        keys = list(history.history)
        writer.writerow(["epoch", *keys])
        for row, epoch in enumerate(history.epoch):
            writer.writerow([epoch + 1, *(history.history[key][row] for key in keys)])
    try:
        lm.plot.history(history, args.out / "curves.png")
    except ImportError:
        print("matplotlib is not installed: no curves.png (pip install 'lamina[plot]')")
    print(f"wrote {args.out}/weights.safetensors, history.csv, curves.png")
    return result


if __name__ == "__main__":
    main()
