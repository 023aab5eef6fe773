"""Loss functions (notes §1.2, §1.3, §1.7, §1.8, §3.2.3, §3.3.4).

``forward`` returns one loss per sample; ``calculate`` their mean (the reported data loss);
``backward`` the gradient of that mean, ∂L/∂ŷ, already divided by the number of samples N
(and by the number of outputs J where the sample loss is a mean over outputs), so optimizers
see the same scale whatever the batch size (notes §1.7, §1.8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina._params import Interval, checked
from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, invalid

Array = np.ndarray

LOSSES: Registry[type[Loss]] = Registry("loss")

EPSILON = 1e-7  # predictions are clipped to [ε, 1 − ε] before log (notes §1.2, §1.7)


class Loss:
    """Base class. Subclasses define ``forward``, ``backward`` and ``prepare_targets``."""

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def calculate(self, y_pred: Array, y_true: Array) -> float:
        """The mean sample loss L = (1/N) Σᵢ Lᵢ."""
        return float(np.mean(self.forward(y_pred, y_true)))

    def prepare_targets(self, y: Array, n_outputs: int) -> Array:
        """Validate targets once before training; return them in the form ``forward`` uses."""
        return _regression_targets(y, n_outputs, type(self).__name__)

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)


@LOSSES.register("categorical_crossentropy")
class CategoricalCrossentropy(Loss):
    r"""Categorical cross-entropy ``Lᵢ = −Σⱼ yᵢⱼ log ŷᵢⱼ`` (notes §1.2, §3.2.3).

    With integer labels kᵢ (or one-hot rows) this is ``Lᵢ = −log ŷᵢ,ₖ``. ŷ is clipped to
    [1e−7, 1 − 1e−7] so log(0) never happens (notes §1.2).

    Backward (notes §1.3, §3.3.4): ``∂L/∂ŷᵢⱼ = −yᵢⱼ / ŷᵢⱼ / N``, with ŷ the clipped value.
    Fused with a Softmax before it (notes §1.3 "Softmax Cross-Entropy", §3.3.4):
    ``∂L/∂zᵢⱼ = (ŷᵢⱼ − yᵢⱼ) / N`` — see :meth:`backward_through_softmax`.

    Args:
        label_smoothing: α in [0, 1); the targets become ``(1 − α)·y + α/K`` for K classes
            (Szegedy et al. 2016; Keras's and PyTorch's ``label_smoothing``): the model is
            no longer pushed towards confidences of exactly 0 and 1. The formulas above
            hold with the smoothed y.
    """

    @checked(label_smoothing=Interval(float, 0, 1, closed="left"))
    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        if y_true.ndim == 1 and not self.label_smoothing:  # only the target's confidence
            correct = y_pred[np.arange(len(y_pred)), y_true]
            return -np.log(np.clip(correct, EPSILON, 1 - EPSILON))
        targets = self.targets(y_true, y_pred.shape[1], y_pred.dtype)
        return -np.sum(targets * np.log(np.clip(y_pred, EPSILON, 1 - EPSILON)), axis=1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        targets = self.targets(y_true, y_pred.shape[1], y_pred.dtype)
        return -targets / np.clip(y_pred, EPSILON, 1 - EPSILON) / len(y_pred)

    def backward_through_softmax(self, softmax_output: Array, y_true: Array) -> Array:
        """∂L/∂z = (ŷ − y)/N for z the Softmax inputs (notes §1.3): one subtraction."""
        n, classes = softmax_output.shape
        if y_true.ndim == 1:
            dz = softmax_output.copy()
            if self.label_smoothing:
                dz -= self.label_smoothing / classes
            dz[np.arange(n), y_true] -= 1 - self.label_smoothing
        else:
            dz = softmax_output - self.targets(y_true, classes, softmax_output.dtype)
        dz *= 1.0 / n
        return dz

    def targets(self, y_true: Array, n_classes: int, dtype: np.dtype) -> Array:
        """The (smoothed) target distribution per sample, (N, K)."""
        one_hot = _one_hot(y_true, n_classes, dtype)
        if not self.label_smoothing:
            return one_hot
        return one_hot * (1 - self.label_smoothing) + self.label_smoothing / n_classes

    def get_config(self) -> dict[str, Any]:
        return {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}

    def prepare_targets(self, y: Array, n_outputs: int) -> Array:
        if y.ndim == 2 and y.shape[1] == n_outputs and n_outputs > 1:
            if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
                raise InputError(
                    invalid(
                        "y",
                        "integer class labels or one-hot rows (one 1, the rest 0)",
                        "2-D targets that are not one-hot",
                        "pass integer labels of shape (n_samples,)",
                    )
                )
            return y
        return class_labels(y, n_outputs, "categorical cross-entropy")


@LOSSES.register("binary_crossentropy")
class BinaryCrossentropy(Loss):
    r"""Binary cross-entropy, averaged over the J outputs of a sample (notes §1.7, §3.2.3):

        Lᵢⱼ = −[yᵢⱼ log ŷᵢⱼ + (1 − yᵢⱼ) log(1 − ŷᵢⱼ)]      Lᵢ = (1/J) Σⱼ Lᵢⱼ

    (The notes' second line drops the minus on the second term — docs/formulas.md §21;
    this is the correct form.) ŷ is clipped to [1e−7, 1 − 1e−7].

    Backward (notes §1.7): ``∂L/∂ŷᵢⱼ = −(yᵢⱼ/ŷᵢⱼ − (1 − yᵢⱼ)/(1 − ŷᵢⱼ)) / J / N``, with ŷ
    the clipped value.
    """

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        clipped = np.clip(y_pred, EPSILON, 1 - EPSILON)
        losses = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped))
        return losses.mean(axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        clipped = np.clip(y_pred, EPSILON, 1 - EPSILON)
        n_samples, n_outputs = y_pred.shape
        return -(y_true / clipped - (1 - y_true) / (1 - clipped)) / (n_outputs * n_samples)

    def prepare_targets(self, y: Array, n_outputs: int) -> Array:
        y = _regression_targets(y, n_outputs, "binary cross-entropy")
        if not np.all((y >= 0) & (y <= 1)):
            raise InputError(
                invalid(
                    "y",
                    "targets in [0, 1] for binary cross-entropy",
                    f"values in [{y.min()}, {y.max()}]",
                    "pass 0/1 labels",
                )
            )
        return y


@LOSSES.register("mean_squared_error")
class MeanSquaredError(Loss):
    r"""Mean squared error ``Lᵢ = (1/J) Σⱼ (yᵢⱼ − ŷᵢⱼ)²`` (notes §1.8, §3.2.3).

    Backward (notes §1.8): ``∂L/∂ŷᵢⱼ = −2 (yᵢⱼ − ŷᵢⱼ) / J / N`` (§3.3.4's sign is a typo,
    docs/formulas.md §21).
    """

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        error = y_true - y_pred
        return np.mean(error * error, axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        n_samples, n_outputs = y_pred.shape
        return (-2.0 / (n_outputs * n_samples)) * (y_true - y_pred)


@LOSSES.register("mean_absolute_error")
class MeanAbsoluteError(Loss):
    r"""Mean absolute error ``Lᵢ = (1/J) Σⱼ |yᵢⱼ − ŷᵢⱼ|`` (notes §1.8, §3.2.3).

    Backward: ``∂L/∂ŷᵢⱼ = sign(ŷᵢⱼ − yᵢⱼ) / J / N``, 0 where ŷ = y (notes §1.8). The notes
    write sign(y − ŷ), which is ∂L/∂y; d|y − ŷ|/dŷ = −sign(y − ŷ) (checked numerically).
    """

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        return np.mean(np.abs(y_true - y_pred), axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        n_samples, n_outputs = y_pred.shape
        return np.sign(y_pred - y_true) / (n_outputs * n_samples)


def class_labels(y: Array, n_classes: int, purpose: str) -> Array:
    """Integer labels in [0, n_classes) as intp, or an InputError saying what is wrong."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(
            invalid(
                "y",
                f"integer class labels of shape (n_samples,) for {purpose}",
                f"shape {y.shape}",
                "pass one label per sample",
            )
        )
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.intp)
        else:
            raise InputError(
                invalid(
                    "y",
                    f"integer class labels for {purpose}",
                    f"dtype {y.dtype}",
                    "pass labels as integers 0..n_classes-1",
                )
            )
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise InputError(
            invalid(
                "y",
                f"labels in [0, {n_classes - 1}] (the output layer has {n_classes} outputs)",
                f"labels in [{y.min()}, {y.max()}]",
                "give the output layer one neuron per class, or re-encode the labels",
            )
        )
    return y.astype(np.intp, copy=False)


def _regression_targets(y: Array, n_outputs: int, purpose: str) -> Array:
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise InputError(
            invalid(
                "y",
                f"targets of shape (n_samples, {n_outputs}) for {purpose}",
                f"shape {y.shape}",
                "give the output layer one neuron per target column",
            )
        )
    return y


def _one_hot(y_true: Array, n_classes: int, dtype: np.dtype) -> Array:
    if y_true.ndim == 2:
        return y_true.astype(dtype, copy=False)
    one_hot = np.zeros((len(y_true), n_classes), dtype=dtype)
    one_hot[np.arange(len(y_true)), y_true] = 1
    return one_hot


def kind_of(loss: Loss) -> str | None:
    """The registry name of the loss, or of the registered loss it subclasses; else None."""
    for name, cls in LOSSES.items():
        if isinstance(loss, cls):
            return name
    return None


def get(loss: str | Loss) -> Loss:
    """A loss instance from a registered name (``"categorical_crossentropy"``) or instance."""
    if isinstance(loss, Loss):
        return loss
    if not isinstance(loss, str):
        raise ConfigError(invalid("loss", f"a Loss or one of {sorted(LOSSES)}", repr(loss)))
    return LOSSES.lookup(loss)()
