"""Where training batches come from: in-memory arrays, or a stream for data that does not
fit in memory (notes §1.9 "Batches", "Shuffling").

- :class:`ArrayBatches`: each epoch permutes the sample *indices* and gathers one batch at
  a time, so shuffling never copies the data set.
- :class:`SequenceBatches`: an object with ``__len__`` (batches per epoch) and
  ``__getitem__(i) -> (X_batch, y_batch)``, like ``keras.utils.Sequence``; shuffling
  permutes the batch order; an ``on_epoch_end()`` method, if any, is called after each epoch.
- :class:`IterableBatches`: a function returning an iterator of ``(X_batch, y_batch)`` (a
  generator function), called once per epoch; or a one-shot generator for a single epoch.

A batch is ``(X_batch, y_batch, weights)``: ``weights`` holds each sample's weight in the
loss and the statistics (``fit``'s ``sample_weight`` and ``class_weight``), or is None when
every sample counts once. A stream may yield ``(X_batch, y_batch, weights)`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from lamina.errors import ConfigError, InputError, invalid

Array = np.ndarray
Batch = tuple[Array, Array, Array | None]
Prepare = Callable[[Any, Any, Any], Batch]  # raw (X, y, weights) -> checked model inputs


class BatchSource(Protocol):
    def __iter__(self) -> Iterator[Batch]: ...

    @property
    def steps(self) -> int | None: ...

    @property
    def replayable(self) -> bool:
        """Whether iterating again, from the same Generator state, gives the same batches
        (what lets a diverged epoch be replayed up to its last finite step)."""
        ...


class ArrayBatches:
    """Batches of in-memory arrays, in a new random order every epoch when ``shuffle``."""

    def __init__(
        self,
        X: Array,
        y: Array,
        batch_size: int,
        shuffle: bool,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> None:
        self.X, self.y, self.batch_size, self.shuffle, self.rng = X, y, batch_size, shuffle, rng
        self.weights = weights

    replayable = True

    @property
    def steps(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n, size = len(self.X), self.batch_size
        weights = self.weights
        if not self.shuffle:
            for start in range(0, n, size):
                rows = slice(start, start + size)
                yield self.X[rows], self.y[rows], None if weights is None else weights[rows]
            return
        order = self.rng.permutation(n)
        for start in range(0, n, size):
            batch = order[start : start + size]
            yield self.X[batch], self.y[batch], None if weights is None else weights[batch]


class SequenceBatches:
    """Batches from a ``Sequence`` (``len`` + ``[i]``), each checked by ``prepare``."""

    def __init__(
        self, sequence: Any, prepare: Prepare, shuffle: bool, rng: np.random.Generator
    ) -> None:
        self.sequence, self.prepare, self.shuffle, self.rng = sequence, prepare, shuffle, rng
        if len(sequence) < 1:
            raise InputError(
                invalid(
                    "X",
                    "a Sequence of at least one batch",
                    f"{type(sequence).__name__} of length {len(sequence)}",
                )
            )

    replayable = True  # like keras.utils.Sequence, [i] is expected to give the same batch

    @property
    def steps(self) -> int:
        return len(self.sequence)

    def __iter__(self) -> Iterator[Batch]:
        count = len(self.sequence)
        order = self.rng.permutation(count) if self.shuffle else range(count)
        for index in order:
            yield self.prepare(*_unpack(self.sequence[int(index)], f"X[{index}]"))
        if callable(getattr(self.sequence, "on_epoch_end", None)):
            self.sequence.on_epoch_end()


class IterableBatches:
    """Batches from a generator function (called once per epoch) or a one-shot iterator."""

    def __init__(self, source: Any, prepare: Prepare, epochs: int) -> None:
        self.prepare = prepare
        if callable(source) and not hasattr(source, "__next__"):
            self.make: Callable[[], Any] = source
        elif epochs <= 1:
            iterator = iter(source)
            self.make = lambda: iterator
        else:
            raise ConfigError(
                invalid(
                    "X",
                    "a Sequence, or a function returning a new batch iterator each epoch",
                    f"a one-shot {type(source).__name__} for {epochs} epochs",
                    "pass the generator function itself (f, not f()), or epochs=1",
                )
            )

    replayable = False  # a generator function need not yield the same batches twice

    @property
    def steps(self) -> int | None:
        return None

    def __iter__(self) -> Iterator[Batch]:
        for index, item in enumerate(self.make()):
            yield self.prepare(*_unpack(item, f"batch {index}"))


def is_batch_stream(X: Any) -> bool:
    """Whether fit's X is a stream of batches (Sequence, generator function, iterator)
    rather than an array of samples."""
    if isinstance(X, np.ndarray | list | tuple) or hasattr(X, "__array__"):
        return False
    sequence = hasattr(X, "__len__") and hasattr(X, "__getitem__")
    return sequence or callable(X) or hasattr(X, "__next__")


def stream_for(
    X: Any, prepare: Prepare, shuffle: bool, rng: np.random.Generator, epochs: int
) -> SequenceBatches | IterableBatches:
    if hasattr(X, "__len__") and hasattr(X, "__getitem__"):
        return SequenceBatches(X, prepare, shuffle, rng)
    return IterableBatches(X, prepare, epochs)


def _unpack(item: Any, where: str) -> tuple[Any, Any, Any]:
    """A stream's item as (X_batch, y_batch, weights or None)."""
    if not (isinstance(item, tuple | list) and len(item) in (2, 3)):
        raise InputError(
            invalid(
                where,
                "a pair (X_batch, y_batch) or a triple (X_batch, y_batch, sample_weight)",
                type(item).__name__,
                "yield/return (X_batch, y_batch) tuples",
            )
        )
    return item[0], item[1], item[2] if len(item) == 3 else None
