"""BatchNorm folded into the linear layer beside it, for inference (notes §1.11).

In inference a BatchNorm is an affine map of each feature c (notes §1.11, with the running
statistics μ, σ² of training):

    BN(x)_c = s_c · x_c + t_c,      s = γ / √(σ² + ε),      t = β − μ · s

and a linear layer next to it absorbs it. ``predict`` and ``evaluate`` run the folded layers
(``ExecutionPlan.batches``); ``Model.forward``, training and the saved file keep the
notes' layers as they are. Two patterns fold, for Dense, Conv1D and Conv2D (exactly those
types, whose weights W have the input features on axis −2 and the outputs on axis −1):

- **after** a linear layer without activation, ``Conv2D → BatchNorm → ReLU`` (Keras'
  order): BN(x·W + b) = x·(W s) + (b s + t), the scale on W's output axis. The folded
  convolution then meets a following pooling directly and runs fused with it
  (``lamina.engine.fusion``);
- **before** a linear layer, ``pool → BatchNorm → Conv2D`` or ``BatchNorm → Flatten →
  Dense`` (the order of ``examples/fashion_mnist_cnn.py --batchnorm``): (x s + t)·W + b =
  x·(s W) + (t·W + b), the scale on W's input axis and t summed through W. A convolution
  must be unpadded (``"valid"``): a padded border is 0 after the BatchNorm, not t, so
  ``"same"`` and ``"causal"`` do not fold. Between the two, a Flatten (s and t repeated
  for each position: NHWC flattens channels fastest) and a Dropout that draws nothing in
  inference pass through.

The folded layers compute the same outputs up to rounding (float64: ≤ 1e-10 of the
layer-by-layer path, ``tests/engine/test_folding.py``). The fold is computed in float64
from the current weights; ``ExecutionPlan.inference_plan`` reuses it while every array it
was made from (:func:`fold_sources`) keeps its values and dtype, and folds anew when
training, ``set_weights`` or a hand edit changes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

from lamina.layers.activated import ActivatedLayer
from lamina.layers.base import Array, Layer, placeholder_tensors
from lamina.layers.conv import Conv2D
from lamina.layers.conv1d import Conv1D
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.normalization import BatchNorm
from lamina.layers.reshape import Flatten

LINEAR_TYPES = (Dense, Conv1D, Conv2D)


@dataclass(frozen=True)
class Fold:
    """One BatchNorm folded: ``layers[norm]`` into ``layers[linear]``, which comes just
    before it (``after`` True) or after it, past Flatten and Dropout layers."""

    norm: int
    linear: int
    after: bool


def folds(layers: Sequence[Layer]) -> list[Fold]:
    """The folds :func:`fold_batch_norms` makes: a BatchNorm folds into the layer before it
    when it can, else into the one after it; one that can do neither stays."""
    found: list[Fold] = []
    for index, layer in enumerate(layers):
        if type(layer) is not BatchNorm or not layer.built:
            continue
        taken = found[-1].linear if found else -1  # a linear layer takes one BatchNorm
        if (
            index > 0
            and index - 1 != taken
            and _takes_normalization_after(layers[index - 1], layer)
        ):
            found.append(Fold(index, index - 1, after=True))
        elif (target := _next_linear(layers, index, layer)) is not None:
            found.append(Fold(index, target, after=False))
    return found


def fold_batch_norms(layers: Sequence[Layer], planned: Sequence[Fold] | None = None) -> list[Layer]:
    """``layers`` with the BatchNorms of ``planned`` (default: :func:`folds`) merged into
    their neighbours: each a new layer holding the folded weights, the originals untouched;
    the other layers are the same objects."""
    planned = folds(layers) if planned is None else planned
    merged: dict[int, Layer] = {}
    for fold in planned:
        linear, norm = layers[fold.linear], layers[fold.norm]
        assert _linear(linear) and isinstance(norm, BatchNorm)
        merged[fold.linear] = (_scaled_outputs if fold.after else _scaled_inputs)(linear, norm)
    dropped = {fold.norm for fold in planned}
    return [merged.get(index, layer) for index, layer in enumerate(layers) if index not in dropped]


def fold_sources(layers: Sequence[Layer], planned: Sequence[Fold]) -> list[Array]:
    """Every array a fold of ``planned`` reads, in order: equal sources (values and dtypes)
    give an equal fold, so ``ExecutionPlan.inference_plan`` can reuse the last one."""
    arrays: list[Array] = []
    for fold in planned:
        for index in (fold.norm, fold.linear):
            layer = layers[index]
            arrays.extend([*layer.params.values(), *layer.state.values()])
        arrays.append(np.array(layers[fold.norm].epsilon))  # type: ignore[attr-defined]
    return arrays


def same_sources(kept: Sequence[Array], current: Sequence[Array]) -> bool:
    """Whether two :func:`fold_sources` lists hold equal arrays of equal dtypes."""
    return len(kept) == len(current) and all(
        a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(kept, current, strict=True)
    )


def _linear(layer: object) -> TypeGuard[ActivatedLayer]:
    return type(layer) in LINEAR_TYPES and layer.built  # type: ignore[attr-defined]


def _takes_normalization_after(layer: Layer | None, norm: BatchNorm) -> TypeGuard[ActivatedLayer]:
    """Whether ``layer`` is a linear layer without activation whose outputs ``norm``
    normalizes."""
    return (
        _linear(layer)
        and layer.activation is None
        and layer.params["biases"].shape == (norm.n_features,)
    )


def _next_linear(layers: Sequence[Layer], index: int, norm: BatchNorm) -> int | None:
    """The index of the linear layer after ``layers[index]`` (a BatchNorm) that can take
    it in its inputs, past Flatten and inference-idle Dropout layers; None if none can."""
    flattened = False
    for position in range(index + 1, len(layers)):
        layer = layers[position]
        if type(layer) is Flatten:
            flattened = True
        elif type(layer) is Dropout and not layer.random_in_inference:
            continue
        elif not _linear(layer):
            return None
        elif getattr(layer, "padding", "valid") != "valid" or (
            flattened and type(layer) is not Dense
        ):
            return None
        else:
            inputs = layer.params["weights"].shape[-2]
            fits = inputs % norm.n_features == 0 if flattened else inputs == norm.n_features
            return position if fits else None
    return None


def affine(norm: BatchNorm) -> tuple[Array, Array]:
    """(s, t) in float64: the inference BatchNorm as x ↦ s·x + t, feature by feature."""
    gamma, beta = (norm.params[key].astype(np.float64) for key in ("gamma", "beta"))
    mean, variance = (norm.state[key].astype(np.float64) for key in ("running_mean", "running_var"))
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return scale, beta - mean * scale


def _scaled_outputs(layer: ActivatedLayer, norm: BatchNorm) -> Layer:
    """BatchNorm(layer(x)) as one layer: W s on the output axis, b s + t."""
    scale, shift = affine(norm)
    weights, biases = (layer.params[key].astype(np.float64) for key in ("weights", "biases"))
    return _with_parameters(layer, weights * scale, biases * scale + shift)


def _scaled_inputs(layer: ActivatedLayer, norm: BatchNorm) -> Layer:
    """layer(BatchNorm(x)) as one layer: s W on the input axis (s repeated for each
    position of a flattened input), t·W summed into b."""
    scale, shift = affine(norm)
    weights, biases = (layer.params[key].astype(np.float64) for key in ("weights", "biases"))
    repeats = weights.shape[-2] // norm.n_features
    scale, shift = np.tile(scale, repeats), np.tile(shift, repeats)
    through = weights * shift[:, None]  # t·W, summed over every axis but the outputs'
    summed = through.reshape(-1, weights.shape[-1]).sum(axis=0)
    return _with_parameters(layer, weights * scale[:, None], biases + summed)


def _with_parameters(layer: ActivatedLayer, weights: Array, biases: Array) -> Layer:
    """A layer of ``layer``'s type and configuration holding the given weights and biases
    (cast to its dtype) and sharing its activation."""
    dtype = layer.params["weights"].dtype
    with placeholder_tensors():  # the constructor draws nothing
        copy = type(layer).from_config(layer.get_config())
    copy.params = {"weights": weights.astype(dtype), "biases": biases.astype(dtype)}
    copy.activation = layer.activation
    copy.input_grad = layer.input_grad
    return copy
