"""Training steps of a convolutional or recurrent model on two processes, half a batch each.

A training step's gradient is a sum over the batch's rows (notes §1.3: ∂L/∂W = Xᵀ·δ sums
one term per row, and so does every layer's), so with the loss gradient of the whole batch
δ = ∂L/∂ŷ computed first, the rows can be split: each part's backward gives its rows' sum,
and the two sums add up to the batch's gradient —

    ∂L/∂θ = Σ_{rows 0 … h−1} (…) + Σ_{rows h … N−1} (…)

— equal to the one-process gradient up to the rounding of the split sums. A step then is:
the forward of rows 0 … h−1 here and of rows h … N−1 in a forked *worker* process, both on
one BLAS thread; the outputs joined here, where the loss, the NaN guard, the metrics and
δ = ∂L/∂ŷ are computed for the whole batch as always (sample weights, class weights and
the fused softmax included); the backward of each part of δ where its forward ran; the
worker's gradients added here; the optimizer step here. The worker reads the parameters
from shared memory written before each step and writes its gradients to shared memory;
the inputs, outputs and δ of its rows go through a pipe (raw bytes, no pickle). Dropout
draws the whole batch's mask in both processes from the same Generator state and each
keeps its rows (``Dropout.batch_part``), so a split batch drops exactly the units a
one-process step drops. A BatchNorm's statistics need the whole batch: at each of its
sums — Σ x, then Σ (x − μ)² in the forward, Σ δ and Σ δ (x − μ) in the backward — the two
processes send each other their part and both add the same two (``BatchNorm.batch_sum``),
so both normalize with the statistics of a one-process step and keep the same running
statistics. L1/L2 penalties' gradients are added once, here.

Why processes and not threads: NumPy's element-wise passes (im2col, pooling, a
recurrence's gates) run on one core, and threads over the halves wait for each other's
GIL — measured on W2, batch 128: each half spent 16 ms on the CPU and 24 ms in all, a step
as slow as one thread (``benchmarks/README.md``); two processes took 14–17 ms against
23–39 ms for the one-process step on two BLAS threads, the same day.

:func:`split_training` decides, once per epoch, as :mod:`lamina.engine.spread` does for
inference: on Linux (``os.fork``), with two usable cores and at least two BLAS threads
(``fit(threads=1)`` keeps one process), for a model with an ``elementwise_bound`` layer (a
stack of Dense layers is bounded by its products, which OpenBLAS's own threads split
well, and its steps are too short for the exchange: W1 split by force trained at 54–56k
samples/s at batch 128 against 111–120k in one process, and at 70–72k against 164–175k at
batch 1024, where sending the worker its 512 rows through the pipe took 5 ms a step),
without a padding mask or an observer (``callbacks.Diagnostics``, TensorBoard's
activations), and whose every layer ``splits_over_batch``: lamina's own layers without
state tensors (BatchNorm's, whose sums are exchanged, excepted), and a user's layer only
when its class says so. A batch of fewer than ``2 × MIN_ROWS`` rows runs in one process.
The worker lives for the fit (a fork costs ~45 ms), forked at its first split step, and a
fit of fewer than ``MIN_STEPS`` steps never forks. Each step sends it the Dropout rates
and Generator states with the inputs; if the trainable parameters change (a callback
freezes a layer), the next step forks a new worker. A failed exchange leaves the rest of
the fit in one process. A worker that answers nothing for far longer than its share takes
(:data:`PATIENCE_SECONDS` + 100 × the time the rows here took) is killed, and the fit stops
with a WorkerError that names the fix, without applying the step it was in.
"""

from __future__ import annotations

import mmap
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.engine.exchange import fork_with_pipe, patience, receive_array, send_array
from lamina.errors import WorkerError
from lamina.layers.base import Layer
from lamina.layers.dropout import Dropout
from lamina.layers.normalization import BatchNorm
from lamina.layers.stack import declared
from lamina.threads import current_blas_threads, one_blas_thread, usable_cores

if TYPE_CHECKING:
    from lamina.engine.plan import ExecutionPlan

