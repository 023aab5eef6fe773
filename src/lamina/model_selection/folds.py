"""One cross-validation fold as a task that runs the same anywhere: in this process, in a
joblib worker or on a Dask worker (DESIGN §1)."""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import pickle
import socket
import sys
import time
import tomllib
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lamina.errors import ConfigError, invalid
from lamina.model_selection.splits import Index

BLAS_THREADS = 1
"""BLAS threads of every fold, wherever it runs: the thread count changes the bits of the
results, and one thread per process is what process parallelism wants anyway."""
DASK_RETRIES = 2
"""How often Dask retries a fold whose task raised; a fold on a worker that died is moved to
another worker by the scheduler itself (``distributed.scheduler.allowed-failures``)."""
_DEFAULT_EPOCHS, _DEFAULT_BATCH_SIZE = 10, 32  # as `lamina train` when [train] leaves them out


def fold_seed(seed: int, fold: int) -> int:
    """The model seed of fold ``fold`` under ``seed``: ``SeedSequence([seed, fold])``'s first
    32-bit word. A function of the two numbers alone, so a fold is the same wherever it runs;
    every trial of a search uses the same fold seeds, so trials differ only by their
    hyper-parameters."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


@dataclass(frozen=True)
class _ConfigSpec:
    """A run config as plain data (the parsed TOML), so it travels to workers as it is."""

    raw: dict[str, Any]
    path: str = "<config>"
    text: str = ""

    def run(self) -> Any:
        from lamina import config as configs

        return configs.from_dict(self.raw, self.path, self.text)


def _config_spec(build: Any) -> _ConfigSpec | None:
    """The config ``build`` names (a dict, a TOML path or a RunConfig), or None for a callable."""
    from lamina import config as configs

    if isinstance(build, str | os.PathLike):
        run = configs.load_config(Path(build))
        return _ConfigSpec(tomllib.loads(run.text), str(run.path), run.text)
    if isinstance(build, Mapping):
        spec = _ConfigSpec(copy.deepcopy(dict(build)))
        spec.run()  # check it here, once, rather than in every fold
        return spec
    if isinstance(build, configs.RunConfig):
        sections = [name for name in configs.SECTIONS if getattr(build, name)]
        raw = {name: copy.deepcopy(getattr(build, name)) for name in sections}
        return _ConfigSpec(raw, str(build.path), build.text)
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


def _check_picklable(build: Callable[..., Any]) -> None:
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
class _FoldTask:
    """What one worker needs for one fold: plain data, so it pickles."""

    trial: int
    fold: int
    build: _ConfigSpec | Callable[..., Any]
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


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(counts, default=BLAS_THREADS)


def _run_fold(task: _FoldTask, X: np.ndarray, y: np.ndarray) -> FoldResult:
    """Build, train and score one fold with BLAS_THREADS BLAS thread(s), in any process."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    with threadpool_limits(limits=BLAS_THREADS):
        threads = _blas_threads()
        try:
            outcome = _train_and_score(task, X, y)
        except Exception as error:
            if not task.catch:
                raise
            outcome = {"error": _error_text(error), "fit_time": time.perf_counter() - start}
    return task.result(blas_threads=threads, worker=_worker_name(), **outcome)


