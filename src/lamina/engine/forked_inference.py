"""Inference batches on forked worker processes, each with one BLAS thread.

Threads over a convolutional or recurrent model's batches (``lamina.engine.spread``) share
one GIL, and such a batch is hundreds of small NumPy calls that each give it up and take it
back: with two threads at once, a 12,800-value ``np.maximum`` ran 0.41× as fast as alone
and Winograd's input transform 0.83×. Measured on an Intel Xeon (2 cores), W2 ``predict``
of 10,000 images at batch 128: 19–22k samples/s on one thread, 21–24k on two threads, and
35–38k on two processes (``benchmarks/README.md``). Processes share no GIL.

:func:`in_order` computes an inference's first batch here, then forks ``workers − 1``
copies of the process for the rest. Each copy sees the model and the inputs exactly as they
are (copy-on-write: nothing is sent to it), computes its share of the remaining batches
round-robin — worker k their batches k, k + W, k + 2W, … while this process computes
0, W, 2W, … — and sends each batch's outputs back through a pipe as raw bytes
(``lamina.engine.exchange``: no pickle), in order. Every
batch is computed as a one-thread run computes it, so the outputs are those of
``with lamina.blas_threads(1): model.predict(X)`` bit for bit, as with threads.

A copy that fails — an exception in its batch (a NaN the check refuses, a user's layer
raising), a signal, a broken pipe — is stopped, and this process computes the rest of that
copy's batches itself: an error is then raised here, at its batch, with its own traceback,
exactly as in one process. So is a copy that sends nothing for far longer than a batch
takes (10 s + 100 × the first batch's time, ``exchange.patience``) — one stuck on a lock
that another thread of this process held at the fork: an inference never hangs on a copy.
The copies ignore Ctrl-C (it is this process's to handle) and leave by ``os._exit``, never
running this process's exit handlers; they are killed and reaped however the caller leaves
(the last batch, an exception, a generator closed early).
Where the system refuses the fork (out of memory, processes or file descriptors), the
inference runs on threads, with a RuntimeWarning.

When: on Linux (``os.fork``), for the models ``spread`` would run on threads without a
padding mask, when the batches after the first are expected to take :data:`MIN_SECONDS` or
more (the first batch is computed here and timed; a fork and the copy-on-write page faults
after it cost ~5 ms), and for one inference at a time per process — a second one running at
once (a server answering two requests on threads) takes the threads. A copy
of a process that runs other threads holds only the forking thread; it runs nothing but
NumPy and the layers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection

import numpy as np

from lamina.engine import spread
from lamina.engine.exchange import fork_with_pipe, patience, receive_array, send_array
from lamina.threads import one_blas_thread

Array = np.ndarray
#: a batch's computation: its start -> (outputs, padding mask — None here)
Computed = Callable[[int], tuple[Array, Array | None]]
#: an inference forks only when its batches after the first are expected to take this long
#: in one process (the first batch's time × their number): the fork and the copy-on-write
#: page faults of the first batches after it cost ~5 ms. Measured, W2 on the Intel Xeon,
#: processes against threads, medians of 7 (ms): 4 batches of 128 images, 35 against 44;
#: 4 of 16, 14.7 against 17.4; 16 of 4, 12.7 against 12.7; 8 of 8, 12.7 against 10.7; 4 of
#: 4, 7.9 against 4.3; 4 of 1, 6.5 against 3.1
MIN_SECONDS = 0.01
#: a copy that sends nothing for this + 100 × the first batch's time is given up
#: (``exchange.patience``)
PATIENCE_SECONDS = 10.0

_running = threading.Lock()  # held by the one inference of this process that forks


def forks(*, masked: bool) -> bool:
    """Whether an inference that ``spread`` would run on threads may run on processes
    instead: on Linux, without a padding mask (:func:`in_order` then times its first batch
    to decide)."""
    linux = sys.platform.startswith("linux") and hasattr(os, "fork")
    return linux and not masked


def in_order(
    compute: Computed, starts: Sequence[int], workers: int
) -> Iterator[tuple[int, tuple[Array, Array | None]]]:
    """``(start, compute(start))`` for every start, in order, each batch on one BLAS
    thread: the first here, timed; the rest, when they are expected to take
    :data:`MIN_SECONDS` or more, batch k of them computed by process k mod ``workers`` (this
    one for 0), else on threads (``spread.in_order``) — as they are while another inference
    of this process runs on processes. ``compute`` returns (outputs, None): no mask travels
    (:func:`forks`)."""
    if not _running.acquire(blocking=False):
        yield from spread.in_order(compute, starts, workers)
        return
    try:
        with one_blas_thread():
            began = time.perf_counter()
            first = compute(starts[0])
            seconds = time.perf_counter() - began
            yield starts[0], first
            rest = starts[1:]
            forking = seconds * len(rest) >= MIN_SECONDS
            waits = patience(PATIENCE_SECONDS, seconds)
            copies = _forked(compute, rest, workers, waits) if forking else None
            if copies is None:
                yield from spread.in_order(compute, rest, workers)
                return
            try:
                yield from _gathered(compute, rest, copies)
            finally:
                for copy in copies:
                    copy.stop()
    finally:
        _running.release()


def _forked(
    compute: Computed, starts: Sequence[int], workers: int, waits: float
) -> list[_Copy] | None:
    """The ``workers − 1`` copies, or None (with a warning) when the system refuses a fork
    or a pipe — out of memory, of processes, of file descriptors: threads then."""
    copies: list[_Copy] = []
    try:
        for k in range(1, workers):
            copies.append(_Copy.fork(compute, starts[k::workers], waits))
    except OSError as error:
        for copy in copies:
            copy.stop()
        warnings.warn(
            f"inference on threads: no worker process could be forked ({error})",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return copies


def _gathered(
    compute: Computed,
    starts: Sequence[int],
    copies: list[_Copy],
) -> Iterator[tuple[int, tuple[Array, Array | None]]]:
    workers = len(copies) + 1
    for index, start in enumerate(starts):
        copy = copies[index % workers - 1] if index % workers else None
        outputs = None if copy is None else copy.receive(start)
        yield start, compute(start) if outputs is None else (outputs, None)


class _Copy:
    """One forked worker: its pid and this process's end of the pipe."""

    def __init__(self, pid: int, connection: Connection, waits: float) -> None:
        self.pid, self.connection, self.waits = pid, connection, waits
        self.failed = False

    @classmethod
    def fork(cls, compute: Computed, starts: Sequence[int], waits: float) -> _Copy:
        pid, connection = fork_with_pipe(duplex=False)
        if pid == 0:  # the copy: it never returns
            _serve(compute, starts, connection)
        return cls(pid, connection, waits)

    def receive(self, start: int) -> Array | None:
        """The outputs of the batch at ``start``, or None once the copy has failed or has
        sent nothing for ``waits`` seconds (it is then stopped, and this process computes
        the batch)."""
        if self.failed:
            return None
        try:
            kind, header, outputs = receive_array(self.connection, self.waits)
        except (EOFError, OSError, ValueError):  # TimeoutError is an OSError
            kind, header = b"E", {}
        if kind == b"R" and header.get("start") == start:
            return outputs
        self.failed = True
        self.stop()
        return None

    def stop(self) -> None:
        """Kill the copy (it holds nothing to save) and reap it; again is a no-op."""
        if self.pid == 0:
            return
        self.connection.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self.pid = 0


def _serve(compute: Computed, starts: Sequence[int], connection: Connection) -> None:
    """The copy's life: compute its batches and send each, or report the first failure,
    then leave without running the parent's exit handlers."""
    code = 0
    try:
        for start in starts:
            try:
                outputs, _ = compute(start)
            except Exception as error:  # the parent computes this batch and raises it
                report = {"start": start, "type": type(error).__name__}
                send_array(connection, b"E", report, np.empty(0, np.uint8))
                break
            send_array(connection, b"R", {"start": start}, outputs)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
