r"""Deep ensembles (Lakshminarayanan et al. 2017): k models of one recipe trained from k
seeds; their mean is the prediction and their disagreement an uncertainty (notes §2.2
*Confidence*: "the level of uncertainty associated with the predicted numerical value").

For members with outputs ŷ₁ … ŷₖ::

    μ* = (1/k) Σᵢ ŷᵢ          σ*² = (1/k) Σᵢ (ŷᵢ − μ*)²

and for members trained with :class:`~lamina.losses.GaussianNLL`, each predicting a normal
N(μᵢ, σᵢ²), the equally weighted mixture of the k normals::

    μ* = (1/k) Σᵢ μᵢ          σ*² = (1/k) Σᵢ (σᵢ² + μᵢ²) − μ*² = (1/k) Σᵢ σᵢ² + (1/k) Σᵢ (μᵢ − μ*)²

— the noise each member sees plus the spread of their means (``GaussianNLL.mixture``,
which computes the last form: it cannot cancel to a negative variance).

Where members train: ``n_jobs=1`` in this process, ``n_jobs>1`` in a joblib (loky) process
pool, ``backend="dask"`` on a ``dask.distributed`` cluster, as cross-validation's folds do
(``lamina.model_selection``). Member i is built by ``build(fold_seed(seed, i))`` and trained
with its BLAS pinned to :data:`~lamina.model_selection.BLAS_THREADS` thread, in-process
members included, so the ensemble is bit-identical wherever its members ran. A member
trained elsewhere comes back as the bytes of its ``.lamina`` file (``lamina.saving``), so
its custom parts must be registered (``@lamina.register``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina._files import atomic_write, read_regular
from lamina._params import Flag, Interval, check
from lamina.errors import ConfigError, ModelFileError, NotCompiledError, invalid
from lamina.losses import GaussianNLL
from lamina.model import Model
from lamina.model_selection.executor import BACKEND, DASK_RETRIES, N_JOBS, dask_client
from lamina.model_selection.folds import BLAS_THREADS, check_picklable, fold_seed
from lamina.saving import model_file
from lamina.saving.archive import MAX_FILE_BYTES, ArchiveReader
from lamina.threads import blas_threads

Array = np.ndarray
Build = Callable[[int], Model]
PathLike = str | os.PathLike[str]

MAX_MEMBERS = 1000
MANIFEST = "ensemble.json"
FORMAT, FORMAT_VERSION = "lamina-ensemble", 1
MANIFEST_LIMIT = 1 << 20
MEMBER_FILE = re.compile(r"member_[0-9]{1,3}\.lamina")


@dataclass(frozen=True)
class MemberTask:
    """What one worker needs to train member ``index``: plain data, so it pickles."""

    index: int
    seed: int
    build: Build
    fit_args: dict[str, Any]


def train_member(task: MemberTask, X: Array, y: Array) -> Model:
    """Build and train one member with BLAS_THREADS BLAS thread(s), in any process."""
    with blas_threads(BLAS_THREADS):
        model = task.build(task.seed)
        if not isinstance(model, Model) or model.loss is None:
            raise ConfigError(
                invalid(
                    "build",
                    "a callable build(seed) returning a compiled lamina Model",
                    f"it returned {type(model).__name__}"
                    + (" (not compiled)" if isinstance(model, Model) else ""),
                    "return the model after model.compile(loss=..., optimizer=...)",
                )
            )
        model.fit(X, y, **task.fit_args)
        return model


def member_file(task: MemberTask, X: Array, y: Array) -> bytes:
    """:func:`train_member` in a worker: the .lamina bytes of the trained member, which
    come back to be loaded as any model file (nothing is unpickled from a worker)."""
    return model_file.encode_model(train_member(task, X, y))


class Ensemble:
    """k models from k seeds, trained in parallel; ``predict`` averages them and, with
    ``return_std=True``, says how uncertain the average is (see the module docstring).

    Args:
        build: ``build(seed) -> compiled Model``, a function defined at module level when
            members train in other processes (``n_jobs > 1`` or Dask); None for an ensemble
            that only predicts (:meth:`load` without a build).
        members: k, the number of models.
        seed: member i is ``build(fold_seed(seed, i))``.

    Attributes:
        models_: the k trained models (after :meth:`fit` or :meth:`load`).
        seeds_: the seed each was built from.
    """

    def __init__(self, build: Build | None, members: int = 5, seed: int = 0) -> None:
        if build is not None and not callable(build):
            raise ConfigError(
                invalid("build", "a callable build(seed) -> compiled Model", repr(build)[:80]),
                argument="build",
            )
        self.build = build
        self.members: int = check(
            "Ensemble", "members", members, Interval(int, 1, MAX_MEMBERS), fix="use members=5"
        )
        self.seed: int = check("Ensemble", "seed", seed, Interval(int, 0), fix="use seed=0")
        self.models_: list[Model] = []
        self.seeds_: list[int] = []

    # -- training ---------------------------------------------------------------------
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        n_jobs: int = 1,
        backend: str = "loky",
        scheduler: Any = None,
        **fit_args: Any,
    ) -> Ensemble:
        """Train the k members, each on all of (X, y) with ``Model.fit(X, y, **fit_args)``
        (``verbose=0`` unless given); returns self. Each member gets its own copy of
        ``fit_args`` (callbacks included), in this process as in a worker.

        Args:
            n_jobs: 1 trains the members here, one after the other; more trains them in
                that many worker processes (joblib's loky backend); -1 uses every core.
            backend: ``"loky"`` or ``"dask"``: one ``dask.distributed`` task per member.
            scheduler: with ``backend="dask"``, an address (``"tcp://host:8786"``) or a
                ``distributed.Client``; None starts a LocalCluster of ``n_jobs``
                single-threaded worker processes for this call.
        """
        if self.build is None:
            raise NotCompiledError(
                "This Ensemble has no build function (it was loaded to predict). Fix: "
                "Ensemble.load(folder, build=build) or Ensemble(build, ...) to train."
            )
        n_jobs = N_JOBS.check("Ensemble.fit", "n_jobs", n_jobs)
        n_jobs = n_jobs if n_jobs != -1 else os.cpu_count() or 1
        backend = BACKEND.check("Ensemble.fit", "backend", backend)
        if scheduler is not None and backend != "dask":
            raise ConfigError(
                invalid("scheduler", "None unless backend='dask'", repr(scheduler)[:80]),
                argument="scheduler",
            )
        fit_args = {"verbose": 0, **fit_args}
        _check_fit_arguments(fit_args)
        X_array, y_array = np.asarray(X), np.asarray(y)
        seeds = [fold_seed(self.seed, index) for index in range(self.members)]
        tasks = [
            MemberTask(index, member_seed, self.build, fit_args)
            for index, member_seed in enumerate(seeds)
        ]
        if backend == "dask":
            check_picklable(self.build)
            models = _load_all(_run_dask(tasks, X_array, y_array, scheduler, n_jobs))
        elif n_jobs > 1 and self.members > 1:
            check_picklable(self.build)
            models = _load_all(_run_joblib(tasks, X_array, y_array, n_jobs))
        else:  # each member its own copy of the arguments (callbacks), as a worker gets
            models = [train_member(copy.deepcopy(task), X_array, y_array) for task in tasks]
        _check_members(models)
        self.models_, self.seeds_ = models, seeds
        return self

    # -- prediction -------------------------------------------------------------------
    def predict(
        self, X: ArrayLike, return_std: bool = False, batch_size: int | None = None
    ) -> Array | tuple[Array, Array]:
        """μ*, the mean of the members' predictions for X (preprocessing applied, as in
        ``Model.predict``), or ``(μ*, σ*)`` with ``return_std=True``. For GaussianNLL
        members μ* and σ* are those of the mixture of their normals, (N, J) for J targets
        — the members' means only, not their raw 2·J outputs."""
        return_std = check("Ensemble.predict", "return_std", return_std, Flag())
        models = self._trained()
        outputs = [model.predict(X, batch_size) for model in models]
        gaussian = [model.loss for model in models if isinstance(model.loss, GaussianNLL)]
        if len(gaussian) == len(models):
            pairs = [loss.mean_std(out) for loss, out in zip(gaussian, outputs, strict=True)]
            mean, std = GaussianNLL.mixture(pairs)
        else:
            stacked = np.stack(outputs)
            mean, std = stacked.mean(axis=0), stacked.std(axis=0)
        return (mean, std) if return_std else mean

    def _trained(self) -> list[Model]:
        if not self.models_:
            raise NotCompiledError(
                "The Ensemble has no trained members yet. Fix: call ensemble.fit(X, y) "
                "or Ensemble.load(folder) first."
            )
        return self.models_

    # -- saving -----------------------------------------------------------------------
    def save(self, folder: PathLike) -> None:
        """Write each member as ``folder/member_<i>.lamina`` (``Model.save``: atomic, and
        only if it loads back), then ``ensemble.json``, which lists them with the SHA-256
        of their bytes: a save that stopped half-way leaves files that do not match it,
        and :meth:`load` refuses them instead of mixing members of two ensembles (the
        files of an earlier, larger ensemble beyond the k listed are left alone, unread)."""
        models = self._trained()
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        entries = []
        for index, model in enumerate(models):
            path = target / f"member_{index}.lamina"
            model.save(path)
            data = read_regular(path, what="model file", limit=MAX_FILE_BYTES, error=ModelFileError)
            entries.append({"file": path.name, "sha256": hashlib.sha256(data).hexdigest()})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "seed": self.seed,
            "seeds": self.seeds_,
            "members": entries,
        }
        text = json.dumps(manifest, indent=1).encode()
        atomic_write(target / MANIFEST, text, what="ensemble manifest")

    @classmethod
    def load(cls, folder: PathLike, build: Build | None = None) -> Ensemble:
        """The ensemble :meth:`save` wrote to ``folder``; each member is read as
        ``lamina.load_model`` reads a file (nothing is imported or unpickled). ``build``
        lets it train again; without one it predicts."""
        target = Path(folder)
        where = repr(os.fspath(target / MANIFEST))
        raw = read_regular(
            target / MANIFEST, what="ensemble manifest", limit=MANIFEST_LIMIT, error=ModelFileError
        )
        seed, seeds, entries = _parse_manifest(raw, where)
        models = []
        for entry in entries:
            path = target / entry["file"]
            data = read_regular(path, what="model file", limit=MAX_FILE_BYTES, error=ModelFileError)
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ModelFileError(
                    f"{os.fspath(path)!r} is not the member {where} lists (its SHA-256 "
                    "differs: another save replaced it, or one stopped half-way). Fix: save "
                    "the ensemble again."
                )
            with ArchiveReader(data, repr(os.fspath(path))) as archive:
                models.append(model_file.load_from(archive, Model))
        _check_members(models)
        ensemble = cls(build, members=len(models), seed=seed)
        ensemble.models_, ensemble.seeds_ = models, seeds
        return ensemble

    def __repr__(self) -> str:
        state = f"{len(self.models_)} trained" if self.models_ else "not trained"
        return f"Ensemble(members={self.members}, seed={self.seed}; {state})"


