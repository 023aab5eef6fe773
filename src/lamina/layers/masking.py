"""Masking: marks the padded time steps of (batch, time, features) sequences, so that the
layers after it that use masks skip them (notes §2.2 "Recurrent Neural Network": sequences
of different lengths padded to one)."""

from __future__ import annotations

from typing import Any

from lamina._params import Interval, checked, rule
from lamina.errors import ShapeError
from lamina.layers.base import LAYERS, Array, Layer, Shape, format_shape
from lamina.layers.conv import backward_needs_training


@LAYERS.register("masking")
class Masking(Layer):
    r"""Padding mask from a sentinel value: step t of sample n is real when any of its
    features differs from ``mask_value``,

        mₙₜ = ∃ f: X(n, t, f) ≠ mask_value        outputs(n, t) = mₙₜ · X(n, t)

    The outputs are the inputs with the padded steps zeroed (as Keras does), and
    :meth:`compute_mask` gives m to the next layer (a mask coming in is replaced, as in
    Keras). Backward: ∂L/∂X(n, t) = mₙₜ · δ(n, t), 0 at the padded steps.

    Args:
        mask_value: the value every feature of a padded step holds.
    Shape:
        inputs (batch, T, features) -> outputs (batch, T, features), mask (batch, T)
    """

    fresh_output = True

    @checked(mask_value=rule(Interval(float), fix="use the value padding steps hold, e.g. 0.0"))
    def __init__(self, mask_value: float = 0.0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.mask_value = mask_value
        self._keep: Array | None = None  # m as the inputs' dtype, (N, T, 1), for backward

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 2:
            raise ShapeError(self._shape_message(format_shape(input_shape)))
        return input_shape

    def _shape_message(self, received: str) -> str:
        return (
            f"{self.describe()} expects sequences (batch, time, features), but received "
            f"{received}. Fix: add a feature axis with X[..., None] for one value per step."
        )

    def real_steps(self, inputs: Array) -> Array:
        """m, (N, T) bool: True where a step has a feature ≠ ``mask_value``."""
        if inputs.ndim < 3:
            raise ShapeError(self._shape_message(f"an array of shape {inputs.shape}"))
        differs = inputs != inputs.dtype.type(self.mask_value)
        return differs.reshape(*inputs.shape[:2], -1).any(axis=-1)

    @property
    def makes_mask(self) -> bool:
        return True

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        return self.real_steps(inputs)

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        keep = self.real_steps(inputs).astype(inputs.dtype)
        keep = keep.reshape(*keep.shape, *(1,) * (inputs.ndim - 2))
        self._keep = keep if training else None
        return inputs * keep

    def backward(self, dvalues: Array) -> Array:
        if self._keep is None:
            raise backward_needs_training(self.describe())
        return dvalues * self._keep

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}
