"""One training step shown layer by layer (``Model.trace``, ``lamina trace``): the inputs
and outputs of every step of the execution plan, the loss, ∂L/∂outputs of every step, each
parameter's gradient and the optimizer's update — each with its formula and the notes'
section (notes §1.2, §1.3, §1.4, §3.2, §3.3).

The step is the model's own ``train_step`` (the same forward, fused Softmax gradient,
backward and optimizer code as ``fit``), watched through the execution plan's observers
and by recording the gradient each backward step receives. It runs inside
``engine.rewind.unchanged``: the optimizer steps a copy of itself, and the parameters,
gradients, layer state and Generators are put back afterwards, so tracing leaves the model
bit for bit as it was; ``updated`` holds θ as the step would have left it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.engine.fusion import PooledConvolution
from lamina.engine.normalized_pooling import NormalizedPooledConvolution
from lamina.engine.plan import InPlaceActivation, LinearStep, Step
from lamina.engine.rewind import unchanged
from lamina.engine.tiled_normalized_pooling import TiledNormalizedPooling
from lamina.errors import NotCompiledError
from lamina.layers.activations import Linear, ReLU, Sigmoid, Softmax, Tanh
from lamina.layers.conv import Conv2D
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.pooling import MaxPool2D
from lamina.layers.reshape import Flatten
from lamina.losses import BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError
from lamina.optimizers import SGD, Adagrad, Adam, RMSprop

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray

# (symbol of the output, forward formula) per kind of step
FORWARD: dict[type, tuple[str, str]] = {
    Dense: ("z", "z = X·W + b  (notes §1.2, §3.2.1)"),
    Conv2D: ("z", "z = X ⋆ K + b  (notes §1.11)"),
    PooledConvolution: ("z", "z = maxpool(X ⋆ K + b)  (notes §1.11)"),
    NormalizedPooledConvolution: (
        "a",
        "a = maxpool(γ·(X ⋆ K + b − μ)/√(σ² + ε) + β)  (notes §1.11; docs/formulas.md §13)",
    ),
    ReLU: ("a", "a = max(0, z)  (notes §1.2, §3.2.2)"),
    Sigmoid: ("a", "a = 1 / (1 + e⁻ᶻ)  (notes §1.7, §3.2.2)"),
    Tanh: ("a", "a = tanh z  (docs/formulas.md §3)"),
    Linear: ("a", "a = z  (notes §3.2.2)"),
    Softmax: ("ŷ", "ŷ = eᶻ / Σₖ eᶻᵏ  (notes §1.2, §3.2.2)"),
    Dropout: ("a", "a = X ⊙ r / (1 − p)  (notes §1.6 Dropout)"),
    MaxPool2D: ("a", "a = max over each window  (notes §1.11)"),
    Flatten: ("a", "a = X reshaped to rows  (notes §1.9)"),
}
# ∂L/∂inputs of a step from δ = ∂L/∂outputs
BACKWARD: dict[type, str] = {
    Dense: "δ·Wᵀ  (notes §3.3.1)",
    Conv2D: "δ ⋆ K flipped, back onto the windows  (notes §1.11)",
    ReLU: "δ ⊙ [z > 0]  (notes §1.3, §3.3.3)",
    Sigmoid: "δ ⊙ a(1 − a)  (notes §3.3.3)",
    Tanh: "δ ⊙ (1 − a²)  (docs/formulas.md §3)",
    Linear: "δ  (notes §3.3.3)",
    Softmax: "ŷ ⊙ (δ − Σⱼ δⱼŷⱼ)  (notes §1.3, §3.3.3)",
    Dropout: "δ ⊙ r / (1 − p)  (notes §1.6)",
    MaxPool2D: "δ to each window's maximum  (notes §1.11)",
    NormalizedPooledConvolution: (
        "δ to each window's maximum, then BatchNorm's and the convolution's backward  (notes §1.11)"
    ),
    Flatten: "δ reshaped back  (notes §1.9)",
}
FORWARD[TiledNormalizedPooling] = FORWARD[NormalizedPooledConvolution]
BACKWARD[TiledNormalizedPooling] = BACKWARD[NormalizedPooledConvolution]
PARAMETER: dict[tuple[type, str], str] = {
    (Dense, "weights"): "∂L/∂W = Xᵀ·δ  (notes §3.3.2)",
    (Dense, "biases"): "∂L/∂b = Σₙ δₙ  (notes §3.3.2)",
    (Conv2D, "kernels"): "∂L/∂K = colsᵀ·δ  (notes §1.11; docs/formulas.md §10)",
    (Conv2D, "biases"): "∂L/∂b = Σₙ,ᵢ,ⱼ δ  (notes §1.11)",
}
LOSS: dict[type, tuple[str, str]] = {  # (L, ∂L/∂ŷ)
    CategoricalCrossentropy: (
        "L = −(1/N) Σᵢ Σⱼ yᵢⱼ log ŷᵢⱼ  (notes §1.2, §3.2.3)",
        "∂L/∂ŷ = −y / (N·ŷ)  (notes §3.3.4)",
    ),
    BinaryCrossentropy: (
        "L = −(1/N) Σ [y log ŷ + (1 − y) log(1 − ŷ)]  (notes §1.7, §3.2.3)",
        "∂L/∂ŷ = −(y/ŷ − (1 − y)/(1 − ŷ)) / (N·J)  (notes §3.3.4)",
    ),
    MeanSquaredError: (
        "L = (1/N) Σᵢ mean (yᵢ − ŷᵢ)²  (notes §1.8, §3.2.3)",
        "∂L/∂ŷ = −2(y − ŷ) / (N·J)  (notes §3.3.4)",
    ),
}
FUSED = "(ŷ − y) / N  (Softmax + cross-entropy, notes §1.3, §3.3.4)"
UPDATE: dict[type, str] = {
    SGD: "Δθ = −η·∂L/∂θ  (notes §1.4, §3.4.1)",
    Adagrad: "Δθ = −η·∇θ / (√(Σ∇θ²) + ε)  (notes §1.4, §3.4.3)",
    RMSprop: "Δθ = −η·∇θ / (√v + ε), v = ρv + (1 − ρ)∇θ²  (notes §1.4, §3.4.5)",
    Adam: "Δθ = −η·m̂ / (√v̂ + ε)  (notes §1.4, §3.4.6)",
}
MOMENTUM = "v = γv + (1 − d)·η·∂L/∂θ, Δθ = −v  (notes §1.4, §3.4.2)"


class Trace(dict[str, Any]):
    """What one training step computed, as a dict of full arrays — ``"inputs"``,
    ``"targets"``, ``"steps"`` (per plan step: ``name``, ``kind``, ``formula``, ``inputs``,
    ``outputs``, ``grad_outputs`` ∂L/∂outputs with ``grad_formula``), ``"loss"``
    (``value``, ``per_sample``, ``formula``, ``gradient``), ``"parameters"`` (per
    parameter: ``name``, ``value``, ``gradient`` with ``gradient_formula``, ``update`` Δθ
    with ``update_formula``, ``updated`` θ + Δθ), ``"optimizer"`` and ``"applied"``
    (False: the model was left unchanged) — and :meth:`table`, the same for a terminal,
    values truncated."""

    def table(self, values: int = 4) -> str:
        """One line per quantity: section, step, quantity, formula, shape and the first
        ``values`` values (flattened)."""
        rows = [("", "(input)", "X", "the batch", self["inputs"])]
        for step in self["steps"]:
            rows.append(("forward", step["name"], step["symbol"], step["formula"], step["outputs"]))
        loss = self["loss"]
        rows.append(("loss", "", "L", loss["formula"], np.asarray(loss["value"])))
        for step in reversed(self["steps"]):
            if step["grad_outputs"] is not None:
                quantity = f"∂L/∂{step['symbol']}"
                rows.append(
                    ("backward", step["name"], quantity, step["grad_formula"], step["grad_outputs"])
                )
        for parameter in self["parameters"]:
            name, formula = parameter["name"], parameter["gradient_formula"]
            rows.append(("gradient", name, "∂L/∂θ", formula, parameter["gradient"]))
        for parameter in self["parameters"]:
            name, formula = parameter["name"], parameter["update_formula"]
            rows.append(("update", name, "Δθ", formula, parameter["update"]))
        header = ("section", "step", "quantity", "formula", "shape", "values")
        cells = [(*row[:4], str(tuple(row[4].shape)), _values(row[4], values)) for row in rows]
        widths = [max(len(r[i]) for r in [header, *cells]) for i in range(5)]
        lines = [self["title"], ""]
        for cell in [header, *cells]:
            lines.append(
                "  ".join(text.ljust(width) for text, width in zip(cell, widths, strict=False))
                + "  "
                + cell[5]
            )
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def trace(model: Model, X: ArrayLike, y: ArrayLike) -> Trace:
    """One training step of ``model`` on the batch (X, y), shown layer by layer.

    X and y are raw, as ``fit`` takes them; the model's preprocessing must be fitted (or
    absent). The step runs on the model and is then undone (``engine.rewind.unchanged``):
    weights, optimizer state and Generators are left bit for bit as they were."""
    if model.loss is None or model.optimizer is None:
        raise NotCompiledError(
            "Model.trace() needs a loss and an optimizer, but the model is not compiled. "
            "Fix: call model.compile(loss=..., optimizer=...) first."
        )
    inputs, targets = model.prepare_data(X, y)
    plan = model.plan
    outputs: list[Array] = []
    recorders = [_Recorder(step) for step in plan.backward_steps]
    steps = plan.backward_steps

    def observe(name: str, layer: Any, values: Array) -> None:
        outputs.append(values.copy())  # the next step may overwrite it in place

    with unchanged(model):
        before = [theta.copy() for _, theta, _ in model.parameters()]
        plan.observers.append(observe)
        plan.backward_steps = list(recorders)
        try:
            _, sample_losses, _ = model.train_step(inputs, targets)
        finally:
            plan.observers.remove(observe)
            plan.backward_steps = steps
        optimizer = model.optimizer
        parameters = [
            _parameter(model, key, theta_0, theta, grad, optimizer)
            for (key, theta, grad), theta_0 in zip(model.parameters(), before, strict=True)
        ]
    loss_formula, loss_gradient = LOSS.get(
        type(model.loss), (_first_line(model.loss), f"∂L/∂ŷ by {type(model.loss).__name__}")
    )
    if plan.fused_softmax:
        loss_gradient = FUSED
    grad_formulas = [_backward_formula(step) for step in plan.steps[1:]]
    grad_formulas.append(loss_gradient)
    if plan.fused_softmax:
        grad_formulas[-2] = loss_gradient
    rows = []
    for index, step in enumerate(plan.steps):
        symbol, formula = _forward_formula(step)
        recorded = recorders[index].grad_outputs if index < len(recorders) else None
        rows.append(
            {
                "name": plan.step_names[index],
                "kind": type(_inner(step)).__name__,
                "symbol": symbol,
                "formula": formula,
                "inputs": inputs if index == 0 else outputs[index - 1],
                "outputs": outputs[index],
                "grad_outputs": recorded,
                "grad_formula": grad_formulas[index] if recorded is not None else None,
            }
        )
    penalty = model.regularization_penalty()
    value = float(sample_losses.mean()) + penalty
    rate = model.optimizer.current_learning_rate
    batch = f"{len(inputs)} sample{'s' if len(inputs) != 1 else ''}"
    title = (
        f"One training step of {model!r} on {batch}: loss {type(model.loss).__name__}, "
        f"optimizer {type(model.optimizer).__name__} (η = {rate:.3g}). "
        "The model was left unchanged."
    )
    return Trace(
        title=title,
        inputs=inputs,
        targets=targets,
        steps=rows,
        loss={
            "value": value,
            "per_sample": sample_losses,
            "formula": loss_formula,
            "gradient": loss_gradient,
        },
        parameters=parameters,
        optimizer={"class": type(model.optimizer).__name__, "learning_rate": rate},
        applied=False,
    )


class _Recorder:
    """A backward step that keeps a copy of the gradient it receives (∂L/∂its outputs)."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.grad_outputs: Array | None = None

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self.step.forward(inputs, training=training)

    def backward(self, dvalues: Array) -> Array | None:
        self.grad_outputs = dvalues.copy()  # an in-place backward overwrites it
        return self.step.backward(dvalues)


