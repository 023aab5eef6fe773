"""One cross-validation fold as a task that runs the same anywhere: in this process, in a
joblib worker or on a Dask worker."""

from __future__ import annotations

import copy
import inspect
import math
import os
import pickle
import socket
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lamina import config as configs
from lamina.errors import ConfigError, invalid
from lamina.model_selection.splits import Index
from lamina.threads import blas_threads, current_blas_threads

BLAS_THREADS = 1
"""BLAS threads of every fold, wherever it runs: the thread count changes the bits of the
results, and one thread per process is what process parallelism wants anyway."""
DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE = 10, 32  # as `lamina train` when [train] leaves them out


def fold_seed(seed: int, fold: int) -> int:
    """The model seed of fold ``fold`` under ``seed``: ``SeedSequence([seed, fold])``'s first
    32-bit word. A function of the two numbers alone, so a fold is the same wherever it runs;
    every trial of a search uses the same fold seeds, so trials differ only by their
    hyper-parameters."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


@dataclass(frozen=True)
class ConfigSpec:
    """A run config as plain data (the parsed TOML), so it travels to workers as it is."""

    raw: dict[str, Any]
    path: str = "<config>"
    text: str = ""

    def run(self) -> Any:
        return configs.from_dict(self.raw, self.path, self.text)


def config_spec(build: Any) -> ConfigSpec | None:
    """The config ``build`` names (a dict, a TOML path or a RunConfig), or None for a callable."""
    if isinstance(build, str | os.PathLike):
        run = configs.load_config(Path(build))
        return ConfigSpec(tomllib.loads(run.text), str(run.path), run.text)
    if isinstance(build, Mapping):
        spec = ConfigSpec(copy.deepcopy(dict(build)))
        spec.run()  # check it here, once, rather than in every fold
        return spec
    if isinstance(build, configs.RunConfig):
        sections = [name for name in configs.SECTIONS if getattr(build, name)]
        raw = {name: copy.deepcopy(getattr(build, name)) for name in sections}
        return ConfigSpec(raw, str(build.path), build.text)
    if callable(build):
        return None
    raise ConfigError(
        invalid(
            "build",
            "a callable build(seed) -> compiled Model, a config dict or a TOML path",
            type(build).__name__,
            "pass e.g. 'examples/spiral.toml'",
        )
    )


def check_picklable(build: Callable[..., Any]) -> None:
    try:
        pickle.dumps(build)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        name = getattr(build, "__qualname__", repr(build))
        raise ConfigError(
            invalid(
                "build",
                "a picklable callable to send to worker processes (a function defined with "
                "`def` at the top level of a module)",
                f"{name} ({error})",
                "move it to module level (no lambda or nested function), pass a config "
                "dict or TOML path instead, or use n_jobs=1",
            )
        ) from None


def _call_build(build: Callable[..., Any], seed: int) -> Any:
    try:
        takes_seed = bool(inspect.signature(build).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: try the seed
        takes_seed = True
    model = build(seed) if takes_seed else build()
    if getattr(model, "loss", None) is None or not hasattr(model, "evaluate"):
        raise ConfigError(
            invalid(
                "build",
                "a callable returning a compiled lamina Model",
                f"it returned {type(model).__name__}"
                + (" (not compiled)" if hasattr(model, "evaluate") else ""),
                "return the model after model.compile(loss=..., optimizer=...)",
            )
        )
    return model


@dataclass(frozen=True)
class FoldResult:
    """One fold: a model trained on ``n_train`` samples, scored on ``n_val`` held-out ones.

    ``metrics`` is ``Model.evaluate``'s dict ({} when the fold failed); ``fit_time`` the
    seconds to build and train, ``score_time`` to evaluate; ``blas_threads`` the BLAS thread
    count in effect while it ran; ``worker`` the ``host:pid`` that ran it. ``status`` is
    ``"failed"`` when training raised or diverged (``error`` says how).
    """

    fold: int
    seed: int
    n_train: int
    n_val: int
    metrics: dict[str, float]
    fit_time: float
    score_time: float
    epochs: int
    blas_threads: int
    worker: str
    status: str = "ok"
    error: str = ""
    trial: int = 0


@dataclass(frozen=True)
class FoldTask:
    """What one worker needs for one fold: plain data, so it pickles."""

    trial: int
    fold: int
    build: ConfigSpec | Callable[..., Any]
    seed: int
    train: Index
    validation: Index
    epochs: int | None
    batch_size: int | None
    metrics: tuple[str, ...] | None
    catch: bool

    def result(
        self,
        *,
        metrics: dict[str, float] | None = None,
        fit_time: float = 0.0,
        score_time: float = 0.0,
        epochs: int = 0,
        blas_threads: int = BLAS_THREADS,
        worker: str = "",
        error: str = "",
    ) -> FoldResult:
        """This fold's result: ``metrics`` if it succeeded, else the ``error`` text."""
        return FoldResult(
            fold=self.fold,
            seed=self.seed,
            n_train=len(self.train),
            n_val=len(self.validation),
            metrics={} if error else dict(metrics or {}),
            fit_time=fit_time,
            score_time=score_time,
            epochs=epochs,
            blas_threads=blas_threads,
            worker=worker,
            status="failed" if error else "ok",
            error=error,
            trial=self.trial,
        )


