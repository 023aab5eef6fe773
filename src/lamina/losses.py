"""Loss functions (notes §1.2, §1.3, §1.7, §1.8, §3.2.3, §3.3.4).

``forward`` returns one loss per sample; ``calculate`` their mean (the reported data loss);
``backward`` the gradient of that mean, ∂L/∂ŷ, already divided by the number of samples N
(and by the number of outputs J where the sample loss is a mean over outputs), so optimizers
see the same scale whatever the batch size (notes §1.7, §1.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lamina._params import Interval, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, invalid

Array = np.ndarray

LOSSES: Registry[type[Loss]] = Registry("loss")

EPSILON = 1e-7  # predictions are clipped to [ε, 1 − ε] before log (notes §1.2, §1.7)


class Loss:
    r"""Base class of every loss: ``L = (1/N) Σᵢ Lᵢ``, the mean of per-sample losses Lᵢ
    (notes §1.2, §3.2.3), and its gradient ∂L/∂ŷ (notes §1.3, §3.3.4).

    A custom loss derives from it, defines ``forward``, ``backward`` (and
    ``prepare_targets`` if the default does not fit), and is registered with
    ``@lamina.register`` so that models using it save and load;
    ``lamina.gradcheck(loss, y_pred, y_true)`` compares its ``backward`` with numerical
    derivatives of :meth:`calculate`. For example, the mean fourth power of the error::

        @lamina.register
        class MeanQuartic(Loss):  # Lᵢ = (1/J) Σⱼ (ŷᵢⱼ − yᵢⱼ)⁴;  ∂L/∂ŷᵢⱼ = 4 (ŷᵢⱼ − yᵢⱼ)³ / J / N
            def forward(self, y_pred, y_true):
                return np.mean((y_pred - y_true) ** 4, axis=-1)

            def backward(self, y_pred, y_true):
                n_samples, n_outputs = y_pred.shape
                return 4 * (y_pred - y_true) ** 3 / (n_outputs * n_samples)

    The contract:

    - ``forward(y_pred, y_true) -> (N,)``: one loss Lᵢ per sample, not their mean: the
      model averages them, weighted by sample weights and over batches of different sizes.
      ``y_pred`` is the last layer's output (N, …); ``y_true`` what :meth:`prepare_targets`
      returned, cast to the model's dtype (integer class labels stay integers).
    - ``backward(y_pred, y_true) -> ∂L/∂ŷ``, shaped like ``y_pred``, of the *mean* L:
      ``(1/N) ∂Lᵢ/∂ŷᵢ``, so it includes the 1/N — and the 1/J where Lᵢ is a mean over J
      outputs — and optimizers see the same scale whatever the batch size (notes §1.7,
      §1.8; docs/conventions.md). Return a new array in ``y_pred``'s dtype: the layers
      below may overwrite it in place. Leave both arguments unchanged.
    - ``prepare_targets(y, n_outputs) -> y``: called once per ``fit``/``evaluate`` with
      the raw targets and the size of the last layer's output; raise an ``InputError``
      saying what is wrong, or return the targets in the form ``forward`` takes. The
      default takes (N,) or (N, n_outputs) values and makes (N,) into (N, 1).
    - ``get_config()`` returns the constructor's arguments, JSON-able (``{}`` for none):
      a model file stores it and ``from_config`` (``cls(**config)``) rebuilds the loss.
      Declare the arguments' constraints with ``lamina._params.checked``.
    - ``kind``: ``"regression"`` for a loss of numerical targets, so that
      ``compile(metrics="auto")`` reports MAE and ``"accuracy"`` means the notes' regression
      accuracy (§1.8); None (the default) for any other loss.
    """

    kind: str | None = None

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        """The per-sample losses Lᵢ, shape (N,)."""
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        """∂L/∂ŷ of the mean loss L = (1/N) Σᵢ Lᵢ (the 1/N included), shaped like ŷ."""
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


@LOSSES.register("categorical_crossentropy", aliases=("cce", "sparse_categorical_crossentropy"))
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


@LOSSES.register("binary_crossentropy", aliases=("bce",))
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


@LOSSES.register("mean_squared_error", aliases=("mse",))
class MeanSquaredError(Loss):
    r"""Mean squared error ``Lᵢ = (1/J) Σⱼ (yᵢⱼ − ŷᵢⱼ)²`` (notes §1.8, §3.2.3).

    Backward (notes §1.8): ``∂L/∂ŷᵢⱼ = −2 (yᵢⱼ − ŷᵢⱼ) / J / N`` (§3.3.4's sign is a typo,
    docs/formulas.md §21).
    """

    kind = "regression"

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        error = y_true - y_pred
        return np.mean(error * error, axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        n_samples, n_outputs = y_pred.shape
        return (-2.0 / (n_outputs * n_samples)) * (y_true - y_pred)


@LOSSES.register("mean_absolute_error", aliases=("mae",))
class MeanAbsoluteError(Loss):
    r"""Mean absolute error ``Lᵢ = (1/J) Σⱼ |yᵢⱼ − ŷᵢⱼ|`` (notes §1.8, §3.2.3).

    Backward: ``∂L/∂ŷᵢⱼ = sign(ŷᵢⱼ − yᵢⱼ) / J / N``, 0 where ŷ = y (notes §1.8). The notes
    write sign(y − ŷ), which is ∂L/∂y; d|y − ŷ|/dŷ = −sign(y − ŷ) (checked numerically).
    """

    kind = "regression"

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        return np.mean(np.abs(y_true - y_pred), axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        n_samples, n_outputs = y_pred.shape
        return np.sign(y_pred - y_true) / (n_outputs * n_samples)


@LOSSES.register("gaussian_nll")
class GaussianNLL(Loss):
    r"""Gaussian negative log-likelihood of a mean-and-variance head (notes §1.8 regression,
    §2.2 *Confidence*: "the level of uncertainty associated with the predicted numerical
    value"; Nix & Weigend 1994, Lakshminarayanan et al. 2017):

        ŷᵢ = (μᵢ₁ … μᵢⱼ, sᵢ₁ … sᵢⱼ)      σ²ᵢⱼ = softplus(sᵢⱼ) + ε = log(1 + e^{sᵢⱼ}) + ε
        Lᵢ = (1/J) Σⱼ ½ [log σ²ᵢⱼ + (yᵢⱼ − μᵢⱼ)² / σ²ᵢⱼ]

    The model's last layer has 2·J outputs for J targets: the first J are the means μ, the
    last J the raw variances s (a linear output: no activation). Lᵢ is the negative log of
    the normal density N(y; μ, σ²) averaged over the J targets, without its constant
    ½ log 2π (as PyTorch's ``GaussianNLLLoss(full=False)``): the gradient is the same, and
    the reported loss can go below 0 when σ is small.

    Why softplus and not exp(s): with σ² = e^s a sample the model is too sure about
    contributes ½ r² e^{−s} to the loss, growing exponentially as s falls, and a few such
    samples blow up a step; softplus grows linearly, keeps σ² ≥ ε, and is the choice of
    the deep-ensembles paper (ε there 1e−6, as here).

    Backward, with r = y − μ and sigmoid(s) = 1/(1 + e^{−s}) = d softplus(s)/ds:
        ∂L/∂μᵢⱼ = −rᵢⱼ / σ²ᵢⱼ / J / N
        ∂L/∂sᵢⱼ = ½ (1 − r²ᵢⱼ / σ²ᵢⱼ) · sigmoid(sᵢⱼ) / σ²ᵢⱼ / J / N

    :meth:`mean_std` turns predictions into (μ, σ); ``μ ± 1.96 σ`` is a 95 % interval;
    :meth:`mixture` combines several (an ensemble's members, Monte-Carlo dropout samples).

    Args:
        epsilon: ε > 0, the smallest variance, which keeps 1/σ² finite.
    Shape:
        y_pred (N, 2·J), y_true (N, J) (or (N,) for J = 1) -> per-sample losses (N,)
    """

    kind = "regression"

    @checked(epsilon=rule(Interval(float, 0, closed="neither"), fix="use epsilon=1e-6"))
    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = epsilon

    def variance(self, s: Array) -> Array:
        """σ² = softplus(s) + ε, computed without overflow for large s."""
        return np.logaddexp(0, s) + s.dtype.type(self.epsilon)

    def forward(self, y_pred: Array, y_true: Array) -> Array:
        mu, s = _halves(y_pred)
        variance = self.variance(s)
        r = y_true - mu
        return 0.5 * np.mean(np.log(variance) + r * r / variance, axis=-1)

    def backward(self, y_pred: Array, y_true: Array) -> Array:
        mu, s = _halves(y_pred)
        variance = self.variance(s)
        r = y_true - mu
        n_samples, n_outputs = mu.shape
        scale = y_pred.dtype.type(1.0 / (n_outputs * n_samples))
        dmu = -r / variance
        sigmoid = 0.5 * (1 + np.tanh(0.5 * s))  # 1/(1 + e^{−s}), without overflow
        ds = 0.5 * (1 - r * r / variance) * sigmoid / variance
        return np.concatenate([dmu, ds], axis=1) * scale

    def mean_std(self, y_pred: Array) -> tuple[Array, Array]:
        """(μ, σ) of predictions ``y_pred`` (N, 2·J): the predicted mean and standard
        deviation of each target, both (N, J)."""
        y_pred = np.asarray(y_pred)
        if y_pred.ndim != 2 or y_pred.shape[1] % 2:
            raise InputError(
                invalid(
                    "y_pred",
                    "predictions of shape (n_samples, 2·J): J means, then J raw variances",
                    f"shape {y_pred.shape}",
                    "pass what model.predict returns for a GaussianNLL model",
                )
            )
        mu, s = _halves(y_pred)
        return mu.copy(), np.sqrt(self.variance(s))

    @staticmethod
    def mixture(pairs: Sequence[tuple[Array, Array]]) -> tuple[Array, Array]:
        """(μ*, σ*) of the equally weighted mixture of k normals N(μᵢ, σᵢ²) — the members of
        an ensemble, or Monte-Carlo dropout samples, each as :meth:`mean_std` gives it:

            μ* = (1/k) Σᵢ μᵢ
            σ*² = (1/k) Σᵢ (σᵢ² + μᵢ²) − μ*² = (1/k) Σᵢ σᵢ² + (1/k) Σᵢ (μᵢ − μ*)²

        computed in the last form, which cannot cancel to a negative variance."""
        means = np.stack([mu for mu, _ in pairs])
        mean = means.mean(axis=0)
        variance = np.mean([sigma * sigma for _, sigma in pairs], axis=0)
        variance += ((means - mean) ** 2).mean(axis=0)
        return mean, np.sqrt(variance)

    def prepare_targets(self, y: Array, n_outputs: int) -> Array:
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or n_outputs != 2 * y.shape[1]:
            fix = (
                f"give the last layer {2 * y.shape[1]} neurons and no activation"
                if y.ndim == 2
                else "pass targets of shape (n_samples, J)"
            )
            raise InputError(
                invalid(
                    "y",
                    "J target columns for a last layer of 2·J outputs (J means, then J raw "
                    "variances) for the Gaussian negative log-likelihood",
                    f"targets of shape {y.shape} for {n_outputs} outputs",
                    fix,
                )
            )
        return y

    def get_config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}


def _halves(y_pred: Array) -> tuple[Array, Array]:
    """(μ, s): the first and the second half of the outputs."""
    n_targets = y_pred.shape[1] // 2
    return y_pred[:, :n_targets], y_pred[:, n_targets:]


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
