"""Where a training step and an inference batch of each workload spend their time, and how
close lamina is to what the matrix products alone would take (issue 17).

For one workload of ``peers.py`` (the same model, data and batch size) it times, per
operation of the model's execution plan, the forward and the backward of a training step
and the forward of an inference batch, with the loss, the optimizer and what ``fit`` does
around a step (batching, statistics, the NaN guard). ``numpy.matmul`` is wrapped while it
runs, so each operation's time is split into its matrix products and the rest.

The *limit* of a workload is the time its matrix products take on their own: every product
of a step is replayed alone, with the same shapes and memory layouts, at the rate this
machine's BLAS reaches for that shape (the best of many repeats, warm caches). No
implementation that computes the products can be faster than that — what lamina adds
(im2col copies, pooling, activations, the optimizer, Python) is the distance to it.
``fraction of limit`` = limit ÷ measured time: 1.0 would be pure matrix products.

Run (on a quiet machine; ``--threads`` BLAS threads, default all cores):
    python benchmarks/step_profile.py --workloads w1,w2 --batch-sizes 128
    python benchmarks/step_profile.py --workloads w3,w3-lstm --steps 40

Prints one Markdown table per workload and batch size. The same limit is what ``peers.py``
prints beside its ratios (:func:`limits`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from peers import WORKLOADS, load_data

# --------------------------------------------------------------------------- matmul record

_REAL_MATMUL = np.matmul


@dataclass(frozen=True)
class Product:
    """One matrix product as it ran: the operands' shapes, memory orders and dtype."""

    a_shape: tuple[int, ...]
    a_order: str  # "C", "F" (a transposed C array) or "A" (any other strides)
    b_shape: tuple[int, ...]
    b_order: str
    dtype: str

    @property
    def flops(self) -> int:
        a = self.a_shape if len(self.a_shape) > 1 else (1, *self.a_shape)  # a vector: a row
        b = self.b_shape if len(self.b_shape) > 1 else (*self.b_shape, 1)  # … or a column
        batch = int(np.prod(np.broadcast_shapes(a[:-2], b[:-2]) or (1,)))
        return 2 * batch * a[-2] * a[-1] * b[-1]


def _order(array: np.ndarray) -> str:
    if array.flags.c_contiguous:
        return "C"
    if array.ndim >= 2 and np.swapaxes(array, -1, -2).flags.c_contiguous:
        return "F"
    return "A"


