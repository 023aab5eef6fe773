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


def atomic_write(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace``."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(handle, _file_mode(target))
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
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
