"""k-fold cross-validation of a model or a run config (notes §1.5)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina import config as configs
from lamina._params import Interval, Rule
from lamina.errors import ConfigError, InputError, invalid
from lamina.model_selection.executor import Executor
from lamina.model_selection.folds import (
    ConfigSpec,
    FoldTask,
    check_picklable,
    config_spec,
    fold_seed,
)
from lamina.model_selection.results import CVResult
from lamina.model_selection.splits import Index, KFold, StratifiedKFold, check_seed

EPOCHS = Rule([Interval(int, 1)], fix="pass epochs=10")
BATCH_SIZE = Rule([Interval(int, 1)], fix="pass batch_size=32")


def cross_validate(
    build: Any,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    cv: int | Any = 5,
    n_jobs: int = 1,
    backend: str = "loky",
    scheduler: Any = None,
    *,
    seed: int | None = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    metrics: Sequence[str] | None = None,
    stratified: bool = True,
    verbose: int = 0,
) -> CVResult:
    """k-fold cross-validation (notes §1.5): train a fresh model on k − 1 folds, score it on
    the remaining one, once per fold.

    Args:
        build: what makes each fold's model — a callable ``build(seed) -> compiled Model``
            (or ``build()``), or a run config: a dict shaped like the parsed TOML, a path to
            a TOML file, or a ``lamina.config.RunConfig``. A config's ``[model] seed`` is
            replaced by the fold's seed, and its ``[train]`` gives epochs, batch_size and
            shuffle (its callbacks and validation_split are not used: the held-out fold is
            the validation data).
        X, y: the training data; with a config both may be None to use the config's data
            (``lamina.config.load_data``'s training part).
        cv: the number of folds k, or a splitter with ``split(X, y)`` (``KFold(...)``).
            With an int, 1-D integer class labels are split by :class:`StratifiedKFold`
            (unless ``stratified=False``), anything else by :class:`KFold`, both shuffled
            with ``seed``.
        n_jobs: 1 runs the folds here, one after the other; more runs them in that many
            worker processes (joblib's loky backend); -1 uses every core.
        backend: ``"loky"`` or ``"dask"``: one ``dask.distributed`` task per fold, retried
            :data:`DASK_RETRIES` times if it raises.
        scheduler: with ``backend="dask"``, an address (``"tcp://host:8786"``) or a
            ``distributed.Client``; None starts a LocalCluster of ``n_jobs`` single-threaded
            worker processes for this call and closes it afterwards.
        seed: seeds the folds' shuffle and, via :func:`fold_seed`, each fold's model.
            None draws one at random (recorded in the result).
        epochs, batch_size: override the config's ``[train]`` values; for a callable the
            defaults are 10 epochs of batches of 32, as ``lamina train``'s.
        metrics: metric names to compile the models with instead of their own.
        stratified: keep class ratios in every fold for class labels.
        verbose: 1 prints a line per finished fold to standard error.

    Returns:
        A :class:`CVResult`. A fold whose training diverges (loss NaN/inf) is reported as
        failed; any other error in a fold is raised.

    Raises:
        ConfigError: bad arguments; a callable that cannot be sent to worker processes
            (a lambda or nested function with ``n_jobs > 1`` or Dask).
    """
    started = time.perf_counter()
    executor = Executor(n_jobs, backend, scheduler, verbose)
    spec = config_spec(build)
    if spec is None and executor.name != "serial":
        check_picklable(build)
    seed = seed_or_random(seed)
    epochs, batch_size, metric_names = fit_overrides(epochs, batch_size, metrics)
    X_data, y_data = training_data(spec, X, y)
    folds, splitter = fold_indices(cv, X_data, y_data, seed, stratified)
    tasks = [
        FoldTask(
            0,
            index,
            spec or build,
            fold_seed(seed, index),
            train,
            validation,
            epochs,
            batch_size,
            metric_names,
            catch=False,
        )
        for index, (train, validation) in enumerate(folds)
    ]
    # 0-based, as the table and result.folds number them
    results = executor.run(tasks, X_data, y_data, lambda t: f"fold {t.fold}")
    return CVResult(
        results, seed, splitter, executor.name, executor.n_jobs, time.perf_counter() - started
    )


def seed_or_random(seed: int | None) -> int:
    """``seed`` checked, or one drawn from fresh entropy for None (a result records it)."""
    checked = check_seed(seed)
    return int(np.random.SeedSequence().generate_state(1)[0]) if checked is None else checked


def fit_overrides(
    epochs: int | None, batch_size: int | None, metrics: Sequence[str] | None
) -> tuple[int | None, int | None, tuple[str, ...] | None]:
    """``cross_validate``'s and a search's overrides of the fit arguments, checked."""
    if epochs is not None:
        epochs = EPOCHS.check("", "epochs", epochs)
    if batch_size is not None:
        batch_size = BATCH_SIZE.check("", "batch_size", batch_size)
    if metrics is not None and (
        isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics)
    ):
        raise ConfigError(
            invalid("metrics", "a list of metric names", repr(metrics), "pass ['accuracy']")
        )
    return epochs, batch_size, None if metrics is None else tuple(metrics)


def training_data(
    spec: ConfigSpec | None, X: ArrayLike | None, y: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) as arrays, or the training part of the config's data when both are None —
    after the config's dry run (``lamina.config.check_fit``): a model that does not fit its
    data or its loss is an error at the config's line before any fold trains."""
    if X is None and y is None and spec is not None:
        run = spec.run()
        data = configs.load_data(run)
        configs.check_fit(run, configs.build_model(run, seed=0), data)
        return data.X_train, data.y_train
    if X is None or y is None:
        raise InputError(
            invalid(
                "X, y",
                "training samples and targets (or both None with a config, to use its data)",
                f"X={'None' if X is None else 'given'}, y={'None' if y is None else 'given'}",
                "pass cross_validate(build, X, y)",
            )
        )
    return np.asarray(X), np.asarray(y)


def fold_indices(
    cv: Any, X: np.ndarray, y: np.ndarray, seed: int, stratified: bool
) -> tuple[list[tuple[Index, Index]], str]:
    """The (train, validation) indices of each fold, and the splitter's repr."""
    if hasattr(cv, "split"):
        splitter = cv
        pairs = cv.split(X, y)
    else:
        # Class labels: 1-D integers (or a column of them, as binary targets often come).
        labels = y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y
        if stratified and labels.ndim == 1 and labels.dtype.kind in "iub":
            splitter = StratifiedKFold(cv, shuffle=True, seed=seed)
            pairs = splitter.split(X, labels)
        else:
            splitter = KFold(cv, shuffle=True, seed=seed)
            pairs = splitter.split(X, y)
    folds = [
        (np.asarray(train, dtype=np.int64), np.asarray(validation, dtype=np.int64))
        for train, validation in pairs
    ]
    return folds, repr(splitter)
