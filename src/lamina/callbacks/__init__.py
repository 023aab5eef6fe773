"""Callbacks that watch and steer ``Model.fit``: History, the progress display, early
stopping, checkpoints, learning-rate control, CSV logs, TensorBoard event files
and per-layer diagnostics (notes §1.10, §2.2).

A callback receives ``set_params`` and ``set_model``, then ``on_train_begin``,
``on_epoch_begin``, ``on_batch_end``, ``on_epoch_end`` and ``on_train_end``; ``logs`` are
plain dicts of floats. Stateful callbacks save their state with the model
(:class:`Callback`), so a resumed fit continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lamina.callbacks.base import Callback, History, Logs, Monitor, Restored
from lamina.callbacks.checkpoint import ModelCheckpoint
from lamina.callbacks.csv_logger import CSVLogger
from lamina.callbacks.diagnostics import Diagnostics, DiagnosticsWarning
from lamina.callbacks.learning_rate import CosineDecay, LearningRateScheduler, ReduceLROnPlateau
from lamina.callbacks.progress import ProgressBar
from lamina.callbacks.stopping import EarlyStopping, TerminateOnNaN
from lamina.callbacks.tensorboard import TensorBoard

__all__ = [
    "CALLBACKS",
    "CSVLogger",
    "Callback",
    "CallbackState",
    "CosineDecay",
    "Diagnostics",
    "DiagnosticsWarning",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "Logs",
    "ModelCheckpoint",
    "Monitor",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Restored",
    "TensorBoard",
    "TerminateOnNaN",
    "resume",
    "states_of",
]

# Callbacks a TOML config can name and a model file can hold the state of
# (LearningRateScheduler takes a function: Python only).
CALLBACKS: dict[str, type[Callback]] = {
    "early_stopping": EarlyStopping,
    "model_checkpoint": ModelCheckpoint,
    "terminate_on_nan": TerminateOnNaN,
    "reduce_lr_on_plateau": ReduceLROnPlateau,
    "cosine_decay": CosineDecay,
    "csv_logger": CSVLogger,
    "diagnostics": Diagnostics,
    "tensorboard": TensorBoard,
}

CallbackState = tuple[str, dict[str, Any], dict[str, np.ndarray]]  # (name, state, tensors)


def states_of(callbacks: Sequence[Callback]) -> list[CallbackState]:
    """The state of every callback of a registered kind, in order."""
    names = {cls: name for name, cls in CALLBACKS.items()}
    return [
        (names[type(callback)], callback.get_state(), callback.get_tensors())
        for callback in callbacks
        if type(callback) in names
    ]


def resume(callbacks: Sequence[Callback], states: Sequence[CallbackState]) -> None:
    """Hand each saved state to the callback of the same kind at the same rank among the
    callbacks of that kind (the second EarlyStopping gets the second one's state)."""
    remaining: dict[str, list[CallbackState]] = {}
    for entry in states:
        remaining.setdefault(entry[0], []).append(entry)
    names = {cls: name for name, cls in CALLBACKS.items()}
    for callback in callbacks:
        queue = remaining.get(names.get(type(callback), ""), [])
        if queue:
            _, state, tensors = queue.pop(0)
            callback.set_state(state, tensors)
