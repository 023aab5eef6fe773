"""W1 (DESIGN §8) on real Fashion-MNIST: the notes' model reaches ≥ 0.88 test accuracy in
10 epochs of batch 128 with Adam 1e-3 (notes §1.9, §1.10)."""

from __future__ import annotations

import numpy as np

import lamina as lm
from lamina.layers import Dense


def test_w1_reaches_088_test_accuracy_in_10_epochs() -> None:
    (X_train, y_train), (X_test, y_test) = lm.datasets.fashion_mnist()
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32)
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32)
    # standardisation fitted on the training images only (notes §1.5, §1.9)
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0) + 1e-3
    X_train = (X_train - mean) / scale
    X_test = (X_test - mean) / scale

    model = lm.Model(
        [
            Dense(784, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 10, activation="softmax", weight_init="glorot_uniform"),
        ],
        seed=1,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    history = model.fit(X_train, y_train, epochs=10, batch_size=128, verbose=0)
    result = model.evaluate(X_test, y_test)
    print(f"W1 test accuracy {result['accuracy']:.4f}")
    assert result["accuracy"] >= 0.88
    assert history.history["loss"][-1] < history.history["loss"][0]
