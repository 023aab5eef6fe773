"""Global average and max pooling: one value per channel from a whole sequence (N, T, C) or
feature map (N, H, W, C) (notes §1.11 "Pooling Layer" with the window the whole input).

The 1-D poolings take a padding mask (``uses_mask``): with ``mask`` (N, T), True at the
real steps, the average is over real steps only and the max ignores padded steps, as in
Keras. A sequence with no real step at all gives 0 and passes no gradient back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina.errors import InputError, ShapeError
from lamina.layers.base import LAYERS, Array, Layer, Shape, format_shape
from lamina.layers.conv import backward_needs_training


def padding_mask(mask: Any, inputs: Array, who: str) -> Array:
    """``mask`` as an (N, T) bool array for (N, T, …) ``inputs``; a ShapeError naming ``who``
    when its shape differs, an InputError when it is not boolean (or 0/1 integers)."""
    array = np.asarray(mask)
    expected = inputs.shape[:2]
    if array.shape != expected:
        raise ShapeError(
            f"{who} received a padding mask of shape {array.shape} for inputs of shape "
            f"{inputs.shape}; it must be (batch, time) = {expected}, True at the real steps. "
            "Fix: give one mask row per sequence, as long as the sequences (e.g. "
            "np.arange(T) < lengths[:, None])."
        )
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iu" and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise InputError(
        f"{who} received a padding mask of dtype {array.dtype}; it must be boolean, True at "
        "the real steps. Fix: pass mask.astype(bool), or np.arange(T) < lengths[:, None]."
    )


class GlobalPooling(Layer):
    """Shared shape handling: inputs of ``rank`` axes (batch included) → (N, C)."""

    fresh_output = True
    rank = 3
    layout = "sequences (batch, time, channels)"

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != self.rank - 1:
            raise ShapeError(self._shape_message(f"per-sample shape {format_shape(input_shape)}"))
        return (input_shape[-1],)

    def _shape_message(self, received: str) -> str:
        fix = (
            "Fix: pool after a Conv1D, Embedding or recurrent layer with return_sequences=True"
            if self.rank == 3
            else "Fix: pool the NHWC feature maps of a Conv2D, before any Flatten"
        )
        return f"{self.describe()} expects {self.layout}, but received {received}. {fix}."

    def _rows(self, inputs: Array) -> Array:
        """The inputs as (N, L, C): L = T, or H·W for feature maps (a view when it can)."""
        if inputs.ndim != self.rank:
            raise ShapeError(self._shape_message(f"an array of shape {inputs.shape}"))
        return inputs.reshape(len(inputs), -1, inputs.shape[-1])


class _Average(GlobalPooling):
    """P(n, c) = Σₜ wₙₜ X(n, t, c), wₙₜ = mₙₜ / Σₜ mₙₜ (1/L without a mask)."""

    _seen: tuple[tuple[int, ...], Array | None] | None = None  # input shape, weights

    def _forward(self, inputs: Array, mask: Any) -> Array:
        x = self._rows(inputs)
        if mask is None:
            self._seen = inputs.shape, None
            return x.mean(axis=1)
        real = padding_mask(mask, inputs, self.describe()).astype(inputs.dtype)
        real /= np.maximum(real.sum(axis=1, keepdims=True), 1)  # no real step: weights 0
        self._seen = inputs.shape, real
        return np.matmul(real[:, None, :], x)[:, 0]

    def backward(self, dvalues: Array) -> Array:
        if self._seen is None:
            raise backward_needs_training(self.describe())
        shape, weights = self._seen
        n, channels = shape[0], shape[-1]
        if weights is None:
            steps = int(np.prod(shape[1:-1]))
            dx = np.empty((n, steps, channels), dtype=dvalues.dtype)
            dx[...] = (dvalues * (1.0 / steps))[:, None, :]
        else:
            dx = weights[:, :, None] * dvalues[:, None, :]
        return dx.reshape(shape)


class _Maximum(GlobalPooling):
    """P(n, c) = max over real t of X(n, t, c); its gradient goes to the first maximum."""

    _cache: tuple[tuple[int, ...], Array, Array | None] | None = None  # shape, argmax, real

    def _forward(self, inputs: Array, mask: Any, training: bool) -> Array:
        x = self._rows(inputs)
        real: Array | None = None  # whether each sequence has a real step at all
        if mask is not None:
            steps = padding_mask(mask, inputs, self.describe())
            x = np.where(steps[:, :, None], x, -np.inf).astype(inputs.dtype, copy=False)
            real = np.asarray(steps.any(axis=1))
        winner = np.argmax(x, axis=1)[:, None, :]  # (N, 1, C): the first maximum
        out = np.take_along_axis(x, winner, axis=1)[:, 0]
        if real is not None:
            out[~real] = 0
        self._cache = (inputs.shape, winner, real) if training else None
        return out

    def backward(self, dvalues: Array) -> Array:
        if self._cache is None:
            raise backward_needs_training(self.describe())
        shape, winner, real = self._cache
        delta = dvalues if real is None else dvalues * real[:, None]
        dx = np.zeros((shape[0], int(np.prod(shape[1:-1])), shape[-1]), dtype=dvalues.dtype)
        np.put_along_axis(dx, winner, delta[:, None, :], axis=1)
        return dx.reshape(shape)


@LAYERS.register("global_average_pooling1d")
class GlobalAveragePooling1D(_Average):
    r"""Mean over time: ``P(n, c) = Σₜ mₙₜ X(n, t, c) / Σₜ mₙₜ`` (notes §1.11, the window
    the whole sequence), mₙₜ the padding mask (all 1 without one).

    Backward: ∂L/∂X(n, t, c) = δ(n, c) · mₙₜ / Σₜ mₙₜ — padded steps get 0.

    Shape:
        inputs (batch, T, C), mask (batch, T) or None -> outputs (batch, C)
    """

    uses_mask = True

    def forward(self, inputs: Array, *, training: bool = False, mask: Any = None) -> Array:
        return self._forward(inputs, mask)

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        return None  # the time axis is gone


@LAYERS.register("global_max_pooling1d")
class GlobalMaxPooling1D(_Maximum):
    r"""Max over time: ``P(n, c) = max_{t: mₙₜ} X(n, t, c)`` (notes §1.11), padded steps
    left out (as Keras: they are set to −∞ first).

    Backward: δ(n, c) goes to the first step holding the maximum, only.

    Shape:
        inputs (batch, T, C), mask (batch, T) or None -> outputs (batch, C)
    """

    uses_mask = True

    def forward(self, inputs: Array, *, training: bool = False, mask: Any = None) -> Array:
        return self._forward(inputs, mask, training)

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        return None  # the time axis is gone


@LAYERS.register("global_average_pooling2d")
class GlobalAveragePooling2D(_Average):
    r"""Mean over each feature map: ``P(n, c) = (1/(H·W)) Σᵢ Σⱼ X(n, i, j, c)`` (notes §1.11).

    Backward: δ(n, c)/(H·W) to every pixel of channel c.

    Shape:
        inputs (batch, H, W, C) -> outputs (batch, C)
    """

    rank = 4
    layout = "NHWC feature maps (batch, height, width, channels)"

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self._forward(inputs, None)


@LAYERS.register("global_max_pooling2d")
class GlobalMaxPooling2D(_Maximum):
    r"""Max over each feature map: ``P(n, c) = maxᵢⱼ X(n, i, j, c)`` (notes §1.11).

    Backward: δ(n, c) goes to the first pixel (row-major) holding the maximum, only.

    Shape:
        inputs (batch, H, W, C) -> outputs (batch, C)
    """

    rank = 4
    layout = "NHWC feature maps (batch, height, width, channels)"

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self._forward(inputs, None, training)
