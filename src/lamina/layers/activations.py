"""Activation functions as parameter-free layers (notes §1.2, §1.7, §1.8, §3.2.2, §3.3.3).

Each caches what its derivative needs (the output, or the input) and nothing else.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from lamina._params import Instance, Interval, Options, checked, rule
from lamina.layers._rows import row_max, row_sum
from lamina.layers.base import LAYERS, Array, Layer


class Activation(Layer):
    """Base class of element-wise (and row-wise, for Softmax) activation layers."""

    supports_masking = True

    def backward(self, dvalues: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def forward_inplace(self, inputs: Array, *, training: bool = False) -> Array:
        """``forward`` allowed to overwrite ``inputs``: a layer calls it on the
        pre-activations it has just computed and owns, saving one array per step."""
        return self.forward(inputs, training=training)

    def backward_inplace(self, dvalues: Array) -> Array:
        """``backward`` allowed to overwrite ``dvalues``, a gradient the caller owns."""
        return self.backward(dvalues)


def is_activation(entry: object) -> bool:
    """Whether a registry entry is an activation layer class."""
    return isinstance(entry, type) and issubclass(entry, Activation)


#: The rule of an ``activation=`` argument (Dense, Conv2D, :func:`get`).
ACTIVATION = rule(
    Options(LAYERS, where=is_activation), Instance(Activation, "an activation layer"), None
)


@LAYERS.register("linear")
class Linear(Activation):
    r"""Identity: ``σ(x) = x``, ``σ'(x) = 1`` (notes §1.8, §3.2.2, §3.3.3)."""

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return inputs

    def backward(self, dvalues: Array) -> Array:
        return dvalues


ZERO_ROW_LIMIT = 1 << 16  # values per sample up to which ``rectify`` uses a row of zeros
ZERO_BLOCK = 1 << 18  # values per batch up to which it compares with a block of zeros


def rectify(inputs: Array, out: Array) -> Array:
    """``out = max(inputs, 0)``. NumPy 2.4's ``np.maximum`` of an array and a scalar is
    slower than that of two arrays (one AMD EPYC: not vectorised; an Intel Xeon: ~1.5×), so
    the zeros are an array: for a batch of at most ``ZERO_BLOCK`` values a block of zeros
    never written (its pages all map the kernel's one zero page: always in cache; Dense
    (1024, 128), Intel: 21 µs against 32 µs with the scalar and 42 µs with a row), else a
    cached row of zeros for each sample (W2's first feature maps, 128 × 13 × 13 × 32, AMD:
    40 µs instead of 215 µs; Intel: the same as the scalar)."""
    row = inputs.size // max(len(inputs), 1) if inputs.ndim else 0
    if not (0 < row <= ZERO_ROW_LIMIT and inputs.flags.c_contiguous and out.flags.c_contiguous):
        return np.maximum(inputs, 0, out=out)
    if inputs.size <= ZERO_BLOCK:
        zeros = _zeros(ZERO_BLOCK, inputs.dtype)[: inputs.size].reshape(inputs.shape)
        return np.maximum(inputs, zeros, out=out)
    np.maximum(inputs.reshape(-1, row), _zeros(row, inputs.dtype), out=out.reshape(-1, row))
    return out


@functools.lru_cache(maxsize=32)
def _zeros(length: int, dtype: np.dtype) -> Array:
    zeros = np.zeros(length, dtype=dtype)
    zeros.flags.writeable = False
    return zeros


@LAYERS.register("relu")
class ReLU(Activation):
    r"""Rectified linear unit: ``σ(x) = max(0, x)`` (notes §1.2, §3.2.2).

    Backward (notes §1.3, §3.3.3): ``∂L/∂x = δ · 1(x > 0)``; the kink at 0 gets derivative 0.
    """

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._output = output = rectify(inputs, np.empty_like(inputs))
        return output  # not self._output: another thread's inference may have replaced it

    def forward_inplace(self, inputs: Array, *, training: bool = False) -> Array:
        self._output = output = rectify(inputs, inputs)
        return output

    def backward_inplace(self, dvalues: Array) -> Array:
        return np.multiply(dvalues, self._output > 0, out=dvalues)

    def backward(self, dvalues: Array) -> Array:
        return dvalues * (self._output > 0)


