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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina import preprocessing as pre
from lamina._files import atomic_write
from lamina.errors import ConfigError, NotCompiledError, ShapeError, invalid
from lamina.layers import (
    Activation,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from lamina.layers.base import Layer, Shape, format_shape
from lamina.layers.conv import output_size

if TYPE_CHECKING:
    import onnx

    from lamina.model import Model

__all__ = ["MIN_OPSET", "export"]

Array = np.ndarray

# Softmax takes any axis from opset 13 on (before, it coerced its input to 2-D)
MIN_OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH = "batch"

_INSTALL_HINT = "pip install 'lamina[onnx]'"


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

    graph = _Graph(shape)
    for index, step in enumerate(steps):
        _fold_step(graph, step, f"preprocessing/{index}")
    source = "the input" if not steps else "the preprocessed input"
    for layer in model.layers:
        layer.check_input_shape(graph.shape, source)
        converter = _CONVERTERS.get(type(layer))
        if converter is None:
            raise _unsupported(layer.describe())
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


# -- the graph ------------------------------------------------------------------------------
class _Graph:
    """The nodes and initializers built so far, and where the data stands: the current
    tensor, its per-sample shape in lamina's terms (NHWC for images), and whether it is
    held channels-first (NCHW) for Conv/Pool."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.input_shape = input_shape
        self.tensor = INPUT_NAME
        self.shape: Shape = input_shape
        self.channels_first = False
        self._names = {INPUT_NAME, OUTPUT_NAME}

    def _unique(self, name: str) -> str:
        candidate, count = name, 0
        while candidate in self._names:
            count += 1
            candidate = f"{name}_{count}"
        self._names.add(candidate)
        return candidate

    def constant(self, name: str, array: Array) -> str:
        """A float32 initializer (raw data, stored once); returns its name."""
        from onnx import numpy_helper

        name = self._unique(name)
        data = np.ascontiguousarray(array, dtype=np.float32)
        self.initializers.append(numpy_helper.from_array(data, name))
        return name

    def apply(self, op: str, name: str, *inputs: str, **attributes: Any) -> None:
        """Append ``op(current tensor, *inputs)``; its output becomes the current tensor."""
        from onnx import helper

        output = self._unique(name)
        self.nodes.append(
            helper.make_node(op, [self.tensor, *inputs], [output], name=output, **attributes)
        )
        self.tensor = output

    def to_channels_first(self) -> None:
        if not self.channels_first:
            self.apply("Transpose", "to_nchw", perm=[0, 3, 1, 2])
            self.channels_first = True

    def to_channels_last(self) -> None:
        if self.channels_first:
            self.apply("Transpose", "to_nhwc", perm=[0, 2, 3, 1])
            self.channels_first = False

    def per_channel(self, vector: Array) -> Array:
        """A vector over lamina's last axis, shaped to broadcast against the current tensor."""
        return vector.reshape(-1, 1, 1) if self.channels_first else vector

    def build(self, opset: int, metadata: dict[str, str], version: str) -> Any:
        from onnx import TensorProto, helper

        if self.tensor == INPUT_NAME:  # nothing but identities: the output still needs a node
            self.apply("Identity", "identity")
        self.nodes[-1].output[0] = OUTPUT_NAME
        graph = helper.make_graph(
            self.nodes,
            "lamina",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, _dims(self.input_shape))],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, _dims(self.shape))],
            initializer=self.initializers,
        )
        opsets = [helper.make_opsetid("", opset)]
        proto = helper.make_model(
            graph, opset_imports=opsets, producer_name="lamina", producer_version=version
        )
        # the oldest IR version that holds this opset, so older runtimes load the file too
        proto.ir_version = helper.find_min_ir_version_for(opsets)
        helper.set_model_props(proto, metadata)
        return proto


def _dims(shape: Shape) -> list[int | str]:
    """(batch, *shape): a dynamic batch axis, then the fixed per-sample sizes."""
    return [BATCH, *(int(d) for d in shape if d is not None)]


# -- layers ---------------------------------------------------------------------------------
def _dense(graph: _Graph, layer: Dense) -> None:
    weights = graph.constant(f"{layer.name}/weights", layer.params["weights"])
    biases = graph.constant(f"{layer.name}/biases", layer.params["biases"])
    graph.apply("Gemm", str(layer.name), weights, biases)
    _activation(graph, layer.activation, f"{layer.name}/", layer.describe())


