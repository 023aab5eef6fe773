"""Weight and bias initializers (notes §1.1 "Parameters", §1.8 "Glorot", §3.2.1).

Weights start small, random and non-zero (``INITIALIZERS``); biases start at zero, as the
notes say (§1.1), or are drawn as PyTorch draws them (``BIAS_INITIALIZERS``). Each
initializer takes the tensor's shape, the layer's fan-in and fan-out, a Generator and a
dtype, and returns a new array. For Dense, fan-in = n_inputs and fan-out = n_neurons; for
Conv2D, fan-in = kh·kw·C and fan-out = kh·kw·F.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lamina._params import Options, rule
from lamina._registry import Registry

Initializer = Callable[[tuple[int, ...], int, int, np.random.Generator, np.dtype], np.ndarray]

INITIALIZERS: Registry[Initializer] = Registry("weight initializer")
BIAS_INITIALIZERS: Registry[Initializer] = Registry("bias initializer")


@INITIALIZERS.register("small")
def small(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """The notes' default: ``0.01 · N(0, 1)`` (notes §1.1, §3.2.1)."""
    return (0.01 * rng.standard_normal(shape)).astype(dtype)


@INITIALIZERS.register("glorot_uniform")
def glorot_uniform(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = √(6 / (fan_in + fan_out))`` (notes §1.8)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


@INITIALIZERS.register("he_normal")
def he_normal(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """He/Kaiming normal for ReLU layers: ``N(0, 1) · √(2 / fan_in)``."""
    return (np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)).astype(dtype)


@INITIALIZERS.register("orthogonal")
def orthogonal(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    r"""A (semi-)orthogonal matrix, as ``torch.nn.init.orthogonal_`` draws it (Saxe et al.
    2014): Q of the QR decomposition of a standard normal matrix, its columns' signs fixed
    by ``sign(diag R)`` so that Q is uniformly (Haar) distributed. The shape is read as
    (shape[0], the product of the rest); with fewer rows than columns the rows are
    orthonormal (Q·Qᵀ = I), else the columns (Qᵀ·Q = I). Recurrent layers draw one square
    block per gate, so each gate's h ↦ h·U keeps the norm of h (no vanishing or exploding
    through time at the start)."""
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    gaussian = rng.standard_normal((rows, cols))
    if rows < cols:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(dtype)


@INITIALIZERS.register("torch_uniform")
@BIAS_INITIALIZERS.register("torch_uniform")
def torch_uniform(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    r"""PyTorch's default for ``nn.Linear`` and ``nn.Conv2d``: ``U(-a, a)`` with ``a = 1/√fan_in``,
    for the weights and the biases alike.

    The weights are ``kaiming_uniform_(w, a=√5)``: bound = gain·√(3/fan_in) with gain =
    √(2/(1 + 5)), which is 1/√fan_in; the biases are drawn from ``U(±1/√fan_in)`` too
    (``torch/nn/modules/linear.py`` and ``conv.py``, ``reset_parameters``). Its variance,
    1/(3·fan_in), is a sixth of He's 2/fan_in.
    """
    limit = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-limit, limit, shape).astype(dtype)


@INITIALIZERS.register("uniform")
def uniform(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """``U(−0.05, 0.05)``, whatever the fans: Keras' ``RandomUniform()`` default, which its
    ``Embedding`` starts from (an embedding's "fan-in" is one one-hot row, so the fan-based
    scales do not apply). Embedding's default (``lamina.layers.embedding``)."""
    return rng.uniform(-0.05, 0.05, shape).astype(dtype)


@BIAS_INITIALIZERS.register("zeros")
def zeros(
    shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Biases at zero (notes §1.1); draws nothing from ``rng``."""
    return np.zeros(shape, dtype=dtype)


#: The rule of a layer's ``weight_init`` argument.
WEIGHT_INIT = rule(
    Options(INITIALIZERS), fix="pass a weight initializer name, e.g. weight_init='he_normal'"
)

#: The rule of a layer's ``bias_init`` argument.
BIAS_INIT = rule(
    Options(BIAS_INITIALIZERS), fix="pass a bias initializer name, e.g. bias_init='zeros'"
)


def get(name: str) -> Initializer:
    """The weight initializer registered under ``name`` ("small", "glorot_uniform",
    "he_normal", "orthogonal", "torch_uniform")."""
    return INITIALIZERS.lookup(name)


def get_bias(name: str) -> Initializer:
    """The bias initializer registered under ``name`` ("zeros", "torch_uniform")."""
    return BIAS_INITIALIZERS.lookup(name)
