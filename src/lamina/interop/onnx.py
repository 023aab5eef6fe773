"""Export a trained model to ONNX, to run it wherever onnxruntime runs (issue 8).

The graph keeps lamina's interface: NHWC images (batch, H, W, C) or rows (batch, F) in,
the model's outputs (class confidences after a Softmax) out, with a dynamic batch axis.
Inside, convolutions and pooling run channels-first (NCHW, ONNX's layout): one Transpose
before a run of Conv/Pool/BatchNorm/activation layers and one back to NHWC before
``Flatten`` (so the Dense after it sees lamina's row-major H·W·C order) or at the output.

Layer → operators (all float32, parameters stored once as raw initializers):

    Dense        Gemm(X, W, b)                 W is (n_in, n_out), as ONNX's Gemm takes it
    Conv2D       Conv(X, K, b), explicit pads  K transposed HWIO → OIHW; "same" pads as
                                               ``lamina.layers.conv.output_size``
    MaxPool2D    MaxPool, AvgPool2D AveragePool: no padding, floor mode
    BatchNorm    Mul(scale) + Add(shift)       inference form: scale = γ/√(running_var + ε),
                                               shift = β − running_mean·scale (as forward)
    Flatten      Flatten(axis=1) on NHWC
    activations  Relu, Sigmoid, Tanh, LeakyRelu, Softmax (lamina's last axis); Linear and
                 Dropout (identity at inference) add nothing

A fitted ``StandardScaler``, ``MinMaxScaler`` or preprocessing ``Flatten`` (alone or in a
``Pipeline``) is folded into the graph as Sub/Mul/Add/Flatten on the raw inputs. Other
preprocessing cannot be expressed as ONNX operators: then none of it is folded, the graph
takes preprocessed inputs, and the preprocessing's spec and state go into the model's
``metadata_props`` (see :func:`export`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina import preprocessing as pre
from lamina._files import atomic_write
from lamina.errors import ConfigError, NotCompiledError, ShapeError, invalid
from lamina.interop.onnx_graph import CONVERTERS, Graph, unsupported
from lamina.interop.onnx_recurrent import RECURRENT_CONVERTERS
from lamina.interop.onnx_sequence import SEQUENCE_CONVERTERS
from lamina.layers import (
    Activation,
    BatchNorm,
    Dropout,
)
from lamina.layers.base import format_shape

if TYPE_CHECKING:
    import onnx

    from lamina.model import Model

__all__ = ["MIN_OPSET", "export"]

Array = np.ndarray

# Softmax takes any axis from opset 13 on (before, it coerced its input to 2-D)
MIN_OPSET = 13

_INSTALL_HINT = "pip install 'lamina[onnx]'"

CONVERTERS.update(SEQUENCE_CONVERTERS)  # Conv1D, pooling, Embedding: onnx_sequence.py
CONVERTERS.update(RECURRENT_CONVERTERS)  # SimpleRNN, GRU, LSTM, Bidirectional


def export(
    model: Model,
    path: str | os.PathLike[str],
    opset: int = 17,
    *,
    input_shape: Sequence[int] | None = None,
    include_preprocessing: bool = True,
) -> onnx.ModelProto:
    """Write ``model`` as an ONNX file at ``path`` (atomically), check it, and return it.

    Args:
        model: a lamina ``Model`` of supported layers (see the module docstring).
        path: the ``.onnx`` file to write; an existing file is replaced atomically.
        opset: the ONNX opset to target, from :data:`MIN_OPSET` to the installed onnx's
            newest.
        input_shape: the per-sample shape of the graph's input, e.g. ``(28, 28, 1)`` —
            raw data when preprocessing is folded in, else what the first layer receives.
            Required for convolutional models (Conv2D knows only its channels) unless a
            folded per-feature scaler fixes it; dense models default to ``(n_inputs,)``.
        include_preprocessing: fold the model's preprocessing into the graph when it can
            be expressed (scalers, Flatten). If it cannot, or when ``False``, the graph
            takes preprocessed inputs and ``metadata_props["lamina.preprocessing"]``
            holds its spec (``lamina.preprocessing.serialize``) and
            ``"lamina.preprocessing.state"`` its learned arrays, as JSON.
    Returns:
        The checked ``onnx.ModelProto`` written to ``path``. Its input ``"input"`` is
        float32 (batch, *input_shape); its output ``"output"`` is the model's output.
        ``metadata_props`` also holds ``"lamina.version"`` and, if the model has
        ``metadata["class_names"]``, ``"lamina.class_names"`` (a JSON list).
    Raises:
        ImportError: onnx is not installed.
        ConfigError: an unsupported layer or preprocessing step (named, with the supported
            ones), a bad ``opset`` or ``input_shape``, or a convolutional model without
            ``input_shape``.
        ShapeError: ``input_shape`` does not fit the model's layers.
        NotCompiledError: the preprocessing to fold in is not fitted yet.
    """
    onnx = _import_onnx()
    from lamina._version import __version__
    from lamina.model import Model

    if not isinstance(model, Model):
        raise ConfigError(invalid("model", "a lamina Model", type(model).__name__))
    opset = _check_opset(opset, onnx.defs.onnx_opset_version())
    steps, metadata = _plan_preprocessing(model, include_preprocessing)
    shape = _graph_input_shape(model, steps, input_shape)

    graph = Graph(shape)
    for index, step in enumerate(steps):
        _fold_step(graph, step, f"preprocessing/{index}")
    source = "the input" if not steps else "the preprocessed input"
    for layer in model.layers:
        layer.check_input_shape(graph.shape, source)
        converter = CONVERTERS.get(type(layer))
        if converter is None:
            raise unsupported(layer.describe())
        next_shape = layer.output_shape(graph.shape)
        converter(graph, layer)
        graph.shape = next_shape
        source = layer.describe()
    graph.to_channels_last()

    metadata["lamina.version"] = __version__
    class_names = model.metadata.get("class_names")
    if class_names is not None:
        metadata["lamina.class_names"] = json.dumps([str(name) for name in class_names])
    proto = graph.build(opset, metadata, __version__)
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, proto.SerializeToString(), what="ONNX file")
    return proto


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            f"lamina.onnx.export needs the onnx package, which is not installed. Fix: "
            f"{_INSTALL_HINT} (or pip install onnx)."
        ) from error
    return onnx


def _check_opset(opset: int, newest: int) -> int:
    if not (isinstance(opset, int | np.integer) and not isinstance(opset, bool)) or not (
        MIN_OPSET <= opset <= newest
    ):
        raise ConfigError(
            invalid(
                "opset",
                f"an int from {MIN_OPSET} to {newest} (the installed onnx's newest)",
                repr(opset),
                "use the default opset=17",
            )
        )
    return int(opset)


# -- preprocessing --------------------------------------------------------------------------
_FOLDABLE = (pre.StandardScaler, pre.MinMaxScaler, pre.Flatten)


def _plan_preprocessing(model: Model, include: bool) -> tuple[list[Any], dict[str, str]]:
    """(the transformers to fold into the graph, metadata for preprocessing left out)."""
    transformer: Any = model.preprocessing
    if transformer is None:
        return [], {}
    if include:
        steps = _foldable_steps(transformer)
        if steps is not None:
            if not _fitted(transformer):
                raise NotCompiledError(
                    "The model's preprocessing is not fitted yet, so it cannot be folded into "
                    "the ONNX graph. Fix: call model.fit(X_train, y_train) first, or fit it on "
                    "training data: model.preprocessing.fit(X_train)."
                )
            return steps, {}
    metadata = _preprocessing_metadata(transformer)
    if include:
        warnings.warn(
            f"The model's preprocessing {transformer!r} cannot be expressed as ONNX operators "
            "(only StandardScaler, MinMaxScaler and Flatten can), so it is not part of the "
            "graph: the ONNX model takes preprocessed inputs. Its spec and learned state are in "
            "metadata_props['lamina.preprocessing'] and ['lamina.preprocessing.state']; apply "
            "it before running the graph, e.g. model.preprocessing.transform(X).",
            UserWarning,
            stacklevel=3,
        )
    return [], metadata


def _fitted(transformer: Any) -> bool:
    return bool(getattr(transformer, "fitted", True))


def _foldable_steps(transformer: Any) -> list[Any] | None:
    """The transformer as a flat list of foldable steps, or None if any step is not."""
    if type(transformer) is pre.Pipeline:
        steps: list[Any] = []
        for step in transformer.steps:
            inner = _foldable_steps(step)
            if inner is None:
                return None
            steps += inner
        return steps
    return [transformer] if type(transformer) in _FOLDABLE else None


def _preprocessing_metadata(transformer: Any) -> dict[str, str]:
    try:
        spec = pre.serialize(transformer)
    except ConfigError:  # not a registered transformer: name it, it cannot be rebuilt
        spec = {"class": type(transformer).__qualname__, "config": None}
    state: dict[str, Any] = {}
    if _fitted(transformer) and hasattr(transformer, "get_state"):
        state = {
            key: {
                "dtype": str(value.dtype),
                "shape": list(value.shape),
                "data": value.ravel().tolist(),
            }
            for key, value in transformer.get_state().items()
        }
    return {
        "lamina.preprocessing": json.dumps(spec),
        "lamina.preprocessing.state": json.dumps(state),
    }


def _fold_step(graph: Graph, step: Any, name: str) -> None:
    """Flatten, or the Sub/Mul/Add of a scaler, on the raw inputs."""
    if type(step) is pre.Flatten:
        graph.apply("Flatten", f"{name}/flatten", axis=1)
        graph.shape = (math.prod(d for d in graph.shape if d is not None),)
        return
    fitted = _fitted_shape(step)
    if fitted is not None and fitted != graph.shape:
        raise ShapeError(
            f"The model's preprocessing step {step!r} was fitted on samples of shape "
            f"{format_shape(fitted)}, but it receives {format_shape(graph.shape)} in the graph. "
            f"Fix: pass input_shape={fitted} (the raw data's per-sample shape)."
        )
    for op, key, operand in _affine_ops(step):
        graph.apply(op, f"{name}/{key}", graph.constant(f"{name}/{key}", operand))


def _affine_ops(step: Any) -> list[tuple[str, str, Array]]:
    """(operator, name, operand) computing what ``step.transform`` computes, with the same
    float32 operands: (x − μ)·(1/σ) for a StandardScaler, (x − min)·scale + start for a
    MinMaxScaler (a constant feature maps to the middle of the range)."""
    if type(step) is pre.StandardScaler:
        mean, sigma = np.asarray(step.mean_), np.asarray(step.scale_)
        return [("Sub", "mean", mean), ("Mul", "inverse_scale", 1.0 / sigma)]
    a, b = step.feature_range
    data_min, data_max = np.asarray(step.data_min_), np.asarray(step.data_max_)
    span = data_max - data_min
    constant = span == 0
    scale = np.where(constant, 0.0, (b - a) / np.where(constant, 1.0, span))
    start = np.where(constant, (a + b) / 2, a)
    return [("Sub", "min", data_min), ("Mul", "scale", scale), ("Add", "start", start)]


def _fitted_shape(step: Any) -> tuple[int, ...] | None:
    """The sample shape a per-feature scaler was fitted on; None for global statistics."""
    if not step.per_feature:
        return None
    return tuple(int(d) for d in _affine_ops(step)[0][2].shape)


# -- input shape ----------------------------------------------------------------------------
_SHAPE_PRESERVING = (Activation, Dropout, BatchNorm)


def _graph_input_shape(
    model: Model, steps: list[Any], input_shape: Sequence[int] | None
) -> tuple[int, ...]:
    """The graph input's per-sample shape: ``input_shape``, else what the folded
    preprocessing or the first layer fixes; a ConfigError when nothing does."""
    if input_shape is not None:
        return _check_input_shape(input_shape)
    for step in steps:  # a per-feature scaler's statistics have the shape it was fitted on
        if type(step) is pre.Flatten:
            break
        fitted = _fitted_shape(step)
        if fitted is not None:
            return fitted
    else:  # no Flatten in the folded preprocessing: the raw shape is the model's
        for layer in model.layers:
            shape = layer.input_shape
            if shape is not None:
                if all(d is not None for d in shape):
                    return tuple(int(d) for d in shape if d is not None)
                break
            if not isinstance(layer, _SHAPE_PRESERVING):
                break
    raise ConfigError(
        invalid(
            "input_shape",
            "the per-sample shape of the graph's input",
            "None",
            f"pass it, e.g. input_shape=(28, 28, 1) for 28×28 grayscale images: the model's "
            f"first layer ({model.layers[0].describe()}) does not fix its input size"
            + (", nor does its folded preprocessing" if steps else ""),
        )
    )


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, Sequence) else ()
    if not shape or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in shape
    ):
        raise ConfigError(
            invalid(
                "input_shape",
                "a tuple of positive ints, the per-sample shape without the batch axis",
                repr(input_shape),
                "use e.g. input_shape=(28, 28, 1) for NHWC images or (784,) for rows",
            )
        )
    return tuple(int(d) for d in shape)
