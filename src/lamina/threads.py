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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lamina.errors import ConfigError

__all__ = ["blas_threads", "current_blas_threads"]


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


@functools.cache
def _blas_libraries() -> list[Any]:
    from threadpoolctl import ThreadpoolController

    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


def _checked_count(threads: object) -> int:
    try:
        count = operator.index(threads)  # type: ignore[arg-type]
    except TypeError:
        count = 0
    if isinstance(threads, bool) or count < 1:
        raise ConfigError(
            f"threads must be a positive whole number of BLAS threads, got {threads!r}. "
            "Fix: pass e.g. threads=1 (best beside another busy process) or threads=2."
        )
    return count
