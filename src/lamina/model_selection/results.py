"""The results of a cross-validation and of a search, as tables and CSV files."""

from __future__ import annotations

import copy
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


@dataclass
class TrialResult:
    """One set of hyper-parameters: its ``params``, the ``config`` they make, its ``cv``
    (whose ``wall_time`` is the sum of its folds' times: they ran among other trials')."""

    trial: int
    params: dict[str, Any]
    config: dict[str, Any]
    cv: CVResult

    @property
    def status(self) -> str:
        return self.cv.status

    @property
    def error(self) -> str:
        return self.cv.error

    @property
    def mean(self) -> dict[str, float]:
        return self.cv.mean

    @property
    def std(self) -> dict[str, float]:
        return self.cv.std


@dataclass
class SearchResult:
    """The trials of a search, best first (failed trials last): ``rows`` is the table as
    dicts, ``str(result)`` as text, ``to_csv(path)`` as a file. ``best_params``,
    ``best_config`` and ``best_score`` describe the best trial (None if every trial failed);
    ``best_model`` is its model trained on all the data when the search had ``refit=True``.
    """

    trials: list[TrialResult]
    metric: str
    mode: str
    param_names: list[str]
    n_folds: int
    backend: str
    n_jobs: int
    wall_time: float
    best_model: Any = None

    @property
    def best(self) -> TrialResult | None:
        return self.trials[0] if self.trials and self.trials[0].status == "ok" else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best is None else dict(self.best.params)

    @property
    def best_config(self) -> dict[str, Any] | None:
        return None if self.best is None else copy.deepcopy(self.best.config)

    @property
    def best_score(self) -> float | None:
        return None if self.best is None else self.best.mean[self.metric]

    @property
    def metric_names(self) -> list[str]:
        names = (name for trial in self.trials for name in trial.mean)
        return list(dict.fromkeys(names))

    @property
    def columns(self) -> list[str]:
        stats = [f"{kind}_{name}" for name in self.metric_names for kind in ("mean", "std")]
        return ["rank", "trial", *self.param_names, *stats, "fit_time", "status", "error"]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per trial, ranked: rank, trial, each parameter, mean_/std_ of each
        metric, fit_time (mean seconds per fold), status ("ok"/"failed"), error."""
        rows = []
        for rank, trial in enumerate(self.trials, start=1):
            row: dict[str, Any] = {"rank": rank, "trial": trial.trial, **trial.params}
            for name in self.metric_names:
                row[f"mean_{name}"] = trial.mean.get(name, math.nan)
                row[f"std_{name}"] = trial.std.get(name, math.nan)
            row["fit_time"] = float(np.mean(trial.cv.fit_times))
            row["status"], row["error"] = trial.status, trial.error
            rows.append(row)
        return rows

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`rows` as CSV; returns the path."""
        return _write_csv(path, self.rows, self.columns)

    def __str__(self) -> str:
        columns = [c for c in self.columns if c != "error"]
        rows = [
            {
                **row,
                **{name: repr(row[name]) for name in self.param_names},
                "fit_time": f"{row['fit_time']:.2f}",
            }
            for row in self.rows
        ]
        header = (
            f"{len(self.trials)} trial(s) × {self.n_folds} folds, ranked by {self.mode} "
            f"mean {self.metric}; {self.backend} (n_jobs={self.n_jobs}), BLAS threads "
            f"{BLAS_THREADS}, {self.wall_time:.1f} s"
        )
        lines = [header, _text_table(rows, columns)]
        lines += [f"trial {t.trial} failed: {t.error}" for t in self.trials if t.status != "ok"]
        if self.best is not None:
            lines.append(f"best: {self.best_params} -> {self.metric} {self.best_score:.4f}")
        return "\n".join(lines)
