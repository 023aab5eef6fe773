"""Sample weights: how much each sample counts in the loss, its gradient and the statistics
(``fit(sample_weight=, class_weight=)``, ``evaluate(sample_weight=)``).

With weights wᵢ the loss of a batch is the weighted mean L = Σᵢ wᵢ Lᵢ / Σᵢ wᵢ (an integer
weight counts a sample as that many copies of it), so its gradient is
∂L/∂ŷᵢ = (wᵢ / Σⱼ wⱼ) ∂Lᵢ/∂ŷᵢ: the unweighted ∂(mean L)/∂ŷ a loss computes, (1/N) ∂Lᵢ/∂ŷᵢ,
scaled row by row by wᵢ·N/Σⱼ wⱼ. Epoch statistics are weighted means over all batches.

``class_weight="balanced"`` gives class c the weight n / (k · n_c) — n samples, k classes,
n_c samples of class c — as scikit-learn computes it, so every class weighs the same in all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.errors import ConfigError, InputError, invalid
from lamina.validation import as_array, check_finite

Array = np.ndarray
ClassWeight = str | Mapping[Any, float] | None


def check_sample_weight(
    weights: ArrayLike | None, n: int, name: str = "sample_weight"
) -> Array | None:
    """``weights`` as a float64 (n,) array of finite values ≥ 0 (None stays None)."""
    if weights is None:
        return None
    array = as_array(weights, name)
    if array.dtype.kind not in "biuf" or array.dtype.kind == "b":
        raise InputError(
            invalid(name, "numbers, one per sample", f"dtype {array.dtype}", "pass floats ≥ 0")
        )
    array = array.astype(np.float64)
    if array.shape != (n,):
        raise InputError(
            invalid(
                name,
                f"one weight per sample, shape ({n},)",
                f"shape {array.shape}",
                "pass a 1-D array as long as X",
            )
        )
    check_finite(array, name)
    if (array < 0).any():
        first = int(np.argmax(array < 0))
        raise InputError(
            invalid(
                name, "weights ≥ 0", f"{array[first]} at index {first}", "drop the sample instead"
            )
        )
    return array


def labels_of(targets: Array) -> Array:
    """The class of each sample from prepared targets: integer labels, one-hot rows, or a
    binary model's 0/1 column."""
    if targets.ndim == 1:
        return targets.astype(np.int64)
    if targets.shape[1] == 1:
        return (targets[:, 0] > 0.5).astype(np.int64)
    return np.argmax(targets, axis=1)


def balanced(labels: Array) -> dict[int, float]:
    """n / (k · n_c) for each class c present (scikit-learn's ``"balanced"``)."""
    classes, counts = np.unique(labels, return_counts=True)
    return {
        int(c): float(len(labels) / (len(classes) * count))
        for c, count in zip(classes, counts, strict=True)
    }


def class_sample_weight(
    class_weight: ClassWeight, targets: Array, n_classes: int | None
) -> Array | None:
    """Each sample's class weight: from ``"balanced"`` or a ``{class: weight}`` dict (a class
    it leaves out weighs 1) for a model of ``n_classes`` classes (None: a regression); None
    when ``class_weight`` is None."""
    if class_weight is None:
        return None
    if n_classes is None:
        raise ConfigError(
            invalid(
                "class_weight",
                "None for a regression loss (there are no classes)",
                repr(class_weight),
                "weight samples with sample_weight instead",
            ),
            argument="class_weight",
        )
    # integer labels are (N,); (N, T) integers or (N, T, K) are a sequence output's
    one_per_step = targets.ndim > 2 or (targets.ndim == 2 and targets.dtype.kind in "iu")
    if one_per_step:  # a sequence output's (N, T) labels: no class for the whole sample
        raise ConfigError(
            invalid(
                "class_weight",
                "one class per sample",
                f"targets of shape {targets.shape}, a class per time step",
                "give each sequence a weight with sample_weight instead",
            ),
            argument="class_weight",
        )
    labels = labels_of(targets)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(
                invalid("class_weight", "'balanced' or a dict {class: weight}", repr(class_weight)),
                argument="class_weight",
            )
        table = balanced(labels)
    elif isinstance(class_weight, Mapping):
        table = {_label(key): _weight(key, value) for key, value in class_weight.items()}
        unknown = sorted(label for label in table if label >= n_classes)
        if unknown:
            raise ConfigError(
                invalid(
                    "class_weight",
                    f"keys among the model's {n_classes} classes 0 … {n_classes - 1}",
                    f"class {unknown[0]}",
                    "key the weights by the labels y holds",
                ),
                argument="class_weight",
            )
    else:
        raise ConfigError(
            invalid(
                "class_weight", "'balanced' or a dict {class: weight}", type(class_weight).__name__
            ),
            argument="class_weight",
        )
    lookup = np.ones(n_classes)
    for label, weight in table.items():
        lookup[label] = weight
    return lookup[labels]


def combine(sample_weight: Array | None, class_weight: Array | None) -> Array | None:
    """The product of the two kinds of weight; None when neither is given."""
    if sample_weight is None:
        return class_weight
    if class_weight is None:
        return sample_weight
    return sample_weight * class_weight


def row_scale(weights: Array) -> Array:
    """wᵢ · N / Σⱼ wⱼ: the factor that turns an unweighted mean's gradient row into the
    weighted mean's (all zero when every weight is)."""
    total = float(weights.sum())
    return weights * (len(weights) / total) if total > 0 else np.zeros_like(weights)


def _label(key: Any) -> int:
    try:
        label = int(key)
    except (TypeError, ValueError):
        label = -1
    if isinstance(key, bool) or label < 0 or str(label) != str(key).strip():
        raise ConfigError(
            invalid("class_weight", "class labels 0, 1, … as keys", repr(key)),
            argument="class_weight",
        )
    return label


def _weight(key: Any, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(
            invalid(f"class_weight[{key!r}]", "a number ≥ 0", repr(value)), argument="class_weight"
        )
    if not (np.isfinite(value) and value >= 0):
        raise ConfigError(
            invalid(f"class_weight[{key!r}]", "a finite number ≥ 0", repr(value)),
            argument="class_weight",
        )
    return float(value)
