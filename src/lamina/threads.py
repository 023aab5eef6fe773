"""How many threads the BLAS library (OpenBLAS, MKL) uses for lamina's matrix products.

On a machine shared with another busy process, two BLAS threads can be slower than one
(each product waits for the thread the neighbour holds), and 1 and 2 threads sum a
product's terms in different orders, so results differ in the last bits between them.
:func:`blas_threads` pins the count for a block of code, the way ``torch.set_num_threads``
does for PyTorch; ``Model.fit(threads=…)`` and ``lamina train --threads N`` use it, and a
saved model records the count it was trained with beside its seed.
"""

from __future__ import annotations

import functools
import operator
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lamina.errors import ConfigError

__all__ = ["blas_threads", "current_blas_threads", "one_blas_thread", "usable_cores"]


@contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` BLAS threads (``None``: leave the count as it is).

    Example::

        with lamina.blas_threads(1):
            model.fit(X, y, epochs=10)
    """
    if threads is None:
        yield
        return
    count = _checked_count(threads)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield


def current_blas_threads() -> int | None:
    """The number of threads the loaded BLAS library uses now (None if none is loaded).

    Asked of the libraries found at the first call (NumPy's BLAS, loaded with NumPy): a
    few microseconds, where a fresh search takes milliseconds — every fit asks."""
    counts = [lib.num_threads for lib in _blas_libraries()]
    return max(counts) if counts else None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _SingleThreadedBlas:
    """One BLAS thread while any holder is inside, the former counts back after the last.

    The count is the library's, global to the process: threads that each run their own
    products (``lamina.engine.spread``) pin it to 1 so that they do not fight over the BLAS
    library's own threads. Holders are counted, so overlapping users (two threads each
    predicting) restore the counts only when both are done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: list[int] = []

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                libraries = _blas_libraries()
                self._saved = [lib.num_threads for lib in libraries]
                for lib in libraries:
                    lib.set_num_threads(1)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    for lib, count in zip(_blas_libraries(), self._saved, strict=True):
                        lib.set_num_threads(count)


#: ``with one_blas_thread():`` — the BLAS library on one thread for the block (reentrant,
#: thread-safe; the libraries found at the first call, as :func:`current_blas_threads`)
one_blas_thread = _SingleThreadedBlas()


@functools.cache
def _blas_libraries() -> list[Any]:
    from threadpoolctl import ThreadpoolController

    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


#: more BLAS threads than any machine has cores: refused (OpenBLAS would start its maximum)
MAX_THREADS = 1024


def _checked_count(threads: object) -> int:
    """A thread count: a whole number in [1, MAX_THREADS]; above the usable cores, a
    warning (the extra threads share cores: slower, and the BLAS libraries cap the count
    at their own maximum, 64 for NumPy's OpenBLAS, so the count a model records is theirs)."""
    try:
        count = operator.index(threads)  # type: ignore[arg-type]
    except TypeError:
        count = 0
    cores = usable_cores()
    if isinstance(threads, bool) or not 1 <= count <= MAX_THREADS:
        raise ConfigError(
            f"threads must be a whole number of BLAS threads from 1 to {MAX_THREADS}, got "
            f"{threads!r}. Fix: pass e.g. threads=1 (best beside another busy process) or "
            f"threads={cores} (the cores this process may use)."
        )
    if count > cores:
        warnings.warn(
            f"threads={count} is more than the {cores} cores this process may use: the "
            "extra BLAS threads share cores, which slows the matrix products down. "
            f"Fix: threads={cores} or fewer.",
            RuntimeWarning,
            stacklevel=4,
        )
    return count
