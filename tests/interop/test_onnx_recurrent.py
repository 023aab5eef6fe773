"""ONNX export of the recurrent layers (issue 15, must-show 5): onnxruntime's outputs equal
``predict`` within 1e-5 for SimpleRNN, GRU, LSTM and Bidirectional models — every
activation and merge mode, last state and sequences, trained initial states — and a model
that needs a mask or a time axis it does not fix is refused with the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import layers as L
from lamina.errors import ConfigError
from lamina.onnx import export

onnx = pytest.importorskip("onnx")  # installed with lamina[onnx]: a guard, not a skip
ort = pytest.importorskip("onnxruntime")

STEPS, FEATURES = 7, 3

MODELS: dict[str, Callable[[], list[L.Layer]]] = {
    "gru": lambda: [L.GRU(3, 6), L.Dense(6, 2)],
    "lstm": lambda: [L.LSTM(3, 6), L.Dense(6, 2)],
    "simple_rnn tanh": lambda: [L.SimpleRNN(3, 6), L.Dense(6, 2)],
    "simple_rnn relu": lambda: [L.SimpleRNN(3, 6, activation="relu"), L.Dense(6, 2)],
    "simple_rnn sigmoid, linear": lambda: [
        L.SimpleRNN(3, 5, "sigmoid", return_sequences=True),
        L.SimpleRNN(5, 4, "linear"),
    ],
    "bidirectional gru concat": lambda: [L.Bidirectional(L.GRU(3, 5)), L.Dense(10, 2)],
    "bidirectional lstm sum": lambda: [L.Bidirectional(L.LSTM(3, 5), "sum"), L.Dense(5, 2)],
    "bidirectional gru mul": lambda: [L.Bidirectional(L.GRU(3, 5), "mul")],
    "bidirectional simple_rnn ave": lambda: [L.Bidirectional(L.SimpleRNN(3, 5), "ave")],
    "stacked sequences": lambda: [
        L.GRU(3, 6, return_sequences=True),
        L.Bidirectional(L.LSTM(6, 4, return_sequences=True)),
        L.Bidirectional(L.GRU(8, 3, return_sequences=True), "sum"),
        L.LSTM(3, 4),
    ],
    "trained initial states": lambda: [
        L.LSTM(3, 5, return_sequences=True, trainable_initial_state=True),
        L.Bidirectional(L.GRU(5, 4, trainable_initial_state=True)),
    ],
}


def trained(layers: list[L.Layer]) -> tuple[lm.Model, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((32, STEPS, FEATURES)).astype(np.float32)
    model = lm.Model(layers, seed=0)
    y = np.random.default_rng(1).standard_normal(model.predict(x).shape).astype(np.float32)
    model.compile(loss="mse", optimizer="adam", metrics=[])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)  # initial states move off zero
    return model, x


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_equals_predict(name: str, tmp_path: Path) -> None:
    model, x = trained(MODELS[name]())
    path = tmp_path / "model.onnx"
    export(model, path, input_shape=(STEPS, FEATURES))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {"input": x})
    expected = model.predict(x)
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)


def test_opset_13_works_too(tmp_path: Path) -> None:
    model, x = trained(MODELS["stacked sequences"]())
    export(model, tmp_path / "m.onnx", opset=13, input_shape=(STEPS, FEATURES))
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x), atol=1e-5)


def test_the_operators_are_onnxs_recurrent_ones(tmp_path: Path) -> None:
    model, _ = trained(MODELS["stacked sequences"]())
    proto = export(model, tmp_path / "m.onnx", input_shape=(STEPS, FEATURES))
    nodes = [node for node in proto.graph.node if node.op_type in ("GRU", "LSTM")]
    assert [node.op_type for node in nodes] == ["GRU", "LSTM", "GRU", "LSTM"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attributes["linear_before_reset"] == 1
    directions = [
        {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}.get("direction")
        for node in nodes
    ]
    assert directions == [None, b"bidirectional", b"bidirectional", None]


def test_a_model_without_a_fixed_time_axis_needs_input_shape(tmp_path: Path) -> None:
    model, _ = trained(MODELS["gru"]())
    with pytest.raises(ConfigError, match="input_shape"):
        export(model, tmp_path / "m.onnx")


def test_a_masked_model_is_refused(tmp_path: Path) -> None:
    model = lm.Model([L.Masking(0.0), L.GRU(3, 4)], seed=0)
    with pytest.raises(ConfigError, match="mask"):
        export(model, tmp_path / "m.onnx", input_shape=(STEPS, FEATURES))
