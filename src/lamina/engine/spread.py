"""Inference batches on several threads at once, each with one BLAS thread.

:func:`inference_workers` decides how many workers an inference has; on Linux an inference
whose batches take long enough runs them as forked processes instead
(``lamina.engine.forked_inference``: threads share one GIL, and the hundreds of small NumPy
calls of a batch wait for it — W2 ``predict`` on an Intel Xeon: 21–24k samples/s on two
threads, 35–38k on two processes). :func:`in_order` serves the rest: short inferences, a
padding mask, other platforms, a refused fork, and a second inference while one runs on
processes.

A convolution's im2col and pooling passes and a recurrence's gate functions are NumPy
element-wise work, and NumPy runs it on one core; only the matrix products use the BLAS
library's threads. In such a model's inference the second core idles for half a batch
(W2: ~40 % of an inference batch is not matrix products). Batches are independent in
inference, so :func:`in_order` runs them on as many threads as the BLAS library was given,
round-robin (thread k computes batches k, k + W, k + 2W, …), with the BLAS library on one
thread (``lamina.threads.one_blas_thread``): every core then does all the work of its
batches, products and element-wise alike. The outputs come back in batch order, and each
batch is computed exactly as a one-thread run computes it, so ``predict`` gives the
numbers of ``with lamina.blas_threads(1): model.predict(X)`` bit for bit (a test).

:func:`inference_workers` decides when: only for a model with a layer whose inference is
mostly element-wise (``Layer.elementwise_bound``: Conv1D, Conv2D, the recurrent layers) —
a stack of Dense layers is bounded by its products, which the BLAS library's own threads
split better (W1 at batch 1024: 470–630k samples/s on two BLAS threads, 270–420k on two
workers) — and no Monte-Carlo dropout (its masks are drawn in batch order from one generator). A
user's own layer keeps the plain loop unless its class sets ``thread_safe_inference =
True`` (:func:`thread_safe`). A padding mask travels with its batch
(``ExecutionPlan.forward_with_mask``). Pin the BLAS library to one thread
(``lamina.blas_threads(1)``) and inference runs on one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from lamina.layers.base import Layer
from lamina.layers.stack import declared
from lamina.threads import current_blas_threads, one_blas_thread, usable_cores

T = TypeVar("T")
#: a thread's first batch costs more (its scratch memory is new: W2, 2 batches of 128 took
#: 25–30 ms on two threads against 22 ms in the plain loop, 4 batches 32–40 against
#: 36–38 ms, 16 batches 115–128 against 128–229 ms), so each thread gets at least this many
MIN_BATCHES_PER_WORKER = 2
#: how many finished batches a worker may hold before the caller takes them
AHEAD = 2
#: how often (seconds) a worker waiting to hand over a batch checks whether to stop
POLL_SECONDS = 0.05


def inference_workers(layers: Sequence[Layer], *, batches: int) -> int:
    """How many threads an inference over ``batches`` batches of these layers runs on: the
    BLAS library's thread count — at most the usable cores, and few enough that each thread
    gets :data:`MIN_BATCHES_PER_WORKER` batches — when a layer is ``elementwise_bound`` and
    no layer draws random numbers in inference; else 1."""
    if not any(layer.elementwise_bound for layer in layers):
        return 1
    if any(layer.random_in_inference for layer in layers):
        return 1
    if not all(thread_safe(layer) for layer in layers):
        return 1
    by_batches = batches // MIN_BATCHES_PER_WORKER
    return max(1, min(current_blas_threads() or 1, usable_cores(), by_batches))


def thread_safe(layer: Layer) -> bool:
    """Whether two threads may run ``layer``'s inference at once: its class's
    ``thread_safe_inference``, True for lamina's own layers and False for a user's unless
    the class says so (``lamina.layers.stack.declared``)."""
    return declared(layer, "thread_safe_inference")


def in_order(
    compute: Callable[[int], T], starts: Sequence[int], workers: int
) -> Iterator[tuple[int, T]]:
    """``(start, compute(start))`` for every start, in order, computed on ``workers``
    threads round-robin with one BLAS thread each. An exception in a worker is raised here,
    at its batch (the batches before it are given first). Closing the iterator early stops
    the workers after the batch each is computing; they are joined before it returns."""
    stop = threading.Event()
    results: list[queue.Queue[tuple[T | None, BaseException | None]]] = [
        queue.Queue(maxsize=AHEAD) for _ in range(workers)
    ]

    def work(worker: int) -> None:
        for start in starts[worker::workers]:
            if stop.is_set():
                return
            try:
                item: tuple[T | None, BaseException | None] = (compute(start), None)
            except BaseException as error:  # handed to the caller, raised there
                item = (None, error)
            while not stop.is_set():
                try:
                    results[worker].put(item, timeout=POLL_SECONDS)
                    break
                except queue.Full:
                    continue
            if item[1] is not None:
                return

    with one_blas_thread():
        threads = [
            threading.Thread(target=work, args=(k,), name=f"lamina-inference-{k}", daemon=True)
            for k in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for index, start in enumerate(starts):
                value, error = results[index % workers].get()
                if error is not None:
                    raise error
                yield start, value  # type: ignore[misc]  # not None without an error
        finally:
            stop.set()
            for thread in threads:
                thread.join()
