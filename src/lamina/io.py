"""Saving and loading (notes §1.10 "State"), as ``lamina.io``: weight files
(:mod:`lamina.saving.weights`), whole-model files (:mod:`lamina.saving.model_file`) and the
atomic write they share (:mod:`lamina._files`). The format itself lives in ``lamina.saving``."""

from lamina._files import atomic_write
from lamina.model import load_model
from lamina.saving.model_file import save_model
from lamina.saving.weights import load_weights, model_tensors, save_weights

__all__ = [
    "atomic_write",
    "load_model",
    "load_weights",
    "model_tensors",
    "save_model",
    "save_weights",
]
