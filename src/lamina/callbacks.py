"""Callbacks that watch and steer ``Model.fit``: History, the progress display, early
stopping, checkpoints, learning-rate control and CSV logs (notes §1.10, §2.2).

A callback receives ``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``,
``on_epoch_end`` and ``on_train_end``; ``logs`` are plain dicts of floats.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.errors import ConfigError, invalid

if TYPE_CHECKING:
    from lamina.model import Model

Logs = dict[str, float]


class Callback:
    """Base class; every hook does nothing unless overridden."""

    model: Model

    def set_model(self, model: Model) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called before each epoch (0-based ``epoch``)."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        """Called after each optimizer step with the batch's loss and metrics."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """Called after each epoch with sample-weighted epoch stats and validation stats."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch."""


class History(Callback):
    """Step-wise and epoch-wise statistics of a ``fit`` (notes §1.9).

    Attributes:
        epoch: the epoch numbers recorded.
        history: epoch-wise lists, ``{"loss": [...], "accuracy": [...], "val_loss": [...]}``;
            epoch values are sample-weighted means over the epoch's batches.
        steps: step-wise lists, ``{"loss": [...], "accuracy": [...]}``, one per batch.
    """

    def __init__(self) -> None:
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}
        self.steps: dict[str, list[float]] = {}

    def on_batch_end(self, step: int, logs: Logs) -> None:
        for key, value in logs.items():
            self.steps.setdefault(key, []).append(value)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class ProgressBar(Callback):
    """A tqdm bar per epoch (only on a terminal) and a Keras-like line after each epoch.

    Args:
        verbose: 0 silent, 1 bar + epoch lines, 2 epoch lines only.
        file: where to write (stderr by default, like tqdm).
    """

    def __init__(self, verbose: int = 1, file: Any = None) -> None:
        self.verbose = verbose
        self.file = file if file is not None else sys.stderr
        self._bar: Any = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._epochs = self.model._fit_epochs
        self._steps = self.model._fit_steps

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = time.perf_counter()
        interactive = getattr(self.file, "isatty", lambda: False)()
        if self.verbose == 1 and interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self._steps,
                desc=f"Epoch {epoch + 1}/{self._epochs}",
                unit="step",
                file=self.file,
                leave=False,
                dynamic_ncols=True,
            )

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if step % 20 == 0:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose:
            seconds = time.perf_counter() - self._start
            stats = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
            rate = f"lr: {self.model.optimizer.current_learning_rate:.3g}"  # type: ignore[union-attr]
            print(
                f"Epoch {epoch + 1}/{self._epochs} - {seconds:.1f}s - {stats} - {rate}",
                file=self.file,
                flush=True,
            )


