"""Grid and random search over config keys, each trial a cross-validation (notes §1.5)."""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.errors import ConfigError, invalid
from lamina.model_selection.config_keys import _DISTRIBUTIONS, _check_distribution, apply_params
from lamina.model_selection.cross_validation import (
    _fit_overrides,
    _fold_indices,
    _seed_or_random,
    _training_data,
)
from lamina.model_selection.folds import (
    _DEFAULT_BATCH_SIZE,
    _DEFAULT_EPOCHS,
    BLAS_THREADS,
    _config_spec,
    _ConfigSpec,
    _Executor,
    _FoldTask,
    fold_seed,
)
from lamina.model_selection.results import CVResult, _text_table, _write_csv


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


class _Search:
    """What GridSearch and RandomSearch share: cross-validate each candidate, rank them."""

    def __init__(
        self,
        build: Any,
        cv: int | Any = 3,
        n_jobs: int = 1,
        backend: str = "loky",
        scheduler: Any = None,
        metric: str = "accuracy",
        mode: str = "max",
        seed: int = 0,
        refit: bool = False,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        stratified: bool = True,
        verbose: int = 0,
    ) -> None:
        self.build, self.cv, self.n_jobs, self.backend = build, cv, n_jobs, backend
        self.scheduler, self.metric, self.mode, self.seed = scheduler, metric, mode, seed
        self.refit, self.epochs, self.batch_size = refit, epochs, batch_size
        self.stratified, self.verbose = stratified, verbose
        self.results_: SearchResult | None = None
        self.best_model_: Any = None

    def candidates(self) -> list[dict[str, Any]]:
        """The hyper-parameter sets to try, in trial order."""
        raise NotImplementedError

    def fit(self, X: ArrayLike | None = None, y: ArrayLike | None = None) -> SearchResult:
        """Cross-validate every candidate — all trials × folds as one list of parallel
        tasks — and rank them; with ``refit`` train the best config on all of (X, y).

        X and y may be None to use the config's data. A trial whose fold raises or diverges
        is reported as failed (status, error) and the others complete.
        """
        started = time.perf_counter()
        executor = _Executor(self.n_jobs, self.backend, self.scheduler, self.verbose)
        spec = self._base_config()
        seed = _seed_or_random(self.seed)
        candidates = self.candidates()
        configs = [apply_params(spec.raw, params) for params in candidates]  # bad keys raise
        self._check_metric(spec)
        X_data, y_data = _training_data(spec, X, y)
        folds, splitter = _fold_indices(self.cv, X_data, y_data, seed, self.stratified)
        # One flat list of trials × folds, so that every worker stays busy to the end.
        tasks = [
            _FoldTask(
                trial=trial,
                fold=index,
                build=_ConfigSpec(config, spec.path, spec.text),
                seed=fold_seed(seed, index),
                train=train,
                validation=validation,
                epochs=None,  # from the trial's [train]
                batch_size=None,
                metrics=None,
                catch=True,
            )
            for trial, config in enumerate(configs)
            for index, (train, validation) in enumerate(folds)
        ]
        results = executor.run(
            tasks,
            X_data,
            y_data,
            lambda t: f"trial {t.trial + 1}/{len(configs)} fold {t.fold + 1}/{len(folds)}",
        )
        trials = []
        for trial, (params, config) in enumerate(zip(candidates, configs, strict=True)):
            mine = [result for result in results if result.trial == trial]
            seconds = sum(fold.fit_time + fold.score_time for fold in mine)
            cv = CVResult(mine, seed, splitter, executor.name, executor.n_jobs, seconds)
            trials.append(TrialResult(trial, params, config, cv))
        trials.sort(key=self._rank_key)
        result = SearchResult(
            trials=trials,
            metric=self.metric,
            mode=self.mode,
            param_names=list(dict.fromkeys(key for params in candidates for key in params)),
            n_folds=len(folds),
            backend=executor.name,
            n_jobs=executor.n_jobs,
            wall_time=time.perf_counter() - started,
        )
        if result.best is None:
            warnings.warn(
                f"every trial of the search failed; the first error: {trials[0].error}",
                RuntimeWarning,
                stacklevel=2,
            )
        elif self.refit:
            result.best_model = _refit(result.best.config, spec, X_data, y_data, seed)
        self.results_, self.best_model_ = result, result.best_model
        return result

    def _base_config(self) -> _ConfigSpec:
        """The config every trial starts from, with ``epochs``/``batch_size`` applied."""
        spec = _config_spec(self.build)
        if spec is None:
            raise ConfigError(
                invalid(
                    "build",
                    "a config (a dict shaped like the parsed TOML, or a TOML path): the "
                    "hyper-parameters are its keys",
                    "a callable",
                    "pass e.g. 'examples/spiral.toml', or call cross_validate per setting",
                )
            )
        if self.mode not in ("max", "min"):
            raise ConfigError(invalid("mode", "'max' or 'min'", repr(self.mode)))
        if not isinstance(self.refit, bool):
            raise ConfigError(invalid("refit", "True or False", repr(self.refit)))
        epochs, batch_size, _ = _fit_overrides(self.epochs, self.batch_size, None)
        overrides = {"train.epochs": epochs, "train.batch_size": batch_size}
        raw = apply_params(spec.raw, {k: v for k, v in overrides.items() if v is not None})
        return _ConfigSpec(raw, spec.path, spec.text)

    def _rank_key(self, trial: TrialResult) -> tuple[bool, float, int]:
        """Successful trials first, best score first among them; ties by trial number."""
        score = trial.mean.get(self.metric, math.nan)
        if trial.status != "ok" or math.isnan(score):
            return True, 0.0, trial.trial
        return False, -score if self.mode == "max" else score, trial.trial

    def _check_metric(self, spec: _ConfigSpec) -> None:
        from lamina import config as configs

        model = configs.build_model(spec.run(), seed=0)  # also checks the base config here
        names = ["loss", *(metric.name for metric in model.metrics)]
        if self.metric not in names:
            raise ConfigError(
                invalid(
                    "metric",
                    f"a metric the model reports: {', '.join(names)}",
                    repr(self.metric),
                    "pass metric='loss' with mode='min', or add it to [compile] metrics",
                )
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(build={self.build!r}, cv={self.cv!r}, n_jobs={self.n_jobs})"


def _refit(
    config: dict[str, Any], spec: _ConfigSpec, X: np.ndarray, y: np.ndarray, seed: int
) -> Any:
    """The best config trained on all the training data, with the folds' thread count."""
    from threadpoolctl import threadpool_limits

    from lamina import config as configs

    run = _ConfigSpec(config, spec.path, spec.text).run()
    with threadpool_limits(limits=BLAS_THREADS):
        model = configs.build_model(run, seed=seed)
        model.fit(
            X,
            y,
            epochs=run.train.get("epochs", _DEFAULT_EPOCHS),
            batch_size=run.train.get("batch_size", _DEFAULT_BATCH_SIZE),
            shuffle=run.train.get("shuffle", True),
            verbose=0,
        )
    return model


class GridSearch(_Search):
    """Cross-validate every combination of ``param_grid`` (notes §1.5: "loop over different
    hyper-parameter sets") and rank them by the mean of ``metric``.

    Example::

        search = GridSearch("examples/spiral.toml",
                            {"optimizer.learning_rate": [0.01, 0.02],
                             "layers[0].n_neurons+layers[1].n_inputs": [32, 64]},
                            cv=3, n_jobs=2, epochs=200)
        result = search.fit()          # the config's data; or search.fit(X, y)
        print(result); result.to_csv("search.csv"); result.best_config

    Args:
        build: a config: a dict shaped like the parsed TOML, or a TOML path.
        param_grid: ``{key: [values]}`` with config keys as :func:`set_config_value` takes
            them, or a list of such dicts (each expanded on its own). The last key varies
            fastest.
        cv, n_jobs, backend, scheduler, seed: as :func:`cross_validate`. Trials × folds run
            as one list of tasks, so 8 trials × 3 folds keep every worker busy; every trial
            sees the same folds and fold seeds.
        metric, mode: rank by the mean of this metric, highest first (``"max"``) or lowest
            (``"min"``, e.g. for ``"loss"``).
        refit: train the best config on all the data into ``best_model_``.
        epochs, batch_size: override ``[train]`` in every trial (a key in the grid wins).
        verbose: 1 prints a line per finished trial fold to standard error.

    After ``fit``: ``results_`` (the :class:`SearchResult` ``fit`` returns) and
    ``best_model_``.
    """

    def __init__(
        self,
        build: Any,
        param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
        cv: int | Any = 3,
        n_jobs: int = 1,
        backend: str = "loky",
        scheduler: Any = None,
        metric: str = "accuracy",
        mode: str = "max",
        seed: int = 0,
        refit: bool = False,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        stratified: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            build,
            cv,
            n_jobs,
            backend,
            scheduler,
            metric,
            mode,
            seed,
            refit,
            epochs=epochs,
            batch_size=batch_size,
            stratified=stratified,
            verbose=verbose,
        )
        self.param_grid = param_grid

    def candidates(self) -> list[dict[str, Any]]:
        grids = [self.param_grid] if isinstance(self.param_grid, Mapping) else self.param_grid
        if not isinstance(grids, Sequence) or not grids:
            raise ConfigError(
                invalid("param_grid", "a dict {key: [values]} or a list of them", repr(grids))
            )
        candidates = []
        for grid in grids:
            if not isinstance(grid, Mapping):
                raise ConfigError(invalid("param_grid", "dicts {key: [values]}", repr(grid)))
            for key, values in grid.items():
                if isinstance(values, tuple) and values and values[0] in _DISTRIBUTIONS:
                    raise ConfigError(
                        invalid(
                            f"param_grid[{key!r}]",
                            "a list of values",
                            repr(values),
                            "use RandomSearch for a range, or list the values",
                        )
                    )
                if (
                    isinstance(values, str | bytes | Mapping)
                    or not isinstance(values, Sequence | np.ndarray)
                    or not len(values)
                ):
                    raise ConfigError(
                        invalid(
                            f"param_grid[{key!r}]",
                            "a non-empty list of values",
                            repr(values),
                            f"pass [{values!r}]",
                        )
                    )
            keys = list(grid)
            for combination in itertools.product(*(list(grid[key]) for key in keys)):
                candidates.append(
                    {key: _plain(v) for key, v in zip(keys, combination, strict=True)}
                )
        return candidates


class RandomSearch(_Search):
    """Cross-validate ``n_trials`` hyper-parameter sets drawn at random, and rank them.

    Each key of ``param_distributions`` maps to a list (one value drawn uniformly), to
    ``("log_uniform", low, high)`` (``exp(U(ln low, ln high))``: learning rates, L2),
    ``("uniform", low, high)`` (``U(low, high)``: dropout rates), ``("int", low, high)``
    (an int in [low, high], both included: layer sizes), or to an object with
    ``rvs(random_state=rng)`` such as a ``scipy.stats`` distribution. Draws come from
    ``numpy.random.default_rng(seed)``, key by key in order, trial by trial: the same seed
    gives the same trials. The other arguments are :class:`GridSearch`'s.
    """

    def __init__(
        self,
        build: Any,
        param_distributions: Mapping[str, Any],
        n_trials: int = 10,
        cv: int | Any = 3,
        n_jobs: int = 1,
        backend: str = "loky",
        scheduler: Any = None,
        metric: str = "accuracy",
        mode: str = "max",
        seed: int = 0,
        refit: bool = False,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        stratified: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            build,
            cv,
            n_jobs,
            backend,
            scheduler,
            metric,
            mode,
            seed,
            refit,
            epochs=epochs,
            batch_size=batch_size,
            stratified=stratified,
            verbose=verbose,
        )
        self.param_distributions = param_distributions
        self.n_trials = n_trials

    def candidates(self) -> list[dict[str, Any]]:
        from lamina.validation import positive_int

        n_trials = positive_int("n_trials", self.n_trials, 1, "n_trials=10")
        if not isinstance(self.param_distributions, Mapping) or not self.param_distributions:
            raise ConfigError(
                invalid(
                    "param_distributions",
                    "a non-empty dict {key: list or (kind, low, high)}",
                    repr(self.param_distributions),
                )
            )
        checked = {
            key: _check_distribution(key, value) for key, value in self.param_distributions.items()
        }
        rng = np.random.default_rng(_seed_or_random(self.seed))
        return [{key: _draw(value, rng) for key, value in checked.items()} for _ in range(n_trials)]


def _draw(distribution: Any, rng: np.random.Generator) -> Any:
    if isinstance(distribution, list):
        return _plain(distribution[int(rng.integers(len(distribution)))])
    if isinstance(distribution, tuple):
        kind, low, high = distribution
        if kind == "log_uniform":
            return float(np.exp(rng.uniform(math.log(low), math.log(high))))
        if kind == "uniform":
            return float(rng.uniform(low, high))
        return int(rng.integers(int(low), int(high) + 1))
    return _plain(distribution.rvs(random_state=rng))


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so configs stay TOML/JSON values."""
    return value.item() if isinstance(value, np.generic) else value
