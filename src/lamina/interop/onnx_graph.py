"""The ONNX graph lamina writes: the nodes and initializers built so far, where the data
stands (the current tensor, its per-sample shape, NHWC or NCHW), and one converter per layer
that appends its operators (see :mod:`lamina.interop.onnx` for the mapping)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lamina.errors import ConfigError
from lamina.layers import (
    GELU,
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
from lamina.layers.base import Layer, Shape
from lamina.layers.conv import output_size

Array = np.ndarray

INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH = "batch"


class Graph:
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
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims(self.input_shape))],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, dims(self.shape))],
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


def dims(shape: Shape) -> list[int | str]:
    """(batch, *shape): a dynamic batch axis, then the fixed per-sample sizes."""
    return [BATCH, *(int(d) for d in shape if d is not None)]


# -- layers ---------------------------------------------------------------------------------
def _dense(graph: Graph, layer: Dense) -> None:
    weights = graph.constant(f"{layer.name}/weights", layer.params["weights"])
    biases = graph.constant(f"{layer.name}/biases", layer.params["biases"])
    graph.apply("Gemm", str(layer.name), weights, biases)
    _activation(graph, layer.activation, f"{layer.name}/", layer.describe())


def _conv(graph: Graph, layer: Conv2D) -> None:
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


def _pool(graph: Graph, layer: MaxPool2D | AvgPool2D) -> None:
    graph.to_channels_first()
    op = "MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool"
    graph.apply(op, str(layer.name), kernel_shape=list(layer.pool_size), strides=list(layer.stride))


def _batch_norm(graph: Graph, layer: BatchNorm) -> None:
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


def _flatten(graph: Graph, layer: Flatten) -> None:
    graph.to_channels_last()  # lamina flattens NHWC row-major: H, then W, then C
    graph.apply("Flatten", str(layer.name), axis=1)


def _identity(graph: Graph, layer: Layer) -> None:
    """Dropout at inference: nothing to add."""


def _activation_layer(graph: Graph, layer: Activation) -> None:
    _activation(graph, layer, "", layer.describe())


_ELEMENTWISE = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh"}


def _activation(graph: Graph, activation: Layer | None, prefix: str, owner: str) -> None:
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
    elif kind is GELU:
        assert isinstance(activation, GELU)
        _gelu(graph, activation, name)
    elif kind is Softmax:  # over lamina's last axis: the channels, axis 1 when NCHW
        graph.apply("Softmax", name, axis=1 if graph.channels_first else -1)
    else:
        what = owner if owner == activation.describe() else f"{owner}'s activation {kind.__name__}"
        raise unsupported(what)


def _gelu(graph: Graph, activation: GELU, name: str) -> None:
    """GELU from primitive operators, so that every opset from 13 on has it (ONNX's own
    ``Gelu`` arrives in opset 20): x·½(1 + erf(x/√2)), or with ``approximate="tanh"``
    ½x(1 + tanh(√(2/π)·x·(1 + 0.044715x²)))."""
    x = graph.tensor

    def scalar(suffix: str, value: float) -> str:
        return graph.constant(f"{name}/{suffix}", np.array(value))

    if activation.approximate == "tanh":
        graph.apply("Mul", f"{name}/square", x)
        graph.apply("Mul", f"{name}/cubic", scalar("cubic", 0.044715))
        graph.apply("Add", f"{name}/one_plus", scalar("one", 1.0))
        graph.apply("Mul", f"{name}/times_x", x)
        graph.apply("Mul", f"{name}/u", scalar("sqrt_2_over_pi", np.sqrt(2 / np.pi)))
        graph.apply("Tanh", f"{name}/tanh")
    else:
        graph.apply("Mul", f"{name}/scaled", scalar("sqrt_half", np.sqrt(0.5)))
        graph.apply("Erf", f"{name}/erf")
    graph.apply("Add", f"{name}/one_plus_gate", scalar("gate_one", 1.0))
    graph.apply("Mul", f"{name}/half", scalar("half", 0.5))
    graph.apply("Mul", name, x)


CONVERTERS: dict[type[Layer], Callable[[Graph, Any], None]] = {
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
    GELU: _activation_layer,
}


def unsupported(what: str) -> ConfigError:
    supported = ", ".join(cls.__name__ for cls in CONVERTERS)
    return ConfigError(
        f"{what} cannot be exported to ONNX: lamina.onnx supports only the layers "
        f"{supported}. Fix: build the model from these layers (a custom layer needs its own "
        "ONNX operators), or serve it with lamina itself."
    )
