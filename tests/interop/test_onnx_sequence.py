"""ONNX export of the sequence layers: onnxruntime equals ``model.predict`` within 1e-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import layers as L
from lamina.errors import ConfigError
from lamina.onnx import export

onnx = pytest.importorskip("onnx")  # installed with lamina[onnx]: a guard, not a skip
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5
RNG = np.random.default_rng(0)


def run_onnx(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": np.ascontiguousarray(X, dtype=np.float32)})
    return output


def trained(layers: list[L.Layer], X: np.ndarray, y: np.ndarray) -> lm.Model:
    model = lm.Model(layers, seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    return model


def agrees(model: lm.Model, path: Path, X: np.ndarray) -> float:
    expected, actual = model.predict(X), run_onnx(path, X)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max())


def test_a_conv1d_model_with_pooling_exports(tmp_path: Path) -> None:
    X = RNG.standard_normal((96, 20, 3)).astype(np.float32)
    y = RNG.integers(0, 4, 96)
    model = trained(
        [
            L.Conv1D(3, 8, 3, padding="causal", dilation=2, activation="relu"),
            L.MaxPool1D(3, stride=2, padding="same"),
            L.Conv1D(8, 6, 3, stride=2, padding="same", activation="tanh"),
            L.AvgPool1D(2, padding="same"),
            L.Conv1D(6, 6, 2),
            L.GlobalMaxPooling1D(),
            L.Dense(6, 4, activation="softmax"),
        ],
        X,
        y,
    )
    proto = export(model, tmp_path / "conv1d.onnx", input_shape=(20, 3))
    assert {"Conv", "MaxPool", "AveragePool", "GlobalMaxPool"} <= {
        n.op_type for n in proto.graph.node
    }
    assert agrees(model, tmp_path / "conv1d.onnx", X) < TOLERANCE


def test_global_average_pooling_exports(tmp_path: Path) -> None:
    sequences = RNG.standard_normal((32, 9, 2)).astype(np.float32)
    model = trained(
        [L.Conv1D(2, 5, 3, padding="same"), L.GlobalAveragePooling1D(), L.Dense(5, 3)],
        sequences,
        RNG.integers(0, 3, 32),
    )
    export(model, tmp_path / "average.onnx", input_shape=(9, 2))
    assert agrees(model, tmp_path / "average.onnx", sequences) < TOLERANCE


@pytest.mark.parametrize("cls", [L.GlobalAveragePooling2D, L.GlobalMaxPooling2D])
def test_global_pooling_2d_after_a_conv2d_exports(tmp_path: Path, cls: type) -> None:
    images = RNG.standard_normal((32, 6, 6, 2)).astype(np.float32)
    model = trained(
        [L.Conv2D(2, 4, 3, activation="relu"), cls(), L.Dense(4, 3, activation="softmax")],
        images,
        RNG.integers(0, 3, 32),
    )
    export(model, tmp_path / "global2d.onnx", input_shape=(6, 6, 2))
    assert agrees(model, tmp_path / "global2d.onnx", images) < TOLERANCE


def test_an_embedding_model_exports_with_a_gather(tmp_path: Path) -> None:
    ids = RNG.integers(0, 50, (128, 12))
    model = trained(
        [
            L.Embedding(50, 8),
            L.Conv1D(8, 8, 3, activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(8, 2, activation="softmax"),
        ],
        ids,
        RNG.integers(0, 2, 128),
    )
    proto = export(model, tmp_path / "tokens.onnx", input_shape=(12,))
    assert [n.op_type for n in proto.graph.node][:2] == ["Cast", "Gather"]
    assert agrees(model, tmp_path / "tokens.onnx", ids) < TOLERANCE


def test_padding_masks_are_refused_clearly(tmp_path: Path) -> None:
    for first in (L.Embedding(10, 4, mask_zero=True), L.Masking()):
        model = lm.Model([first, L.GlobalAveragePooling1D(), L.Dense(4, 2)], seed=0)
        shape = (6,) if isinstance(first, L.Embedding) else (6, 4)
        with pytest.raises(ConfigError, match="does not export padding masks"):
            export(model, tmp_path / "masked.onnx", input_shape=shape)
    assert not (tmp_path / "masked.onnx").exists()
