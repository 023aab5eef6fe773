"""Weight initializers (notes §1.1 "Parameters", §1.8 "Glorot", §3.2.1).

Weights start small, random and non-zero; biases start at zero. Each initializer takes
the weight shape, the fan-in and fan-out, a Generator and a dtype, and returns a new array.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lamina._params import Options, rule
from lamina._registry import Registry

Initializer = Callable[[tuple[int, ...], int, int, np.random.Generator, np.dtype], np.ndarray]

INITIALIZERS: Registry[Initializer] = Registry("weight initializer")


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


#: The rule of a layer's ``weight_init`` argument.
WEIGHT_INIT = rule(
    Options(INITIALIZERS), fix="pass a weight initializer name, e.g. weight_init='he_normal'"
)


def get(name: str) -> Initializer:
    """The initializer registered under ``name`` ("small", "glorot_uniform", "he_normal")."""
    return INITIALIZERS.lookup(name)
