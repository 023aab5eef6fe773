"""ONNX converters of the sequence layers: 1-D convolution and pooling, global pooling and
Embedding (``lamina.interop.onnx`` adds them to its table).

Layer → operators (float32, as the rest of the graph):

    Conv1D           Transpose (N, T, C) → (N, C, T), Conv with kernel_shape [k],
                     strides [s], dilations [d], explicit pads [before, after] (as
                     ``lamina.layers.conv1d.padding_1d``), K transposed (k, C, F) → (F, C, k);
                     Transpose back, then the activation on (N, T', F)
    MaxPool1D        Transpose, MaxPool (pads never win a max), Transpose back
    AvgPool1D        Transpose, AveragePool with count_include_pad=0 (an average over the
                     real steps only, as the layer's "same" padding), Transpose back
    Global*Pooling1D Transpose, GlobalAveragePool / GlobalMaxPool, Flatten → (N, C)
    Global*Pooling2D GlobalAveragePool / GlobalMaxPool on NCHW, Flatten → (N, C)
    Embedding        Cast to int64 (Gather's indices), Gather(W, ids, axis=0)

The graph's input stays float32, as for every lamina graph and as ``Model.predict`` takes
ids (exact below 2²⁴); the Cast gives Gather its int64 indices.

Padding masks are not exported: ``Embedding(mask_zero=True)`` and ``Masking`` are refused
with a ConfigError. A mask only matters to the layers after it that use one (recurrent
layers, global pooling over time); exported without it, they would count padded steps as
real ones and the graph would silently disagree with ``predict``.

Each 1-D layer transposes in and out itself, so the graph's NHWC/NCHW bookkeeping
(``Graph.channels_first``, for 4-D images) is left as it was; onnxruntime removes the
back-to-back Transpose pairs between consecutive 1-D layers when it optimises the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lamina.errors import ConfigError
from lamina.interop.onnx_graph import CONVERTERS, Graph
from lamina.layers import (
    AvgPool1D,
    Conv1D,
    Embedding,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    Masking,
    MaxPool1D,
)
from lamina.layers.base import Layer
from lamina.layers.conv1d import padding_1d


def _steps(graph: Graph, layer: Layer) -> int:
    steps = graph.shape[0]
    assert steps is not None, f"{layer.describe()}: the graph's input shape fixes T"
    return int(steps)


def _to_time_first(graph: Graph, name: str) -> None:
    graph.apply("Transpose", f"{name}/to_nct", perm=[0, 2, 1])


def _to_channels_last(graph: Graph, name: str) -> None:
    graph.apply("Transpose", f"{name}/to_ntc", perm=[0, 2, 1])


def _conv1d(graph: Graph, layer: Conv1D) -> None:
    _, before, after = padding_1d(
        _steps(graph, layer), layer.kernel_size, layer.stride, layer.dilation, layer.padding
    )
    name = str(layer.name)
    _to_time_first(graph, name)
    kernel = graph.constant(f"{name}/weights", layer.params["weights"].transpose(2, 1, 0))
    biases = graph.constant(f"{name}/biases", layer.params["biases"])
    graph.apply(
        "Conv",
        name,
        kernel,
        biases,
        kernel_shape=[layer.kernel_size],
        strides=[layer.stride],
        dilations=[layer.dilation],
        pads=[before, after],
    )
    _to_channels_last(graph, name)
    activation = layer.activation
    if activation is not None:
        convert = CONVERTERS.get(type(activation))
        if convert is None:
            raise ConfigError(
                f"{layer.describe()}'s activation {type(activation).__name__} cannot be "
                "exported to ONNX. Fix: use a built-in activation, or serve the model with "
                "lamina itself."
            )
        convert(graph, activation)


def _pool1d(graph: Graph, layer: MaxPool1D | AvgPool1D) -> None:
    geometry = layer.geometry(_steps(graph, layer))
    name = str(layer.name)
    _to_time_first(graph, name)
    attributes: dict[str, Any] = {
        "kernel_shape": [layer.pool_size],
        "strides": [layer.stride],
        "pads": [geometry.before, geometry.after],
    }
    if isinstance(layer, MaxPool1D):
        graph.apply("MaxPool", name, **attributes)
    else:
        graph.apply("AveragePool", name, count_include_pad=0, **attributes)
    _to_channels_last(graph, name)


def _global_pool(graph: Graph, layer: Layer) -> None:
    name = str(layer.name)
    if isinstance(layer, GlobalAveragePooling1D | GlobalMaxPooling1D):
        _to_time_first(graph, name)
    else:
        graph.to_channels_first()
    average = isinstance(layer, GlobalAveragePooling1D | GlobalAveragePooling2D)
    graph.apply("GlobalAveragePool" if average else "GlobalMaxPool", name)
    graph.apply("Flatten", f"{name}/flatten", axis=1)
    graph.channels_first = False  # (N, C): no spatial axes left to transpose


def _embedding(graph: Graph, layer: Embedding) -> None:
    from onnx import TensorProto

    if layer.mask_zero:
        raise _mask_refused(layer, "mask_zero=True")
    name = str(layer.name)
    graph.apply("Cast", f"{name}/ids", to=TensorProto.INT64)
    ids = graph.tensor
    graph.tensor = graph.constant(f"{name}/weights", layer.params["weights"])
    graph.apply("Gather", name, ids, axis=0)  # Gather(W, ids): W is the "current" tensor


def _masking(graph: Graph, layer: Masking) -> None:
    raise _mask_refused(layer, "Masking")


def _mask_refused(layer: Layer, what: str) -> ConfigError:
    return ConfigError(
        f"{layer.describe()} cannot be exported to ONNX: lamina.onnx does not export padding "
        f"masks ({what}), and without the mask the layers after it would treat padded steps "
        "as real ones. Fix: export a model trained without masks (fixed-length sequences), "
        "or serve this one with lamina itself."
    )


SEQUENCE_CONVERTERS: dict[type[Layer], Callable[[Graph, Any], None]] = {
    Conv1D: _conv1d,
    MaxPool1D: _pool1d,
    AvgPool1D: _pool1d,
    GlobalAveragePooling1D: _global_pool,
    GlobalMaxPooling1D: _global_pool,
    GlobalAveragePooling2D: _global_pool,
    GlobalMaxPooling2D: _global_pool,
    Embedding: _embedding,
    Masking: _masking,
}
