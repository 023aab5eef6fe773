"""One step of a running maximum, the rule every max pooling path follows (notes §1.11).

A pooling window's maximum is folded in one candidate at a time, in row-major window order;
a candidate takes over only where it is strictly greater, so the first of tied elements
keeps the maximum and receives the gradient (``lamina.layers.pooling.route_to_maxima``).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def fold_maximum(maximum: Array, candidate: Array, took_over: Array | None = None) -> None:
    """``maximum`` ← max(maximum, candidate) in place; ``took_over`` (bool, same shape),
    when given, records where the candidate is strictly greater: where it took over."""
    if took_over is not None:
        np.greater(candidate, maximum, out=took_over)
    np.maximum(maximum, candidate, out=maximum)
