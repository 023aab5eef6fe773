"""The Callback protocol, the History every fit returns, and the monitor that callbacks
watching a logged value share (notes §1.9, §2.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lamina._params import Interval, Options, Text, check, rule
from lamina.errors import ConfigError, invalid
from lamina.metrics import mode_for

if TYPE_CHECKING:
    from lamina.model import Model

Logs = dict[str, float]


class Callback:
    """Base class of the objects that watch and steer ``Model.fit``; every hook does
    nothing unless overridden.

    Before ``on_train_begin``, ``fit`` calls :meth:`set_params` with what the run will do
    and :meth:`set_model` with the model; a callback reads both from there and from
    ``logs``, never from private attributes of the model.

    A callback whose behaviour depends on earlier epochs (a patience counter, a best
    value) returns that state from :meth:`get_state` (JSON-able values) and
    :meth:`get_tensors` (arrays). ``Model.save`` stores both in the model file, and a fit
    that continues a model (``initial_epoch == model.epochs_done``) hands them to the
    callback of the same kind through :meth:`set_state`, after ``on_train_begin``, so that
    N epochs, a save, a load and M more epochs train exactly as N + M epochs in one go.
    """

    model: Model
    #: A callback that saves the model runs after every other ``on_epoch_end``, so that
    #: the file it writes holds the epoch's final state, all callbacks included.
    saves_model = False
    #: ``on_batch_end`` receives the running means of the epoch so far (the loss and
    #: metrics over every batch since the epoch began, as Keras' logs are) instead of the
    #: batch's own values (what History records step by step).
    running_logs: ClassVar[bool] = False

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def set_params(self, params: dict[str, Any]) -> None:
        """What the fit will do: ``epochs`` (the last epoch, exclusive), ``initial_epoch``,
        ``steps`` (batches per epoch, None for a stream), ``logs`` (the names every
        epoch's logs will hold, ``val_`` ones included) and ``verbose``."""
        self.params = params

    def set_model(self, model: Model) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called before each epoch (0-based ``epoch``)."""

    def on_batch_end(self, step: int, logs: Logs) -> None:
        """Called after each optimizer step with the batch's loss and metrics (the epoch's
        running means for a callback with :attr:`running_logs`)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """Called after each epoch with sample-weighted epoch stats and validation stats."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch."""

    def get_state(self) -> dict[str, Any]:
        """The JSON-able state a continued fit needs (empty for a stateless callback)."""
        return {}

    def get_tensors(self) -> dict[str, np.ndarray]:
        """The arrays of that state, by name."""
        return {}

    def set_state(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Take back what :meth:`get_state` and :meth:`get_tensors` returned."""


@dataclass(frozen=True)
class Restored:
    """The weights a callback put back when a fit ended: those of ``epoch`` (0-based), the
    best by ``monitor`` with ``value``; ``str()`` is the line a fit prints about it."""

    epoch: int
    monitor: str
    value: float

    def __str__(self) -> str:
        return f"Restored the weights of epoch {self.epoch + 1} ({self.monitor} {self.value:.4f})."


class History(Callback):
    """Step-wise and epoch-wise statistics of a ``fit`` (notes §1.9).

    Attributes:
        epoch: the epoch numbers recorded.
        history: epoch-wise lists, ``{"loss": [...], "accuracy": [...], "val_loss": [...]}``;
            epoch values are sample-weighted means over the epoch's batches.
        steps: step-wise lists, ``{"loss": [...], "accuracy": [...]}``, one per batch.
        divergence: ``None``, or why training stopped early because it diverged (NaN or
            inf); the model was then taken back to its last finite step.
        diagnostics: one entry per epoch from ``callbacks.Diagnostics`` (on at
            ``verbose ≥ 1``): per-layer dead ReLUs, gradient norms, update ratios, warnings.
            Not saved with the model.
        restored: ``None`` — the model holds the last epoch's weights — or the
            :class:`Restored` epoch whose weights a callback put back at the end of the
            last fit (``EarlyStopping(restore_best_weights=True)``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}
        self.steps: dict[str, list[float]] = {}
        self.divergence: str | None = None
        self.diagnostics: list[dict[str, Any]] = []
        self.restored: Restored | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.restored = None  # of this fit

    @property
    def final_logs(self) -> Logs:
        """The logs of the epoch whose weights the model holds after the fit: the
        :attr:`restored` epoch's, else the last epoch's (empty before any epoch)."""
        if not self.epoch:
            return {}
        row = len(self.epoch) - 1
        if self.restored is not None and self.restored.epoch in self.epoch:
            row = len(self.epoch) - 1 - self.epoch[::-1].index(self.restored.epoch)
        return {key: values[row] for key, values in self.history.items() if len(values) > row}

    def on_batch_end(self, step: int, logs: Logs) -> None:
        for key, value in logs.items():
            self.steps.setdefault(key, []).append(value)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


#: The rules of the arguments of a callback that watches a logged value (:class:`Monitor`).
MONITOR = rule(Text(), fix="name a logged value, e.g. monitor='val_loss'")
MODE = Options("auto", "min", "max")
MIN_DELTA = Interval(float, 0)


class Monitor:
    """Which logged value a callback watches, and what counts as better (notes §2.2); the
    callback's constructor has checked the arguments by the rules above."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float) -> None:
        if mode == "auto":
            mode = mode_for(monitor)
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, min_delta
        self.best = self.worst

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

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

    def best_state(self) -> float | None:
        """The best value for a JSON state: None until a finite value was seen."""
        return self.best if math.isfinite(self.best) else None

    def set_best(self, value: Any) -> None:
        best = check("", f"{self.owner} state 'best'", value, Interval(float), None)
        self.best = self.worst if best is None else best


def state_int(owner: str, state: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    """``state[key]`` as an int ≥ 0 (or None when ``optional``), else a ConfigError."""
    allowed = (Interval(int, 0), None) if optional else (Interval(int, 0),)
    return check("", f"{owner} state {key!r}", state.get(key), *allowed)
