"""From the data a user passes to what the layers and the loss take: inputs checked,
preprocessed (notes §1.5, §1.9: the transformation fitted on the training data only),
cast to the model's dtype and shape-checked; targets checked, put in the loss's form and,
for a regression with ``target_preprocessing``, scaled as the model learns them.

A model with ``target_preprocessing`` learns scaled targets t = T(y) — the loss and its
gradient are in those units — while ``predict`` returns T⁻¹(ŷ) and the metrics compare
T⁻¹(ŷ) with y, in the data's own units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.engine import sequences
from lamina.engine.sequences import sequence_targets
from lamina.errors import ConfigError, NotCompiledError, invalid
from lamina.losses import CategoricalCrossentropy
from lamina.validation import cast_samples, check_finite, numeric_samples, targets_for

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray


def model_inputs(
    model: Model, X: ArrayLike, name: str, *, finite: bool, raw_checked: bool = False
) -> Array:
    """Model inputs from raw X (see :meth:`lamina.model.Model.prepare_inputs`).
    ``raw_checked``: X has passed :func:`~lamina.validation.numeric_samples`' finiteness
    check already (``fit`` checks its arrays before splitting them), so it is not scanned a
    second time; what the preprocessing makes of it still is, with ``finite``."""
    array = numeric_samples(X, name, finite=finite and not raw_checked)
    if model.preprocessing is not None:
        require_fitted(model.preprocessing, "evaluate or predict")
        array = np.asarray(model.preprocessing.transform(array))
    if not model.layers[0].integer_inputs:  # ids (Embedding) stay exact, whatever their size
        array = cast_samples(array, model.dtype, name)
    if model.preprocessing is not None and finite:
        check_finite(array, f"{name} after preprocessing")
    model.output_shape(array.shape[1:])
    model.layers[0].check_data(array, name)
    return array


def model_targets(model: Model, y: ArrayLike, inputs: Array, names: tuple[str, str]) -> Array:
    """Targets checked against the inputs and put in the loss's form (labels or one-hot,
    the model's dtype), scaled by the target preprocessing once it is fitted."""
    targets = loss_targets(model, targets_for(y, len(inputs), names), inputs, names[1])
    scaling = model.target_preprocessing
    if scaling is not None and getattr(scaling, "fitted", True):
        targets = by_rows(scaling.transform, targets)
    if targets.dtype.kind not in "iu" or not isinstance(model.loss, CategoricalCrossentropy):
        targets = targets.astype(model.dtype, copy=False)  # no float64 upcasts in the loss
    return targets


def fit_target_preprocessing(model: Model, y: Array, inputs: Array) -> None:
    """Fit the target preprocessing on the training targets, if it is not fitted yet."""
    scaling = model.target_preprocessing
    if scaling is None or getattr(scaling, "fitted", False):
        return
    targets = loss_targets(model, targets_for(y, len(inputs), ("X", "y")), inputs, "y")
    scaling.fit(targets.reshape(-1, *targets.shape[2:]) if targets.ndim > 2 else targets)


def loss_targets(model: Model, targets: Array, inputs: Array, name: str) -> Array:
    """Targets in the loss's form (``Loss.prepare_targets``). For a sequence output
    (N, T, K), one target per step: (N, T) or (N, T, K), checked and prepared as N·T rows
    (``engine/sequences.py``), returned with the time axis."""
    output_shape = model.output_shape(inputs.shape[1:])
    assert model.loss is not None and output_shape[-1] is not None
    if len(output_shape) != 2:
        return model.loss.prepare_targets(targets, output_shape[-1])
    rows = sequence_targets(targets, output_shape, name)
    prepared = model.loss.prepare_targets(rows, output_shape[-1])
    return prepared.reshape(len(targets), -1, *prepared.shape[1:])


def by_rows(transform: Any, values: Array) -> Array:
    """``transform`` (a fitted scaler's) of (N, K) values, or of (N, T, K) sequences' steps
    as N·T rows."""
    if values.ndim <= 2:
        return np.asarray(transform(values))
    return np.asarray(transform(values.reshape(-1, values.shape[-1]))).reshape(values.shape)


def original_units(model: Model, values: Array) -> Array:
    """Targets or predictions from the units the model learns in back to the data's:
    T⁻¹(values), or ``values`` itself without target preprocessing."""
    scaling = model.target_preprocessing
    if scaling is None:
        return values
    require_fitted(
        scaling,
        "give values in the targets' units",
        "target_preprocessing",
        "y_train.reshape(len(y_train), -1)",
    )
    return by_rows(scaling.inverse_transform, values).astype(values.dtype, copy=False)


def check_target_preprocessing(transformer: Any, loss: Any) -> None:
    """A target preprocessing must be invertible, and only a regression has one."""
    if transformer is None:
        return
    if not callable(getattr(transformer, "inverse_transform", None)):
        raise ConfigError(
            invalid(
                "target_preprocessing",
                "an invertible transformer (StandardScaler, MinMaxScaler, or a Pipeline of them)",
                type(transformer).__name__,
            ),
            argument="target_preprocessing",
        )
    if loss is None:  # checked again when the model is compiled
        return
    one_output_per_target = getattr(loss, "kind", None) == "regression" and not hasattr(
        loss, "mean_std"
    )
    if not one_output_per_target:
        raise ConfigError(
            invalid(
                "target_preprocessing",
                "a regression loss with one output per target (MSE, MAE, or a loss whose "
                'kind is "regression")',
                f"the loss {type(loss).__name__}",
                "scale the targets yourself, or leave target_preprocessing out",
            ),
            argument="target_preprocessing",
        )


def require_fitted(
    transformer: Any, action: str, attribute: str = "preprocessing", data: str = "X_train"
) -> None:
    """A NotCompiledError unless ``transformer`` (``model.<attribute>``) is fitted."""
    if not getattr(transformer, "fitted", True):
        raise NotCompiledError(
            f"The model's {attribute.replace('_', ' ')} is not fitted yet, so it cannot "
            f"{action}. Fix: call model.fit(X_train, y_train) first, or fit it on training "
            f"data: model.{attribute}.fit({data})."
        )


def metric_scores(model: Model, y_pred: Array, y: Array, steps: Array | None = None) -> list[Array]:
    """Each metric's per-sample components, of the predicted means (a GaussianNLL head's
    μ), in the data's units; with ``steps``, of rows that are the time steps of sequences,
    averaged per sequence (``engine/sequences.py``)."""
    split = getattr(model.loss, "mean_std", None)
    if split is not None:
        y_pred = split(y_pred)[0]
    if model.target_preprocessing is not None:
        y_pred, y = original_units(model, y_pred), original_units(model, y)
    return [sequences.reduce(metric.per_sample(y_pred, y), steps) for metric in model.metrics]
