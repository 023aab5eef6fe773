"""Sequence outputs: a model whose output has a time axis, (N, T, K) — a recurrent layer with
``return_sequences=True`` and a Dense on every step, a tagger — is scored at every step.

The loss and the metrics see the N·T steps as rows. Sample i's loss is the mean over its
real steps, Lᵢ = Σₜ mᵢₜ Lᵢₜ / Mᵢ with the padding mask mᵢₜ ∈ {0, 1} (all 1 without one) and
Mᵢ = Σₜ mᵢₜ, so a sequence counts as one sample whatever its length: batches, sample
weights and the epoch statistics treat it as any other sample. The gradient of
L = Σᵢ wᵢ Lᵢ / Σᵢ wᵢ is that of a weighted mean over the rows with step weights
wᵢ·mᵢₜ/Mᵢ (``engine/weights.py``); a padded step weighs 0 and sends no gradient. A
sequence whose steps are all padding weighs 0 in the gradient and counts with Lᵢ = 0.
"""

from __future__ import annotations

import numpy as np

from lamina.errors import ShapeError

Array = np.ndarray


def is_sequence(outputs: Array) -> bool:
    """Whether a batch of outputs has a time axis: (N, T, K)."""
    return outputs.ndim == 3


def step_weights(mask: Array | None, n: int, steps: int) -> Array:
    """mᵢₜ / Mᵢ as an (N, T) float64 array: each sequence's steps sum to 1 (to 0 when all
    are padding)."""
    if mask is None:
        return np.full((n, steps), 1.0 / steps)
    real = mask.astype(np.float64)
    return real / np.maximum(real.sum(axis=1, keepdims=True), 1.0)


def as_rows(outputs: Array, targets: Array) -> tuple[Array, Array]:
    """(N, T, K) outputs and their (N, T[, K]) targets as N·T rows (views, no copies)."""
    n, steps = outputs.shape[:2]
    return outputs.reshape(n * steps, -1), targets.reshape(n * steps, *targets.shape[2:])


def per_sequence(values: Array, steps: Array) -> Array:
    """Σₜ wᵢₜ vᵢₜ per sequence: (N·T[, k]) step values → (N[, k]), with the (N, T) step
    weights of :func:`step_weights`."""
    rows = values.reshape(*steps.shape, *values.shape[1:])
    weights = steps.reshape(*steps.shape, *([1] * (values.ndim - 1)))
    means = (rows * weights).sum(axis=1)
    return means.astype(values.dtype, copy=False) if values.dtype.kind == "f" else means


def row_weights(sample_weight: Array | None, steps: Array) -> Array:
    """wᵢ·mᵢₜ/Mᵢ per row, (N·T,): the weights of the rows' weighted mean (wᵢ = 1 without
    sample weights)."""
    if sample_weight is None:
        return steps.reshape(-1)
    return (steps * sample_weight[:, None]).reshape(-1)


def sequence_targets(
    targets: Array, output_shape: tuple[int | None, ...], name: str = "y"
) -> Array:
    """Check that targets have the outputs' time steps: (N, T) labels or values, or
    (N, T, K); returns them as rows (N·T[, K]) for the loss's own checks."""
    steps = output_shape[0]
    if targets.ndim < 2 or targets.shape[1] != steps:
        raise ShapeError(
            f"the model's outputs are sequences of {steps} steps (batch, {steps}, "
            f"{output_shape[1]}), so {name} needs one target per step, of shape (batch, "
            f"{steps}) or (batch, {steps}, {output_shape[1]}); received {name} of shape "
            f"{targets.shape}. Fix: give every step its target, or set return_sequences=False "
            "on the last recurrent layer to predict one value per sequence."
        )
    return targets.reshape(-1, *targets.shape[2:])


def rows(outputs: Array, targets: Array, mask: Array | None) -> tuple[Array, Array, Array | None]:
    """(outputs, targets, step weights) as the loss takes them: a sequence output's N·T
    steps as rows with :func:`step_weights`; any other output as it is, with None."""
    if not is_sequence(outputs):
        return outputs, targets, None
    n, steps = outputs.shape[:2]
    if mask is not None and mask.shape != (n, steps):
        raise ShapeError(
            f"the padding mask has shape {mask.shape}, but the outputs have {steps} steps "
            f"(shape {outputs.shape}). Fix: keep the time axis from the masking layer to the "
            "output (no pooling or striding over time after it)."
        )
    output_rows, target_rows = as_rows(outputs, targets)
    return output_rows, target_rows, step_weights(mask, n, steps)


def reduce(values: Array, steps: Array | None) -> Array:
    """Per-row values (losses, metric components) as per-sample values: a sequence's
    weighted mean over its steps; unchanged without step weights."""
    return values if steps is None else per_sequence(values, steps)
