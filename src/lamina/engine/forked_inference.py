"""Inference batches on forked worker processes, each with one BLAS thread.

Threads over a convolutional or recurrent model's batches (``lamina.engine.spread``) share
one GIL, and such a batch is hundreds of small NumPy calls that each give it up and take it
back: with two threads at once, a 12,800-value ``np.maximum`` ran 0.41× as fast as alone
and Winograd's input transform 0.83×. Measured on an Intel Xeon (2 cores), W2 ``predict``
of 10,000 images at batch 128: 20.4–21.9k samples/s on one thread, 21.2–24.1k on two, and
28.5–31.2k on two processes (``benchmarks/README.md``). Processes share no GIL.

:func:`in_order` forks ``workers − 1`` copies of the process at the start of an inference.
Each copy sees the model and the inputs exactly as they are (copy-on-write: nothing is sent
to it), computes its share of the batches round-robin — worker k the batches k, k + W,
k + 2W, … while this process computes batches 0, W, 2W, … — and sends each batch's outputs
back through a pipe as raw bytes (``lamina.engine.exchange``: no pickle), in order. Every
batch is computed as a one-thread run computes it, so the outputs are those of
``with lamina.blas_threads(1): model.predict(X)`` bit for bit, as with threads.

A copy that fails — an exception in its batch (a NaN the check refuses, a user's layer
raising), a signal, a broken pipe — is stopped, and this process computes the rest of that
copy's batches itself: an error is then raised here, at its batch, with its own traceback,
exactly as in one process. The copies ignore Ctrl-C (it is this process's to handle) and
leave by ``os._exit``, never running this process's exit handlers; they are killed and
reaped however the caller leaves (the last batch, an exception, a generator closed early).
Where the system refuses the fork (out of memory, processes or file descriptors), the
inference runs on threads, with a RuntimeWarning.

When: on Linux (``os.fork``), with at least :data:`MIN_BATCHES` batches (a fork and its
first batches' copy-on-write page faults cost ~60 ms), for the models ``spread`` would run
on threads without a padding mask, and for one inference at a time per process — a second
one running at once (a server answering two requests on threads) takes the threads. A copy
of a process that runs other threads holds only the forking thread; it runs nothing but
NumPy and the layers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection

import numpy as np

from lamina.engine import spread
from lamina.engine.exchange import fork_with_pipe, receive_array, send_array
from lamina.threads import one_blas_thread

Array = np.ndarray
#: a batch's computation: its start -> (outputs, padding mask — None here)
Computed = Callable[[int], tuple[Array, Array | None]]
#: the fewest batches an inference must have to fork for them: W2 at batch 128 computes a
#: batch in ~6 ms on one core, and a fork costs ~60 ms of page faults in both processes
MIN_BATCHES = 16

_running = threading.Lock()  # held by the one inference of this process that forks


def forks(*, batches: int, masked: bool) -> bool:
    """Whether an inference of ``batches`` batches that ``spread`` would run on threads runs
    on processes instead: on Linux, with :data:`MIN_BATCHES` batches or more, no mask."""
    linux = sys.platform.startswith("linux") and hasattr(os, "fork")
    return linux and batches >= MIN_BATCHES and not masked


def in_order(
    compute: Computed, starts: Sequence[int], workers: int
) -> Iterator[tuple[int, tuple[Array, Array | None]]]:
    """``(start, compute(start))`` for every start, in order, batch k computed by process
    k mod ``workers`` (this one for 0), each on one BLAS thread; on threads
    (``spread.in_order``) while another inference of this process runs on processes.
    ``compute`` returns (outputs, None): no mask travels (:func:`forks`)."""
    if not _running.acquire(blocking=False):
        yield from spread.in_order(compute, starts, workers)
        return
    try:
        with one_blas_thread():
            copies = _forked(compute, starts, workers)
            if copies is None:
                yield from spread.in_order(compute, starts, workers)
                return
            try:
                yield from _gathered(compute, starts, copies)
            finally:
                for copy in copies:
                    copy.stop()
    finally:
        _running.release()


def _forked(compute: Computed, starts: Sequence[int], workers: int) -> list[_Copy] | None:
    """The ``workers − 1`` copies, or None (with a warning) when the system refuses a fork
    or a pipe — out of memory, of processes, of file descriptors: threads then."""
    copies: list[_Copy] = []
    try:
        for k in range(1, workers):
            copies.append(_Copy.fork(compute, starts[k::workers]))
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

    def __init__(self, pid: int, connection: Connection) -> None:
        self.pid, self.connection = pid, connection
        self.failed = False

    @classmethod
    def fork(cls, compute: Computed, starts: Sequence[int]) -> _Copy:
        pid, connection = fork_with_pipe(duplex=False)
        if pid == 0:  # the copy: it never returns
            _serve(compute, starts, connection)
        return cls(pid, connection)

    def receive(self, start: int) -> Array | None:
        """The outputs of the batch at ``start``, or None once the copy has failed (it is
        then stopped, and this process computes the batch)."""
        if self.failed:
            return None
        try:
            kind, header, outputs = receive_array(self.connection)
        except (EOFError, OSError, ValueError):
            kind, header, outputs = b"E", {}, np.empty(0)
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
