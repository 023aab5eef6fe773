"""Learning-rate control during training: on a plateau, by a schedule, along a cosine
(notes §1.4 "Learning Rate Decay", §2.2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lamina._params import Function, Interval, checked
from lamina.callbacks.base import MIN_DELTA, MODE, MONITOR, Callback, Logs, Monitor, state_int
from lamina.errors import ConfigError, invalid

RATE = Interval(float, 0)  # a learning rate: finite, ≥ 0


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience``
    epochs (notes §1.4: decrease the rate as the loss levels out).

    Args:
        factor: in (0, 1). cooldown: epochs to wait after a reduction. min_lr: the floor.
    """

    @checked(
        monitor=MONITOR,
        factor=Interval(float, 0, 1, closed="neither"),
        patience=Interval(int, 0),
        min_delta=MIN_DELTA,
        cooldown=Interval(int, 0),
        min_lr=RATE,
        mode=MODE,
    )
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
        super().__init__()
        self._monitor = Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.factor, self.patience, self.cooldown = factor, patience, cooldown
        self.min_lr = min_lr

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._wait = self._cooling = 0
        self._monitor.best = self._monitor.worst

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

    def get_state(self) -> dict[str, Any]:
        return {"wait": self._wait, "cooling": self._cooling, "best": self._monitor.best_state()}

    def set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self._wait = state_int("ReduceLROnPlateau", state, "wait")
        self._cooling = state_int("ReduceLROnPlateau", state, "cooling")
        self._monitor.set_best(state.get("best"))


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch: ``η = schedule(epoch, η)`` (notes §2.2),
    e.g. ``LearningRateScheduler(lambda epoch, lr: lr * 0.9)``."""

    @checked(schedule=Function("a function (epoch, lr) -> lr"))
    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        super().__init__()
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

    @checked(initial_learning_rate=RATE, epochs=Interval(int, 1), final_learning_rate=RATE)
    def __init__(
        self, initial_learning_rate: float, epochs: int, final_learning_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.final_learning_rate = final_learning_rate
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
