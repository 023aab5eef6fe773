"""Flatten: feature maps to rows for the dense layers (notes §1.9 "Flattening")."""

from __future__ import annotations

import math

from lamina.layers.base import LAYERS, Array, Layer, Shape


@LAYERS.register("flatten")
class Flatten(Layer):
    """Reshape each sample to one row: (batch, d₁, d₂, …) → (batch, d₁·d₂·…).

    Backward reshapes ∂L/∂outputs back to the input's shape; nothing is copied either way.
    """

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._input_shape = inputs.shape
        return inputs.reshape(len(inputs), -1)

    def backward(self, dvalues: Array) -> Array:
        return dvalues.reshape(self._input_shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        if any(size is None for size in input_shape):
            return (None,)
        return (math.prod(input_shape),)  # type: ignore[arg-type]