Array = np.ndarray
#: the fewest rows each process takes: a smaller batch (an epoch's last) runs in one
MIN_ROWS = 16
#: the fewest steps a fit must have to fork a worker for them (a fork and its first steps'
#: page copies cost ~45 ms: 200 one-batch epochs of a small CNN took 49–51 ms each when
#: every epoch forked, against 2.5–3.5 ms in one process)
MIN_STEPS = 20
#: a worker that answers nothing for this + 100 × the time its rows' share took here is
#: given up with a WorkerError (``exchange.patience``): a fit never hangs on a stuck worker
PATIENCE_SECONDS = 60.0


def training_processes(plan: ExecutionPlan) -> int:
    """How many processes the training steps of ``plan``'s model run on: 2 when every
    condition of this module's docstring holds, else 1."""
    layers = plan.layers
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return 1
    if min(current_blas_threads() or 1, usable_cores()) < 2:
        return 1
    if plan.masked or plan.observers or not any(layer.elementwise_bound for layer in layers):
        return 1
    return 2 if all(splits_over_batch(layer) for layer in layers) else 1


def splits_over_batch(layer: Layer) -> bool:
    """Whether ``layer``'s training forward and backward may run on a batch's rows in two
    parts: its class's ``splits_over_batch`` (``lamina.layers.stack.declared``) and no
    state tensors, but for BatchNorm's running statistics (its batch sums are exchanged)."""
    return declared(layer, "splits_over_batch") and (
        not layer.state or isinstance(layer, BatchNorm)
    )


@contextmanager
def split_training(plan: ExecutionPlan, *, steps: int | None) -> Iterator[None]:
    """Run the block — a fit's epochs, ``steps`` training steps in all (None: not known) —
    with ``plan``'s steps split over two processes when :func:`training_processes` says so
    and there are at least :data:`MIN_STEPS` of them; the worker is forked at the first
    split step (one per fit: a fork costs ~45 ms) and stopped at the end however the block
    ends. The epochs pin one BLAS thread (:func:`epoch_threads`)."""
    if training_processes(plan) < 2 or (steps is not None and steps < MIN_STEPS):
        yield
        return
    halves = TrainingHalves(plan)
    plan.halves = halves
    try:
        yield
    finally:
        plan.halves = None
        halves.close()


def epoch_threads(plan: ExecutionPlan) -> AbstractContextManager[None]:
    """One BLAS thread for an epoch whose steps may split (:func:`split_training`): each
    process then has a core; validation between epochs keeps the threads it had."""
    return one_blas_thread() if plan.halves is not None else nullcontext()