@LAYERS.register("leaky_relu")
class LeakyReLU(Activation):
    r"""Leaky ReLU: ``σ(x) = x`` for x > 0, ``α·x`` otherwise; ``σ'(x) = 1`` or ``α``.

    Args:
        alpha: slope α for x ≤ 0, in [0, 1) (PyTorch's default 0.01).
    """

    @checked(alpha=Interval(float, 0, 1, closed="left"))
    def __init__(self, alpha: float = 0.01, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.alpha = alpha

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._positive = positive = inputs > 0
        return np.where(positive, inputs, self.alpha * inputs)

    def backward(self, dvalues: Array) -> Array:
        return np.where(self._positive, dvalues, self.alpha * dvalues)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@LAYERS.register("sigmoid")
class Sigmoid(Activation):
    r"""Logistic function: ``σ(x) = 1 / (1 + e^{-x})`` (notes §1.7, §3.2.2).

    Computed as ``½(1 + tanh(x/2))``, the same function without overflow in ``e^{-x}``.
    Backward (notes §1.7, §3.3.3): ``∂L/∂x = δ · σ(x)(1 − σ(x))``.
    """

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        output = np.tanh(inputs * 0.5)
        output += 1
        output *= 0.5
        self._output = output
        return output

    def backward(self, dvalues: Array) -> Array:
        return dvalues * self._output * (1 - self._output)


@LAYERS.register("tanh")
class Tanh(Activation):
    r"""Hyperbolic tangent: ``σ(x) = tanh(x)``; backward ``∂L/∂x = δ · (1 − tanh²(x))``."""

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._output = output = np.tanh(inputs)
        return output

    def backward(self, dvalues: Array) -> Array:
        return dvalues * (1 - self._output * self._output)


GELU_APPROXIMATIONS = ("none", "tanh")
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


@LAYERS.register("gelu")
class GELU(Activation):
    r"""Gaussian error linear unit (Hendrycks & Gimpel 2016): ``σ(x) = x·Φ(x)``, with Φ the
    standard normal CDF, as ``torch.nn.GELU(approximate=...)`` computes it.

    ``approximate="none"`` (the default, PyTorch's too), exact:

        Φ(x)  = ½(1 + erf(x/√2))
        σ'(x) = Φ(x) + x·φ(x),    with φ(x) = e^{−x²/2}/√(2π)

    ``approximate="tanh"``, with u = √(2/π)(x + 0.044715x³):

        σ(x)  ≈ ½x(1 + tanh u)
        σ'(x) = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)

    Backward: ``∂L/∂x = δ · σ'(x)``. The exact form takes erf from ``scipy.special`` (NumPy
    has none); the tanh form differs from it by at most 4.7e−4 (near |x| ≈ 2.7).

    Args:
        approximate: ``"none"`` (erf) or ``"tanh"``.
    """

    @checked(approximate=Options(*GELU_APPROXIMATIONS))
    def __init__(self, approximate: str = "none", *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.approximate = approximate

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._inputs = inputs  # x, for σ'(x) (a reference: forward allocates its output)
        if self.approximate == "tanh":
            u = inputs * inputs
            u *= _GELU_CUBIC
            u += 1
            u *= inputs
            u *= _SQRT_2_OVER_PI
            self._gate = gate = np.tanh(u, out=u)  # tanh u
            output = gate + 1
            output *= inputs
            output *= 0.5
            return output
        # NumPy has no erf; SciPy's is vectorised and exact. Imported here, not with lamina:
        # SciPy costs every process ~0.3 s, ~27 MB and a second OpenBLAS thread pool.
        from scipy.special import erf

        cdf = erf(inputs * _SQRT_HALF)
        cdf += 1
        cdf *= 0.5
        self._gate = cdf  # Φ(x)
        return inputs * cdf

    def backward(self, dvalues: Array) -> Array:
        x, gate = self._inputs, self._gate
        if self.approximate == "tanh":
            slope = x * x
            slope *= 3 * _GELU_CUBIC
            slope += 1
            slope *= _SQRT_2_OVER_PI * 0.5
            slope *= x
            slope *= 1 - gate * gate  # ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
            slope += 0.5 * (1 + gate)
        else:
            slope = np.exp(-0.5 * x * x)
            slope *= _INV_SQRT_2PI * x  # x·φ(x)
            slope += gate
        return dvalues * slope

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "approximate": self.approximate}


@LAYERS.register("softmax")
class Softmax(Activation):
    r"""Softmax over the last axis: ``Sᵢⱼ = e^{zᵢⱼ − maxₖ zᵢₖ} / Σₖ e^{zᵢₖ − maxₖ zᵢₖ}``.

    Subtracting the row maximum (notes §1.2) leaves the result unchanged and keeps every
    exponent ≤ 0, so nothing overflows.

    Backward (notes §1.3, §3.3.3): the Jacobian ``∂Sᵢⱼ/∂zᵢₘ = Sᵢⱼ(δⱼₘ − Sᵢₘ)`` times δ,
    contracted without building the (batch, K, K) Jacobians:
    ``∂L/∂zᵢₘ = Sᵢₘ (δᵢₘ − Σⱼ δᵢⱼ Sᵢⱼ)``. With categorical cross-entropy after it, the model
    uses the fused ``(ŷ − y)/N`` instead (notes §1.3 "Softmax Cross-Entropy").
    """

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self.forward_inplace(inputs.copy(), training=training)

    def forward_inplace(self, inputs: Array, *, training: bool = False) -> Array:
        inputs -= row_max(inputs)  # max and Σ fast for short rows (lamina.layers._rows)
        exponentials = np.exp(inputs, out=inputs)
        exponentials /= row_sum(exponentials)
        self._output = exponentials
        return exponentials

    def backward(self, dvalues: Array) -> Array:
        S = self._output
        return S * (dvalues - (dvalues * S).sum(axis=-1, keepdims=True))


def get(activation: str | Activation | None) -> Activation | None:
    """An activation layer from a registered name (``"relu"``), an instance, or ``None``."""
    activation = ACTIVATION.check("", "activation", activation)
    if activation is None or isinstance(activation, Activation):
        return activation
    layer = LAYERS.lookup(activation)()
    assert isinstance(layer, Activation)  # the rule admits activation names only
    return layer


def name_of(activation: Activation | None) -> str | None:
    """The registered name of an activation instance, for configs."""
    return None if activation is None else LAYERS.name_of(activation)


__all__ = [
    "GELU",
    "Activation",
    "LeakyReLU",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get",
]
