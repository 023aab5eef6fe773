"""Wall time of a hyper-parameter grid search, serial against process-parallel (notes §1.5).

A GridSearch of 8 trials × 3 folds (learning rate × hidden size × batch size) of an MLP on
a Fashion-MNIST subset, where one trial-fold takes about 0.5–1.5 s, runs twice on the same
data: with ``n_jobs=1`` and with ``n_jobs=2`` (joblib's loky process pool; ``--dask`` adds a
run on a Dask LocalCluster of the same size). Every fold — the serial ones included — runs
with its BLAS pinned to one thread (``lamina.model_selection.BLAS_THREADS``), so the
comparison measures process parallelism alone, and the per-fold metrics of the runs must be
bit-identical. The parallel figure is a cold start: it includes starting the workers.

Target (issue 7): parallel wall time ≤ 0.65 × serial on 2 cores. Exit status 1 if the target
is missed or the runs' metrics differ.

Run: ``python benchmarks/search.py [--jobs 2] [--limit 12000] [--epochs 20] [--dask]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

import lamina
from lamina import config as configs
from lamina.model_selection import BLAS_THREADS, GridSearch, SearchResult

TARGET = 0.65
GRID: dict[str, list[Any]] = {
    "optimizer.learning_rate": [1e-3, 3e-3],
    "layers[0].n_neurons+layers[1].n_inputs": [64, 128],
    "train.batch_size": [64, 128],
}


def fashion_mnist_config(limit: int, epochs: int) -> dict[str, Any]:
    """784 → Dense h ReLU → Dense 10 Softmax on the first ``limit`` training images."""
    return {
        "data": {"dataset": "fashion_mnist", "limit": limit},
        "preprocessing": [{"type": "flatten"}, {"type": "min_max_scaler"}],
        "layers": [
            {"type": "dense", "n_inputs": 784, "n_neurons": 128, "activation": "relu"},
            {"type": "dense", "n_inputs": 128, "n_neurons": 10, "activation": "softmax"},
        ],
        "compile": {"loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "optimizer": {"type": "adam", "learning_rate": 1e-3},
        "train": {"epochs": epochs, "batch_size": 128},
    }


def run(
    label: str, config: dict[str, Any], X: np.ndarray, y: np.ndarray, **options: Any
) -> tuple[SearchResult, float]:
    start = time.perf_counter()
    result = GridSearch(config, GRID, cv=options.pop("folds"), seed=0, **options).fit(X, y)
    seconds = time.perf_counter() - start
    fold_seconds = sum(sum(trial.cv.fit_times) for trial in result.trials)
    print(
        f"{label:<28} wall {seconds:6.2f} s   Σ fold fit times {fold_seconds:6.2f} s   "
        f"best {result.best_params} accuracy {result.best_score:.4f}",
        flush=True,
    )
    return result, seconds


def fold_metrics(result: SearchResult) -> list[list[dict[str, float]]]:
    return [trial.cv.metrics for trial in sorted(result.trials, key=lambda t: t.trial)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=12000, help="training images used")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dask", action="store_true", help="also run on a Dask LocalCluster")
    args = parser.parse_args(argv)

    config = fashion_mnist_config(args.limit, args.epochs)
    data = configs.load_data(configs.from_dict(config))
    X, y = data.X_train, data.y_train
    n_trials = int(np.prod([len(values) for values in GRID.values()]))
    blas = ", ".join(
        f"{info['internal_api']} {info.get('version')} ({info['num_threads']} threads by default)"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    )
    print(
        f"lamina {lamina.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; BLAS: {blas}"
    )
    print(
        f"GridSearch: {n_trials} trials × {args.folds} folds of Fashion-MNIST "
        f"({len(X)} images), {args.epochs} epochs; every fold, serial ones too, pinned to "
        f"{BLAS_THREADS} BLAS thread(s)\n"
    )

    serial, serial_seconds = run("serial (n_jobs=1)", config, X, y, folds=args.folds)
    parallel, parallel_seconds = run(
        f"loky (n_jobs={args.jobs}, cold)", config, X, y, folds=args.folds, n_jobs=args.jobs
    )
    identical = fold_metrics(parallel) == fold_metrics(serial)
    ratio = parallel_seconds / serial_seconds
    if args.dask:
        dask, dask_seconds = run(
            f"dask (LocalCluster of {args.jobs})",
            config,
            X,
            y,
            folds=args.folds,
            n_jobs=args.jobs,
            backend="dask",
        )
        identical = identical and fold_metrics(dask) == fold_metrics(serial)
        print(f"dask / serial wall time: {dask_seconds / serial_seconds:.3f}")

    print(f"\nper-fold metrics identical across runs: {'yes' if identical else 'NO'}")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(
        f"parallel / serial wall time: {parallel_seconds:.2f} s / {serial_seconds:.2f} s = "
        f"{ratio:.3f} ({verdict} the target ≤ {TARGET})"
    )
    print("\n" + str(serial))
    return 0 if identical and ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
