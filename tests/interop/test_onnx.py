"""ONNX export (issue 8): onnxruntime's outputs equal ``model.predict`` within 1e-5."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import layers as L
from lamina import preprocessing as pp
from lamina.errors import ConfigError, NotCompiledError, ShapeError
from lamina.layers import GELU
from lamina.onnx import export

onnx = pytest.importorskip("onnx")  # installed with lamina[onnx]: a guard, not a skip
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5
W1_PARAMS = 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10  # 118,282


# -- helpers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fashion() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3,000 training images and labels, 1,000 test images: uint8 (N, 28, 28)."""
    (X, y), (X_test, _) = lm.datasets.fashion_mnist(download=False)
    return X[:3000], y[:3000], X_test[:1000]


def scaled(images: np.ndarray, *shape: int) -> np.ndarray:
    return (images / 255).astype(np.float32).reshape(len(images), *shape)


def run_onnx(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": np.ascontiguousarray(X, dtype=np.float32)})
    return output


def trained(layers: list[L.Layer], X: np.ndarray, y: np.ndarray) -> lm.Model:
    model = lm.Model(layers, seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, y, epochs=1, batch_size=128, verbose=0)
    return model


def max_difference(model: lm.Model, path: Path, X: np.ndarray, X_onnx=None) -> float:
    expected = model.predict(X)
    actual = run_onnx(path, X if X_onnx is None else X_onnx)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max())


def op_types(proto) -> list[str]:
    return [node.op_type for node in proto.graph.node]


def input_dims(proto) -> list[int | str]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def metadata(proto) -> dict[str, str]:
    return {prop.key: prop.value for prop in proto.metadata_props}


# -- the workloads, trained on Fashion-MNIST -----------------------------------------------
def test_w1_matches_predict(fashion, tmp_path: Path) -> None:
    X, y, X_test = fashion
    model = trained(
        [L.Dense(784, 128, "relu"), L.Dense(128, 128, "relu"), L.Dense(128, 10, "softmax")],
        scaled(X, 784),
        y,
    )
    path = tmp_path / "w1.onnx"
    proto = export(model, path)

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert max_difference(model, path, scaled(X_test, 784)) <= TOLERANCE
    assert input_dims(proto) == ["batch", 784]
    assert op_types(proto) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]
    assert metadata(proto)["lamina.version"] == lm.__version__
    assert "lamina.preprocessing" not in metadata(proto)
    assert model.count_params() == W1_PARAMS
    # file size: raw float32 initializers, each parameter once
    assert os.path.getsize(path) <= 1.05 * W1_PARAMS * 4
    names = [tensor.name for tensor in proto.graph.initializer]
    assert len(names) == len(set(names)) == 6
    for tensor in proto.graph.initializer:
        assert tensor.data_type == onnx.TensorProto.FLOAT and tensor.raw_data
    assert [p.name for p in tmp_path.iterdir()] == ["w1.onnx"]  # no temporary file left


