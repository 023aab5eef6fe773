"""A forked worker and the arrays between it and its parent, through a pipe: a one-letter kind and a
JSON header (with the array's shape and dtype), then the array's raw bytes — no pickle, so
nothing received is ever executed. Used by the training halves (``lamina.engine.halves``)
and the inference processes (``lamina.engine.forked_inference``)."""

from __future__ import annotations

import json
import os
import signal
import warnings
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

Array = np.ndarray


def send_array(connection: Connection, kind: bytes, header: dict[str, Any], array: Array) -> None:
    """Send ``array`` (made contiguous) with its ``kind`` and ``header``."""
    array = np.ascontiguousarray(array)
    meta = {**header, "shape": array.shape, "dtype": array.dtype.str}
    connection.send_bytes(kind + json.dumps(meta).encode())
    connection.send_bytes(array.data.cast("B"))


def receive_array(
    connection: Connection, timeout: float | None = None
) -> tuple[bytes, dict[str, Any], Array]:
    """(kind, header, a new writable array) of the next :func:`send_array`; TimeoutError
    when nothing has come within ``timeout`` seconds (None: wait for ever)."""
    if timeout is not None and not connection.poll(timeout):
        raise TimeoutError(f"nothing received for {timeout:.1f} s")
    message = connection.recv_bytes()
    kind, header = message[:1], json.loads(message[1:])
    dtype, shape = np.dtype(header["dtype"]), tuple(header["shape"])
    buffer = bytearray(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    connection.recv_bytes_into(buffer)
    return kind, header, np.frombuffer(buffer, dtype=dtype).reshape(shape)


def fork_with_pipe(*, duplex: bool) -> tuple[int, Connection]:
    """Fork a worker joined to this process by a new pipe: (the worker's pid, this end) here,
    (0, the worker's end) in the worker. Without ``duplex`` the parent reads and the worker
    writes. The worker ignores Ctrl-C (the parent's to handle: it stops the worker) and dies
    of SIGTERM rather than run a handler the parent installed."""
    here, there = Pipe(duplex=duplex)
    with warnings.catch_warnings():  # Python ≥ 3.12 warns of fork with threads running;
        warnings.simplefilter("ignore", DeprecationWarning)  # the worker imports nothing
        pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        here.close()
        return 0, there
    there.close()
    return pid, here


def patience(floor: float, seconds: float) -> float:
    """How long to wait for a worker's answer to work that took ``seconds`` here: ``floor``
    + 100 × ``seconds``, far longer than the worker's share takes, so that only a worker
    that hangs — stuck on a lock another thread held at the fork, say — is given up."""
    return floor + 100 * seconds
