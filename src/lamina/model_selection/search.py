"""Grid and random search over config keys, each trial a cross-validation (notes §1.5)."""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina import config as configs
from lamina._params import Flag, Interval, Options, Rule, Text
from lamina.errors import ConfigError, invalid
from lamina.model_selection.cross_validation import (
    fit_overrides,
    fold_indices,
    seed_or_random,
    training_data,
)
from lamina.model_selection.distributions import DISTRIBUTIONS, check_distribution, draw, plain
from lamina.model_selection.executor import Executor
from lamina.model_selection.folds import (
    BLAS_THREADS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    ConfigSpec,
    FoldTask,
    config_spec,
    fold_seed,
)
from lamina.model_selection.results import CVResult, SearchResult, TrialResult
from lamina.model_selection.splits import SEED
from lamina.threads import blas_threads

RULES = {
    "metric": Rule([Text()], fix="pass metric='accuracy', or 'loss' with mode='min'"),
    "mode": Rule([Options("max", "min")], fix="pass mode='min' for a loss"),
    "seed": SEED,
    "refit": Rule([Flag()], fix="pass refit=True"),
    "stratified": Rule([Flag()], fix="pass stratified=False"),
}
N_TRIALS = Rule([Interval(int, 1)], fix="pass n_trials=10")


