"""Callbacks that watch and steer ``Model.fit``: History and the progress display.

A callback receives ``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``,
``on_epoch_end`` and ``on_train_end``; ``logs`` are plain dicts of floats.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

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
