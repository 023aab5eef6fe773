"""Peak memory of one training epoch, against the bound 3 × (float32 training set) + 1 GiB.

Runs the workload in this process and reports the peak resident set size the kernel
recorded (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the figure ``/usr/bin/time -v``
prints as "Maximum resident set size"), which counts NumPy's buffers, OpenBLAS's and the
interpreter's — everything the user's machine has to hold. A convolutional model's ``fit``
splits its batches over a second, forked process (``lamina.engine.halves``): its peak
(``RUSAGE_CHILDREN``) is added, which counts the pages the two share — the training set
among them — twice, so the sum is an upper bound.

Run: ``python benchmarks/memory.py [--workload w2] [--batch-size 128] [--epochs 1]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import WORKLOADS, load_data

MIB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="w2")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)

    workload = WORKLOADS[args.workload]
    (X, y), _ = load_data(workload, limit=None)
    trainer = workload.builders["lamina"](0, args.batch_size)
    start = time.perf_counter()
    for _ in range(args.epochs):
        trainer.train_epoch(X, y)
    seconds = time.perf_counter() - start
    here = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    peak = here + worker
    data = X.nbytes
    bound = 3 * data + 1024 * MIB
    print(f"{args.workload}: {args.epochs} epoch(s) at batch {args.batch_size} in {seconds:.1f} s")
    print(
        f"float32 training set {data / MIB:.0f} MiB; peak RSS {here / MIB:.0f} MiB here "
        f"+ {worker / MIB:.0f} MiB in the training worker = {peak / MIB:.0f} MiB; "
        f"bound 3 × set + 1 GiB = {bound / MIB:.0f} MiB -> "
        f"{'within' if peak <= bound else 'OVER'} ({peak / bound:.2f} of the bound)"
    )
    return 0 if peak <= bound else 1


if __name__ == "__main__":
    raise SystemExit(main())
