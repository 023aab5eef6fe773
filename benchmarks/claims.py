"""The accuracy claims that take too long for ``make test``, as a script anyone can run.

Each claim is a mean over seeds, since one run's test accuracy moves with the seed (and
with the summation order of the products) by as much as a claim's margin:

    * ``w2``: the notes' CNN (examples/fashion_mnist_cnn.py, the same recipe) reaches
      ≥ 0.90 test accuracy after 5 epochs on average over seeds 0, 1, 2, and in every run
      (issue 3). It was a single-seed test of the suite, its slowest (~1.5 min); a mean
      over seeds says more, and the suite keeps under its time.
    * ``w2-batchnorm``: the notes' CNN (examples/fashion_mnist_cnn.py, its recipe: Adam 2e-3
      on a cosine, batch 32, label smoothing 0.1) with BatchNorm after each convolution
      block reaches ≥ 0.915 test accuracy after 5 epochs on average over seeds 0, 1, 2, and
      ≥ 0.91 in every run (issue 3). ~1 min per seed per core here.

The suite keeps W1's single-seed claim (≥ 0.88 in 10 epochs: ``tests/test_fashion_mnist.py``)
and runs this script with ``--quick`` so it cannot rot.

Run:
    python benchmarks/claims.py                 # every claim, the full recipe
    python benchmarks/claims.py --quick         # smoke run: 2,000 images, 1 epoch, 2 seeds

Prints a Markdown table (one row per claim: the runs, their mean, the bound, pass/FAIL);
the exit code is 1 when a claim fails (``--quick`` checks only that the runs complete).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Claim:
    """A mean-over-seeds accuracy bound and how one seed's run is made."""

    name: str
    mean_at_least: float
    each_at_least: float
    seeds: tuple[int, ...]
    run: Callable[[int, bool], float]


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _w2_accuracy(seed: int, quick: bool, *options: str) -> float:
    """Test accuracy of examples/fashion_mnist_cnn.py after 5 epochs (``quick``: 1 epoch
    on 2,000 images)."""
    size = ["--epochs", "1", "--limit", "2000"] if quick else ["--epochs", "5"]
    arguments = [*size, *options, "--seed", str(seed), "--verbose", "0"]
    with contextlib.redirect_stdout(sys.stderr):  # the example's own summary and lines
        return float(_example("fashion_mnist_cnn").main(arguments)["accuracy"])


def w2(seed: int, quick: bool) -> float:
    """W2, the notes' CNN, with its recipe."""
    return _w2_accuracy(seed, quick)


def w2_batchnorm(seed: int, quick: bool) -> float:
    """W2 with a BatchNorm after each convolution block."""
    return _w2_accuracy(seed, quick, "--batchnorm")


CLAIMS = {
    "w2": Claim("w2", 0.90, 0.90, (0, 1, 2), w2),
    "w2-batchnorm": Claim("w2-batchnorm", 0.915, 0.91, (0, 1, 2), w2_batchnorm),
}


def check(claim: Claim, quick: bool) -> tuple[list[float], bool, float]:
    """The claim's runs, whether it holds (``quick``: whether they completed) and seconds."""
    start = time.perf_counter()
    seeds = claim.seeds[:2] if quick else claim.seeds
    accuracies = [claim.run(seed, quick) for seed in seeds]
    holds = statistics.fmean(accuracies) >= claim.mean_at_least and min(accuracies) >= (
        claim.each_at_least
    )
    completed = all(0.0 <= accuracy <= 1.0 for accuracy in accuracies)
    return accuracies, completed if quick else holds, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", default=",".join(CLAIMS), help="comma list of claims")
    parser.add_argument("--quick", action="store_true", help="tiny subsets: a smoke run")
    args = parser.parse_args(argv)
    names = [name for name in args.claims.split(",") if name]
    unknown = sorted(set(names) - set(CLAIMS))
    if unknown:
        parser.error(f"unknown claim(s) {', '.join(unknown)}; choose from {', '.join(CLAIMS)}")
    print("| claim | runs (seeds) | mean | bound (mean / each) | result | time |")
    print("| --- | --- | ---: | --- | --- | ---: |")
    failed = False
    for name in names:
        claim = CLAIMS[name]
        accuracies, holds, seconds = check(claim, args.quick)
        failed |= not holds
        runs = ", ".join(f"{accuracy:.4f}" for accuracy in accuracies)
        bound = f"≥ {claim.mean_at_least} / ≥ {claim.each_at_least}"
        verdict = ("completed" if args.quick else "pass") if holds else "FAIL"
        mean = statistics.fmean(accuracies)
        print(f"| {name} | {runs} | {mean:.4f} | {bound} | {verdict} | {seconds:.0f} s |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