def test_w2_matches_predict(fashion, tmp_path: Path) -> None:
    X, y, X_test = fashion
    model = trained(
        [
            L.Conv2D(1, 32, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(32, 64, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(1600, 128, "relu"),
            L.Dropout(0.5),
            L.Dense(128, 10, "softmax"),
        ],
        scaled(X[:2000], 28, 28, 1),
        y[:2000],
    )
    path = tmp_path / "w2.onnx"
    proto = export(model, path, input_shape=(28, 28, 1))

    assert max_difference(model, path, scaled(X_test, 28, 28, 1)) <= TOLERANCE
    assert input_dims(proto) == ["batch", 28, 28, 1]
    # one Transpose into NCHW before the convolutions, one back before Flatten
    assert op_types(proto) == [
        "Transpose", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
        "Transpose", "Flatten", "Gemm", "Relu", "Gemm", "Softmax",
    ]  # fmt: skip


def test_batch_norm_model_matches_predict(fashion, tmp_path: Path) -> None:
    X, y, X_test = fashion
    model = trained(
        [
            L.Conv2D(1, 8, 3),
            L.BatchNorm(8),
            L.ReLU(),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(13 * 13 * 8, 32),
            L.BatchNorm(32),
            L.ReLU(),
            L.Dense(32, 10, "softmax"),
        ],
        scaled(X[:2000], 28, 28, 1),
        y[:2000],
    )
    for layer in (model.layers[1], model.layers[6]):  # running statistics were learned
        assert np.abs(layer.state["running_mean"]).max() > 1e-3
        assert np.abs(layer.state["running_var"] - 1).max() > 1e-3
    path = tmp_path / "bn.onnx"
    proto = export(model, path, input_shape=(28, 28, 1))

    assert max_difference(model, path, scaled(X_test, 28, 28, 1)) <= TOLERANCE
    assert op_types(proto).count("Transpose") == 2


# -- every layer option, on small random models ---------------------------------------------
def randomize_batch_norms(model: lm.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, L.BatchNorm):
            n = layer.n_features
            layer.params["gamma"][...] = rng.uniform(0.5, 2, n)
            layer.params["beta"][...] = rng.normal(0, 1, n)
            layer.state["running_mean"][...] = rng.normal(0, 1, n)
            layer.state["running_var"][...] = rng.uniform(0.1, 3, n)


def randomize_biases(model: lm.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if "biases" in layer.params:
            layer.params["biases"][...] = rng.normal(0, 0.5, layer.params["biases"].shape)


SMALL_MODELS = {
    # 10×8 with stride 2: "same" pads 0 before and 1 after; a 4×4 kernel pads 1 and 2
    "same_padding_strides": (
        (10, 8, 3),
        lambda: [
            L.Conv2D(3, 4, 3, stride=2, padding="same", activation="tanh"),
            L.Conv2D(4, 5, 4, padding="same", activation=L.LeakyReLU(0.2)),
            L.Conv2D(5, 6, (3, 2), stride=(2, 1), activation="sigmoid"),
            L.Flatten(),
            L.Dense(2 * 3 * 6, 3, "softmax"),
        ],
    ),
    "pooling_odd_sizes": (
        (11, 9, 2),
        lambda: [
            L.Conv2D(2, 4, 2, activation="relu"),
            L.AvgPool2D(3, stride=2),  # overlapping windows, floor mode
            L.MaxPool2D((2, 1)),
            L.Flatten(),
            L.Dense(2 * 3 * 4, 5, "sigmoid"),
        ],
    ),
    "activation_layers_and_batch_norm": (
        (6,),
        lambda: [
            L.BatchNorm(6),
            L.Dense(6, 7),
            L.LeakyReLU(0.1),
            L.BatchNorm(7),
            L.Tanh(),
            L.Dense(7, 4),
            L.Sigmoid(),
            L.Dropout(0.3),
            L.Dense(4, 3, "linear"),
            L.Softmax(),
        ],
    ),
    "gelu_both_forms": (  # from Mul/Erf/Tanh/Add: opset 13 has no Gelu operator
        (6, 5, 2),
        lambda: [
            L.Conv2D(2, 3, 3, activation="gelu"),
            GELU(approximate="tanh"),
            L.Flatten(),
            L.Dense(4 * 3 * 3, 3, "softmax"),
        ],
    ),
    "nhwc_batch_norm_and_channel_softmax_output": (
        (5, 7, 3),
        lambda: [
            L.BatchNorm(3),  # on the NHWC input, before any transpose
            L.Conv2D(3, 4, 3, padding="same"),
            L.BatchNorm(4),
            L.Linear(),
            L.Conv2D(4, 6, 1, activation="softmax"),  # softmax over channels, at the output
        ],
    ),
}


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_match_predict(name: str, tmp_path: Path) -> None:
    shape, build = SMALL_MODELS[name]
    rng = np.random.default_rng(7)
    model = lm.Model(build(), seed=0)
    randomize_batch_norms(model, rng)
    randomize_biases(model, rng)
    path = tmp_path / f"{name}.onnx"
    proto = export(model, path, input_shape=shape)

    X = rng.normal(0, 1, (64, *shape)).astype(np.float32)
    assert max_difference(model, path, X) <= TOLERANCE
    assert input_dims(proto) == ["batch", *shape]


def test_conv_same_padding_uses_explicit_pads(tmp_path: Path) -> None:
    model = lm.Model([L.Conv2D(1, 2, 4, stride=2, padding="same")], seed=0)
    proto = export(model, tmp_path / "m.onnx", input_shape=(9, 8, 1))
    (conv,) = [node for node in proto.graph.node if node.op_type == "Conv"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    # height 9: out 5, total (5−1)·2 + 4 − 9 = 3 → 1 before, 2 after; width 8: 2 → 1, 1
    assert attributes["pads"] == [1, 1, 2, 1]
    assert "auto_pad" not in attributes


def test_output_shapes_keep_nhwc(tmp_path: Path) -> None:
    model = lm.Model([L.Conv2D(2, 3, 3), L.MaxPool2D(2)], seed=0)
    path = tmp_path / "m.onnx"
    export(model, path, input_shape=(10, 12, 2))
    X = np.random.default_rng(0).normal(size=(4, 10, 12, 2)).astype(np.float32)
    assert run_onnx(path, X).shape == (4, 4, 5, 3)
    assert max_difference(model, path, X) <= TOLERANCE


# -- preprocessing --------------------------------------------------------------------------
def test_standard_scaler_and_flatten_are_folded(fashion, tmp_path: Path) -> None:
    X, y, X_test = fashion
    model = lm.Model(
        [L.Dense(784, 32, "relu"), L.Dense(32, 10, "softmax")],
        seed=0,
        preprocessing=pp.Pipeline([pp.StandardScaler(), pp.Flatten()]),
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, y, epochs=1, batch_size=128, verbose=0)  # raw uint8 (N, 28, 28)
    path = tmp_path / "scaled.onnx"
    proto = export(model, path)  # the raw shape comes from the fitted statistics

    assert input_dims(proto) == ["batch", 28, 28]
    assert op_types(proto)[:3] == ["Sub", "Mul", "Flatten"]
    assert "lamina.preprocessing" not in metadata(proto)  # applied in the graph: not twice
    assert max_difference(model, path, X_test, X_test.astype(np.float32)) <= TOLERANCE


@pytest.mark.parametrize("per_feature", [True, False])
def test_min_max_scaler_is_folded(per_feature: bool, fashion, tmp_path: Path) -> None:
    X, _, X_test = fashion
    raw = X[:500].reshape(-1, 28, 28, 1)
    model = lm.Model(
        [L.Conv2D(1, 4, 3, stride=2, activation="relu"), L.Flatten(), L.Dense(676, 10, "softmax")],
        seed=0,
        preprocessing=pp.MinMaxScaler((0, 1), per_feature=per_feature),
    )
    model.preprocessing.fit(raw)
    if per_feature:  # border pixels constant over these images: mapped to the middle
        assert (model.preprocessing.data_min_ == model.preprocessing.data_max_).any()
    path = tmp_path / "minmax.onnx"
    proto = export(model, path, input_shape=(28, 28, 1))

    assert op_types(proto)[:3] == ["Sub", "Mul", "Add"]
    test = X_test.reshape(-1, 28, 28, 1)
    assert max_difference(model, path, test, test.astype(np.float32)) <= TOLERANCE


def test_unexpressible_preprocessing_goes_to_metadata(fashion, tmp_path: Path) -> None:
    X, _, X_test = fashion
    pipeline = pp.Pipeline([pp.Resize(14), pp.StandardScaler(), pp.Flatten()])
    pipeline.fit(X[:500])
    model = lm.Model([L.Dense(196, 10, "softmax")], seed=0, preprocessing=pipeline)
    model.metadata["class_names"] = list(lm.datasets.FASHION_MNIST_CLASSES)
    path = tmp_path / "resize.onnx"
    with pytest.warns(UserWarning, match="takes preprocessed inputs"):
        proto = export(model, path)

    assert input_dims(proto) == ["batch", 196]
    assert max_difference(model, path, X_test, pipeline.transform(X_test)) <= TOLERANCE
    props = metadata(proto)
    assert json.loads(props["lamina.class_names"]) == list(lm.datasets.FASHION_MNIST_CLASSES)
    # the spec and state rebuild the fitted pipeline
    rebuilt = pp.deserialize(json.loads(props["lamina.preprocessing"]))
    state = {
        key: np.array(value["data"], dtype=value["dtype"]).reshape(value["shape"])
        for key, value in json.loads(props["lamina.preprocessing.state"]).items()
    }
    rebuilt.set_state(state)
    np.testing.assert_array_equal(rebuilt.transform(X_test[:10]), pipeline.transform(X_test[:10]))


def test_preprocessing_left_out_on_request(fashion, tmp_path: Path, recwarn) -> None:
    X, _, _ = fashion
    model = lm.Model(
        [L.Dense(784, 10, "softmax")], seed=0, preprocessing=pp.StandardScaler(per_feature=False)
    )
    model.preprocessing.fit(X[:100].reshape(-1, 784))
    proto = export(model, tmp_path / "m.onnx", include_preprocessing=False)
    assert not recwarn.list
    assert op_types(proto) == ["Gemm", "Softmax"]
    assert json.loads(metadata(proto)["lamina.preprocessing"])["class"] == "standard_scaler"


def test_unfitted_preprocessing_cannot_be_folded(tmp_path: Path) -> None:
    model = lm.Model([L.Dense(4, 2)], seed=0, preprocessing=pp.StandardScaler())
    with pytest.raises(NotCompiledError, match="not fitted"):
        export(model, tmp_path / "m.onnx")


# -- errors ---------------------------------------------------------------------------------
class Square(L.Layer):
    def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
        return inputs * inputs


class Cube(L.Activation):
    def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
        return inputs**3


def test_unsupported_layer_is_named(tmp_path: Path) -> None:
    model = lm.Model([L.Dense(4, 3), Square(name="square")], seed=0)
    with pytest.raises(ConfigError, match=r"Layer 'square' \(Square\).*Dense, Conv2D"):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_activation_is_named(tmp_path: Path) -> None:
    model = lm.Model([L.Dense(4, 3, activation=Cube())], seed=0)
    with pytest.raises(ConfigError, match=r"\(Dense\)'s activation Cube.*LeakyReLU"):
        export(model, tmp_path / "m.onnx")


def test_dense_input_shape_comes_from_the_first_dense_layer(tmp_path: Path) -> None:
    model = lm.Model([L.BatchNorm(6), L.ReLU(), L.Dense(6, 2)], seed=0)
    proto = export(model, tmp_path / "m.onnx")
    assert input_dims(proto) == ["batch", 6]


def test_folded_scaler_must_fit_input_shape(fashion, tmp_path: Path) -> None:
    X, _, _ = fashion
    pipeline = pp.Pipeline([pp.StandardScaler(), pp.Flatten()]).fit(X[:100])
    model = lm.Model([L.Dense(784, 2)], seed=0, preprocessing=pipeline)
    with pytest.raises(ShapeError, match=r"input_shape=\(28, 28\)"):
        export(model, tmp_path / "m.onnx", input_shape=(784,))


def test_conv_model_needs_input_shape(tmp_path: Path) -> None:
    model = lm.Model([L.Conv2D(1, 2, 3), L.Flatten(), L.Dense(8, 2)], seed=0)
    with pytest.raises(ConfigError, match=r"input_shape=\(28, 28, 1\)"):
        export(model, tmp_path / "m.onnx")


def test_input_shape_must_fit_the_layers(tmp_path: Path) -> None:
    model = lm.Model([L.Conv2D(1, 2, 3), L.Flatten(), L.Dense(8, 2)], seed=0)
    with pytest.raises(ShapeError, match="Conv2D"):
        export(model, tmp_path / "m.onnx", input_shape=(4, 4, 3))
    with pytest.raises(ShapeError, match="Dense"):
        export(model, tmp_path / "m.onnx", input_shape=(5, 5, 1))
    export(model, tmp_path / "m.onnx", input_shape=(4, 4, 1))


@pytest.mark.parametrize("input_shape", [(), (28, 0, 1), (28.0, 28), "28"])
def test_bad_input_shape(input_shape, tmp_path: Path) -> None:
    model = lm.Model([L.Dense(4, 2)], seed=0)
    with pytest.raises(ConfigError, match="input_shape"):
        export(model, tmp_path / "m.onnx", input_shape=input_shape)


@pytest.mark.parametrize("opset", [12, 10_000, 17.0, True])
def test_bad_opset(opset, tmp_path: Path) -> None:
    model = lm.Model([L.Dense(4, 2)], seed=0)
    with pytest.raises(ConfigError, match="opset"):
        export(model, tmp_path / "m.onnx", opset=opset)


def test_missing_onnx_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    model = lm.Model([L.Dense(4, 2)], seed=0)
    with pytest.raises(ImportError, match=r"pip install 'lamina\[onnx\]'"):
        export(model, tmp_path / "m.onnx")


def test_identity_model_and_opset(tmp_path: Path) -> None:
    model = lm.Model([L.Dropout(0.5)], seed=0)
    path = tmp_path / "m.onnx"
    proto = export(model, path, 13, input_shape=(3,))
    assert op_types(proto) == ["Identity"]
    assert proto.opset_import[0].version == 13
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run_onnx(path, X), X)