def _conv(graph: _Graph, layer: Conv2D) -> None:
    height, width, _ = graph.shape
    assert height is not None and width is not None
    # "same" pads (total//2 before, the rest after) exactly as the layer pads
    (_, top, bottom), (_, left, right) = (
        output_size(size, kernel, stride, layer.padding)
        for size, kernel, stride in zip(
            (height, width), layer.kernel_size, layer.stride, strict=True
        )
    )
    graph.to_channels_first()
    kernel = graph.constant(f"{layer.name}/weights", layer.params["weights"].transpose(3, 2, 0, 1))
    biases = graph.constant(f"{layer.name}/biases", layer.params["biases"])
    graph.apply(
        "Conv",
        str(layer.name),
        kernel,
        biases,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=[top, left, bottom, right],
    )
    _activation(graph, layer.activation, f"{layer.name}/", layer.describe())


def _pool(graph: _Graph, layer: MaxPool2D | AvgPool2D) -> None:
    graph.to_channels_first()
    op = "MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool"
    graph.apply(op, str(layer.name), kernel_shape=list(layer.pool_size), strides=list(layer.stride))


def _batch_norm(graph: _Graph, layer: BatchNorm) -> None:
    # the inference form of BatchNorm.forward, computed the same way in the layer's dtype
    running_mean, running_var = layer.state["running_mean"], layer.state["running_var"]
    scale = layer.params["gamma"] / np.sqrt(running_var + layer.epsilon)
    shift = layer.params["beta"] - running_mean * scale
    graph.apply(
        "Mul",
        f"{layer.name}/scale",
        graph.constant(f"{layer.name}/scale", graph.per_channel(scale)),
    )
    graph.apply(
        "Add",
        f"{layer.name}/shift",
        graph.constant(f"{layer.name}/shift", graph.per_channel(shift)),
    )


def _flatten(graph: _Graph, layer: Flatten) -> None:
    graph.to_channels_last()  # lamina flattens NHWC row-major: H, then W, then C
    graph.apply("Flatten", str(layer.name), axis=1)


def _identity(graph: _Graph, layer: Layer) -> None:
    """Dropout at inference: nothing to add."""


def _activation_layer(graph: _Graph, layer: Activation) -> None:
    _activation(graph, layer, "", layer.describe())


_ELEMENTWISE = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh"}


def _activation(graph: _Graph, activation: Layer | None, prefix: str, owner: str) -> None:
    """The operator of an activation layer (or of a Dense/Conv2D's ``activation=``)."""
    if activation is None or type(activation) is Linear:
        return
    kind = type(activation)
    name = prefix + (activation.name or kind.__name__.lower())
    if kind in _ELEMENTWISE:
        graph.apply(_ELEMENTWISE[kind], name)
    elif kind is LeakyReLU:
        assert isinstance(activation, LeakyReLU)
        graph.apply("LeakyRelu", name, alpha=activation.alpha)
    elif kind is Softmax:  # over lamina's last axis: the channels, axis 1 when NCHW
        graph.apply("Softmax", name, axis=1 if graph.channels_first else -1)
    else:
        what = owner if owner == activation.describe() else f"{owner}'s activation {kind.__name__}"
        raise _unsupported(what)


_CONVERTERS: dict[type[Layer], Callable[[_Graph, Any], None]] = {
    Dense: _dense,
    Conv2D: _conv,
    MaxPool2D: _pool,
    AvgPool2D: _pool,
    BatchNorm: _batch_norm,
    Flatten: _flatten,
    Dropout: _identity,
    Linear: _activation_layer,
    ReLU: _activation_layer,
    LeakyReLU: _activation_layer,
    Sigmoid: _activation_layer,
    Tanh: _activation_layer,
    Softmax: _activation_layer,
}


def _unsupported(what: str) -> ConfigError:
    supported = ", ".join(cls.__name__ for cls in _CONVERTERS)
    return ConfigError(
        f"{what} cannot be exported to ONNX: lamina.onnx supports only the layers "
        f"{supported}. Fix: build the model from these layers (a custom layer needs its own "
        "ONNX operators), or serve it with lamina itself."
    )


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


def _fold_step(graph: _Graph, step: Any, name: str) -> None:
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
