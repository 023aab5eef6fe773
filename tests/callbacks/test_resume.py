"""Resuming with stateful callbacks (issue 12, must-show 5): N epochs, a save, a load and M
more epochs equal N + M epochs in one go, bit for bit — weights, optimizer state, learning
rate, History and the epoch training stops at — for every stateful callback."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L, C = lm.layers, lm.callbacks
ROOT = Path(__file__).resolve().parents[2]


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A small noisy problem a wide network overfits within a few epochs."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] + rng.normal(0, 1.5, 120) > 0).astype(int)
    return X[:80], y[:80], X[80:], y[80:]


def network() -> lm.Model:
    model = lm.Model(
        [L.Dense(6, 64, activation="relu"), L.Dropout(0.1), L.Dense(64, 2, activation="softmax")],
        seed=4,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-2))
    return model


CALLBACKS: dict[str, Callable[[Path], list[C.Callback]]] = {
    "early_stopping": lambda out: [C.EarlyStopping(monitor="val_loss", patience=2)],
    "early_stopping, restore_best_weights": lambda out: [
        C.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    ],
    "reduce_lr_on_plateau": lambda out: [
        C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, cooldown=1)
    ],
    "cosine_decay": lambda out: [C.CosineDecay(1e-2, epochs=8, final_learning_rate=1e-3)],
    "learning_rate_scheduler": lambda out: [C.LearningRateScheduler(lambda e, lr: lr * 0.8)],
    "model_checkpoint, save_best_only": lambda out: [
        C.ModelCheckpoint(out / "best-{epoch}.lamina", monitor="val_loss", save_best_only=True)
    ],
    "csv_logger": lambda out: [C.CSVLogger(out / "log.csv", append=True)],
    "all of them": lambda out: [
        C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
        C.EarlyStopping(monitor="val_accuracy", patience=4, restore_best_weights=True),
        C.ModelCheckpoint(out / "best-{epoch}.lamina", monitor="val_loss", save_best_only=True),
        C.CSVLogger(out / "log.csv", append=True),
    ],
}


def outcome(model: lm.Model, history: C.History, out: Path) -> dict[str, object]:
    assert model.optimizer is not None
    return {
        "weights": [a.tobytes() for a in lm.io.model_tensors(model).values()],
        "slots": sorted(
            (key, name, array.tobytes())
            for key, slots in model.optimizer.slots.items()
            for name, array in slots.items()
        ),
        "learning_rate": model.optimizer.learning_rate,
        "iterations": model.optimizer.iterations,
        "epochs_done": model.epochs_done,
        "epoch": history.epoch,
        "history": history.history,
        "steps": history.steps,
        "checkpoints": sorted(p.name for p in out.glob("best-*.lamina")),
        "log": (out / "log.csv").read_text() if (out / "log.csv").exists() else None,
    }


@pytest.mark.parametrize("name", list(CALLBACKS))
@pytest.mark.parametrize("first", [3, 5])
def test_n_plus_m_resumed_epochs_equal_n_plus_m(name: str, first: int, tmp_path: Path) -> None:
    X, y, X_val, y_val = problem()
    fit = {"batch_size": 16, "validation_data": (X_val, y_val), "verbose": 0}
    straight_out, resumed_out = tmp_path / "straight", tmp_path / "resumed"
    straight_out.mkdir()
    resumed_out.mkdir()
    straight = network()
    history = straight.fit(X, y, epochs=10, callbacks=CALLBACKS[name](straight_out), **fit)
    expected = outcome(straight, history, straight_out)

    interrupted = network()
    interrupted.fit(X, y, epochs=first, callbacks=CALLBACKS[name](resumed_out), **fit)
    interrupted.save(resumed_out / "model.lamina")
    resumed = lm.load_model(resumed_out / "model.lamina")
    history = resumed.fit(
        X,
        y,
        epochs=10,
        initial_epoch=resumed.epochs_done,
        callbacks=CALLBACKS[name](resumed_out),
        **fit,
    )
    assert outcome(resumed, history, resumed_out) == expected


def test_the_problem_exercises_every_callback(tmp_path: Path) -> None:
    """The callbacks above act within the 10 epochs: early stopping stops after epoch 3
    and before epoch 10, the plateau lowers the rate, several checkpoints are kept."""
    X, y, X_val, y_val = problem()
    fit = {"batch_size": 16, "validation_data": (X_val, y_val), "verbose": 0}
    stopping = C.EarlyStopping(monitor="val_loss", patience=2)
    network().fit(X, y, epochs=10, callbacks=[stopping], **fit)
    assert stopping.stopped_epoch is not None and 3 <= stopping.stopped_epoch < 9
    model = network()
    model.fit(X, y, epochs=10, callbacks=CALLBACKS["reduce_lr_on_plateau"](tmp_path), **fit)
    assert model.optimizer is not None and model.optimizer.learning_rate < 1e-2 / 2
    network().fit(
        X, y, epochs=10, callbacks=CALLBACKS["model_checkpoint, save_best_only"](tmp_path), **fit
    )
    assert len(list(tmp_path.glob("best-*.lamina"))) >= 2


def test_a_csv_log_resumed_from_an_older_checkpoint_has_one_row_per_epoch(tmp_path: Path) -> None:
    X, y, X_val, y_val = problem()
    fit = {"batch_size": 16, "validation_data": (X_val, y_val), "verbose": 0}
    log = tmp_path / "log.csv"
    model = network()
    checkpoint = C.ModelCheckpoint(tmp_path / "ckpt-{epoch}.lamina", monitor="loss")
    model.fit(X, y, epochs=6, callbacks=[checkpoint, C.CSVLogger(log)], **fit)
    resumed = lm.load_model(tmp_path / "ckpt-4.lamina")  # the run went on past it
    resumed.fit(X, y, epochs=6, initial_epoch=4, callbacks=[C.CSVLogger(log, append=True)], **fit)
    assert [row["epoch"] for row in csv.DictReader(log.open())] == ["1", "2", "3", "4", "5", "6"]


CONFIG = """
[data]
dataset = "spiral"
samples = 60
classes = 3
seed = 1

