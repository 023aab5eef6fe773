"""L1 and L2 penalties on parameters (notes §1.6, §3.5.1, §3.5.2).

For a parameter tensor θ and strengths λ₁ (``l1``) and λ₂ (``l2``):

    penalty   = λ₁ Σₘ |θₘ| + λ₂ Σₘ θₘ²
    ∂/∂θₘ     = λ₁ sign(θₘ) + 2 λ₂ θₘ

The penalty is added once per batch to the reported loss (Q = L + L₁ + L₂, notes §1.6) and
its gradient to the parameter's gradient, not divided by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina._params import Interval, checked, rule

#: The rule of every L1/L2 strength argument (``L1L2``, and the layers' ``weight_l1`` …).
STRENGTH = rule(Interval(float, 0), fix="use e.g. 5e-4 or 0")


@dataclass(frozen=True, init=False)
class L1L2:
    """L1 strength ``l1`` (λ₁) and L2 strength ``l2`` (λ₂) for one parameter tensor."""

    l1: float
    l2: float

    @checked(l1=STRENGTH, l2=STRENGTH)
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        object.__setattr__(self, "l1", l1)  # frozen: the fields are set here only
        object.__setattr__(self, "l2", l2)

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
