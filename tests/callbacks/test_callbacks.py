"""Callbacks (notes §1.10, §2.2): early stopping, checkpoints, learning-rate control, logs,
and transfer learning with frozen layers."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers
C = lm.callbacks


def overfitting_setup() -> tuple[lm.Model, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 10)).astype(np.float32)
    y = rng.integers(0, 3, 60)  # random labels: validation loss turns up once it memorises
    Xv = rng.standard_normal((60, 10)).astype(np.float32)
    yv = rng.integers(0, 3, 60)
    model = lm.Model(
        [L.Dense(10, 64, activation="relu"), L.Dense(64, 3, activation="softmax")], seed=0
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(0.01))
    return model, (X, y, Xv, yv)


def test_early_stopping_ends_on_the_best_validation_epoch() -> None:
    model, (X, y, Xv, yv) = overfitting_setup()
    stopper = C.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = model.fit(
        X, y, epochs=100, batch_size=20, validation_data=(Xv, yv), callbacks=[stopper], verbose=0
    )
    val_losses = history.history["val_loss"]
    assert stopper.stopped_epoch is not None and len(val_losses) < 100
    assert stopper.best_epoch == int(np.argmin(val_losses))
    assert len(val_losses) == stopper.best_epoch + 1 + 3  # `patience` epochs after the best
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(min(val_losses), rel=1e-6)


def test_early_stopping_names_a_missing_monitor() -> None:
    model, (X, y, _, _) = overfitting_setup()
    with pytest.raises(lm.errors.ConfigError, match=r"EarlyStopping.monitor.*validation"):
        model.fit(X, y, epochs=2, callbacks=[C.EarlyStopping()], verbose=0)


def test_checkpoint_saves_the_best_models_and_they_load(tmp_path: Path) -> None:
    model, (X, y, Xv, yv) = overfitting_setup()
    checkpoint = C.ModelCheckpoint(tmp_path / "best.lamina", save_best_only=True)
    every = C.ModelCheckpoint(str(tmp_path / "epoch-{epoch:02d}.lamina"), every_n_epochs=2)
    history = model.fit(
        X,
        y,
        epochs=8,
        batch_size=20,
        validation_data=(Xv, yv),
        callbacks=[checkpoint, every],
        verbose=0,
    )
    val = history.history["val_loss"]
    improvements = sum(v < min(val[:i], default=math.inf) for i, v in enumerate(val))
    assert len(checkpoint.saved) == improvements
    best = lm.load_model(tmp_path / "best.lamina")
    assert best.evaluate(Xv, yv)["loss"] == pytest.approx(min(val), rel=1e-6)
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == [
        "epoch-02.lamina",
        "epoch-04.lamina",
        "epoch-06.lamina",
        "epoch-08.lamina",
    ]


def test_checkpoint_never_writes_non_finite_weights(tmp_path: Path) -> None:
    model, (X, y, _, _) = overfitting_setup()

    class Poison(C.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            if epoch == 2:
                self.model.layers[0].params["weights"][0, 0] = np.nan

    checkpoint = C.ModelCheckpoint(tmp_path / "last.lamina", monitor="loss")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, epochs=3, batch_size=20, callbacks=[Poison(), checkpoint], verbose=0)
    assert any("not finite" in str(w.message) for w in caught)
    assert len(checkpoint.saved) == 2
    assert lm.load_model(tmp_path / "last.lamina").epochs_done == 2


def test_reduce_lr_on_plateau_and_scheduler() -> None:
    model, (X, y, _, _) = overfitting_setup()
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(learning_rate=0.0))
    plateau = C.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0.0)
    model.optimizer.learning_rate = 1e-20  # type: ignore[union-attr]  # a frozen loss
    model.fit(X, y, epochs=5, callbacks=[plateau], verbose=0)
    assert model.optimizer.learning_rate < 1e-20  # type: ignore[union-attr]
    rates: list[float] = []
    scheduler = C.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))

    class Record(C.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            rates.append(self.model.optimizer.learning_rate)  # type: ignore[union-attr]

    model.fit(X, y, epochs=3, callbacks=[scheduler, Record()], verbose=0)
    assert rates == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_cosine_decay_rates_and_resume() -> None:
    model, (X, y, _, _) = overfitting_setup()
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(learning_rate=1.0))
    rates: list[float] = []

    class Record(C.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            rates.append(self.model.optimizer.learning_rate)  # type: ignore[union-attr]

    decay = C.CosineDecay(0.1, epochs=4, final_learning_rate=0.01)
    model.fit(X, y, epochs=3, callbacks=[decay, Record()], verbose=0)
    # continued from epoch 3: the schedule goes on where it stopped, then stays at the floor
    model.fit(X, y, epochs=6, initial_epoch=3, callbacks=[decay, Record()], verbose=0)
    cosine = [0.5 * (1 + np.cos(np.pi * e / 4)) for e in range(4)]
    assert rates == pytest.approx([0.01 + 0.09 * c for c in cosine] + [0.01, 0.01])
    assert rates[0] == pytest.approx(0.1) and rates[2] == pytest.approx(0.055)
    with pytest.raises(lm.errors.ConfigError, match=r"CosineDecay\.epochs"):
        C.CosineDecay(0.1, epochs=0)
    with pytest.raises(lm.errors.ConfigError, match="initial_learning_rate"):
        C.CosineDecay(float("nan"), epochs=3)


def test_terminate_on_nan_stops_within_the_epoch() -> None:
    model, (X, y, _, _) = overfitting_setup()

    class NaNMetric(lm.metrics.CategoricalAccuracy):
        def per_sample(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
            return np.full(len(y_pred), np.nan)

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=[NaNMetric()])
    history = model.fit(X, y, epochs=5, batch_size=10, callbacks=[C.TerminateOnNaN()], verbose=0)
    assert len(history.steps["loss"]) == 1


def test_csv_logger_writes_one_row_per_epoch(tmp_path: Path) -> None:
    model, (X, y, Xv, yv) = overfitting_setup()
    path = tmp_path / "history.csv"
    model.fit(X, y, epochs=3, validation_data=(Xv, yv), callbacks=[C.CSVLogger(path)], verbose=0)
    model.fit(
        X,
        y,
        epochs=5,
        initial_epoch=3,
        validation_data=(Xv, yv),
        callbacks=[C.CSVLogger(path, append=True)],
        verbose=0,
    )
    rows = list(csv.DictReader(path.open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}


def test_transfer_learning_trains_only_the_new_head(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 12, 12, 1)).astype(np.float32)

    def cnn(classes: int) -> lm.Model:
        model = lm.Model(
            [
                L.Conv2D(1, 4, 3, activation="relu"),
                L.MaxPool2D(2),
                L.Conv2D(4, 8, 3, activation="relu"),
                L.Flatten(),
                L.Dense(3 * 3 * 8, classes, activation="softmax"),
            ],
            seed=classes,
        )
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        return model

    source = cnn(10)
    source.fit(X, rng.integers(0, 10, 64), epochs=2, verbose=0)
    source.save_weights(tmp_path / "w2.safetensors")
    target = cnn(3)
    loaded = target.load_weights(tmp_path / "w2.safetensors", strict=False)
    assert sorted(loaded) == [
        "conv2d/biases",
        "conv2d/weights",
        "conv2d_1/biases",
        "conv2d_1/weights",
    ]
    for layer in target.layers[:3]:
        layer.trainable = False
    frozen = [p.copy() for layer in target.layers[:3] for p in layer.params.values()]
    head = [p.copy() for p in target.layers[-1].params.values()]
    target.fit(X, rng.integers(0, 3, 64), epochs=3, verbose=0)
    after = [p for layer in target.layers[:3] for p in layer.params.values()]
    for before, now in zip(frozen, after, strict=True):
        np.testing.assert_array_equal(before, now)
    assert all(
        not np.array_equal(b, a)
        for b, a in zip(head, target.layers[-1].params.values(), strict=True)
    )
