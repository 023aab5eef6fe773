"""ONNX converters of the recurrent layers (``lamina.interop.onnx`` adds them to its table).

Layer → operators (float32, as the rest of the graph):

    SimpleRNN      Transpose (N, T, F) → (T, N, F); RNN with activations [φ] (linear:
                   Affine α=1, β=0); then the output (below)
    GRU            the same with GRU, ``linear_before_reset=1``: ONNX's form of the reset
                   gate applied after the recurrent product, lamina's (and PyTorch's) variant
    LSTM           the same with LSTM
    Bidirectional  one operator with ``direction="bidirectional"``: ONNX's reverse direction
                   reads the whole sequence backwards, as the layer's backward copy does

Weights: ONNX stacks the gate blocks of W as (k·units, F) rows, lamina puts them side by
side as (F, k·units) columns, and the orders differ: GRU lamina r, z, n → ONNX z, r, h;
LSTM lamina i, f, g, o → ONNX i, o, f, c. The biases B are [W_b, R_b]: lamina's ``biases``
and, for GRU, ``recurrent_biases`` (zeros for the others, whose one bias is the sum).

Outputs: without ``return_sequences`` the operator's Y_h (directions, N, units); with it
Y (T, directions, N, units), transposed to (N, T, directions, units). One direction or
``concat``: Transpose + Flatten (last state) or Reshape (sequences) puts the directions
side by side, forward first; ``sum``/``mul``/``ave``: Gather each direction, then
Add/Mul (and Mul ½). A trained initial state (``trainable_initial_state``) becomes
``initial_h`` (and ``initial_c``), Expanded over the batch read from the input's Shape.

The graph's input needs a fixed number of steps: export with ``input_shape=(T, F)``.
Masks are not exported (the layers that make them refuse, see ``onnx_sequence``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lamina.interop.onnx_graph import Graph
from lamina.layers import GRU, LSTM, Bidirectional, SimpleRNN
from lamina.layers.base import Layer
from lamina.layers.recurrent_base import Recurrent

Array = np.ndarray

OPERATORS = {SimpleRNN: "RNN", GRU: "GRU", LSTM: "LSTM"}
#: lamina's gate blocks in ONNX's order
GATE_ORDER = {SimpleRNN: [0], GRU: [1, 0, 2], LSTM: [0, 3, 1, 2]}
ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "linear": "Affine"}


def _int_constant(graph: Graph, name: str, values: Any) -> str:
    """An int64 initializer (shapes, indices): ``Graph.constant`` names it, then its float32
    tensor is replaced by the int64 one."""
    from onnx import numpy_helper

    name = graph.constant(name, np.zeros(1))
    graph.initializers[-1] = numpy_helper.from_array(np.asarray(values, np.int64), name)
    return name


def _gates(layer: Recurrent, matrix: Array) -> Array:
    """(rows, k·units) lamina columns → (k·units, rows) ONNX rows in ONNX's gate order."""
    units = layer.units
    blocks = [matrix[..., g * units : (g + 1) * units] for g in GATE_ORDER[type(layer)]]
    return np.concatenate(blocks, axis=-1).T


def _direction_weights(layer: Recurrent, p: dict[str, Array]) -> tuple[Array, Array, Array]:
    """W, R, B of one direction whose parameters are ``p`` (``layer`` gives their layout)."""
    recurrent_biases = p.get("recurrent_biases", np.zeros_like(p["biases"]))
    biases = np.concatenate(
        [_gates(layer, p["biases"][None])[:, 0], _gates(layer, recurrent_biases[None])[:, 0]]
    )
    return _gates(layer, p["input_weights"]), _gates(layer, p["recurrent_weights"]), biases


def _recurrent(graph: Graph, layer: Recurrent) -> None:
    _run(graph, layer, [layer.params], str(layer.name), "concat")


def _bidirectional(graph: Graph, layer: Bidirectional) -> None:
    # the wrapper's own arrays (a model's flat buffer, a loaded file), by direction
    directions = [
        {key: layer.params[f"{direction}/{key}"] for key in layer.forward_layer.params}
        for direction in ("forward", "backward")
    ]
    _run(graph, layer.forward_layer, directions, str(layer.name), layer.merge_mode)


