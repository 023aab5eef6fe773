"""W1's matrix products alone: NumPy's BLAS (OpenBLAS) against PyTorch's (MKL / oneDNN).

A W1 training step is eight products, an inference batch three (``step_profile.py`` lists
them). No NumPy program can compute them faster than NumPy's BLAS does, so where PyTorch's
BLAS is faster on a product, that part of PyTorch's lead is out of lamina's reach. Each
library runs in its own process, on the same number of threads, each product with its
output allocated once (``out=``), the median of many calls.

Run (a quiet machine): ``python benchmarks/products.py --batch-sizes 32,128,1024``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

#: (name, A shape, B shape, B transposed): W1's products at batch N (784 → 128 → 128 → 10)
PRODUCTS = [
    ("forward 1: X·W₁", ("N", 784), (784, 128), False),
    ("forward 2: H₁·W₂", ("N", 128), (128, 128), False),
    ("forward 3: H₂·W₃", ("N", 128), (128, 10), False),
    ("∂W₁ = Xᵀ·δ₁", (784, "N"), ("N", 128), False),
    ("∂W₂ = H₁ᵀ·δ₂", (128, "N"), ("N", 128), False),
    ("∂H₁ = δ₂·W₂ᵀ", ("N", 128), (128, 128), True),
    ("∂W₃ = H₂ᵀ·δ₃", (128, "N"), ("N", 10), False),
    ("∂H₂ = δ₃·W₃ᵀ", ("N", 10), (10, 128), True),
]


def median_microseconds(call: Callable[[], object], seconds: float = 0.2) -> float:
    for _ in range(20):
        call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 50:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1e6 * times[len(times) // 2]


def shape(dims: tuple[object, ...], n: int) -> tuple[int, ...]:
    return tuple(n if d == "N" else int(d) for d in dims)  # type: ignore[call-overload]


def numpy_times(n: int) -> list[float]:
    import numpy as np

    rng = np.random.default_rng(0)
    result = []
    for _, a_dims, b_dims, transposed in PRODUCTS:
        a = rng.standard_normal(shape(a_dims, n), dtype=np.float32)
        b_shape = shape(b_dims, n)
        b = rng.standard_normal(b_shape[::-1] if transposed else b_shape, dtype=np.float32)
        b = b.T if transposed else b
        if a_dims[0] != "N" and a_dims[1] == "N":  # Xᵀ: the transpose of a C array
            a = np.ascontiguousarray(a.T).T
        out = np.empty((a.shape[0], b.shape[1]), np.float32)
        result.append(median_microseconds(lambda a=a, b=b, out=out: np.matmul(a, b, out=out)))
    return result


def torch_times(n: int, threads: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    result = []
    for _, a_dims, b_dims, transposed in PRODUCTS:
        a = torch.randn(shape(a_dims, n), generator=generator)
        b_shape = shape(b_dims, n)
        b = torch.randn(b_shape[::-1] if transposed else b_shape, generator=generator)
        b = b.t() if transposed else b
        if a_dims[0] != "N" and a_dims[1] == "N":
            a = a.t().contiguous().t()
        out = torch.empty(a.shape[0], b.shape[1])
        result.append(median_microseconds(lambda a=a, b=b, out=out: torch.mm(a, b, out=out)))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="32,128,1024")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", choices=("numpy", "torch"), default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    if args.worker == "numpy":
        print(json.dumps(numpy_times(args.batch_size)))
        return 0
    if args.worker == "torch":
        print(json.dumps(torch_times(args.batch_size, args.threads)))
        return 0
    env = {**os.environ, **{f"{k}_NUM_THREADS": str(args.threads) for k in ("OMP", "OPENBLAS")}}
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} threads\n")
    for n in (int(b) for b in args.batch_sizes.split(",")):
        times = {}
        for library in ("numpy", "torch"):
            command = [sys.executable, __file__, "--worker", library, "--batch-size", str(n)]
            command += ["--threads", str(args.threads)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            times[library] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"batch {n}: µs per product (median)\n")
        print("| product | NumPy (OpenBLAS) | PyTorch | NumPy ÷ PyTorch time |")
        print("| --- | ---: | ---: | ---: |")
        for index, (name, *_) in enumerate(PRODUCTS):
            ours, theirs = times["numpy"][index], times["torch"][index]
            print(f"| {name} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |")
        train = sum(times["numpy"]), sum(times["torch"])
        infer = sum(times["numpy"][:3]), sum(times["torch"][:3])
        print(
            f"| all eight (a training step) | {train[0]:.1f} | {train[1]:.1f} | "
            f"{train[0] / train[1]:.2f} |"
        )
        print(
            f"| the first three (inference) | {infer[0]:.1f} | {infer[1]:.1f} | "
            f"{infer[0] / infer[1]:.2f} |\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