class _Monitor:
    """Which logged value a callback watches, and what counts as better (notes §2.2)."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("auto", "min", "max"):
            raise ConfigError(invalid(f"{owner}.mode", "'auto', 'min' or 'max'", repr(mode)))
        if not min_delta >= 0:
            raise ConfigError(invalid(f"{owner}.min_delta", "a float ≥ 0", repr(min_delta)))
        if mode == "auto":
            mode = "max" if "accuracy" in monitor else "min"
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, min_delta
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: Logs) -> float:
        if self.monitor not in logs:
            raise ConfigError(
                invalid(
                    f"{self.owner}.monitor",
                    f"one of the logged values {sorted(logs)}",
                    repr(self.monitor),
                    "monitor a val_ value only when fit has validation "
                    "data (validation_data or validation_split)",
                )
            )
        return float(logs[self.monitor])

    def improved(self, current: float) -> bool:
        if not math.isfinite(current):
            return False
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


def _snapshot(model: Model) -> list[np.ndarray]:
    return [
        array.copy()
        for layer in model.layers
        for array in (*layer.params.values(), *layer.state.values())
    ]


def _restore(model: Model, snapshot: list[np.ndarray]) -> None:
    targets = [
        array for layer in model.layers for array in (*layer.params.values(), *layer.state.values())
    ]
    for target, saved in zip(targets, snapshot, strict=True):
        target[...] = saved  # in place: the model's flat parameter buffer stays


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs (notes §2.2 "early stopping").

    Args:
        monitor: a logged value, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, else min).
        restore_best_weights: when training ends, put back the weights (and BatchNorm
            statistics) of the best epoch, so the model ends on its best validation epoch.
    Attributes:
        stopped_epoch: the epoch training stopped at, or None; best_epoch: the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        if not (isinstance(patience, int) and patience >= 0):
            raise ConfigError(invalid("EarlyStopping.patience", "an int ≥ 0", repr(patience)))
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._wait = 0
        self._best_weights: list[np.ndarray] | None = None
        self.stopped_epoch = self.best_epoch = None

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        current = self._monitor.value(logs)
        if self._monitor.improved(current):
            self._monitor.best, self.best_epoch, self._wait = current, epoch, 0
            if self.restore_best_weights:
                self._best_weights = _snapshot(self.model)
            return
        self._wait += 1
        if self._wait >= self.patience:  # as Keras: stop after `patience` epochs without gain
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            _restore(self.model, self._best_weights)


class ModelCheckpoint(Callback):
    """Save the whole model (``Model.save``, atomic) during training (notes §1.10).

    Args:
        path: the file, which may hold ``{epoch}`` and logged names, e.g.
            ``"runs/ckpt-{epoch:02d}-{val_loss:.3f}.lamina"``; epochs count from 1.
        monitor, mode: what ``save_best_only`` compares (as for EarlyStopping).
        save_best_only: save only when ``monitor`` improves.
        every_n_epochs: save every n-th epoch.
    A model with NaN/inf weights is never saved: the checkpoint keeps the last good model.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        every_n_epochs: int = 1,
        mode: str = "auto",
    ) -> None:
        self.path = os.fspath(path)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.save_best_only = save_best_only
        if not (isinstance(every_n_epochs, int) and every_n_epochs >= 1):
            raise ConfigError(
                invalid("ModelCheckpoint.every_n_epochs", "an int ≥ 1", repr(every_n_epochs))
            )
        self.every_n_epochs = every_n_epochs
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        if self.save_best_only:
            current = self._monitor.value(logs)
            if not self._monitor.improved(current):
                return
            self._monitor.best = current
        if not all(
            np.isfinite(p).all() for layer in self.model.layers for p in layer.params.values()
        ):
            warnings.warn(
                f"ModelCheckpoint: epoch {epoch + 1}'s weights are not finite; "
                "the checkpoint keeps the previous model.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        path = self.path.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)


class TerminateOnNaN(Callback):
    """Stop training after a batch whose loss is NaN or inf (Keras's callback). A model
    already stops before applying such a batch; this also catches non-finite metrics."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if not all(math.isfinite(value) for value in logs.values()):
            self.model.stop_training = True


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience``
    epochs (notes §1.4: decrease the rate as the loss levels out).

    Args:
        factor: in (0, 1). cooldown: epochs to wait after a reduction. min_lr: the floor.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ) -> None:
        if not 0 < factor < 1:
            raise ConfigError(
                invalid("ReduceLROnPlateau.factor", "a float in (0, 1)", repr(factor))
            )
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.factor, self.patience, self.cooldown, self.min_lr = factor, patience, cooldown, min_lr

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._wait = self._cooling = 0

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        current = self._monitor.value(logs)
        optimizer = self.model.optimizer
        assert optimizer is not None
        if self._cooling:
            self._cooling -= 1
        if self._monitor.improved(current):
            self._monitor.best, self._wait = current, 0
            return
        if self._cooling:
            return
        self._wait += 1
        if self._wait >= self.patience and optimizer.learning_rate > self.min_lr:
            optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            self._wait, self._cooling = 0, self.cooldown


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch: ``η = schedule(epoch, η)`` (notes §2.2),
    e.g. ``LearningRateScheduler(lambda epoch, lr: lr * 0.9)``."""

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        if not callable(schedule):
            raise ConfigError(
                invalid(
                    "LearningRateScheduler.schedule",
                    "a function (epoch, lr) -> lr",
                    type(schedule).__name__,
                )
            )
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = self.model.optimizer
        assert optimizer is not None
        rate = float(self.schedule(epoch, optimizer.learning_rate))
        if not (math.isfinite(rate) and rate >= 0):
            raise ConfigError(
                invalid(
                    "LearningRateScheduler.schedule",
                    "a finite rate ≥ 0",
                    f"{rate} at epoch {epoch}",
                )
            )
        optimizer.learning_rate = rate


class CosineDecay(Callback):
    r"""Anneal the learning rate along half a cosine, epoch by epoch (Loshchilov & Hutter's
    SGDR without restarts; Keras's ``CosineDecay``, PyTorch's ``CosineAnnealingLR``):

        η_e = η_min + ½ (η₀ − η_min) (1 + cos(π · e / E))     for epoch e < E, then η_min

    The rate depends on the epoch number alone, so a resumed fit (``initial_epoch``) takes
    the same rates as an uninterrupted one.

    Args:
        initial_learning_rate: η₀, the rate of epoch 0.
        epochs: E, the epochs the decay spans (usually fit's ``epochs``).
        final_learning_rate: η_min, approached at the end and kept after it.
    """

    def __init__(
        self, initial_learning_rate: float, epochs: int, final_learning_rate: float = 0.0
    ) -> None:
        for argument, value in (
            ("initial_learning_rate", initial_learning_rate),
            ("final_learning_rate", final_learning_rate),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(invalid(f"CosineDecay.{argument}", "a float ≥ 0", repr(value)))
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(invalid("CosineDecay.epochs", "an int ≥ 1", repr(epochs)))
        self.initial_learning_rate = float(initial_learning_rate)
        self.final_learning_rate = float(final_learning_rate)
        self.epochs = epochs

    def rate(self, epoch: int) -> float:
        """η_e for a 0-based epoch."""
        if epoch >= self.epochs:
            return self.final_learning_rate
        cosine = 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return (
            self.final_learning_rate
            + (self.initial_learning_rate - self.final_learning_rate) * cosine
        )

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = self.model.optimizer
        assert optimizer is not None
        optimizer.learning_rate = self.rate(epoch)


class CSVLogger(Callback):
    """Write the epoch statistics to a CSV file, one row per epoch; the whole file is
    rewritten atomically after each epoch, so it is never half-written.

    Args:
        path: the CSV file. append: keep the rows of an earlier run (resuming).
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = os.fspath(path)
        self.append = append

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._rows: list[dict[str, str]] = []
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="") as file:
                self._rows = list(csv.DictReader(file))

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        from lamina.io import atomic_write

        self._rows.append({"epoch": str(epoch + 1), **{k: repr(v) for k, v in logs.items()}})
        columns = list(dict.fromkeys(key for row in self._rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write(self.path, text.getvalue().encode())


# Callbacks a TOML config can name (LearningRateScheduler takes a function: Python only).
CALLBACKS: dict[str, type[Callback]] = {
    "early_stopping": EarlyStopping,
    "model_checkpoint": ModelCheckpoint,
    "terminate_on_nan": TerminateOnNaN,
    "reduce_lr_on_plateau": ReduceLROnPlateau,
    "cosine_decay": CosineDecay,
    "csv_logger": CSVLogger,
}
