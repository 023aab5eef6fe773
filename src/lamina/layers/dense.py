"""Dense (fully connected) layer (notes §1.1, §1.2, §3.2.1, §3.3.2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina import initializers
from lamina._params import checked
from lamina.errors import ShapeError
from lamina.layers._bias import bias_gradient
from lamina.layers.activated import ActivatedLayer, with_activation_built
from lamina.layers.base import (
    LAYERS,
    Array,
    Layer,
    Shape,
    format_shape,
    new_tensor,
    regularizers_for,
)
from lamina.layers.sizes import input_size, one_of, size_rule
from lamina.regularizers import STRENGTH

NEURONS_FIX = "pass the layer sizes, e.g. Dense(784, 128), or Dense(units=128)"


@LAYERS.register("dense")
class Dense(ActivatedLayer):
    r"""Fully connected layer: ``z = X·W + b`` (notes §1.2, §3.2.1), then ``activation``.

    Backward (notes §3.3.2), with δ = ∂L/∂z:
        ∂L/∂W = Xᵀ·δ      ∂L/∂b = Σₙ δₙ      ∂L/∂X = δ·Wᵀ
    plus λ₁ sign(θ) + 2λ₂θ for each regularized parameter (notes §1.6).

    Args:
        n_inputs: size n of each input row (W is n × m, notes §3.1). ``None``: filled in
            from the shapes by a ``Model(..., input_shape=...)`` (``lamina.layers.sizes``).
        n_neurons: number of neurons m; ``units`` is Keras' name for it (pass one of them:
            ``Dense(784, 128)``, or ``Dense(units=128)`` with the input size inferred).
        activation: an activation name (``"relu"``, ``"softmax"``, ...), layer, or ``None``.
        weight_init: ``"glorot_uniform"`` (the default, as in Keras; notes §1.8 "Glorot"),
            ``"he_normal"``, or ``"small"`` (0.01·N(0,1), the notes' §1.1 choice, which learns
            markedly slower).
        bias_init: ``"zeros"`` (the default: biases start at zero, notes §1.1) or
            ``"torch_uniform"`` (U(±1/√n_inputs), as PyTorch draws them).
        weight_l1, weight_l2, bias_l1, bias_l2: L1/L2 strengths λ (notes §1.6).
    Shape:
        inputs (batch, n_inputs) -> outputs (batch, n_neurons); inputs with more axes, such
        as a sequence (batch, time, n_inputs), are transformed along the last axis, the
        same W at every step: (batch, …, n_inputs) -> (batch, …, n_neurons). A padding mask
        passes through.
    """

    supports_masking = True
    inferred_size = "n_inputs"

    @checked(
        n_inputs=input_size("Dense(784, 128)"),
        n_neurons=size_rule(NEURONS_FIX),
        units=size_rule(NEURONS_FIX),
        weight_init=initializers.WEIGHT_INIT,
        bias_init=initializers.BIAS_INIT,
        weight_l1=STRENGTH,
        weight_l2=STRENGTH,
        bias_l1=STRENGTH,
        bias_l2=STRENGTH,
    )
    def __init__(
        self,
        n_inputs: int | None = None,
        n_neurons: int | None = None,
        activation: str | Layer | None = None,
        *,
        units: int | None = None,
        weight_init: str = "glorot_uniform",
        bias_init: str = "zeros",
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        bias_l1: float = 0.0,
        bias_l2: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(activation, name=name)
        # None until Layer.build fills it in; everything past it runs on a built layer
        self.n_inputs: int = n_inputs  # type: ignore[assignment]
        fix = NEURONS_FIX
        if n_inputs is not None:  # Keras' Dense(128): here the first size is n_inputs
            fix = (
                f"Dense({n_inputs}) reads {n_inputs} as n_inputs; pass Dense({n_inputs}, m), "
                f"or Dense(units={n_inputs}) as in Keras"
            )
        self.n_neurons = one_of("Dense", ("n_neurons", "units"), (n_neurons, units), fix)
        self.weight_init = weight_init
        self._initializer = initializers.get(weight_init)
        self.bias_init = bias_init
        self._bias_initializer = initializers.get_bias(bias_init)
        self.regularizers = regularizers_for(weight_l1, weight_l2, bias_l1, bias_l2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        n, m = self.n_inputs, self.n_neurons
        if n is None:  # no size yet: Layer.build draws them
            return
        dtype = self.dtype or np.dtype(np.float32)
        shape = (n, m)
        self.params["weights"] = new_tensor(
            shape, dtype, lambda: self._initializer(shape, n, m, self.rng, dtype)
        )
        self.params["biases"] = new_tensor(
            (m,), dtype, lambda: self._bias_initializer((m,), n, m, self.rng, dtype)
        )

    @property
    def input_shape(self) -> Shape:
        return (self.n_inputs,)

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.n_neurons)

    def check_input_shape(self, input_shape: Shape, source: str) -> None:
        """Any per-sample shape ending in ``n_inputs`` fits (a row, or a sequence of rows)."""
        if len(input_shape) > 1 and input_shape[-1] in (None, self.n_inputs):
            return
        if len(input_shape) > 1:
            size = int(np.prod([d for d in input_shape if d is not None]))
            raise ShapeError(
                f"{self.describe()} expects rows of {self.n_inputs} values on the last axis, "
                f"but {source} gives {format_shape(input_shape)}. Fix: put a Flatten() "
                f"before it (then n_inputs={size}), or build it with "
                f"n_inputs={input_shape[-1]} to transform every step."
            )
        super().check_input_shape(input_shape, source)

    def linear_forward(self, inputs: Array, *, training: bool = False) -> Array:
        self.require_built()
        self._inputs = inputs  # X, needed for ∂L/∂W (a reference: free to keep)
        z = np.matmul(inputs, self.params["weights"])
        z += self.params["biases"]
        return z

    def backward_linear(self, dz: Array) -> Array | None:
        weights = self.params["weights"]
        grads = self.gradient_buffers()
        rows, dz_rows = self._inputs, dz  # N-D (a sequence): every step is a row of the sums
        if dz.ndim > 2:
            rows, dz_rows = rows.reshape(-1, rows.shape[-1]), dz.reshape(-1, self.n_neurons)
        if len(rows) == 1:  # Xᵀδ of one row is the outer product, exact either way; NumPy's
            # matmul of K = 1 is slow (784 × 1 · 1 × 128: 135 µs, K = 2 15 µs, outer 49 µs)
            np.multiply(rows.T, dz_rows, out=grads["weights"])
        else:
            np.matmul(rows.T, dz_rows, out=grads["weights"])
        bias_gradient(dz_rows, out=grads["biases"])  # Σ rows of δ, as 1ᵀδ (_bias.py)
        self.add_regularization_gradients()
        if not self.input_grad:
            return None
        return dz @ weights.T

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_inputs": self.n_inputs,
            "n_neurons": self.n_neurons,
            "activation": self.activation_config(),
            "weight_init": self.weight_init,
            "bias_init": self.bias_init,
            **self.regularization_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        return cls(**with_activation_built(config))
