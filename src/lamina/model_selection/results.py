"""Cross-validation results as tables and CSV files."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamina.model_selection.folds import BLAS_THREADS, FoldResult


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_format_number(row.get(column, "")) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def _write_csv(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in columns})
    return path


@dataclass
class CVResult:
    """The result of :func:`cross_validate`: one :class:`FoldResult` per fold, and summaries.

    ``metrics`` is the per-fold list of metric dicts, ``mean`` and ``std`` (population std,
    ddof 0) are per metric over the folds — NaN if any fold failed — and ``fit_times`` the
    per-fold training seconds. ``blas_threads`` is the BLAS thread count the folds ran with,
    ``backend`` where they ran ("serial", "loky" or "dask"), ``wall_time`` the seconds of the
    whole call. ``str(result)`` is a table.
    """

    folds: list[FoldResult]
    seed: int
    splitter: str
    backend: str
    n_jobs: int
    wall_time: float
    metrics: list[dict[str, float]] = field(init=False)
    mean: dict[str, float] = field(init=False)
    std: dict[str, float] = field(init=False)
    fit_times: list[float] = field(init=False)
    blas_threads: int = field(init=False)
    status: str = field(init=False)
    error: str = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = [dict(fold.metrics) for fold in self.folds]
        names = list(dict.fromkeys(name for fold in self.metrics for name in fold))
        failed = [fold for fold in self.folds if fold.status != "ok"]
        self.mean, self.std = {}, {}
        for name in names:
            values = np.array([fold.metrics.get(name, np.nan) for fold in self.folds])
            self.mean[name] = float(values.mean()) if not failed else math.nan
            self.std[name] = float(values.std()) if not failed else math.nan
        self.fit_times = [fold.fit_time for fold in self.folds]
        self.blas_threads = max((fold.blas_threads for fold in self.folds), default=BLAS_THREADS)
        self.status = "failed" if failed else "ok"
        self.error = f"fold {failed[0].fold}: {failed[0].error}" if failed else ""

    @property
    def metric_names(self) -> list[str]:
        return list(self.mean)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per fold: fold, seed, sizes, metrics, times, status, error."""
        return [
            {
                "fold": fold.fold,
                "seed": fold.seed,
                "n_train": fold.n_train,
                "n_val": fold.n_val,
                **fold.metrics,
                "fit_time": fold.fit_time,
                "score_time": fold.score_time,
                "epochs": fold.epochs,
                "status": fold.status,
                "error": fold.error,
                "worker": fold.worker,
            }
            for fold in self.folds
        ]

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`rows` as CSV; returns the path."""
        columns = ["fold", "seed", "n_train", "n_val", *self.metric_names]
        columns += ["fit_time", "score_time", "epochs", "status", "error", "worker"]
        return _write_csv(path, self.rows, columns)

    def __str__(self) -> str:
        columns = ["fold", "n_train", "n_val", *self.metric_names, "fit_time", "status"]
        rows: list[dict[str, Any]] = [
            {**row, "fit_time": f"{row['fit_time']:.2f}", "status": row["status"]}
            for row in self.rows
        ]
        rows.append({"fold": "mean", **self.mean})
        rows.append({"fold": "std", **self.std})
        lines = [
            f"{len(self.folds)}-fold cross-validation, {self.splitter}; {self.backend} "
            f"(n_jobs={self.n_jobs}), BLAS threads {self.blas_threads}, "
            f"{self.wall_time:.1f} s",
            _text_table(rows, columns),
        ]
        lines += [f"fold {fold.fold} failed: {fold.error}" for fold in self.folds if fold.error]
        return "\n".join(lines)
