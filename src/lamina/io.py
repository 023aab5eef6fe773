"""Saving and loading parameters (notes §1.10 "State"): safetensors files, written atomically.

A weights file maps ``"<layer name>/<parameter>"`` (e.g. ``"dense_1/weights"``) to a tensor.
Nothing is ever unpickled: safetensors holds only a JSON header and raw little-endian data.
Writes go to a temporary file in the same folder, are fsync'd, then ``os.replace``d over
the target, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lamina.errors import ModelFileError

if TYPE_CHECKING:
    from lamina.model import Model

PathLike = str | os.PathLike[str]


def atomic_write(path: PathLike, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``:
    readers see the old file or the new one, never half of one. ``durable`` also fsyncs the
    file and the folder, so the new file survives a power cut (a disk flush per call)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(handle, _file_mode(target))
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if not durable:
        return
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _file_mode(target: Path) -> int:
    """The mode the file would get from a plain ``open``: the old file's, else 0666 & ~umask."""
    try:
        return os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def model_tensors(model: Model) -> dict[str, np.ndarray]:
    """Every parameter and state tensor of a model, by ``"layer/name"``."""
    tensors: dict[str, np.ndarray] = {}
    for layer in model.layers:
        for store in (layer.params, layer.state):
            for key, array in store.items():
                tensors[f"{layer.name}/{key}"] = np.ascontiguousarray(array)
    return tensors


def save_weights(model: Model, path: PathLike) -> None:
    """Save every layer's parameters (and state) to a safetensors file, atomically."""
    from safetensors.numpy import save

    atomic_write(path, save(model_tensors(model), metadata={"format": "lamina-weights"}))


