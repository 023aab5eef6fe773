"""What callbacks.Diagnostics costs on W1 (issue 16: at most 3 % of an epoch).

W1 (784 → 128 → 128 → 10 ReLU MLP, Adam 1e-3, batch 128) trains one epoch of
Fashion-MNIST with and without Diagnostics, on one BLAS thread, the two alternating, and
the process CPU time of each fit is compared (CPU time, because the machine may be shared;
wall time moves by ±10 % then, and even CPU time by ±5 %: on a busy machine the A/B medians
are noise at the 3 % level). So the script also times Diagnostics' own work directly —
its observer and hooks, inside the fit — as a fraction of the epoch.

Run: ``python benchmarks/diagnostics.py [--repeats 12] [--epochs 1]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import lamina as lm
from lamina.layers import Dense


def w1() -> lm.Model:
    model = lm.Model(
        [
            Dense(784, 128, activation="relu"),
            Dense(128, 128, activation="relu"),
            Dense(128, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-3))
    return model


class TimedDiagnostics(lm.callbacks.Diagnostics):
    """Diagnostics that adds up the time spent in its own observer and hooks."""

    spent = 0.0

    def _observe(self, *args: object) -> None:
        start = time.perf_counter()
        super()._observe(*args)  # type: ignore[arg-type]
        TimedDiagnostics.spent += time.perf_counter() - start

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        start = time.perf_counter()
        super().on_batch_end(step, logs)
        TimedDiagnostics.spent += time.perf_counter() - start

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        start = time.perf_counter()
        super().on_epoch_begin(epoch, logs)
        TimedDiagnostics.spent += time.perf_counter() - start

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        TimedDiagnostics.spent += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    (X, y), _ = lm.datasets.fashion_mnist()
    X = X.reshape(len(X), -1).astype(np.float32)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-3)
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    with threadpool_limits(1):
        for repeat in range(args.repeats):
            for kind in ("without", "with") if repeat % 2 else ("with", "without"):
                model = w1()
                callbacks = [lm.callbacks.Diagnostics()] if kind == "with" else []
                start = time.process_time()
                model.fit(X, y, epochs=args.epochs, batch_size=128, verbose=0, callbacks=callbacks)
                seconds[kind].append((time.process_time() - start) / args.epochs)
    for kind, values in seconds.items():
        print(
            f"{kind:>7} Diagnostics: epoch median {np.median(values):.3f} s, "
            f"min {min(values):.3f} s"
        )
    median = np.median(seconds["with"]) / np.median(seconds["without"]) - 1
    best = min(seconds["with"]) / min(seconds["without"]) - 1
    print(f"A/B overhead: {median:+.1%} (medians), {best:+.1%} (minima)")
    shares = []
    with threadpool_limits(1):
        for _ in range(3):
            TimedDiagnostics.spent = 0.0
            start = time.perf_counter()
            w1().fit(
                X, y, epochs=args.epochs, batch_size=128, verbose=0, callbacks=[TimedDiagnostics()]
            )
            shares.append(TimedDiagnostics.spent / (time.perf_counter() - start))
    print(f"time inside Diagnostics' observer and hooks: {np.median(shares):.1%} of the fit")


if __name__ == "__main__":
    main()
