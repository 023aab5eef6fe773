"""Time per training step epoch after epoch, over the whole Fashion-MNIST training set.

``peers.py`` times fresh models for two short epochs. A real run trains longer, and then
Adam's moment estimates of weights whose gradient is almost always zero (the pixels at the
border of the images) decay into *subnormal* numbers, on which x86 CPUs compute tens of
times slower (``lamina/subnormals.py``). This script shows whether a system slows down as
its run goes on: W1 (``peers.py``), one process per system, the systems one after another
and each repeated, and the share of the optimizer's moment estimates that are subnormal
at the end of each epoch.

Systems: ``lamina``; ``lamina-unflushed``, lamina with the flush of subnormal slots turned
off (what lamina did before it); ``torch``, PyTorch CPU (``torch.set_flush_denormal`` left
at its default, off); ``torch-flushed``, PyTorch with ``torch.set_flush_denormal(True)``
(the processor's flush-to-zero mode, for every operation of the process).

Run (a quiet machine; ~1 minute per system and epoch at batch 32):
    python benchmarks/long_run.py --epochs 3 --batch-size 32 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import WORKLOADS, load_data

SYSTEMS = ("lamina", "lamina-unflushed", "torch", "torch-flushed")


def subnormal_share(arrays: Sequence[np.ndarray]) -> float:
    """The share of the values of float32 ``arrays`` that are subnormal (≠ 0, < tiny)."""
    tiny = np.finfo(np.float32).tiny
    count = sum(int(((a != 0) & (np.abs(a) < tiny)).sum()) for a in arrays)
    return count / max(sum(a.size for a in arrays), 1)


def momenta(system: str, trainer: Any) -> list[np.ndarray]:
    if system.startswith("torch"):
        state = trainer.optimizer.state.values()
        return [s["exp_avg"].numpy() for s in state if "exp_avg" in s]
    slots = trainer.model.optimizer.slots.values()
    return [slot["momentum"] for slot in slots]


def run_worker(system: str, epochs: int, batch_size: int) -> list[dict[str, float]]:
    if system == "lamina-unflushed":
        from lamina import subnormals

        subnormals.EVERY = 10**12
    if system == "torch-flushed":
        import torch

        torch.set_flush_denormal(True)
    workload = WORKLOADS["w1"]
    (X, y), _ = load_data(workload, limit=None)
    builder = workload.builders["torch" if system.startswith("torch") else "lamina"]
    trainer = builder(0, batch_size)
    steps = -(-len(X) // batch_size)
    results = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch(X, y)
        seconds = time.perf_counter() - start
        share = subnormal_share(momenta(system, trainer))
        results.append({"ms_per_step": 1e3 * seconds / steps, "subnormal": share})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", choices=SYSTEMS, default=None)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.epochs, args.batch_size)))
        return 0
    systems = [s for s in args.systems.split(",") if s]
    env = {**os.environ, **{f"{k}_NUM_THREADS": str(args.threads) for k in ("OMP", "OPENBLAS")}}
    runs: dict[str, list[list[dict[str, float]]]] = {s: [] for s in systems}
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    for _ in range(args.repeats):
        for system in systems:
            command = [sys.executable, __file__, "--worker", system]
            command += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
            output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            runs[system].append(json.loads(output.stdout.strip().splitlines()[-1]))
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    header = " | ".join(f"epoch {e + 1}" for e in range(args.epochs))
    print(
        f"W1, batch {args.batch_size}: ms per step (median of {args.repeats} runs), "
        "subnormal share of Adam's momentum at the epoch's end\n"
    )
    print(f"| system | {header} |")
    print("| --- |" + " ---: |" * args.epochs)
    for system, repeats in runs.items():
        cells = []
        for epoch in range(args.epochs):
            ms = statistics.median(r[epoch]["ms_per_step"] for r in repeats)
            share = statistics.median(r[epoch]["subnormal"] for r in repeats)
            cells.append(f"{ms:.3f} ({100 * share:.1f} %)")
        print(f"| {system} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
