"""Scratch arrays a layer reuses from one batch to the next instead of allocating them anew.

A convolution's temporaries are megabytes (W2's second convolution at batch 128: 6.5 MB of
transformed tiles, 13 MB of products). Allocated afresh per batch, glibc hands such blocks
back to the operating system when they are freed and the next batch faults the same pages
in again, zero-filled: W2's first fused convolution spent 2,841 page faults and 4.6–9.6 ms
per inference batch that way against 1.5–1.9 ms with its memory kept (benchmarks/README.md,
"Where the time goes"). A :class:`Workspace` keeps one array per name and hands it out again
while the shape and dtype stay the same.

Only a layer's *internal* temporaries go here — what it returns is always a new array (the
next layer may keep it or write into it), and what a training forward keeps for backward
lives until the next forward of the same layer, which overwrites it. Each thread has its
own arrays: two threads calling ``predict`` on one model at once (a server answering two
requests) never write into each other's scratch.
"""

from __future__ import annotations

import threading

import numpy as np

Array = np.ndarray

#: larger scratch arrays are allocated per call and not kept: a one-off huge batch in
#: ``predict`` must not leave gigabytes held by the layer afterwards
MAX_KEPT_BYTES = 64 * 2**20


class Workspace:
    """Named scratch arrays, each reused while its shape and dtype stay the same; one set
    per thread."""

    def __init__(self) -> None:
        self._by_thread: dict[int, dict[str, Array]] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        """An uninitialised array of ``shape`` and ``dtype``: the one handed out last time
        under ``name`` in this thread when it fits (its old contents still in it), else a
        new one."""
        arrays = self._by_thread.setdefault(threading.get_ident(), {})  # atomic in CPython
        array = arrays.get(name)
        if array is not None and array.shape == shape and array.dtype == dtype:
            return array
        array = np.empty(shape, dtype=dtype)
        if array.nbytes <= MAX_KEPT_BYTES:
            arrays[name] = array
        else:
            arrays.pop(name, None)
        return array

    def prefix(self, name: str, shape: tuple[int, ...], dtype: np.dtype, *, axis: int) -> Array:
        """As :meth:`empty`, for blocks whose length along ``axis`` varies (a pass's last
        block is shorter): a view of the first ``shape[axis]`` entries along ``axis`` of the
        array kept under ``name`` when it is as long or longer there and the same elsewhere,
        else a new one kept in its place. Alternating lengths would reallocate every call."""
        arrays = self._by_thread.setdefault(threading.get_ident(), {})
        array = arrays.get(name)
        others = shape[:axis] + shape[axis + 1 :]
        fits = (
            array is not None
            and array.dtype == dtype
            and array.ndim == len(shape)
            and array.shape[axis] >= shape[axis]
            and array.shape[:axis] + array.shape[axis + 1 :] == others
        )
        if not fits:
            array = self.empty(name, shape, dtype)
        index = [slice(None)] * len(shape)
        index[axis] = slice(0, shape[axis])
        return array[tuple(index)]  # type: ignore[index]

    def zeros(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        """As :meth:`empty`, filled with zeros."""
        array = self.empty(name, shape, dtype)
        array.fill(0)
        return array

    def clear(self) -> None:
        """Forget every array of every thread (their memory goes back once nothing else
        holds them; a thread still using one keeps it until it is done)."""
        self._by_thread = {}

    def __deepcopy__(self, memo: dict[int, object]) -> Workspace:
        return Workspace()  # a copy of a layer starts with its own, empty workspace
