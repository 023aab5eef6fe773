"""Undoing divergence: a training run whose parameters, layer state or optimizer state stop
being finite is taken back to the last step after which they all were: nothing a user keeps
is replaced by something worse.

Copying the training state before every step would cost a tenth of a small network's step
(measured: 41 µs of copies in a 436 µs W1 step at batch 32), so the common case pays one
copy per epoch instead. Divergence shows itself as a non-finite loss (a NaN or inf weight
makes the next loss NaN; ``Model.train_step`` raises before updating), or at the end of the
epoch, where every tensor is checked. Then the epoch's start is restored and its steps
replayed, each checked, up to the last finite one. Replaying repeats the run exactly: the
same batches (the shuffling Generator is restored with the rest), the same dropout and
augmentation draws, the same arithmetic.

A stream that cannot be replayed (a generator function may not yield the same batches
twice) is copied before every step and checked after it instead; streams are slow anyway.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.layers.stack import named_tensors

if TYPE_CHECKING:
    from lamina.engine.batches import BatchSource
    from lamina.model import Model

Array = np.ndarray
Step = Callable[[Array, Array, Array | None], Any]  # one training step on (X, y, weights)


class TrainingSnapshot:
    """Copies of everything a training step changes: every parameter and state tensor,
    the optimizer's slots, step count and rate, and the state of every Generator."""

    def __init__(self, model: Model) -> None:
        self.tensors = {name: array.copy() for name, array in named_tensors(model.layers)}
        self.optimizer = None if model.optimizer is None else model.optimizer.snapshot()
        self.random = model.random_state
        self.layer_random = [layer.rng.bit_generator.state for layer in model.layers]

    def restore(self, model: Model) -> None:
        """Put the copies back, in place (the model's flat parameter buffer stays)."""
        for name, array in named_tensors(model.layers):
            array[...] = self.tensors[name]
        if model.optimizer is not None and self.optimizer is not None:
            model.optimizer.restore(self.optimizer)
        model.random_state = self.random
        for layer, state in zip(model.layers, self.layer_random, strict=True):
            layer.rng.bit_generator.state = state


@contextmanager
def unchanged(model: Model) -> Iterator[None]:
    """Let a block take training steps on ``model`` (``lamina.lr_finder``, ``Model.trace``)
    and then put everything back: parameters, state tensors and Generators (a
    :class:`TrainingSnapshot`) and the gradients, restored in place; the optimizer is
    swapped for a copy of itself during the block, so the model's own — slots, step count,
    learning rate — is never touched, not even by a slot created on the first step."""
    snapshot = TrainingSnapshot(model)
    grads = [grad.copy() for _, _, grad in model.parameters()]
    optimizer = model.optimizer
    model.optimizer = copy.deepcopy(optimizer)
    try:
        yield
    finally:
        model.optimizer = optimizer
        snapshot.restore(model)
        for (_, _, grad), saved in zip(model.parameters(), grads, strict=True):
            grad[...] = saved


def finite_state(model: Model) -> bool:
    """Whether every parameter, state tensor and optimizer slot of ``model`` is finite."""
    arrays = [array for _, array in named_tensors(model.layers)]
    if model.optimizer is not None:
        arrays += [a for slots in model.optimizer.slots.values() for a in slots.values()]
    return all(np.isfinite(array).all() for array in arrays if array.dtype.kind == "f")


class Rewind:
    """The state an epoch started from, and the way back to its last finite step.

    Args:
        model: the model being trained.
        batches: the epoch's batches; ``batches.replayable`` says whether iterating them
            again yields the same batches.
        step: one training step of the model, augmentation included.
    """

    def __init__(self, model: Model, batches: BatchSource, step: Step) -> None:
        self.model, self.batches, self.step = model, batches, step
        self.replayable = bool(getattr(batches, "replayable", False))
        self._start = TrainingSnapshot(model)  # before the batch order is drawn
        self._before_step = self._start

    def before_step(self) -> None:
        if not self.replayable:
            self._before_step = TrainingSnapshot(self.model)

    def after_step(self) -> bool:
        """Whether training may go on: always for a replayable epoch (checked at its end);
        for a stream, whether the step left everything finite."""
        return self.replayable or finite_state(self.model)

    def back_to_finite(self, steps: int) -> int:
        """Restore the state after the last finite one of the epoch's first ``steps`` steps
        (0 = the epoch's start); returns how many steps that state has taken. For a stream,
        ``steps`` is the step that failed, and the state before it is restored."""
        from lamina.errors import NumericalError

        if not self.replayable:
            self._before_step.restore(self.model)
            return steps
        self._start.restore(self.model)
        for done, (xb, yb, wb) in enumerate(self.batches):
            if done == steps:
                break
            before = TrainingSnapshot(self.model)
            try:
                self.step(xb, yb, wb)
            except NumericalError:
                before.restore(self.model)
                return done
            if not finite_state(self.model):
                before.restore(self.model)
                return done
        return steps
