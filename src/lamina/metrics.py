"""Metrics: accuracies (notes §1.2, §1.7, §1.8) and regression errors (notes §1.8).

A metric is computed in two stages, so that a model can average it sample-weighted over
batches of different sizes (notes §1.9: "epoch-wise ... are sample-wise averages") even
when, like RMSE or R², it is not itself an average of per-sample scores:

    cᵢ = per_sample(ŷ, y)[i]               one component (shape (N,)) or K (shape (N, K))
    m  = Σᵢ wᵢ·cᵢ / Σᵢ wᵢ                   over a batch, an epoch or an evaluation (wᵢ = 1
                                            unless sample weights are given)
    value = finalize(m)                     the mean itself by default

Sums of wᵢ·cᵢ add up across batches, so an epoch's value is exact whatever the batching;
:func:`score` computes it over whole arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Interval, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, ShapeError, invalid
from lamina.losses import LOSSES, Loss, kind_of

Array = np.ndarray

METRICS: Registry[type[Metric]] = Registry("metric")

#: The names that pick the accuracy fitting the loss (see :func:`get`).
ACCURACY_NAMES = ("accuracy", "acc")


class Metric:
    """Base class: ``per_sample`` gives each sample's components, ``finalize`` turns their
    (weighted) means into the value (see the module docstring).

    Attributes:
        name: the key of the value in ``fit``'s History and ``evaluate``'s dict.
        higher_is_better: True for scores (accuracies, R²), False for errors (MAE, RMSE).
    """

    name = "metric"
    higher_is_better = True

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        """The components cᵢ of each sample: shape (N,) for one, (N, K) for K."""
        raise NotImplementedError(f"{type(self).__name__} must define per_sample")

    def finalize(self, means: Array) -> float:
        """The value from the means m of the components (shape () or (K,)): m itself."""
        means = np.asarray(means, dtype=np.float64)
        if means.size != 1:
            raise NotImplementedError(
                f"{type(self).__name__} gives {means.size} components per sample, so it must "
                "define finalize"
            )
        return float(means.item())

    def calculate(self, y_pred: Array, y_true: Array) -> float:
        """The value over the arrays given: :func:`score` without weights."""
        return score(self, y_pred, y_true)

    def prepare(self, y_train: Array) -> None:
        """Learn what the metric needs from the training targets (regression precision)."""

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)


# --------------------------------------------------------------------------- accuracies
@METRICS.register("categorical_accuracy", aliases=("sparse_categorical_accuracy",))
class CategoricalAccuracy(Metric):
    r"""``(1/N) Σᵢ [argmax ŷᵢ = yᵢ]`` (notes §1.2); one-hot targets are argmax-ed too, so
    integer labels need no separate "sparse" metric."""

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


@METRICS.register(
    "top_k_accuracy",
    aliases=("top_k", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"),
)
class TopKAccuracy(Metric):
    r"""``(1/N) Σᵢ [yᵢ among the k classes of highest ŷᵢ]``: top-1 is categorical accuracy
    (notes §1.2).

    Per sample: ``[#{j : ŷᵢⱼ > ŷᵢ,ₖ} < k]`` for kᵢ the true class, so classes tied with the
    true class count in its favour (as ``tf.math.in_top_k`` does); a NaN confidence counts
    as higher. Targets are integer labels or one-hot rows.

    Args:
        k: how many of the highest confidences may hold the true class, ≥ 1.
    """

    name = "top_k_accuracy"

    @checked(k=Interval(int, 1))
    def __init__(self, k: int = 5) -> None:
        self.k = k

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        labels = y_true if y_true.ndim == 1 else np.argmax(y_true, axis=1)
        true_scores = y_pred[np.arange(len(y_pred)), labels.astype(np.intp, copy=False)]
        not_higher = np.count_nonzero(y_pred <= true_scores[:, None], axis=1)
        return (y_pred.shape[1] - not_higher) < self.k

    def get_config(self) -> dict[str, Any]:
        return {"k": self.k}


# --------------------------------------------------------------------------- regression
def _errors(metric: Metric, y_pred: Array, y_true: Array) -> Array:
    """eᵢⱼ = ŷᵢⱼ − yᵢⱼ as (N, J); 1-D predictions or targets are one output per sample
    (so y of shape (N,) never broadcasts against ŷ of shape (N, 1) into (N, N))."""
    y_pred = y_pred.reshape(len(y_pred), -1) if y_pred.ndim != 2 else y_pred
    y_true = y_true.reshape(len(y_true), -1) if y_true.ndim != 2 else y_true
    if y_pred.shape != y_true.shape:
        raise ShapeError(
            invalid(
                f"{type(metric).__name__} targets",
                f"one target per output of the predictions, shape {y_pred.shape}",
                f"shape {y_true.shape}",
                "give the output layer one neuron per target column",
            )
        )
    return y_pred - y_true


@METRICS.register("mean_absolute_error", aliases=("mae",))
class MeanAbsoluteError(Metric):
    r"""Mean absolute error ``(1/N) Σᵢ (1/J) Σⱼ |yᵢⱼ − ŷᵢⱼ|`` (notes §1.8, "Mean Absolute
    Error"): in the targets' units, the typical size of an error.

    Component ``cᵢ = (1/J) Σⱼ |eᵢⱼ|``, e = ŷ − y; ``finalize`` is the identity.
    """

    name = "mae"
    higher_is_better = False

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        return np.mean(np.abs(_errors(self, y_pred, y_true)), axis=1)


@METRICS.register("mean_squared_error", aliases=("mse",))
class MeanSquaredError(Metric):
    r"""Mean squared error ``(1/N) Σᵢ (1/J) Σⱼ (yᵢⱼ − ŷᵢⱼ)²`` (notes §1.8, "Mean Squared
    Error").

    Component ``cᵢ = (1/J) Σⱼ eᵢⱼ²``, e = ŷ − y; ``finalize`` is the identity.
    """

    name = "mse"
    higher_is_better = False

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        errors = _errors(self, y_pred, y_true)
        return np.mean(errors * errors, axis=1)


@METRICS.register("root_mean_squared_error", aliases=("rmse",))
class RootMeanSquaredError(Metric):
    r"""Root mean squared error ``√((1/N) Σᵢ (1/J) Σⱼ (yᵢⱼ − ŷᵢⱼ)²)``: the square root of
    notes §1.8's MSE, in the targets' units.

    Component ``cᵢ = (1/J) Σⱼ eᵢⱼ²``; ``finalize(m) = √m``. The root is taken of the mean
    over every sample and output (as Keras does), not averaged per output or per batch.
    """

    name = "rmse"
    higher_is_better = False

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        errors = _errors(self, y_pred, y_true)
        return np.mean(errors * errors, axis=1)

    def finalize(self, means: Array) -> float:
        return float(np.sqrt(super().finalize(means)))


@METRICS.register("r2_score", aliases=("r2", "r_squared"))
class R2Score(Metric):
    r"""Coefficient of determination, the share of the targets' variance the model explains
    (a regression score beside notes §1.8's errors; not in the notes):

        R²ⱼ = 1 − Σᵢ (yᵢⱼ − ŷᵢⱼ)² / Σᵢ (yᵢⱼ − ȳⱼ)²        R² = (1/J) Σⱼ R²ⱼ

    with ȳⱼ the mean of output j over the evaluated samples (weighted, with weights), so the
    variance is that of the targets evaluated (a batch, an epoch, a test set), not of the
    training set. Outputs are averaged with equal weight, as scikit-learn's ``r2_score``.

    Components, for each output j: ``[eᵢⱼ², yᵢⱼ, yᵢⱼ²]`` (shape (N, 3J)); from their means
    ``finalize`` computes ``R²ⱼ = 1 − mean(e²ⱼ) / (mean(y²ⱼ) − mean(yⱼ)²)``. The components
    are float64: the variance is a difference of two means, whose relative rounding error
    is about ε·(ȳ/σ)²: 10⁻⁸ in float64 for targets at ȳ = 10⁴·σ, where float32 would
    leave nothing of it. Standardize such targets for an R² exact to more digits.

    Constant targets (zero variance) give R²ⱼ = 1 if predicted exactly, else 0, as
    scikit-learn does: the value stays finite, so a fold or an early stop can use it.
    R² is 1 for a perfect model, 0 for one predicting ȳ, and negative for worse.
    """

    name = "r2"

    def per_sample(self, y_pred: Array, y_true: Array) -> Array:
        errors = _errors(self, y_pred, y_true).astype(np.float64)
        y = y_true.reshape(errors.shape).astype(np.float64)
        return np.concatenate([errors * errors, y, y * y], axis=1)

    def finalize(self, means: Array) -> float:
        squared_error, mean, mean_square = np.asarray(means, dtype=np.float64).reshape(3, -1)
        variance = np.maximum(mean_square - mean * mean, 0.0)
        constant = variance <= 1e-12 * np.maximum(mean_square, np.finfo(np.float64).tiny)
        explained = 1.0 - squared_error / np.where(constant, 1.0, variance)
        per_output = np.where(constant, np.where(squared_error == 0, 1.0, 0.0), explained)
        return float(np.mean(per_output))


# --------------------------------------------------------------------------- choosing
_ACCURACY_FOR_LOSS = {
    "categorical_crossentropy": CategoricalAccuracy,
    "binary_crossentropy": BinaryAccuracy,
}


def _loss_kind(loss: str | Loss | None) -> tuple[str | None, str | None]:
    """(the registered loss it is or derives from, its declared ``kind``), None if unknown."""
    if loss is None:
        return None, None
    if isinstance(loss, str):
        return LOSSES.canonical(loss), getattr(LOSSES.lookup(loss), "kind", None)
    return kind_of(loss), getattr(loss, "kind", None)


def get(metric: str | Metric, loss: str | Loss | None) -> Metric:
    """A metric from a name (or alias) or an instance; ``"accuracy"`` (or ``"acc"``) picks
    the notes' accuracy that fits the loss (a registered loss's name or alias, or a Loss):
    categorical for categorical cross-entropy, binary for binary cross-entropy, regression
    (notes §1.8) for MSE, MAE or any loss whose ``kind`` is ``"regression"``."""
    if isinstance(metric, Metric):
        return metric
    if metric in ACCURACY_NAMES:
        name, kind = _loss_kind(loss)
        if name in _ACCURACY_FOR_LOSS:
            return _ACCURACY_FOR_LOSS[name]()
        if kind == "regression":
            return RegressionAccuracy()
        raise ConfigError(
            invalid(
                "metrics",
                "an explicit accuracy metric for a custom loss",
                repr(metric),
                f"use one of {sorted(METRICS)}",
            )
        )
    return METRICS.lookup(metric)()


def defaults_for(loss: str | Loss) -> list[Metric]:
    """The metrics a model reports when none are asked for: the accuracy of a classification
    loss (categorical or binary cross-entropy), MAE for a loss whose ``kind`` is
    ``"regression"`` (MSE, MAE, Gaussian NLL, a custom one declaring it); none for a loss of
    another or unknown kind."""
    name, kind = _loss_kind(loss)
    if kind == "regression":
        return [MeanAbsoluteError()]
    if name in _ACCURACY_FOR_LOSS:
        return [_ACCURACY_FOR_LOSS[name]()]
    return []


def mode_for(monitor: str) -> str:
    """``"max"`` or ``"min"``: which way a logged value (``"val_r2"``, ``"loss"``) improves,
    from the metric that logs under that name; ``"max"`` for any other name holding
    "accuracy"."""
    name = monitor.removeprefix("val_")
    for _, cls in METRICS.items():
        if cls.name == name:
            return "max" if cls.higher_is_better else "min"
    return "max" if "accuracy" in name else "min"


def score(
    metric: Metric,
    y_pred: ArrayLike,
    y_true: ArrayLike,
    sample_weight: ArrayLike | None = None,
) -> float:
    r"""The metric's value over whole arrays: ``finalize(Σᵢ wᵢ·cᵢ / Σᵢ wᵢ)`` with
    ``cᵢ = metric.per_sample(ŷ, y)[i]`` and wᵢ = ``sample_weight[i]`` (1 without).

    Args:
        metric: a Metric instance (``get("r2", None)`` from a name).
        y_pred: predictions (N, ...), as the model outputs them.
        y_true: targets (N, ...): labels, one-hot rows or values.
        sample_weight: finite weights ≥ 0, shape (N,), not all 0; None for equal weights.
    """
    y_pred, y_true = np.asarray(y_pred), np.asarray(y_true)
    if y_pred.ndim == 0 or len(y_pred) == 0 or y_true.ndim == 0 or len(y_true) != len(y_pred):
        raise InputError(
            invalid(
                "y_pred, y_true",
                "at least one sample, and as many targets as predictions",
                f"shapes {y_pred.shape} and {y_true.shape}",
            )
        )
    components = np.asarray(metric.per_sample(y_pred, y_true), dtype=np.float64)
    if components.ndim not in (1, 2) or len(components) != len(y_pred):
        raise ShapeError(
            f"{type(metric).__name__}.per_sample returned shape {components.shape}; expected "
            f"({len(y_pred)},) or ({len(y_pred)}, K): one row of components per sample."
        )
    if sample_weight is None:
        return metric.finalize(components.mean(axis=0))
    weights = _weights(sample_weight, len(components))
    return metric.finalize(weights @ components / weights.sum())


def _weights(sample_weight: ArrayLike, n_samples: int) -> Array:
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "iuf":  # bools are not weights (docs/conventions.md)
        raise InputError(
            invalid("sample_weight", "numbers", f"dtype {weights.dtype}", "pass float weights")
        )
    weights = weights.astype(np.float64)
    if weights.shape != (n_samples,):
        raise InputError(
            invalid("sample_weight", f"one weight per sample, shape ({n_samples},)", weights.shape)
        )
    if not (np.isfinite(weights).all() and (weights >= 0).all() and weights.sum() > 0):
        raise InputError(
            invalid(
                "sample_weight",
                "finite weights ≥ 0, not all 0",
                f"values in [{weights.min()}, {weights.max()}], sum {weights.sum()}",
            )
        )
    return weights


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of samples of true class i predicted as class j; its diagonal over its
    row sums is each class's accuracy."""
    truth = np.asarray(y_true, dtype=np.intp).ravel()
    guess = np.asarray(y_pred, dtype=np.intp).ravel()
    flat = np.bincount(truth * n_classes + guess, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)
