"""Where fold tasks run: in this process, in a joblib (loky) process pool, or on a Dask
cluster; each result comes back in task order, whatever finished first."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from lamina._params import Interval, Options, Rule
from lamina.datasets.checks import Worded
from lamina.errors import ConfigError, invalid
from lamina.model_selection.folds import FoldResult, FoldTask, error_text, run_fold

DASK_RETRIES = 2
"""How often Dask retries a fold whose task raised; a fold on a worker that died is moved to
another worker by the scheduler itself (``distributed.scheduler.allowed-failures``)."""

N_JOBS = Rule(
    [Interval(int, 1), Worded(Interval(int, -1, -1), "-1 for every core")], fix="pass n_jobs=2"
)
BACKEND = Rule([Options("loky", "dask")], fix="pass backend='loky' (joblib processes) or 'dask'")
VERBOSE = Rule([Interval(int, 0)], fix="pass verbose=1")


class Executor:
    """Runs fold tasks in this process, in a joblib (loky) process pool, or on Dask."""

    def __init__(self, n_jobs: int, backend: str, scheduler: Any, verbose: int) -> None:
        n_jobs = N_JOBS.check("", "n_jobs", n_jobs)
        backend = BACKEND.check("", "backend", backend)
        if scheduler is not None and backend != "dask":
            raise ConfigError(
                invalid(
                    "scheduler",
                    "None unless backend='dask'",
                    repr(scheduler),
                    "pass backend='dask' to run on that scheduler",
                ),
                argument="scheduler",
            )
        self.n_jobs = n_jobs if n_jobs != -1 else os.cpu_count() or 1
        self.backend, self.scheduler = backend, scheduler
        self.verbose = VERBOSE.check("", "verbose", verbose)

    @property
    def name(self) -> str:
        if self.backend == "dask":
            return "dask"
        return "loky" if self.n_jobs > 1 else "serial"

    def run(
        self,
        tasks: list[FoldTask],
        X: np.ndarray,
        y: np.ndarray,
        describe: Callable[[FoldTask], str],
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
                report(index, run_fold(task, X, y))
        elif self.name == "loky":
            self._run_joblib(tasks, X, y, report)
        else:
            self._run_dask(tasks, X, y, report)
        return [results[index] for index in range(len(tasks))]

    def _run_joblib(
        self,
        tasks: list[FoldTask],
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
        outputs = parallel(delayed(run_fold)(task, X, y) for task in tasks)
        for index, result in enumerate(outputs):
            report(index, result)

    def _run_dask(
        self,
        tasks: list[FoldTask],
        X: np.ndarray,
        y: np.ndarray,
        report: Callable[[int, FoldResult], None],
    ) -> None:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]  # task keys name the fold on the dashboard, and are unique
        with dask_client(self.scheduler, self.n_jobs) as client:
            # The data goes to every worker once, not with every task; a worker that
            # replaces a dead one copies it from the others. Keys of its own (hash=False):
            # with the data's hash as key, a run right after another on the same cluster
            # shares the key, and the first run's release deletes the data under the
            # second's tasks ("lost dependencies", seen in CI).
            X_data, y_data = client.scatter([X, y], broadcast=True, hash=False)
            # Tasks run with catch=False so that Dask retries any exception; a fold that
            # still fails after the retries is turned into a failed result here.
            futures = {
                client.submit(
                    run_fold,
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
                        report(index, tasks[index].result(error=error_text(future.exception())))
                    else:
                        raise future.exception()
            finally:  # after an error, nothing keeps running on a cluster we do not own
                client.cancel([future for future in futures if not future.done()])


@contextlib.contextmanager
def dask_client(scheduler: Any, n_jobs: int) -> Iterator[Any]:
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