def _parameter(
    model: Model, key: str, theta_0: Array, theta: Array, grad: Array, optimizer: Any
) -> dict[str, Any]:
    layer_name, param = key.rsplit("/", 1)
    layer = next(layer for layer in model.layers if layer.name == layer_name)
    formula = PARAMETER.get((type(layer), param), f"∂L/∂θ by {type(layer).__name__}.backward")
    if param in layer.regularizers:
        formula += " + the L1/L2 term (notes §1.6)"
    if isinstance(optimizer, SGD) and optimizer.momentum:
        update_formula = MOMENTUM
    else:
        update_formula = next(
            (text for kind, text in UPDATE.items() if isinstance(optimizer, kind)),
            _first_line(optimizer),
        )
    return {
        "name": key,
        "value": theta_0,
        "gradient": grad.copy(),
        "gradient_formula": formula,
        "update": theta - theta_0,
        "update_formula": update_formula,
        "updated": theta.copy(),
    }


def _inner(step: Any) -> Any:
    """The layer or activation a plan step runs."""
    if isinstance(step, LinearStep):
        return step.layer
    if isinstance(step, InPlaceActivation):
        return step.activation
    return step


def _forward_formula(step: Any) -> tuple[str, str]:
    inner = _inner(step)
    return FORWARD.get(type(inner), ("a", _first_line(inner)))


def _backward_formula(step: Any) -> str:
    """How ∂L/∂(inputs of ``step``) follows from δ = ∂L/∂(its outputs)."""
    inner = _inner(step)
    return BACKWARD.get(type(inner), f"by {type(inner).__name__}.backward")


def _first_line(obj: Any) -> str:
    doc = type(obj).__doc__ or type(obj).__name__
    return doc.strip().splitlines()[0].rstrip(".")


def _values(array: Array, count: int) -> str:
    """The first ``count`` values of ``array`` (flattened), 4 significant digits."""
    flat = np.asarray(array).ravel()
    if flat.size == 1 and np.asarray(array).ndim == 0:
        return f"{flat[0]:.4g}"
    shown = ", ".join(f"{value + 0.0:.4g}" for value in flat[:count].tolist())  # no -0
    return f"[{shown}{', …' if flat.size > count else ''}]"