def _run(
    graph: Graph,
    first: Recurrent,
    directions: list[dict[str, Array]],
    name: str,
    merge_mode: str,
) -> None:
    """The operator over the ``directions``' parameters (forward, then backward; ``first``
    gives the layout), then the merge."""
    kind, units, count = type(first), first.units, len(directions)
    weights = [_direction_weights(first, params) for params in directions]
    w, r, b = (np.stack([parts[i] for parts in weights]) for i in range(3))
    graph.apply("Transpose", f"{name}/to_tnf", perm=[1, 0, 2])
    inputs = [
        graph.constant(f"{name}/W", w),
        graph.constant(f"{name}/R", r),
        graph.constant(f"{name}/B", b),
        "",  # sequence_lens: every sequence has every step
    ]
    if first.trainable_initial_state:
        inputs += _initial_states(graph, first, directions, name)
    attributes: dict[str, Any] = {"hidden_size": units}
    if count == 2:
        attributes["direction"] = "bidirectional"
    if kind is GRU:
        attributes["linear_before_reset"] = 1
    if kind is SimpleRNN:
        activation = first.activation  # type: ignore[attr-defined]
        attributes["activations"] = [ACTIVATIONS[activation]] * count
        if activation == "linear":
            attributes["activation_alpha"] = [1.0] * count
            attributes["activation_beta"] = [0.0] * count
    graph.apply(OPERATORS[kind], name, *inputs, **attributes)
    sequences = first.return_sequences
    if not sequences:  # the second output, Y_h (directions, N, units)
        node = graph.nodes[-1]
        del node.output[:]
        node.output.extend(["", graph.tensor])
    perm = [2, 0, 1, 3] if sequences else [1, 0, 2]  # batch first: (N, [T,] D, units)
    graph.apply("Transpose", f"{name}/batch_first", perm=perm)
    if merge_mode == "concat":
        if sequences:
            graph.apply(
                "Reshape", f"{name}/merge", _int_constant(graph, f"{name}/shape", [0, 0, -1])
            )
        else:
            graph.apply("Flatten", f"{name}/merge", axis=1)
        return
    both, axis = graph.tensor, 2 if sequences else 1
    parts = []
    for index in range(2):
        graph.tensor = both
        graph.apply(
            "Gather", f"{name}/direction", _int_constant(graph, f"{name}/index", index), axis=axis
        )
        parts.append(graph.tensor)
    graph.apply("Mul" if merge_mode == "mul" else "Add", f"{name}/merge", parts[0])
    if merge_mode == "ave":
        graph.apply("Mul", f"{name}/half", graph.constant(f"{name}/half", np.array(0.5)))


def _initial_states(
    graph: Graph, first: Recurrent, directions: list[dict[str, Array]], name: str
) -> list[str]:
    """``initial_h`` (and ``initial_c``): each direction's trained (units,) state Expanded to
    (directions, N, units), N from the Shape of the (T, N, F) input."""
    x, count, units = graph.tensor, len(directions), first.units
    graph.apply("Shape", f"{name}/input_shape")  # [T, N, F]
    graph.apply("Mul", f"{name}/batch_only", _int_constant(graph, f"{name}/pick", [0, 1, 0]))
    graph.apply(
        "Add", f"{name}/state_shape", _int_constant(graph, f"{name}/dims", [count, 0, units])
    )
    shape = graph.tensor
    keys = ("initial_state", "initial_cell")[: 1 + first.cell_state]
    names = []
    for key in keys:
        state = np.stack([params[key][None] for params in directions])  # (D, 1, units)
        graph.tensor = graph.constant(f"{name}/{key}", state)
        graph.apply("Expand", f"{name}/{key}_batch", shape)
        names.append(graph.tensor)
    graph.tensor = x
    return names


RECURRENT_CONVERTERS: dict[type[Layer], Callable[[Graph, Any], None]] = {
    SimpleRNN: _recurrent,
    GRU: _recurrent,
    LSTM: _recurrent,
    Bidirectional: _bidirectional,
}
