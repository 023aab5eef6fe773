"""Does a run's model fit its data and its loss? :func:`check_fit` answers after the data
is read and before the first epoch, by running the run's own stages on a few training
samples in the order training runs them:

1. each ``[[preprocessing]]`` step (on a copy, fitted on those samples), once on the data;
2. each ``[[augmentation]]``, on every training batch — after preprocessing, so it needs
   the images preprocessing leaves (put the flattening in ``[[layers]]`` when augmenting);
3. each ``[[layers]]`` entry's input size against the shape that reaches it;
4. the output layer against the loss and the data: one output per class for categorical
   cross-entropy, the targets' shape, and an output activation whose values the loss
   takes (probabilities for cross-entropy, the targets' range for a regression).

The first stage that does not fit is reported at the config line that sets it (``file:line``,
as every config error). A resumed model (``--resume``) comes from its file, not from the
config's tables: its problems are reported at the config's ``[data]``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from lamina.config.data import Data
from lamina.config.run import RunConfig
from lamina.config.source import ConfigFileError
from lamina.errors import LaminaError
from lamina.layers.activated import ActivatedLayer
from lamina.layers.activations import Activation
from lamina.losses import BinaryCrossentropy, CategoricalCrossentropy, kind_of
from lamina.model import Model
from lamina.preprocessing import Flatten, Pipeline
from lamina.validation import targets_for

PROBE_ROWS = 16  # training samples run through the stages
WIDTH_KEYS = ("n_neurons", "filters", "units", "n_outputs", "hidden_size")
INPUT_KEYS = ("n_inputs", "in_channels", "input_size", "n_features")
_GRID = np.sinh(np.linspace(-10.0, 10.0, 2001))  # ±11,013, dense near 0: an activation's range


class _Where:
    """Turns a stage's problem into a ConfigFileError at its config line."""

    def __init__(self, run: RunConfig, resumed: Path | None) -> None:
        self.run, self.resumed = run, resumed

    def error(
        self, message: str, table: str, index: int | None = None, key: str | None = None
    ) -> ConfigFileError:
        if self.resumed is None:
            return self.run.error(message, table, index, key)
        where = f"[[{table}]] #{index + 1}" if index is not None else f"[{table}]"
        return self.run.error(
            f"the resumed model {self.resumed} does not fit this config's data ({where} of "
            f"the model file): {message}",
            "data",
            key="dataset",
        )

    def key(self, table: str, index: int, choices: tuple[str, ...]) -> str | None:
        """The first of ``choices`` the index-th [[table]] of the config sets, if any."""
        items = getattr(self.run, table) if self.resumed is None else []
        item = items[index] if index < len(items) else {}
        return next((key for key in choices if key in item), None)


def check_fit(run: RunConfig, model: Model, data: Data, *, resumed: Path | None = None) -> None:
    """Raise a ConfigFileError at the config line of the first stage of ``run`` (or of the
    ``resumed`` model) that does not fit ``data`` or the loss; nothing of ``model`` changes.
    """
    where = _Where(run, resumed)
    samples = _preprocessed(model, np.asarray(data.X_train[:PROBE_ROWS]), where)
    if not model.layers[0].integer_inputs:
        samples = samples.astype(model.dtype, copy=False)
    _augment(model, samples, where)
    _through_layers(model, samples, where)
    _output_fits(model, samples, data, where)


def _steps(pipeline: Any) -> list[Any]:
    if pipeline is None:
        return []
    return list(pipeline.steps) if isinstance(pipeline, Pipeline) else [pipeline]


def _preprocessed(model: Model, X: np.ndarray, where: _Where) -> np.ndarray:
    for index, original in enumerate(_steps(model.preprocessing)):
        step = copy.deepcopy(original)
        try:
            X = np.asarray(step.transform(X) if step.fitted else step.fit_transform(X))
        except (LaminaError, ValueError, TypeError) as error:
            raise where.error(
                f"{error} (the samples reach this step with shape {X.shape[1:]})",
                "preprocessing",
                index,
                "type",
            ) from None
    return X


def _augment(model: Model, samples: np.ndarray, where: _Where) -> None:
    flatten = next(
        (i for i, step in enumerate(_steps(model.preprocessing)) if isinstance(step, Flatten)),
        None,
    )
    for index, augmentation in enumerate(model.augmentation):
        try:
            augmentation(samples.copy(), np.random.default_rng(0))
        except (LaminaError, ValueError, TypeError) as error:
            name = type(augmentation).__name__
            if samples.ndim == 4:
                message = str(error)
            else:
                cause = (
                    f"; the [[preprocessing]] #{flatten + 1} flatten step made them flat"
                    if flatten is not None
                    else ""
                )
                message = (
                    f"{name} needs images (height, width, channels), but the samples reach it "
                    f"with shape {samples.shape[1:]}{cause}. Augmentation runs on each training "
                    "batch after [[preprocessing]] and before [[layers]]. Fix: drop the "
                    '[[preprocessing]] type = "flatten" step and make the first [[layers]] '
                    'type = "flatten".'
                )
            raise where.error(message, "augmentation", index, "type") from None