def load_weights(model: Model, path: PathLike, *, strict: bool = True) -> list[str]:
    """Copy the tensors of a weights file into ``model`` by layer and parameter name.

    Args:
        strict: ``True`` requires exactly the model's tensors with the model's shapes and
            raises :class:`ModelFileError` listing every missing, unexpected and mis-shaped
            tensor; ``False`` loads those whose name and shape match (transfer learning)
            and leaves the rest as they are.
    Returns:
        The names of the tensors loaded.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        data = Path(path).read_bytes()
        tensors = load(data)
    except FileNotFoundError:
        raise ModelFileError(f"No weights file at {str(path)!r}. Fix: check the path.") from None
    except (SafetensorError, ValueError, OSError) as error:
        raise ModelFileError(
            f"{str(path)!r} is not a readable safetensors weights file ({error}). "
            "Fix: pass a file written by Model.save_weights."
        ) from None
    expected = model_tensors(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshaped = sorted(
        f"{name}: file {tensors[name].shape}, model {expected[name].shape}"
        for name in set(expected) & set(tensors)
        if tensors[name].shape != expected[name].shape
    )
    if strict and (missing or unexpected or misshaped):
        problems = [
            f"missing: {missing}" if missing else "",
            f"unexpected: {unexpected}" if unexpected else "",
            f"mis-shaped: {misshaped}" if misshaped else "",
        ]
        raise ModelFileError(
            f"Weights in {str(path)!r} do not fit the model — "
            + "; ".join(p for p in problems if p)
            + ". Fix: build the same architecture, or pass strict=False to load the tensors "
            "that match (transfer learning)."
        )
    loaded = []
    for name, target in _model_arrays(model):
        source = tensors.get(name)
        if source is None or source.shape != target.shape:
            continue
        if not np.isfinite(source).all():
            raise ModelFileError(f"Tensor {name!r} in {str(path)!r} holds NaN or inf values.")
        target[...] = source  # in place: the model's arrays (and its flat buffer) stay
        loaded.append(name)
    return loaded


def _model_arrays(model: Model) -> Iterator[tuple[str, np.ndarray]]:
    for layer in model.layers:
        for store in (layer.params, layer.state):
            for key, array in store.items():
                yield f"{layer.name}/{key}", array


# --------------------------------------------------------------------------- model files
# One .lamina file is a zip (DESIGN §6): config.json (deflated) and safetensors members
# (stored, not compressed). Loading trusts nothing: member names come from a fixed list,
# sizes are bounded before anything is read, every member's CRC-32 is checked (safetensors
# has no checksum of its own), the JSON is parsed with limits and validated field by field,
# classes come only from lamina's registries, and tensors must match the model exactly.

FORMAT = "lamina-model"
FORMAT_VERSION = 1
CONFIG_LIMIT = 16 * 1024 * 1024  # bytes of config.json
MEMBERS = (
    "config.json",
    "weights.safetensors",
    "optimizer.safetensors",
    "preprocessing.safetensors",
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model gives the same bytes


def save_model(model: Model, path: PathLike, *, include_optimizer: bool = True) -> None:
    """Write the whole model — architecture, weights, loss, optimizer hyper-parameters and
    state, preprocessing, training progress — as one .lamina file, atomically."""
    import io as bytes_io
    import json
    import zipfile

    from safetensors.numpy import save

    from lamina.model_state import model_config, optimizer_tensors, preprocessing_tensors

    members: dict[str, bytes] = {
        "config.json": json.dumps(
            model_config(model, include_optimizer), indent=1, allow_nan=False
        ).encode(),
        "weights.safetensors": save(model_tensors(model)),
    }
    optimizer_state = optimizer_tensors(model) if include_optimizer else {}
    if optimizer_state:
        members["optimizer.safetensors"] = save(optimizer_state)
    preprocessing_state = preprocessing_tensors(model)
    if preprocessing_state:
        members["preprocessing.safetensors"] = save(preprocessing_state)
    buffer = bytes_io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = (
                zipfile.ZIP_DEFLATED if name.endswith(".json") else (zipfile.ZIP_STORED)
            )
            archive.writestr(info, data)
    atomic_write(path, buffer.getvalue())


def load_model(path: PathLike) -> Model:
    """Read a .lamina file written by :func:`save_model`; any problem with the file raises
    :class:`ModelFileError` naming it. Never unpickles or imports anything from the file."""
    from lamina.model_state import build_model

    members = read_members(path)
    return build_model(members, str(path))


def read_members(path: PathLike) -> dict[str, bytes]:
    """The members of a .lamina zip, after checking names, sizes and CRC-32."""
    import io as bytes_io
    import zipfile

    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"No model file at {where!r}. Fix: check the path.") from None
    except OSError as error:
        raise ModelFileError(f"Cannot read {where!r}: {error}.") from None
    try:
        archive = zipfile.ZipFile(bytes_io.BytesIO(data))
        infos = archive.infolist()
    except Exception as error:  # hostile bytes: zipfile may raise nearly anything
        raise ModelFileError(
            f"{where!r} is not a lamina model file (not a readable zip: {error}). "
            "Fix: pass a file written by Model.save."
        ) from None
    names = [info.filename for info in infos]
    unknown = sorted(set(names) - set(MEMBERS))
    if unknown or len(names) != len(set(names)):
        problem = f"unexpected entries {unknown[:5]}" if unknown else "duplicate entries"
        raise ModelFileError(f"{where!r} has {problem}; a lamina model holds only {MEMBERS}.")
    for required in ("config.json", "weights.safetensors"):
        if required not in names:
            raise ModelFileError(f"{where!r} has no {required}: it is not a complete model.")
    members: dict[str, bytes] = {}
    for info in infos:
        limit = CONFIG_LIMIT if info.filename == "config.json" else len(data)
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.file_size > limit or (stored and info.file_size != info.compress_size):
            raise ModelFileError(
                f"{where!r}: entry {info.filename!r} declares {info.file_size} bytes, more "
                "than the file can hold (a zip bomb or a corrupt file)."
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{where!r}: entry {info.filename!r} uses an unknown compression.")
        try:
            content = archive.read(info)  # checks the CRC-32
        except Exception as error:  # BadZipFile, zlib.error, encryption flags, EOF...
            raise ModelFileError(
                f"{where!r}: entry {info.filename!r} is corrupt ({error}). Fix: use an intact "
                "copy of the file."
            ) from None
        if len(content) != info.file_size:
            raise ModelFileError(f"{where!r}: entry {info.filename!r} is truncated.")
        members[info.filename] = content
    return members