@dataclass(eq=False, repr=False)
class Search:
    """What :class:`GridSearch` and :class:`RandomSearch` share: their arguments (after the
    ones that say what to try), cross-validating each candidate, ranking them."""

    build: Any
    _: KW_ONLY
    cv: int | Any = 3
    n_jobs: int = 1
    backend: str = "loky"
    scheduler: Any = None
    metric: str = "accuracy"
    mode: str = "max"
    seed: int | None = 0
    refit: bool = False
    epochs: int | None = None
    batch_size: int | None = None
    stratified: bool = True
    verbose: int = 0
    results_: SearchResult | None = field(default=None, init=False)
    best_model_: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, rule in RULES.items():
            setattr(self, name, rule.check(owner, name, getattr(self, name)))
        self.epochs, self.batch_size, _ = fit_overrides(self.epochs, self.batch_size, None)

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
        executor = Executor(self.n_jobs, self.backend, self.scheduler, self.verbose)
        spec = self._base_config()
        seed = seed_or_random(self.seed)
        candidates = self.candidates()
        trial_configs = [configs.apply_params(spec.raw, params) for params in candidates]
        self._check_metric(spec)
        X_data, y_data = training_data(spec, X, y)
        folds, splitter = fold_indices(self.cv, X_data, y_data, seed, self.stratified)
        # One flat list of trials × folds, so that every worker stays busy to the end.
        tasks = [
            FoldTask(
                trial=trial,
                fold=index,
                build=ConfigSpec(config, spec.path, spec.text),
                seed=fold_seed(seed, index),
                train=train,
                validation=validation,
                epochs=None,  # from the trial's [train]
                batch_size=None,
                metrics=None,
                catch=True,
            )
            for trial, config in enumerate(trial_configs)
            for index, (train, validation) in enumerate(folds)
        ]
        results = executor.run(
            tasks,
            X_data,
            y_data,
            lambda t: f"trial {t.trial}, fold {t.fold}",  # 0-based, as the table
        )
        trials = []
        for trial, (params, config) in enumerate(zip(candidates, trial_configs, strict=True)):
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

    def _base_config(self) -> ConfigSpec:
        """The config every trial starts from, with ``epochs``/``batch_size`` applied."""
        spec = config_spec(self.build)
        if spec is None:
            raise ConfigError(
                invalid(
                    "build",
                    "a config (a dict shaped like the parsed TOML, or a TOML path): the "
                    "hyper-parameters are its keys",
                    "a callable",
                    "pass e.g. 'examples/spiral.toml', or call cross_validate per setting",
                ),
                argument="build",
            )
        overrides = {"train.epochs": self.epochs, "train.batch_size": self.batch_size}
        raw = configs.apply_params(spec.raw, {k: v for k, v in overrides.items() if v is not None})
        return ConfigSpec(raw, spec.path, spec.text)

    def _rank_key(self, trial: TrialResult) -> tuple[bool, float, int]:
        """Successful trials first, best score first among them; ties by trial number."""
        score = trial.mean.get(self.metric, math.nan)
        if trial.status != "ok" or math.isnan(score):
            return True, 0.0, trial.trial
        return False, -score if self.mode == "max" else score, trial.trial

    def _check_metric(self, spec: ConfigSpec) -> None:
        model = configs.build_model(spec.run(), seed=0)  # also checks the base config here
        names = ["loss", *(metric.name for metric in model.metrics)]
        if self.metric not in names:
            raise ConfigError(
                invalid(
                    "metric",
                    f"a metric the model reports: {', '.join(names)}",
                    repr(self.metric),
                    "pass metric='loss' with mode='min', or add it to [compile] metrics",
                ),
                argument="metric",
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(build={self.build!r}, cv={self.cv!r}, n_jobs={self.n_jobs})"


def _refit(
    config: dict[str, Any], spec: ConfigSpec, X: np.ndarray, y: np.ndarray, seed: int
) -> Any:
    """The best config trained on all the training data, with the folds' thread count."""
    run = ConfigSpec(config, spec.path, spec.text).run()
    with blas_threads(BLAS_THREADS):
        model = configs.build_model(run, seed=seed)
        model.fit(
            X,
            y,
            epochs=run.train.get("epochs", DEFAULT_EPOCHS),
            batch_size=run.train.get("batch_size", DEFAULT_BATCH_SIZE),
            shuffle=run.train.get("shuffle", True),
            class_weight=run.train.get("class_weight"),
            verbose=0,
        )
    return model


@dataclass(eq=False, repr=False)
class GridSearch(Search):
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

    The arguments after ``param_grid`` are keyword-only. After ``fit``: ``results_`` (the
    :class:`SearchResult` ``fit`` returns) and ``best_model_``.
    """

    param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]]

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
                if isinstance(values, tuple) and values and values[0] in DISTRIBUTIONS:
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
                candidates.append({key: plain(v) for key, v in zip(keys, combination, strict=True)})
        return candidates


@dataclass(eq=False, repr=False)
class RandomSearch(Search):
    """Cross-validate ``n_trials`` hyper-parameter sets drawn at random, and rank them.

    Each key of ``param_distributions`` maps to a list (one value drawn uniformly), to
    ``("log_uniform", low, high)`` (``exp(U(ln low, ln high))``: learning rates, L2),
    ``("uniform", low, high)`` (``U(low, high)``: dropout rates), ``("int", low, high)``
    (an int in [low, high], both included: layer sizes), or to an object with
    ``rvs(random_state=rng)`` such as a ``scipy.stats`` distribution. Draws come from
    ``numpy.random.default_rng(seed)``, key by key in order, trial by trial: the same seed
    gives the same trials. The other arguments are :class:`GridSearch`'s (keyword-only).
    """

    param_distributions: Mapping[str, Any]
    n_trials: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_trials = N_TRIALS.check(type(self).__name__, "n_trials", self.n_trials)

    def candidates(self) -> list[dict[str, Any]]:
        if not isinstance(self.param_distributions, Mapping) or not self.param_distributions:
            raise ConfigError(
                invalid(
                    "param_distributions",
                    "a non-empty dict {key: list or (kind, low, high)}",
                    repr(self.param_distributions),
                )
            )
        checked = {
            key: check_distribution(key, value) for key, value in self.param_distributions.items()
        }
        rng = np.random.default_rng(seed_or_random(self.seed))
        return [
            {key: draw(value, rng) for key, value in checked.items()} for _ in range(self.n_trials)
        ]
