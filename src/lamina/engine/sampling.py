"""Predictions with their uncertainty (notes §2.2 *Confidence*: "the level of uncertainty
associated with the predicted numerical value").

- **Monte-Carlo dropout** (Gal & Ghahramani 2016): the Dropout layers keep dropping at
  prediction, S times; the mean of the S outputs is the prediction and their standard
  deviation its uncertainty. Only dropout samples: BatchNorm keeps its running statistics.
  The masks come from a Generator of their own, so sampling leaves the training draws as
  they were.
- **A mean-and-variance head** (``losses.GaussianNLL``): each output is (μ, σ²) already.
  With S samples of such a model the prediction is the mixture of the S Gaussians:
  μ* = mean(μₛ), σ*² = mean(σₛ²) + mean((μₛ − μ*)²) (``GaussianNLL.mixture``, as for a
  deep ensemble).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lamina.errors import ConfigError, invalid
from lamina.layers.dropout import Dropout

Array = np.ndarray


def predictive(
    layers: list[Any],
    run: Callable[[], Array],
    samples: int,
    seed: int | None,
    loss: Any,
) -> tuple[Array, Array]:
    """(mean, std) of ``run()``'s outputs over ``samples`` Monte-Carlo dropout passes (one
    deterministic pass when ``samples`` is 1), through the loss's ``mean_std`` for a
    mean-and-variance head."""
    dropouts = [layer for layer in layers if isinstance(layer, Dropout) and layer.rate > 0]
    split = getattr(loss, "mean_std", None)
    if samples > 1 and not dropouts:
        raise ConfigError(
            invalid(
                "samples",
                "1 for a model without Dropout (Monte-Carlo dropout samples its masks)",
                samples,
                "add a Dropout layer, or use an Ensemble",
            ),
            argument="samples",
        )
    if samples == 1 and split is None:
        raise ConfigError(
            invalid(
                "return_std",
                "samples > 1 (Monte-Carlo dropout) or a GaussianNLL model (σ from its head)",
                "samples=1 and no variance head",
                "pass samples=30, or train with loss=GaussianNLL()",
            ),
            argument="return_std",
        )
    generator = np.random.default_rng(seed)
    moments = RunningMoments()
    try:
        for layer in dropouts:
            layer.sampling = generator
        for _ in range(samples):
            outputs = run()
            if split is None:
                moments.add(outputs)
            else:
                mean, std = split(outputs)
                moments.add(mean, np.square(std))
    finally:
        for layer in dropouts:
            layer.sampling = None
    return moments.mean_std(dtype=outputs.dtype)


class RunningMoments:
    """Mean and spread of S arrays in O(1) memory, whatever S (Welford's update, float64):
    after the s-th array aₛ, δ = aₛ − m, m += δ/s, M₂ += δ·(aₛ − m), so M₂/S is the
    population variance of the S arrays. With variances σₛ² as well (a Gaussian head), the
    mixture's σ*² = mean(σₛ²) + M₂/S (``GaussianNLL.mixture``)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Array | None = None
        self.m2: Array | None = None
        self.variance_sum: Array | None = None

    def add(self, values: Array, variances: Array | None = None) -> None:
        values = values.astype(np.float64)
        self.count += 1
        if self.mean is None or self.m2 is None:
            self.mean, self.m2 = values, np.zeros_like(values)
        else:
            delta = values - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (values - self.mean)
        if variances is not None:
            as_float = variances.astype(np.float64)
            self.variance_sum = (
                as_float if self.variance_sum is None else self.variance_sum + as_float
            )

    def mean_std(self, dtype: np.dtype) -> tuple[Array, Array]:
        """(mean, std) in ``dtype``: the spread of the arrays, plus their own variances."""
        assert self.mean is not None and self.m2 is not None
        variance = self.m2 / self.count
        if self.variance_sum is not None:
            variance = variance + self.variance_sum / self.count
        return self.mean.astype(dtype), np.sqrt(variance).astype(dtype)