[model]
seed = 0

[[layers]]
type = "dense"
n_inputs = 2
n_neurons = 32
activation = "relu"

[[layers]]
type = "dense"
n_inputs = 32
n_neurons = 3
activation = "softmax"

[compile]
loss = "categorical_crossentropy"

[optimizer]
type = "adam"
learning_rate = 0.05

[train]
batch_size = 30
verbose = 0

[[callbacks]]
type = "reduce_lr_on_plateau"
monitor = "loss"
factor = 0.5
patience = 2
min_delta = 0.01

[[callbacks]]
type = "early_stopping"
monitor = "loss"
min_delta = 0.001
patience = 6
"""


def lamina(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_lamina_train_resume_with_stateful_callbacks_is_exact(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    straight = lamina("train", config, "--epochs", "40", "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    first = lamina("train", config, "--epochs", "15", "--out", tmp_path / "resumed")
    assert first.returncode == 0, first.stderr
    second = lamina(
        "train",
        config,
        "--resume",
        tmp_path / "resumed" / "model.lamina",
        "--epochs",
        "25",
        "--out",
        tmp_path / "resumed",
    )
    assert second.returncode == 0, second.stderr
    a = lm.load_model(tmp_path / "straight" / "model.lamina")
    b = lm.load_model(tmp_path / "resumed" / "model.lamina")
    assert 15 < a.epochs_done == b.epochs_done < 40  # early stopping stopped both, after 15
    assert a.optimizer is not None and b.optimizer is not None
    assert a.optimizer.learning_rate == b.optimizer.learning_rate < 0.05
    for x, z in zip(lm.io.model_tensors(a).values(), lm.io.model_tensors(b).values(), strict=True):
        np.testing.assert_array_equal(x, z)
    assert a.history is not None and b.history is not None
    assert json.dumps(a.history.history) == json.dumps(b.history.history)
    assert (tmp_path / "straight" / "history.csv").read_text() == (
        tmp_path / "resumed" / "history.csv"
    ).read_text()