class TrainingHalves:
    """The worker process of :func:`split_training` and the exchange of each step with it."""

    def __init__(self, plan: ExecutionPlan) -> None:
        self.plan = plan
        self.dropouts: list[Dropout] = [
            layer for layer in plan.layers if isinstance(layer, Dropout)
        ]
        self.norms = [layer for layer in plan.layers if isinstance(layer, BatchNorm)]
        self.entries: list[tuple[Layer, str]] = []
        self.shared_parameters: list[Array] = []
        self.shared_gradients: list[Array] = []
        self.connection: Connection | None = None
        self.pid = 0
        self._signature: tuple[Any, ...] | None = None
        self._split_at: int | None = None  # the rows the last forward kept here
        self._reaped = True
        self.retired = False  # after a failure: the rest of the fit in one process
        self._waits = PATIENCE_SECONDS  # for the worker's next answer (the last step's)

    def _trainable(self) -> list[tuple[Layer, str]]:
        """(layer, name) of every trainable parameter, in the arena's order."""
        layers = self.plan.layers
        return [(layer, key) for layer in layers if layer.trainable for key in layer.params]

    def _start(self, entries: list[tuple[Layer, str]]) -> None:
        """Fork the worker for these parameters, with shared memory for their values and
        gradients."""
        self.entries = entries
        dtypes = {layer.params[key].dtype for layer, key in self.entries} or {np.dtype("f8")}
        dtype = np.result_type(*dtypes)
        sizes = [layer.params[key].size for layer, key in self.entries]
        self._memory = [mmap.mmap(-1, max(1, sum(sizes)) * dtype.itemsize) for _ in range(2)]
        parameters, gradients = (np.frombuffer(m, dtype=dtype) for m in self._memory)
        offsets = np.cumsum([0, *sizes])
        self.shared_parameters = self._views(parameters, offsets)
        self.shared_gradients = self._views(gradients, offsets)
        pid, connection = fork_with_pipe(duplex=True)
        if pid == 0:  # the worker: it never returns
            _serve(self, connection)
        self.pid, self.connection, self._reaped = pid, connection, False
        self._signature = _shapes(entries)

    def _views(self, flat: Array, offsets: Array) -> list[Array]:
        shapes = [layer.params[key].shape for layer, key in self.entries]
        return [
            flat[start:end].reshape(shape)
            for shape, start, end in zip(shapes, offsets[:-1], offsets[1:], strict=True)
        ]

    def __deepcopy__(self, memo: dict[int, object]) -> None:
        return None  # a copy of the model trains in one process

    # -- here: the steps ---------------------------------------------------------------
    def forward(self, inputs: Array) -> Array | None:
        """The outputs of a training forward of ``inputs``, their first half computed here
        and the rest in the worker; None for a batch too small to split."""
        rows = len(inputs)
        self._split_at = None
        if self.retired or rows < 2 * MIN_ROWS or self.plan.observers:
            return None
        entries = self._trainable()  # a callback may have frozen a layer between epochs
        if self.connection is None or _shapes(entries) != self._signature:
            self.close()
            try:
                self._start(entries)
            except OSError as error:  # no memory or processes left for a worker
                self.retired = True
                warnings.warn(f"training in one process: {error}", RuntimeWarning, stacklevel=4)
                return None
        split = (rows + 1) // 2
        for (layer, key), shared in zip(self.entries, self.shared_parameters, strict=True):
            shared[...] = layer.params[key]
        header = {
            "start": split,
            "total": rows,
            "random": [layer.rng.bit_generator.state for layer in self.dropouts],
            "rates": [layer.rate for layer in self.dropouts],  # a callback may change them
        }
        try:
            self._send(b"F", header, inputs[split:])
            for layer in self.dropouts:
                layer.batch_part = (0, split, rows)
            began = time.perf_counter()
            with self._sums_exchanged():
                outputs, _ = self.plan.forward_with_mask(inputs[:split], training=True)
            self._waits = patience(PATIENCE_SECONDS, time.perf_counter() - began)
            theirs = self._receive()
        except BaseException:
            self.retire()  # the exchange is out of step
            raise
        finally:
            for layer in self.dropouts:
                layer.batch_part = None
        self._split_at = split
        return np.concatenate([outputs, theirs])

    def backward(self, dvalues: Array) -> bool:
        """Backpropagate ``dvalues`` (the whole batch's δ) if the last forward was split —
        the first rows here, the rest in the worker, its gradients added to the layers'
        — and return True; False when it was not (the caller backpropagates)."""
        split, self._split_at = self._split_at, None
        if split is None or self.connection is None:
            return False
        try:
            self._send(b"B", {}, dvalues[split:])
            began = time.perf_counter()
            with self._sums_exchanged():
                self.plan.backpropagate(dvalues[:split])
            self._waits = patience(PATIENCE_SECONDS, time.perf_counter() - began)
            self._receive()
        except BaseException:
            self.retire()
            raise
        for (layer, key), theirs in zip(self.entries, self.shared_gradients, strict=True):
            layer.grads[key] += theirs
        return True

    @contextmanager
    def _sums_exchanged(self) -> Iterator[None]:
        """BatchNorm's batch sums add the worker's while the block runs (BatchNorm.batch_sum)."""
        for layer in self.norms:
            layer.batch_sum = self._with_theirs
        try:
            yield
        finally:
            for layer in self.norms:
                layer.batch_sum = None

    def _with_theirs(self, mine: Array) -> Array:
        """A BatchNorm's sums over the rows here plus the worker's, which adds the same two
        (a + b = b + a exactly: both processes normalize with identical statistics)."""
        self._send(b"S", {}, mine)
        return mine + self._receive()

    def retire(self) -> None:
        """Stop the worker after a failure; the rest of the fit runs in one process."""
        self.retired = True
        self.close()

    def close(self) -> None:
        """Stop the worker (at once: it holds nothing that needs saving) and free the
        shared memory; a later split step forks a new one."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        connection.close()
        if not self._reaped:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._reaped = True
        self.shared_parameters = self.shared_gradients = []
        for memory in self._memory:
            try:
                memory.close()
            except BufferError:  # a view still exported: freed with it
                pass

    # -- the exchange ------------------------------------------------------------------
    def _send(self, kind: bytes, header: dict[str, Any], array: Array) -> None:
        assert self.connection is not None
        try:
            send_array(self.connection, kind, header, array)
        except OSError as error:  # a broken pipe: the worker is gone
            raise self._stopped() from error

    def _receive(self) -> Array:
        assert self.connection is not None
        try:
            kind, header, array = receive_array(self.connection, self._waits)
        except TimeoutError as error:
            raise WorkerError(
                f"the second training process (pid {self.pid}) sent nothing for "
                f"{self._waits:.1f} s. Fix: train in one process with fit(..., threads=1)"
            ) from error
        except (EOFError, OSError) as error:
            raise self._stopped() from error
        if kind == b"E":
            raise WorkerError(
                f"the second training process failed: {header['type']}: {header['message']}"
            )
        return array

    def _stopped(self) -> WorkerError:
        return WorkerError(
            f"the second training process (pid {self.pid}) stopped{self._exit_status()}. "
            "Fix: train in one process with fit(..., threads=1)"
        )

    def _exit_status(self) -> str:
        """How the worker ended, waited for a little: its end of the pipe closes as it
        exits, a moment before it can be waited for."""
        for _ in range(100):
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self._reaped = True  # its pid may be another process's from now on
                break
            time.sleep(0.01)
        else:
            return ""
        if os.WIFSIGNALED(status):
            return f" (killed by signal {os.WTERMSIG(status)})"
        return f" (exit code {os.WEXITSTATUS(status)})"


def _shapes(entries: list[tuple[Layer, str]]) -> tuple[Any, ...]:
    """What the worker's copy of the model must still match: each trainable parameter's
    layer, name, shape and dtype."""
    return tuple(
        (id(layer), key, layer.params[key].shape, layer.params[key].dtype.str)
        for layer, key in entries
    )


# -- the worker ------------------------------------------------------------------------
def _serve(halves: TrainingHalves, connection: Connection) -> None:
    """The worker's life: the forked copy of the model computes the rows it is sent until
    the pipe closes, then leaves without running the parent's exit handlers."""
    code = 0
    try:
        with one_blas_thread():
            _adopt_shared_memory(halves)
            for layer in halves.norms:
                layer.batch_sum = partial(_with_parents, connection)
            while True:
                try:
                    kind, header, array = receive_array(connection)
                except (EOFError, OSError):
                    break
                try:
                    result = _compute(halves, kind, header, array)
                except Exception as error:  # reported to the parent, which raises it
                    report = {"type": type(error).__name__, "message": str(error)}
                    send_array(connection, b"E", report, np.empty(0, np.uint8))
                    continue
                send_array(connection, b"R", {}, result)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _with_parents(connection: Connection, mine: Array) -> Array:
    """In the worker: a BatchNorm's sums over its rows plus the parent's."""
    send_array(connection, b"S", {}, mine)
    kind, _, theirs = receive_array(connection)
    if kind != b"S":
        raise WorkerError(f"expected the parent's batch sums, received a {kind!r} message")
    return theirs + mine


