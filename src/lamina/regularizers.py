"""L1 and L2 penalties on parameters (notes §1.6, §3.5.1, §3.5.2).

For a parameter tensor θ and strengths λ₁ (``l1``) and λ₂ (``l2``):

    penalty   = λ₁ Σₘ |θₘ| + λ₂ Σₘ θₘ²
    ∂/∂θₘ     = λ₁ sign(θₘ) + 2 λ₂ θₘ

The penalty is added once per batch to the reported loss (Q = L + L₁ + L₂, notes §1.6) and
its gradient to the parameter's gradient, not divided by the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lamina.errors import ConfigError, invalid


@dataclass(frozen=True)
class L1L2:
    """L1 strength ``l1`` (λ₁) and L2 strength ``l2`` (λ₂) for one parameter tensor."""

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        for argument, value in (("l1", self.l1), ("l2", self.l2)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    invalid(argument, "a finite float ≥ 0", repr(value), "use e.g. 5e-4 or 0")
                )

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0

    def penalty(self, theta: np.ndarray) -> float:
        """λ₁ Σ|θ| + λ₂ Σθ² (notes §1.6)."""
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(theta).sum())
        if self.l2:
            total += self.l2 * float(np.vdot(theta, theta))
        return total

    def add_gradient(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """grad += λ₁ sign(θ) + 2 λ₂ θ, in place (notes §1.6 "Backward pass")."""
        if self.l1:
            grad += self.l1 * np.sign(theta)
        if self.l2:
            grad += (2.0 * self.l2) * theta