# --------------------------------------------------------------------------- helpers
def _check_fit_arguments(fit_args: dict[str, Any]) -> None:
    try:
        inspect.signature(Model.fit).bind(None, None, None, **fit_args)
    except TypeError as error:
        raise ConfigError(
            invalid(
                "Ensemble.fit arguments",
                "n_jobs, backend, scheduler and the arguments of Model.fit",
                f"{sorted(fit_args)} ({error})",
            )
        ) from None


def _check_members(models: Sequence[Model]) -> None:
    kinds = {type(model.loss) for model in models}
    if len(kinds) > 1:
        names = sorted(kind.__name__ for kind in kinds)
        raise ConfigError(
            invalid(
                "Ensemble members",
                "models trained with one loss, whose predictions average",
                f"losses {names}",
                "make build(seed) compile every model with the same loss",
            )
        )


def _load_all(members: Sequence[bytes]) -> list[Model]:
    models = []
    for index, data in enumerate(members):
        with ArchiveReader(data, f"<ensemble member {index}>") as archive:
            models.append(model_file.load_from(archive, Model))
    return models


def _run_joblib(tasks: list[MemberTask], X: Array, y: Array, n_jobs: int) -> list[bytes]:
    try:
        from joblib import Parallel, delayed
    except ImportError:
        raise ImportError("n_jobs > 1 needs joblib: pip install 'lamina[parallel]'") from None
    parallel = Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky", batch_size=1)
    return list(parallel(delayed(member_file)(task, X, y) for task in tasks))