def _through_layers(model: Model, samples: np.ndarray, where: _Where) -> None:
    shape: Any = samples.shape[1:]
    source = "the data (after [[preprocessing]])"
    for index, layer in enumerate(model.layers):
        try:
            layer.check_input_shape(shape, source)
            if index == 0:
                layer.check_data(samples, "X")
        except LaminaError as error:
            raise where.error(
                str(error), "layers", index, where.key("layers", index, INPUT_KEYS)
            ) from None
        shape = layer.output_shape(shape)
        source = layer.describe()


def _output_fits(model: Model, samples: np.ndarray, data: Data, where: _Where) -> None:
    loss = model.loss
    if loss is None:
        return
    outputs = copy.deepcopy(model).forward(samples)  # a copy: no buffer or state changes
    if outputs.ndim != 2:
        return  # a sequence output: the targets are checked per step by fit
    width = outputs.shape[1]
    output = _output_index(model)
    width_key = where.key("layers", output, WIDTH_KEYS)
    fix_width = f"set {width_key} = {{n}} on the last layer" if width_key else "give it {n} outputs"
    y = targets_for(data.y_train, len(data.y_train), ("X", "y"))
    name = kind_of(loss) or type(loss).__name__
    if isinstance(loss, CategoricalCrossentropy) and y.ndim == 1:
        classes = len(data.class_names) if data.class_names else int(y.max()) + 1
        if width != classes:
            raise where.error(
                f"the output layer gives {width} outputs, but the data has {classes} classes; "
                f"{name} needs one output per class. Fix: {fix_width.format(n=classes)}.",
                "layers",
                output,
                width_key,
            )
    if isinstance(loss, BinaryCrossentropy) and y.ndim == 1 and len(data.class_names or ()) > 2:
        raise where.error(
            f"the data has {len(data.class_names or ())} classes, but {name} is the loss of "
            "two classes (or of independent 0/1 targets). Fix: loss = "
            f'"categorical_crossentropy", with a softmax output layer of '
            f"{len(data.class_names or ())} outputs.",
            "compile",
            key="loss",
        )
    try:
        targets = loss.prepare_targets(y, width)
    except LaminaError as error:
        raise where.error(
            f"the output layer does not fit the loss {name} and the data's targets: {error}",
            "layers",
            output,
            width_key,
        ) from None
    _activation_fits(model, loss, name, outputs, targets, where)


def _activation_fits(
    model: Model, loss: Any, name: str, outputs: np.ndarray, targets: np.ndarray, where: _Where
) -> None:
    """The output activation gives values the loss takes: a probability distribution per
    sample for categorical cross-entropy, values in [0, 1] for binary cross-entropy, and
    for a regression loss a range that holds the targets."""
    index, activation = _output_activation(model)
    key = "type" if isinstance(model.layers[index], Activation) else "activation"
    low, high = _range(activation)
    shown = "no activation" if activation is None else type(activation).__name__
    if isinstance(loss, CategoricalCrossentropy):
        sums = outputs.sum(axis=1)
        if not (np.all(outputs >= 0) and np.allclose(sums, 1.0, atol=1e-3)):
            problem = "probabilities that sum to 1 per sample (a softmax output)"
            fix = 'activation = "softmax" on the last layer'
        else:
            return
    elif isinstance(loss, BinaryCrossentropy):
        if low >= 0 and high <= 1:
            return
        problem = "probabilities in [0, 1] (a sigmoid output)"
        fix = 'activation = "sigmoid" on the last layer'
    elif getattr(loss, "kind", None) == "regression" and targets.size:
        t_low, t_high = float(np.min(targets)), float(np.max(targets))
        if low <= t_low + 1e-6 and t_high - 1e-6 <= high:
            return
        problem = f"values over the targets' range [{t_low:.4g}, {t_high:.4g}]"
        fix = "leave the last layer without an activation (or scale the targets)"
    else:
        return
    raise where.error(
        f"the loss {name} takes {problem}, but the output layer ({shown}) gives values in "
        f"[{low:.4g}, {high:.4g}]. Fix: {fix}.",
        "layers",
        index,
        where.key("layers", index, (key,)),
    )


def _output_index(model: Model) -> int:
    """The index of the last layer with parameters: the one whose size is the output's."""
    sized = [i for i, layer in enumerate(model.layers) if layer.count_params() > 0]
    return sized[-1] if sized else len(model.layers) - 1


def _output_activation(model: Model) -> tuple[int, Any]:
    """(index, activation) of the last activation before the output: an activation layer
    after the output layer, else the output layer's own (None: none)."""
    output = _output_index(model)
    for index in range(len(model.layers) - 1, output, -1):
        if isinstance(model.layers[index], Activation):
            return index, model.layers[index]
    layer = model.layers[output]
    return output, layer.activation if isinstance(layer, ActivatedLayer) else None


def _range(activation: Any) -> tuple[float, float]:
    """The values ``activation`` gives, from a grid of inputs (±inf where it grows without
    bound: beyond ±10,000)."""
    if activation is None:
        return -np.inf, np.inf
    values = np.asarray(copy.deepcopy(activation).forward(_GRID[None, :].astype(np.float64)))
    low, high = float(values.min()), float(values.max())
    return (-np.inf if low < -1e4 else low), (np.inf if high > 1e4 else high)
