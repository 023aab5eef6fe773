"""The numbers a fit and an evaluation report: the loss and each metric as weighted means
over batches of any size (notes §1.9: "epoch-wise … are sample-wise averages").

Each batch gives the per-sample losses Lᵢ, each metric's per-sample components cᵢ (one, or
several: R² needs e², y and y²) and the weights wᵢ (1 when none are given). A batch's value
is L = Σ wᵢ Lᵢ / Σ wᵢ (+ the L1/L2 penalty) and, per metric, ``finalize`` of the weighted
means of its components; an epoch's (or an evaluation's) are the same over all its batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Array = np.ndarray


def weighted_means(values: Array, weights: Array | None) -> Array:
    """Σ wᵢ vᵢ / Σ wᵢ over the rows of ``values`` ((n,) or (n, k)), as a (k,) float64 array."""
    rows = values.reshape(len(values), -1)
    if weights is None:
        return rows.sum(axis=0, dtype=np.float64) / len(rows)
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(rows.shape[1])
    return (weights @ rows.astype(np.float64, copy=False)) / total


class Statistics:
    """Running weighted means of the loss and of each metric's components."""

    def __init__(self, metrics: Sequence[Any]) -> None:
        self.metrics = list(metrics)
        self.names = ["loss", *(metric.name for metric in self.metrics)]
        self._weight = 0.0
        self._loss = 0.0
        self._components: list[Array] = [np.zeros(0) for _ in self.metrics]

    def add(
        self,
        sample_losses: Array,
        scores: Sequence[Array],
        weights: Array | None,
        penalty: float = 0.0,
    ) -> dict[str, float]:
        """Add a batch; returns its own values (what ``on_batch_end`` logs)."""
        weight = float(len(sample_losses)) if weights is None else float(weights.sum())
        loss = float(weighted_means(sample_losses, weights)[0]) + penalty
        means = [weighted_means(score, weights) for score in scores]
        if weight > 0:
            self._loss += loss * weight
            for index, mean in enumerate(means):
                if self._components[index].size == 0:
                    self._components[index] = np.zeros_like(mean)
                self._components[index] += mean * weight
            self._weight += weight
        else:  # a batch of weight 0 counts for nothing; its own values are logged unweighted
            loss = float(weighted_means(sample_losses, None)[0]) + penalty
            means = [weighted_means(score, None) for score in scores]
        values = [loss, *(m.finalize(mean) for m, mean in zip(self.metrics, means, strict=True))]
        return dict(zip(self.names, map(float, values), strict=True))

    def result(self, penalty: float | None = None) -> dict[str, float]:
        """The means over every batch added; ``penalty`` replaces the batches' penalties
        (an evaluation adds the current one once)."""
        weight = max(self._weight, np.finfo(np.float64).tiny)
        loss = self._loss / weight
        values = [
            loss,
            *(m.finalize(c / weight) for m, c in zip(self.metrics, self._components, strict=True)),
        ]
        if penalty is not None:
            values[0] += penalty
        return dict(zip(self.names, map(float, values), strict=True))