def _run_dask(tasks: list[MemberTask], X: Array, y: Array, scheduler: Any, n_jobs: int) -> Any:
    run = uuid.uuid4().hex[:8]  # task keys name the member on the dashboard, and are unique
    with dask_client(scheduler, n_jobs) as client:
        X_data, y_data = client.scatter([X, y], broadcast=True, hash=False)  # per worker, own keys
        futures = [
            client.submit(
                member_file,
                task,
                X_data,
                y_data,
                retries=DASK_RETRIES,
                pure=False,
                key=f"lamina-member-{run}-{task.index}",
            )
            for task in tasks
        ]
        try:
            return client.gather(futures)
        finally:  # after an error, nothing keeps running on a cluster we do not own
            client.cancel([future for future in futures if not future.done()])


def _parse_manifest(raw: bytes, where: str) -> tuple[int, list[int], list[dict[str, str]]]:
    """(seed, member seeds, member entries) of an ensemble.json, every field checked."""

    def refuse(reason: str) -> ModelFileError:
        return ModelFileError(
            f"{where}: {reason} Fix: use an intact folder written by Ensemble.save."
        )

    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise refuse(f"it is not valid JSON ({error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise refuse("it is not a lamina ensemble manifest (format field).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise refuse(f"it has format version {manifest.get('format_version')!r}, not 1.")
    seed, seeds, entries = manifest.get("seed"), manifest.get("seeds"), manifest.get("members")
    if not (type(seed) is int and seed >= 0):
        raise refuse(f"seed {seed!r} is not an int ≥ 0.")
    if not (isinstance(entries, list) and 1 <= len(entries) <= MAX_MEMBERS):
        raise refuse(f"'members' must list 1 to {MAX_MEMBERS} member files.")
    if not (isinstance(seeds, list) and all(type(s) is int and s >= 0 for s in seeds)):
        raise refuse("'seeds' must be a list of ints ≥ 0.")
    files = []
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and set(entry) == {"file", "sha256"}
            and isinstance(entry["file"], str)
            and MEMBER_FILE.fullmatch(entry["file"])  # a name in the folder, no path
            and isinstance(entry["sha256"], str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        ):
            raise refuse("a member entry is not {'file': 'member_<i>.lamina', 'sha256': hex}.")
        files.append(entry["file"])
    if len(set(files)) != len(files) or len(seeds) not in (0, len(entries)):
        raise refuse("it lists a member file twice, or not one seed per member.")
    return seed, seeds, entries