def _adopt_shared_memory(halves: TrainingHalves) -> None:
    """In the worker: read the parameters from, and write the gradients to, the shared
    memory; no L1/L2 penalty gradients (the parent adds them once)."""
    halves.plan.halves = None
    for (layer, key), parameters, gradients in zip(
        halves.entries, halves.shared_parameters, halves.shared_gradients, strict=True
    ):
        layer.params[key] = parameters
        layer.grads[key] = gradients
    for layer in halves.plan.layers:
        layer.regularizers = {}


def _compute(halves: TrainingHalves, kind: bytes, header: dict[str, Any], array: Array) -> Array:
    plan = halves.plan
    if kind == b"F":
        start, total = header["start"], header["total"]
        for dropout, state, rate in zip(
            halves.dropouts, header["random"], header["rates"], strict=True
        ):
            dropout.rng.bit_generator.state = state
            dropout.rate = rate
            dropout.batch_part = (start, total, total)
        outputs, _ = plan.forward_with_mask(array, training=True)
        return outputs
    plan.backpropagate(array)
    for (layer, key), gradients in zip(halves.entries, halves.shared_gradients, strict=True):
        if layer.grads.get(key) is not gradients:  # a layer that assigned a new array
            gradients[...] = layer.grads[key]
            layer.grads[key] = gradients
    return np.empty(0, np.uint8)
