"""Accuracy metrics (notes §1.2, §1.7, §1.8).

``per_sample`` gives one score per sample so a model can average them sample-weighted over
batches of different sizes (notes §1.9: "epoch-wise ... are sample-wise averages").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina._params import Interval, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, invalid

Array = np.ndarray

METRICS: Registry[type[Metric]] = Registry("metric")


class Metric:
    name = "metric"

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define per_sample")

    def calculate(self, y_pred: Array, y_true: Array) -> float:
        return float(np.mean(self.per_sample(y_pred, y_true)))

    def prepare(self, y_train: Array) -> None:
        """Learn what the metric needs from the training targets (regression precision)."""

    def get_config(self) -> dict[str, Any]:
        return {}


@METRICS.register("categorical_accuracy")
class CategoricalAccuracy(Metric):
    r"""``(1/N) Σᵢ [argmax ŷᵢ = yᵢ]`` (notes §1.2); one-hot targets are argmax-ed too."""

    name = "accuracy"

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        labels = y_true if y_true.ndim == 1 else np.argmax(y_true, axis=1)
        return np.argmax(y_pred, axis=1) == labels


@METRICS.register("binary_accuracy")
class BinaryAccuracy(Metric):
    r"""``(1/J) Σⱼ [(ŷᵢⱼ > threshold) = (yᵢⱼ > 0.5)]`` per sample (notes §1.7); threshold 0.5
    (targets are 0/1; a soft target counts as its nearer class)."""

    name = "accuracy"

    @checked(threshold=Interval(float, 0, 1))
    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        return np.mean((y_pred > self.threshold) == (y_true > 0.5), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"threshold": self.threshold}


@METRICS.register("regression_accuracy")
class RegressionAccuracy(Metric):
    r"""``(1/J) Σⱼ [|ŷᵢⱼ − yᵢⱼ| < ρ]`` with ``ρ = σ(y)/λ`` (notes §1.8); λ = ``precision``.

    ρ is computed once from the training targets (``prepare``), so it does not change
    from batch to batch; before that, from the targets it is given.
    """

    name = "accuracy"

    @checked(
        precision=rule(
            Interval(float, 0, closed="neither"), fix="use 250 (notes §1.8: ρ = σ(y)/250)"
        )
    )
    def __init__(self, precision: float = 250.0) -> None:
        self.precision = precision
        self.allowance: float | None = None

    def prepare(self, y_train: Array) -> None:
        self.allowance = float(np.std(y_train)) / self.precision

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        allowance = self.allowance
        if allowance is None:
            allowance = float(np.std(y_true)) / self.precision
        return np.mean(np.abs(y_pred - y_true) < allowance, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"precision": self.precision}


_ACCURACY_FOR_LOSS = {
    "categorical_crossentropy": CategoricalAccuracy,
    "binary_crossentropy": BinaryAccuracy,
    "mean_squared_error": RegressionAccuracy,
    "mean_absolute_error": RegressionAccuracy,
}


def get(metric: str | Metric, loss_name: str | None) -> Metric:
    """A metric from a name or instance; ``"accuracy"`` picks the kind that fits the loss."""
    if isinstance(metric, Metric):
        return metric
    if metric == "accuracy":
        if loss_name not in _ACCURACY_FOR_LOSS:
            raise ConfigError(
                invalid(
                    "metrics",
                    "an explicit accuracy metric for a custom loss",
                    "'accuracy'",
                    f"use one of {sorted(METRICS)}",
                )
            )
        return _ACCURACY_FOR_LOSS[loss_name]()
    return METRICS.lookup(metric)()


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of samples of true class i predicted as class j; its diagonal over its
    row sums is each class's accuracy."""
    truth = np.asarray(y_true, dtype=np.intp).ravel()
    guess = np.asarray(y_pred, dtype=np.intp).ravel()
    flat = np.bincount(truth * n_classes + guess, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)
