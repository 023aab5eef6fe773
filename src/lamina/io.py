"""Saving and loading (notes §1.10 "State"), as ``lamina.io``: weight files
(:mod:`lamina.saving.weights`), whole-model files (:mod:`lamina.saving.model_file`) and the
atomic write they share (:mod:`lamina._files`). The format itself lives in ``lamina.saving``."""

import os

from lamina._files import atomic_write
from lamina.model import Model
from lamina.saving import model_file
from lamina.saving.model_file import save_model
from lamina.saving.weights import load_weights, model_tensors, save_weights


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a ``.lamina`` file written by :meth:`Model.save`: the model predicts
    bit-identically and ``fit(..., initial_epoch=model.epochs_done)`` continues exactly. Any
    problem with the file raises :class:`~lamina.errors.ModelFileError` naming it; nothing
    is unpickled or imported from it, and it costs at most about twice its size to read."""
    return model_file.load_model(path, Model)


__all__ = [
    "atomic_write",
    "load_model",
    "load_weights",
    "model_tensors",
    "save_model",
    "save_weights",
]
