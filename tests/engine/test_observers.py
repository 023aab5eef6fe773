"""Observers of the execution plan: what callbacks that watch a training forward see."""

from __future__ import annotations

import numpy as np

import lamina as lm

L = lm.layers


def small_cnn() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 2, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(8, 3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    return model


def test_observers_see_every_step_of_a_training_forward_and_nothing_at_inference() -> None:
    model = small_cnn()
    seen: list[tuple[str, str, tuple[int, ...]]] = []
    model.plan.observers.append(
        lambda name, layer, out: seen.append((name, type(layer).__name__, out.shape))
    )
    X, y = np.random.default_rng(0).random((4, 6, 6, 1)), np.array([0, 1, 2, 0])
    model.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert seen == [
        ("conv2d+max_pool2d", "MaxPool2D", (4, 2, 2, 2)),  # the ReLU runs after the pool
        ("conv2d/relu", "ReLU", (4, 2, 2, 2)),
        ("flatten", "Flatten", (4, 8)),
        ("dense", "Dense", (4, 3)),
        ("dense/softmax", "Softmax", (4, 3)),
    ]
    model.predict(X)
    model.evaluate(X, y)
    assert len(seen) == 5


def test_watching_changes_no_result() -> None:
    X, y = np.random.default_rng(1).random((16, 6, 6, 1)), np.arange(16) % 3
    plain, watched = small_cnn(), small_cnn()
    watched.plan.observers.append(lambda name, layer, out: float(out.sum()))
    plain.fit(X, y, epochs=2, batch_size=4, verbose=0)
    watched.fit(X, y, epochs=2, batch_size=4, verbose=0)
    for (_, a, _), (_, b, _) in zip(plain.parameters(), watched.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
