"""Numerical gradient checking, for lamina's own components and for users' custom layers.

Analytic gradients (each ``backward``) are compared with fourth-order central differences
in float64,

    ∂f/∂xᵢ ≈ [f(x − 2h eᵢ) − 8 f(x − h eᵢ) + 8 f(x + h eᵢ) − f(x + 2h eᵢ)] / 12h,

whose truncation error is O(h⁴). The error per element is
``|a − n| / max(|a|, |n|, floor)``, with ``floor`` = max(1e−3 · the tensor's largest numerical
gradient, 1e−12), so entries that are zero up to rounding do not produce false alarms.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from lamina.engine import sequences
from lamina.errors import GradcheckError, InputError
from lamina.layers.base import Layer
from lamina.losses import Loss
from lamina.model import Model

Array = np.ndarray


@dataclass
class GradcheckReport:
    """Largest relative error per checked tensor (``"inputs"``, ``"weights"``, ...)."""

    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = 1e-6

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error < self.tolerance

    def __str__(self) -> str:
        rows = ", ".join(f"{name}: {error:.2e}" for name, error in self.errors.items())
        return f"gradcheck {'passed' if self.passed else 'FAILED'} ({rows}; tol {self.tolerance})"


def gradcheck(
    target: Layer | Loss | Model,
    inputs: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    step: float = 1e-5,
    tolerance: float = 1e-6,
    seed: int = 0,
    raise_on_failure: bool = True,
    mask: ArrayLike | None = None,
) -> GradcheckReport:
    """Compare ``backward`` with numerical derivatives, in float64, on a copy of ``target``.

    Args:
        target: a Layer (checks ∂/∂inputs and every parameter, L1/L2 terms included, of
            f = Σ outputs ⊙ G + penalty with a fixed random G, in training mode), a Loss
            (∂L/∂ŷ of the mean loss at ``inputs`` = ŷ), or a compiled Model (every parameter
            of its loss + penalty, through its real backward, fused Softmax included).
        inputs: a batch for the layer or model; the predictions ŷ for a loss.
        targets: y, for a loss or a model.
        step: the finite-difference step h.
        tolerance: the largest relative error that passes.
        seed: seeds G and any randomness (a dropout mask is redrawn identically per call).
        mask: for a layer that ``uses_mask``, the (N, T) padding mask given to its forward
            (True at real steps). A layer with ``integer_inputs`` (Embedding) gets its ids
            as they are and has no ∂/∂inputs check.
    """
    integer_inputs = isinstance(target, Layer) and target.integer_inputs
    x = np.array(inputs, dtype=None if integer_inputs else np.float64)
    y = None if targets is None else np.asarray(targets)
    if y is not None and y.dtype.kind == "f":
        y = y.astype(np.float64)
    if isinstance(target, Loss):
        if y is None:
            raise InputError("gradcheck of a loss needs `targets` (y) next to `inputs` (ŷ)")
        checks = _loss_checks(target, x, y)
    elif isinstance(target, Model):
        if y is None:
            raise InputError("gradcheck of a model needs `targets` (y)")
        checks = _model_checks(target, x, y)
    elif isinstance(target, Layer):
        if mask is not None and not target.uses_mask:
            raise InputError(f"{target.describe()} takes no mask; call gradcheck without one")
        checks = _layer_checks(target, x, seed, None if mask is None else np.asarray(mask))
    else:
        raise InputError(f"gradcheck takes a Layer, Loss or Model, received {type(target)}")
    report = GradcheckReport(tolerance=tolerance)
    for name, (array, analytic, objective) in checks.items():
        numerical = _numerical_gradient(objective, array, step)
        report.errors[name] = _relative_error(analytic, numerical)
    if raise_on_failure and not report.passed:
        raise GradcheckError(f"{type(target).__name__}: {report}")
    return report


Check = tuple[Array, Array, Callable[[], float]]  # (array perturbed in place, analytic, f)


def _layer_checks(original: Layer, x: Array, seed: int, mask: Array | None) -> dict[str, Check]:
    layer = copy.deepcopy(original).astype(np.float64)
    layer.input_grad = not layer.integer_inputs
    rng_state = layer.rng.bit_generator.state
    extra = {} if mask is None else {"mask": mask}

    def outputs() -> Array:
        layer.rng.bit_generator.state = rng_state  # the same dropout mask every call
        return layer.forward(x, training=True, **extra)

    weights = np.random.default_rng(seed).standard_normal(outputs().shape)

    def objective() -> float:
        return float(np.sum(outputs() * weights)) + layer.regularization_penalty()

    outputs()
    dinputs = layer.backward(weights)
    checks: dict[str, Check] = {}
    if not layer.integer_inputs:
        assert dinputs is not None
        checks["inputs"] = (x, np.array(dinputs), objective)
    analytic = {key: grad.copy() for key, grad in layer.grads.items()}
    for key, theta in layer.params.items():
        checks[key] = (theta, analytic[key], objective)
    return checks


def _loss_checks(loss: Loss, y_pred: Array, y_true: Array) -> dict[str, Check]:
    analytic = loss.backward(y_pred, y_true)
    return {"y_pred": (y_pred, analytic, lambda: loss.calculate(y_pred, y_true))}


def _model_checks(original: Model, x: Array, y: Array) -> dict[str, Check]:
    model = copy.deepcopy(original)
    for layer in model.layers:
        layer.astype(np.float64)
    model.dtype = np.dtype(np.float64)
    assert model.loss is not None
    x_checked, y_checked = model.prepare_data(x, y)
    loss = model.loss
    states = [layer.rng.bit_generator.state for layer in model.layers]

    def objective() -> float:
        for layer, state in zip(model.layers, states, strict=True):
            layer.rng.bit_generator.state = state
        outputs = model.forward(x_checked, training=True)  # a sequence's steps as rows:
        y_pred, y_rows, steps = sequences.rows(outputs, y_checked, model.plan.output_mask)
        sample_losses = sequences.reduce(loss.forward(y_pred, y_rows), steps)
        return float(np.mean(sample_losses)) + model.regularization_penalty()

    objective()
    for layer, state in zip(model.layers, states, strict=True):
        layer.rng.bit_generator.state = state
    model.backward(model.forward(x_checked, training=True), y_checked)
    checks: dict[str, Check] = {}
    for layer in model.layers:
        for key, theta in layer.params.items():
            checks[f"{layer.name}/{key}"] = (theta, layer.grads[key].copy(), objective)
    return checks


def _numerical_gradient(objective: Callable[[], float], array: Array, h: float) -> Array:
    gradient = np.zeros_like(array)
    flat, flat_gradient = array.reshape(-1), gradient.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        values = []
        for offset in (-2 * h, -h, h, 2 * h):
            flat[i] = original + offset
            values.append(objective())
        flat[i] = original
        f_m2, f_m1, f_p1, f_p2 = values
        flat_gradient[i] = (f_m2 - 8 * f_m1 + 8 * f_p1 - f_p2) / (12 * h)
    return gradient


def _relative_error(analytic: Array, numerical: Array) -> float:
    if analytic.shape != numerical.shape:
        raise GradcheckError(
            f"analytic gradient has shape {analytic.shape}, expected {numerical.shape}"
        )
    floor = max(1e-3 * float(np.max(np.abs(numerical), initial=0.0)), 1e-12)
    denominator = np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), floor)
    return float(np.max(np.abs(analytic - numerical) / denominator, initial=0.0))
