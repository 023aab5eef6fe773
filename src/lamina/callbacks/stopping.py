"""Stopping training: early stopping on a monitored value, and on NaN (notes §2.2)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lamina._params import Flag, Interval, checked
from lamina.callbacks.base import (
    MIN_DELTA,
    MODE,
    MONITOR,
    Callback,
    Logs,
    Monitor,
    Restored,
    state_int,
)
from lamina.errors import ConfigError, invalid
from lamina.layers.stack import named_tensors

Array = np.ndarray


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
            The state a continued fit gets keeps the last epoch's weights too, and puts
            them back before it goes on, as the uninterrupted run would have. The fit's
            ``History.restored`` names the epoch (and the progress display says it).
    Attributes:
        stopped_epoch: the epoch training stopped at, or None; best_epoch: the best epoch.
    """

    @checked(
        monitor=MONITOR,
        patience=Interval(int, 0),
        min_delta=MIN_DELTA,
        mode=MODE,
        restore_best_weights=Flag(),
    )
    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__()
        self._monitor = Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._wait = 0
        self._monitor.best = self._monitor.worst
        self._best_weights: dict[str, Array] | None = None
        self._last_weights: dict[str, Array] | None = None
        self.stopped_epoch = self.best_epoch = None

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        current = self._monitor.value(logs)
        if self._monitor.improved(current):
            self._monitor.best, self.best_epoch, self._wait = current, epoch, 0
            if self.restore_best_weights:
                self._best_weights = _copy_weights(self.model)
            return
        self._wait += 1
        if self._wait >= self.patience:  # as Keras: stop after `patience` epochs without gain
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self._last_weights = _copy_weights(self.model)
            _put_weights(self.model, self._best_weights)
            history = self.model.history
            if history is not None and self.best_epoch is not None:
                best = self._monitor.best
                history.restored = Restored(self.best_epoch, self._monitor.monitor, best)

    def get_state(self) -> dict[str, Any]:
        return {
            "wait": self._wait,
            "best": self._monitor.best_state(),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }

    def get_tensors(self) -> dict[str, Array]:
        tensors = {f"best/{k}": v for k, v in (self._best_weights or {}).items()}
        tensors.update({f"last/{k}": v for k, v in (self._last_weights or {}).items()})
        return tensors

    def set_state(self, state: dict[str, Any], tensors: dict[str, Array]) -> None:
        owner = "EarlyStopping"
        self._wait = state_int(owner, state, "wait")
        self._monitor.set_best(state.get("best"))
        self.best_epoch = state_int(owner, state, "best_epoch", optional=True)
        self.stopped_epoch = state_int(owner, state, "stopped_epoch", optional=True)
        groups: dict[str, dict[str, Array]] = {"best": {}, "last": {}}
        for name, array in tensors.items():
            group, _, key = name.partition("/")
            if group not in groups:
                raise ConfigError(invalid(f"{owner} tensors", "best/… or last/… names", name))
            groups[group][key] = array
        expected = {name: array.shape for name, array in named_tensors(self.model.layers)}
        for group, weights in groups.items():
            if weights and {k: v.shape for k, v in weights.items()} != expected:
                raise ConfigError(
                    invalid(f"{owner} {group} weights", "the model's tensors", sorted(weights)[:5])
                )
        self._best_weights = groups["best"] or None
        if groups["last"]:  # the run ended on its best weights: go on from its last ones
            _put_weights(self.model, groups["last"])
        if self.stopped_epoch is not None:  # the saved run had stopped: so does this one
            self.model.stop_training = True


class TerminateOnNaN(Callback):
    """Stop training after a batch whose loss is NaN or inf (Keras's callback). A model
    already stops before applying such a batch; this also catches non-finite metrics."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if not all(math.isfinite(value) for value in logs.values()):
            self.model.stop_training = True


def _copy_weights(model: Any) -> dict[str, Array]:
    return {name: array.copy() for name, array in named_tensors(model.layers)}


def _put_weights(model: Any, weights: dict[str, Array]) -> None:
    for name, array in named_tensors(model.layers):
        array[...] = weights[name]  # in place: the model's flat parameter buffer stays