def _train_and_score(task: _FoldTask, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
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


def _fold_model(task: _FoldTask) -> tuple[Any, dict[str, Any]]:
    """The fold's fresh model and its fit arguments (the config's [train] settings)."""
    if isinstance(task.build, _ConfigSpec):
        from lamina import config as configs

        run = task.build.run()
        model = configs.build_model(run, seed=task.seed)
        train = run.train
    else:
        model = _call_build(task.build, task.seed)
        train = {}
    if task.metrics is not None:
        model.compile(loss=model.loss, optimizer=model.optimizer, metrics=list(task.metrics))
    epochs = task.epochs if task.epochs is not None else train.get("epochs", _DEFAULT_EPOCHS)
    batch_size = (
        task.batch_size
        if task.batch_size is not None
        else train.get("batch_size", _DEFAULT_BATCH_SIZE)
    )
    return model, {
        "epochs": epochs,
        "batch_size": batch_size,
        "shuffle": train.get("shuffle", True),
    }


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --------------------------------------------------------------------------- where folds run


class _Executor:
    """Runs fold tasks in this process, in a joblib (loky) process pool, or on Dask."""

    def __init__(self, n_jobs: int, backend: str, scheduler: Any, verbose: int) -> None:
        if (
            isinstance(n_jobs, bool)
            or not isinstance(n_jobs, int | np.integer)
            or not (n_jobs >= 1 or n_jobs == -1)
        ):
            raise ConfigError(
                invalid("n_jobs", "an int ≥ 1, or -1 for every core", repr(n_jobs), "pass n_jobs=2")
            )
        if backend not in ("loky", "dask"):
            raise ConfigError(
                invalid("backend", "'loky' (joblib processes) or 'dask'", repr(backend))
            )
        if scheduler is not None and backend != "dask":
            raise ConfigError(
                invalid(
                    "scheduler",
                    "None unless backend='dask'",
                    repr(scheduler),
                    "pass backend='dask' to run on that scheduler",
                )
            )
        if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
            raise ConfigError(invalid("verbose", "an int ≥ 0", repr(verbose), "pass verbose=1"))
        self.n_jobs = int(n_jobs) if n_jobs != -1 else os.cpu_count() or 1
        self.backend, self.scheduler, self.verbose = backend, scheduler, verbose

    @property
    def name(self) -> str:
        if self.backend == "dask":
            return "dask"
        return "loky" if self.n_jobs > 1 else "serial"

    def run(
        self,
        tasks: list[_FoldTask],
        X: np.ndarray,
        y: np.ndarray,
        describe: Callable[[_FoldTask], str],
    ) -> list[FoldResult]:
        """Every task's result, in task order; failures come back as failed results when
        ``task.catch``, else the first one raises."""
        results: dict[int, FoldResult] = {}

        def report(index: int, result: FoldResult) -> None:
            results[index] = result
            if self.verbose:
                outcome = (
                    ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
                    if result.status == "ok"
                    else f"FAILED: {result.error}"
                )
                print(
                    f"[{len(results)}/{len(tasks)}] {describe(tasks[index])}: {outcome} "
                    f"({result.fit_time:.2f} s on {result.worker})",
                    file=sys.stderr,
                    flush=True,
                )

        if self.name == "serial":
            for index, task in enumerate(tasks):
                report(index, _run_fold(task, X, y))
        elif self.name == "loky":
            self._run_joblib(tasks, X, y, report)
        else:
            self._run_dask(tasks, X, y, report)
        return [results[index] for index in range(len(tasks))]

    def _run_joblib(
        self,
        tasks: list[_FoldTask],
        X: np.ndarray,
        y: np.ndarray,
        report: Callable[[int, FoldResult], None],
    ) -> None:
        try:
            from joblib import Parallel, delayed
        except ImportError:
            raise ImportError("n_jobs > 1 needs joblib: pip install 'lamina[parallel]'") from None
        # batch_size=1 keeps both workers busy to the end: folds take seconds, not micro-
        # seconds, so dispatching them one at a time costs nothing.
        parallel = Parallel(n_jobs=self.n_jobs, backend="loky", batch_size=1, return_as="generator")
        outputs = parallel(delayed(_run_fold)(task, X, y) for task in tasks)
        for index, result in enumerate(outputs):
            report(index, result)

    def _run_dask(
        self,
        tasks: list[_FoldTask],
        X: np.ndarray,
        y: np.ndarray,
        report: Callable[[int, FoldResult], None],
    ) -> None:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]  # task keys name the fold on the dashboard, and are unique
        with _dask_client(self.scheduler, self.n_jobs) as client:
            # The data goes to every worker once, not with every task; a worker that
            # replaces a dead one copies it from the others.
            X_data, y_data = client.scatter([X, y], broadcast=True)
            # Tasks run with catch=False so that Dask retries any exception; a fold that
            # still fails after the retries is turned into a failed result here.
            futures = {
                client.submit(
                    _run_fold,
                    replace(task, catch=False),
                    X_data,
                    y_data,
                    retries=DASK_RETRIES,
                    pure=False,
                    key=f"lamina-fold-{run}-{task.trial}-{task.fold}",
                ): index
                for index, task in enumerate(tasks)
            }
            try:
                for future in as_completed(list(futures), loop=client.loop):
                    index = futures[future]
                    if future.status != "error":
                        report(index, future.result())
                    elif tasks[index].catch:
                        report(index, tasks[index].result(error=_error_text(future.exception())))
                    else:
                        raise future.exception()
            finally:  # after an error, nothing keeps running on a cluster we do not own
                client.cancel([future for future in futures if not future.done()])


@contextlib.contextmanager
def _dask_client(scheduler: Any, n_jobs: int) -> Iterator[Any]:
    """The Client to submit to: the one given, one connected to an address, or one on a
    LocalCluster of ``n_jobs`` single-threaded worker processes started for this call."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "backend='dask' needs dask.distributed: pip install 'lamina[dask]'"
        ) from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is None:
        import logging

        import dask

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which hands freed memory
        # back to the OS at once; a training loop frees and reallocates its batch-sized
        # temporaries thousands of times, and pays ~20% for it (measured: 0.45 s → 0.55 s
        # per fold). The nannies read this setting when they are created.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(
                n_workers=n_jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client
        return
    if isinstance(scheduler, str):
        with Client(scheduler, set_as_default=False) as client:
            yield client
        return
    raise ConfigError(
        invalid(
            "scheduler",
            "None (a LocalCluster), an address such as 'tcp://host:8786', or a distributed.Client",
            type(scheduler).__name__,
        )
    )
