"""The convolutional network of notes §1.11 on Fashion-MNIST (workload W2 of DESIGN §8).

28×28×1 → Conv 3×3×32 ReLU → MaxPool 2 → Conv 3×3×64 ReLU → MaxPool 2 → Flatten →
Dense 128 ReLU → Dropout 0.5 → Dense 10 Softmax. ``--batchnorm`` adds a BatchNorm after
each convolution block (conv → ReLU → pool → BatchNorm). Prints test accuracy.

The recipe, for 5 epochs: Adam with η₀ = 2e-3 (3e-3 with BatchNorm) annealed along a
cosine epoch by epoch (``CosineDecay``), batches of 32, label smoothing 0.1 (notes §1.4,
§2.2). Measured here after 5 epochs, seeds 0, 1, 2: test accuracy 0.9078, 0.9079, 0.9084
(W2) and 0.9181, 0.9167, 0.9168 (with BatchNorm; mean 0.9172). Adam 1e-3 at batch 128 with
no decay or smoothing gave 0.899 (and 0.901 with a BatchNorm before each pooling).

Run: ``python examples/fashion_mnist_cnn.py [--epochs 5] [--batchnorm]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lamina as lm
from lamina.augmentation import RandomFlip, RandomShift
from lamina.callbacks import CosineDecay
from lamina.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D


def images(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) → float32 NHWC (N, 28, 28, 1) scaled to [0, 1] (notes §1.9)."""
    return pixels.reshape(len(pixels), 28, 28, 1).astype(np.float32) / 255.0


LEARNING_RATE = 2e-3
BATCHNORM_LEARNING_RATE = 3e-3  # normalized layers take a larger step (Ioffe & Szegedy 2015)
BATCH_SIZE = 32
LABEL_SMOOTHING = 0.1


# He's initialisation, with which this recipe was tuned and measured (issue 3; Conv2D's
# default is now Glorot's, chosen over three problems in benchmarks/accuracy.py, where He's
# did as well on this CNN and worse on a 1-D one)
CONV_INIT = "he_normal"


def convolution(in_channels: int, filters: int, batchnorm: bool) -> list[Layer]:
    block = [
        Conv2D(in_channels, filters, 3, activation="relu", weight_init=CONV_INIT),
        MaxPool2D(2),
    ]
    # normalizes, channel by channel, what the next layer reads (a quarter of the values
    # a BatchNorm before the pooling would see)
    return [*block, BatchNorm(filters)] if batchnorm else block


def learning_rate(batchnorm: bool) -> float:
    return BATCHNORM_LEARNING_RATE if batchnorm else LEARNING_RATE


def build(batchnorm: bool = False, seed: int = 0, augment: bool = False) -> lm.Model:
    # per training batch: a random horizontal flip and a shift of up to 10 % (notes §1.5)
    augmentation = [RandomFlip("horizontal"), RandomShift(0.1)] if augment else None
    model = lm.Model(
        [
            *convolution(1, 32, batchnorm),
            *convolution(32, 64, batchnorm),
            Flatten(),
            Dense(5 * 5 * 64, 128, activation="relu"),
            Dropout(0.5),
            Dense(128, 10, activation="softmax"),
        ],
        seed=seed,
        augmentation=augmentation,
    )
    model.compile(
        loss=lm.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING),
        optimizer=lm.optimizers.Adam(learning_rate=learning_rate(batchnorm)),
        metrics=["accuracy"],
    )
    return model


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batchnorm", action="store_true")
    parser.add_argument("--augment", action="store_true", help="random flips and shifts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    (X_train, y_train), (X_test, y_test) = lm.datasets.fashion_mnist()
    X_train, y_train = images(X_train)[: args.limit], y_train[: args.limit]
    model = build(args.batchnorm, args.seed, args.augment)
    model.summary(input_shape=(28, 28, 1))
    start = time.perf_counter()
    model.fit(
        X_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[CosineDecay(learning_rate(args.batchnorm), epochs=args.epochs)],
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    result = model.evaluate(images(X_test), y_test)
    kind = (
        "W2"
        + (" + BatchNorm" if args.batchnorm else "")
        + (" + augmentation" if args.augment else "")
    )
    print(
        f"{kind}: test accuracy {result['accuracy']:.4f} after {args.epochs} epochs "
        f"({seconds:.0f} s of training)"
    )
    return result


if __name__ == "__main__":
    main()
