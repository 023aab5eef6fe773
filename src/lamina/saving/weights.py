"""Parameters alone (notes §1.10 "State"): safetensors weight files, written atomically.

A weights file maps ``"<layer name>/<parameter>"`` (e.g. ``"dense_1/weights"``) to a tensor.
Nothing is ever unpickled: safetensors holds only a JSON header and raw little-endian data.
Writes go to a temporary file in the same folder, are fsync'd, then ``os.replace``d over
the target, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from lamina._files import atomic_write, read_regular
from lamina.errors import ModelFileError
from lamina.layers.stack import named_tensors
from lamina.saving.archive import MAX_FILE_BYTES
from lamina.saving.tensors import decode, encode

if TYPE_CHECKING:
    from lamina.model import Model

PathLike = str | os.PathLike[str]


WEIGHTS_FILE_LIMIT = MAX_FILE_BYTES


def model_tensors(model: Model) -> dict[str, np.ndarray]:
    """Every parameter and state tensor of a model, by ``"layer/name"``."""
    return dict(named_tensors(model.layers))


def save_weights(model: Model, path: PathLike) -> None:
    """Save every layer's parameters (and state) to a safetensors file, atomically."""
    where = repr(os.fspath(path))
    for name, array in named_tensors(model.layers):
        if not np.isfinite(array).all():
            raise ModelFileError(
                f"Cannot save the weights to {where}: {name} holds NaN or inf values (training "
                "diverged?). Nothing was written. Fix: train again with a lower learning rate."
            )
    data = encode(model_tensors(model), metadata={"format": "lamina-weights"})
    atomic_write(path, data, what="weights file")


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
    where = repr(os.fspath(path))
    data = read_regular(path, what="weights file", limit=WEIGHTS_FILE_LIMIT, error=ModelFileError)
    try:
        tensors = decode(data, where)
    except ModelFileError as error:
        raise ModelFileError(
            f"{where} is not a readable safetensors weights file ({error}). "
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
    for name, target in named_tensors(model.layers):
        source = tensors.get(name)
        if source is None or source.shape != target.shape:
            continue
        if not np.isfinite(source).all():
            raise ModelFileError(f"Tensor {name!r} in {str(path)!r} holds NaN or inf values.")
        target[...] = source  # in place: the model's arrays (and its flat buffer) stay
        loaded.append(name)
    return loaded
