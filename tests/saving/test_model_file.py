"""The .lamina model file (DESIGN §6, notes §1.10): exact round trips, exact resumption,
crash safety, and safety against hostile files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def bn_dropout_model(seed: int = 0) -> lm.Model:
    model = lm.Model(
        [
            L.Dense(4, 16, activation="relu"),
            L.BatchNorm(16),
            L.Dropout(0.3),
            L.Dense(16, 3, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-2))
    return model


def w1_model() -> lm.Model:
    model = lm.Model(
        [
            L.Dense(784, 128, activation="relu"),
            L.Dense(128, 128, activation="relu"),
            L.Dense(128, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def w2_model() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 8, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(8, 16, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(5 * 5 * 16, 32, activation="relu"),
            L.Dropout(0.5),
            L.Dense(32, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def small_data(shape: tuple[int, ...], classes: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, classes, n)


CASES: dict[str, tuple[Callable[[], lm.Model], tuple[int, ...], int]] = {
    "w1": (w1_model, (784,), 10),
    "w2": (w2_model, (28, 28, 1), 10),
    "batchnorm+dropout": (bn_dropout_model, (4,), 3),
}


def weights(model: lm.Model) -> list[np.ndarray]:
    return [
        value for layer in model.layers for value in (*layer.params.values(), *layer.state.values())
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_save_load_predict_is_bitwise_and_training_continues_identically(
    name: str, tmp_path: Path
) -> None:
    build, shape, classes = CASES[name]
    X, y = small_data(shape, classes)
    original = build()
    original.fit(X, y, epochs=2, batch_size=16, verbose=0)
    original.save(tmp_path / "model.lamina")
    loaded = lm.load_model(tmp_path / "model.lamina")
    np.testing.assert_array_equal(original.predict(X), loaded.predict(X))
    original.fit(X, y, epochs=3, batch_size=16, initial_epoch=2, verbose=0)
    loaded.fit(X, y, epochs=3, batch_size=16, initial_epoch=2, verbose=0)
    for a, b in zip(weights(original), weights(loaded), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_equals_uninterrupted_training(tmp_path: Path) -> None:
    X, y = small_data((4,), 3, n=200)
    interrupted = bn_dropout_model()
    interrupted.fit(X, y, epochs=2, batch_size=32, verbose=0)
    interrupted.save(tmp_path / "checkpoint.lamina")
    resumed = lm.load_model(tmp_path / "checkpoint.lamina")
    assert resumed.epochs_done == 2
    history = resumed.fit(X, y, epochs=4, batch_size=32, initial_epoch=2, verbose=0)
    straight = bn_dropout_model()
    expected = straight.fit(X, y, epochs=4, batch_size=32, verbose=0)
    for a, b in zip(weights(resumed), weights(straight), strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == expected.epoch == [0, 1, 2, 3]
    assert history.history == expected.history and history.steps == expected.steps


def test_the_same_model_gives_the_same_bytes(tmp_path: Path) -> None:
    X, y = small_data((4,), 3)
    model = bn_dropout_model()
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "a.lamina")
    model.save(tmp_path / "b.lamina")
    assert (tmp_path / "a.lamina").read_bytes() == (tmp_path / "b.lamina").read_bytes()


def test_unregistered_components_cannot_be_saved(tmp_path: Path) -> None:
    class MyLoss(lm.losses.MeanSquaredError):
        pass

    model = lm.Model([L.Dense(2, 1)], seed=0)
    model.compile(loss=MyLoss(), optimizer="sgd")
    with pytest.raises(lm.errors.ModelFileError, match="save_weights"):
        model.save(tmp_path / "m.lamina")
    assert not list(tmp_path.iterdir())


def test_missing_file_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(lm.errors.ModelFileError, match="No model file"):
        lm.load_model(tmp_path / "nothing.lamina")