@dataclass
class Recorder:
    """Collects the products of a region and the time spent in them, per operation."""

    operation: str = "other"
    products: list[tuple[str, Product]] = field(default_factory=list)
    matmul_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    recording: bool = True

    def matmul(self, a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = _REAL_MATMUL(a, b, *args, **kwargs)
        self.matmul_seconds[self.operation] += time.perf_counter() - start
        if self.recording and isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            product = Product(a.shape, _order(a), b.shape, _order(b), str(a.dtype))
            self.products.append((self.operation, product))
        return result


@contextmanager
def matmuls_recorded(recorder: Recorder) -> Iterator[Recorder]:
    """numpy.matmul replaced by ``recorder.matmul`` inside the block (lamina calls it as
    ``np.matmul``, looked up at each call)."""
    np.matmul = recorder.matmul  # type: ignore[assignment]
    try:
        yield recorder
    finally:
        np.matmul = _REAL_MATMUL


def _operand(shape: tuple[int, ...], order: str, dtype: str, rng: np.random.Generator) -> Any:
    if order == "F":
        swapped = (*shape[:-2], shape[-1], shape[-2])
        return np.swapaxes(rng.standard_normal(swapped).astype(dtype), -1, -2)
    return rng.standard_normal(shape).astype(dtype)  # "A" replayed as C: a lower bound


def replay_seconds(product: Product, repeats: int = 7) -> float:
    """The best time of ``product`` run alone (operands and output allocated once)."""
    rng = np.random.default_rng(0)
    a = _operand(product.a_shape, product.a_order, product.dtype, rng)
    b = _operand(product.b_shape, product.b_order, product.dtype, rng)
    out = _REAL_MATMUL(a, b)
    calls = max(1, int(2e8 // max(product.flops, 1)))  # ~0.1 s of work per repeat at most
    calls = min(calls, 200)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            _REAL_MATMUL(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def limit_seconds(products: Sequence[Product]) -> float:
    """Σ of the replayed products (each distinct one timed once)."""
    cache: dict[Product, float] = {}
    for product in products:
        if product not in cache:
            cache[product] = replay_seconds(product)
    return sum(cache[product] for product in products)


# --------------------------------------------------------------------------- operation timing


class TimedStep:
    """A plan step whose forward and backward add their time to ``timings``."""

    def __init__(self, step: Any, name: str, recorder: Recorder, timings: dict[str, float]):
        self.step, self.name, self.recorder, self.timings = step, name, recorder, timings

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.step, attribute)

    def _timed(self, label: str, call: Callable[[], Any]) -> Any:
        outer = self.recorder.operation
        self.recorder.operation = label
        start = time.perf_counter()
        try:
            return call()
        finally:
            self.timings[label] += time.perf_counter() - start
            self.recorder.operation = outer

    def forward(self, inputs: Any, *, training: bool = False) -> Any:
        label = f"{self.name} forward"
        return self._timed(label, lambda: self.step.forward(inputs, training=training))

    def backward(self, dvalues: Any) -> Any:
        return self._timed(f"{self.name} backward", lambda: self.step.backward(dvalues))


@contextmanager
def steps_timed(
    model: Any, recorder: Recorder, timings: dict[str, float], plan: Any = None
) -> Iterator[None]:
    """The steps of ``plan`` (default: the model's) and the optimizer's step wrapped in
    :class:`TimedStep`."""
    plan = model.plan if plan is None else plan
    steps, backward_steps = plan.steps, plan.backward_steps
    wrapped = {
        id(step): TimedStep(step, name, recorder, timings)
        for step, name in zip(steps, plan.step_names, strict=True)
    }
    plan.steps = [wrapped[id(step)] for step in steps]
    plan.backward_steps = [wrapped[id(step)] for step in backward_steps]
    optimizer, optimizer_step = model.optimizer, model.optimizer.step

    def timed_optimizer_step(*args: Any, **kwargs: Any) -> Any:
        recorder.operation = "optimizer step"
        start = time.perf_counter()
        try:
            return optimizer_step(*args, **kwargs)
        finally:
            timings["optimizer step"] += time.perf_counter() - start
            recorder.operation = "other"

    optimizer.step = timed_optimizer_step
    try:
        yield
    finally:
        plan.steps, plan.backward_steps = steps, backward_steps
        del optimizer.step


@dataclass
class Profile:
    """Per-operation seconds of one step (training) or batch (inference), and the limit."""

    seconds: dict[str, float]
    matmul_seconds: dict[str, float]
    total: float
    limit: float

    @property
    def fraction(self) -> float:
        return self.limit / self.total


def profiled(
    model: Any, action: Callable[[], Any], count: int, around: str, plan: Any = None
) -> Profile:
    """``action`` (``count`` steps or batches) run once to warm up, then timed per
    operation with its products recorded; per step (batch). ``around``: the name of the
    time outside the plan's steps and the optimizer; ``plan``: the plan whose steps are
    timed (default: the model's)."""
    action()  # warm: buffers, caches
    timings: dict[str, float] = defaultdict(float)
    recorder = Recorder()
    with matmuls_recorded(recorder), steps_timed(model, recorder, timings, plan):
        start = time.perf_counter()
        action()
        total = time.perf_counter() - start
    timings[around] = total - sum(timings.values())
    recorder.matmul_seconds[around] = recorder.matmul_seconds.pop("other", 0.0)
    products = [product for _, product in recorder.products]
    return Profile(
        {name: seconds / count for name, seconds in timings.items()},
        {name: seconds / count for name, seconds in recorder.matmul_seconds.items()},
        total / count,
        limit_seconds(products) / count,
    )


def profile_training(
    model: Any, X: np.ndarray, y: np.ndarray, batch_size: int, steps: int
) -> Profile:
    """One epoch of ``steps`` batches through ``fit``, per step, in one process: a
    convolutional or recurrent model's ``fit`` splits each batch over two
    (``lamina.engine.halves``), whose second the per-operation timers cannot see. The
    "without wrappers" time beside it is ``fit`` as it runs."""
    X, y = X[: batch_size * steps], y[: batch_size * steps]

    def epoch() -> None:
        model.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)

    with steps_in_one_process():  # the timers see this process only
        return profiled(model, epoch, -(-len(X) // batch_size), "fit around the steps")


def profile_inference(model: Any, X: np.ndarray, batch_size: int, batches: int) -> Profile:
    """``predict`` over ``batches`` batches, per batch, its batches one after another: a
    convolutional or recurrent model's ``predict`` runs them on several threads
    (``lamina.engine.spread``), whose operations the per-operation timers would count
    twice over. The "without wrappers" time beside it is ``predict`` as it runs. The
    steps timed are those ``predict`` runs: a BatchNorm model's folded inference plan
    (``lamina.engine.folding``)."""
    X = X[: batch_size * batches]
    batches = -(-len(X) // batch_size)
    folded = model.plan.inference_plan()
    with batches_one_at_a_time(), replaced(model.plan, "inference_plan", lambda: folded):
        return profiled(
            model,
            lambda: model.predict(X, batch_size=batch_size),
            batches,
            "predict around the steps",
            folded,
        )


def batches_one_at_a_time() -> AbstractContextManager[None]:
    from lamina.engine import spread

    return replaced(spread, "inference_workers", lambda *args, **kwargs: 1)


def steps_in_one_process() -> AbstractContextManager[None]:
    from lamina.engine import halves

    return replaced(halves, "training_processes", lambda *args, **kwargs: 1)


@contextmanager
def replaced(module: Any, name: str, value: Any) -> Iterator[None]:
    """``module.name`` is ``value`` inside the block."""
    real = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, real)


def unprofiled_seconds(model: Any, X: np.ndarray, y: np.ndarray, batch_size: int, steps: int):
    """(training seconds per step, inference seconds per batch) without any wrapper: the
    median of 3, so that the wrappers' own cost is visible as the difference."""
    X, y = X[: batch_size * steps], y[: batch_size * steps]
    steps = -(-len(X) // batch_size)
    train, infer = [], []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
        train.append((time.perf_counter() - start) / steps)
        start = time.perf_counter()
        model.predict(X, batch_size=batch_size)
        infer.append((time.perf_counter() - start) / steps)
    return statistics.median(train), statistics.median(infer)


def limits(model: Any, X: np.ndarray, y: np.ndarray, batch_size: int, steps: int = 20):
    """(training limit s/step, inference limit s/batch) of ``model`` at ``batch_size``: the
    replayed matrix products of a training step and of an inference batch. ``model`` is
    trained for ``2·steps`` batches to find them: use a throw-away copy."""
    train = profile_training(model, X, y, batch_size, steps)
    infer = profile_inference(model, X, batch_size, steps)
    return train.limit, infer.limit


# --------------------------------------------------------------------------- report


def table(title: str, profile: Profile, plain: float) -> list[str]:
    lines = [
        f"**{title}**: {profile.total * 1e3:.3f} ms measured with the wrappers "
        f"({plain * 1e3:.3f} ms without); matrix-product limit {profile.limit * 1e3:.3f} ms; "
        f"fraction of limit **{profile.limit / plain:.2f}**",
        "",
        "| operation | ms | % | of which matmul ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds in profile.seconds.items():
        share = 100 * seconds / profile.total
        products = profile.matmul_seconds.get(name, 0.0)
        lines.append(f"| {name} | {seconds * 1e3:.3f} | {share:.1f} | {products * 1e3:.3f} |")
    total_products = sum(profile.matmul_seconds.values())
    lines.append(
        f"| **all** | **{profile.total * 1e3:.3f}** | 100 | **{total_products * 1e3:.3f}** |"
    )
    return lines


def run(workload_name: str, batch_size: int, steps: int, threads: int) -> list[str]:
    from threadpoolctl import threadpool_limits

    workload = WORKLOADS[workload_name]
    with threadpool_limits(limits=threads):
        (X_train, y_train), (X_test, _) = load_data(workload, None, None)
        trainer: Any = workload.builders["lamina"](0, batch_size)
        model = trainer.model
        plain_train, plain_infer = unprofiled_seconds(model, X_train, y_train, batch_size, steps)
        train = profile_training(model, X_train, y_train, batch_size, steps)
        infer = profile_inference(model, X_test, batch_size, steps)
    header = f"### {workload_name}, batch {batch_size}, {threads} BLAS thread(s), {steps} steps"
    return [
        header,
        "",
        *table("Training step", train, plain_train),
        "",
        *table("Inference batch", infer, plain_infer),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="w1,w2")
    parser.add_argument("--batch-sizes", default="128")
    parser.add_argument(
        "--steps", type=int, default=200, help="batches per profile (at most the data's)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    busy = " — above 0.5, other jobs compete for the cores: figures are noisy" if load > 0.5 else ""
    print(f"load average at start: {load:.2f}{busy}\n")
    for name in args.workloads.split(","):
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
        for batch_size in (int(size) for size in args.batch_sizes.split(",")):
            print("\n".join(run(name, batch_size, args.steps, args.threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