def run_fold(task: FoldTask, X: np.ndarray, y: np.ndarray) -> FoldResult:
    """Build, train and score one fold with BLAS_THREADS BLAS thread(s), in any process."""
    start = time.perf_counter()
    with blas_threads(BLAS_THREADS):
        threads = current_blas_threads() or BLAS_THREADS
        try:
            outcome = _train_and_score(task, X, y)
        except Exception as error:
            if not task.catch:
                raise
            outcome = {"error": error_text(error), "fit_time": time.perf_counter() - start}
    return task.result(blas_threads=threads, worker=_worker_name(), **outcome)


def _train_and_score(task: FoldTask, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    start = time.perf_counter()
    model, fit_args = _fold_model(task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        history = model.fit(X[task.train], y[task.train], verbose=0, **fit_args)
    fit_time = time.perf_counter() - start
    epochs = model.epochs_done
    if history.divergence is not None:
        error = f"Training diverged at {history.divergence}"
        return {"error": error, "fit_time": fit_time, "epochs": epochs}
    for warning in caught:  # anything else is the caller's to see
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    scored = time.perf_counter()
    scores = model.evaluate(X[task.validation], y[task.validation])
    metrics = {name: float(value) for name, value in scores.items()}
    outcome = {"fit_time": fit_time, "score_time": time.perf_counter() - scored, "epochs": epochs}
    if not all(math.isfinite(value) for value in metrics.values()):
        return {**outcome, "error": f"non-finite validation metrics {metrics}"}
    return {**outcome, "metrics": metrics}


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _fold_model(task: FoldTask) -> tuple[Any, dict[str, Any]]:
    """The fold's fresh model and its fit arguments (the config's [train] settings)."""
    model: Any  # a compiled Model: a config's, or what a callable build returned (checked)
    if isinstance(task.build, ConfigSpec):
        run = task.build.run()
        model = configs.build_model(run, seed=task.seed)
        train = run.train
    else:
        model = _call_build(task.build, task.seed)
        train = {}
    if task.metrics is not None:
        model.compile(loss=model.loss, optimizer=model.optimizer, metrics=list(task.metrics))
    epochs = task.epochs if task.epochs is not None else train.get("epochs", DEFAULT_EPOCHS)
    batch_size = (
        task.batch_size
        if task.batch_size is not None
        else train.get("batch_size", DEFAULT_BATCH_SIZE)
    )
    return model, {
        "epochs": epochs,
        "batch_size": batch_size,
        "shuffle": train.get("shuffle", True),
        "class_weight": train.get("class_weight"),
    }


def error_text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
