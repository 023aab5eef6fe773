"""Saving the model during training (notes §1.10 "Checkpoints")."""

from __future__ import annotations

import os
import string
import warnings
from typing import Any

from lamina._params import FilePath, Flag, Interval, checked
from lamina.callbacks.base import MODE, MONITOR, Callback, Logs, Monitor
from lamina.engine.rewind import finite_state
from lamina.errors import ConfigError, invalid


class ModelCheckpoint(Callback):
    """Save the whole model (``Model.save``: atomic, and only a model that loads back)
    after each epoch, or every n-th, or when ``monitor`` improves (notes §1.10).

    It runs after every other callback's ``on_epoch_end``, so a file it writes holds the
    epoch's final state — the callbacks' state included — and a fit resumed from it goes
    on exactly as the uninterrupted one.

    A model with NaN/inf weights is never saved: the checkpoint keeps the last good model
    and says so in a warning.

    Args:
        path: the file, which may hold ``{epoch}`` and logged names, e.g.
            ``"runs/ckpt-{epoch:02d}-{val_loss:.3f}.lamina"``; epochs count from 1. A field
            that the run does not log is an error before the first epoch.
        monitor, mode: what ``save_best_only`` compares (as for EarlyStopping).
        save_best_only: save only when ``monitor`` improves.
        every_n_epochs: save every n-th epoch.
    """

    saves_model = True

    @checked(
        path=FilePath(),
        monitor=MONITOR,
        save_best_only=Flag(),
        every_n_epochs=Interval(int, 1),
        mode=MODE,
    )
    def __init__(
        self,
        path: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        every_n_epochs: int = 1,
        mode: str = "auto",
    ) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._fields = _template_fields(self.path)
        self._monitor = Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.save_best_only = save_best_only
        self.every_n_epochs = every_n_epochs
        self.saved: list[str] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        logged = self.params.get("logs")
        if logged is None:
            return
        unknown = sorted(set(self._fields) - {"epoch", *logged})
        if unknown:
            raise ConfigError(
                invalid(
                    "ModelCheckpoint.path",
                    f"fields among epoch and the logged values {sorted(logged)}",
                    f"{{{unknown[0]}}} in {self.path!r}",
                    "use only those names, e.g. 'ckpt-{epoch:02d}.lamina'",
                )
            )

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        if self.save_best_only:
            current = self._monitor.value(logs)
            if not self._monitor.improved(current):
                return
            self._monitor.best = current
        if not finite_state(self.model):
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

    def get_state(self) -> dict[str, Any]:
        return {"best": self._monitor.best_state()}

    def set_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self._monitor.set_best(state.get("best"))


def _template_fields(path: str) -> list[str]:
    """The names a path template formats (``{epoch:02d}`` → ``epoch``)."""
    try:
        parsed = list(string.Formatter().parse(path))
    except ValueError as error:
        raise ConfigError(
            invalid(
                "ModelCheckpoint.path",
                "a file name, optionally with {epoch} or {logged_name} fields",
                f"{path!r} ({error})",
                "close every brace, or double it ({{ }}) for a literal one",
            )
        ) from None
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        base = name.split(".")[0].split("[")[0]
        if not base.isidentifier():
            raise ConfigError(
                invalid(
                    "ModelCheckpoint.path",
                    "named fields such as {epoch} or {val_loss:.3f}",
                    f"{{{name}}} in {path!r}",
                )
            )
        fields.append(base)
    return fields
