"""Input sizes filled in from the shapes (``lamina.layers.sizes``, issue 19): a model built
with ``input_shape=`` and layers without their input sizes equals the explicit one — same
parameters, same predictions — for W1 and W2; it saves the resolved sizes; a size that
cannot be known is an error naming the layer and the fix."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina.errors import ConfigError, ShapeError
from tests.test_problems import load_example

L = lm.layers


def assert_equal_models(a: lm.Model, b: lm.Model, X: np.ndarray) -> None:
    names_a = [name for name, _, _ in a.parameters()]
    assert names_a == [name for name, _, _ in b.parameters()] and names_a
    for (name, value_a, _), (_, value_b, _) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(value_a, value_b, err_msg=name)
    assert [layer.get_config() for layer in a.layers] == [layer.get_config() for layer in b.layers]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_w1_built_from_input_shape_equals_the_explicit_mlp() -> None:
    explicit = load_example("fashion_mnist_mlp").build(seed=0)  # Dense(784, 128), … by hand
    inferred = lm.Model(
        [
            L.Dense(units=128, activation="relu"),
            L.Dense(units=128, activation="relu"),
            L.Dense(units=10, activation="softmax"),
        ],
        seed=0,
        input_shape=(784,),
    )
    X = np.random.default_rng(1).standard_normal((50, 784)).astype(np.float32)
    assert_equal_models(explicit, inferred, X)
    assert [layer.n_inputs for layer in inferred.layers] == [784, 128, 128]


def test_w1_two_layer_form_on_flattened_rows() -> None:
    explicit = lm.Model(
        [L.Dense(784, 128, activation="relu"), L.Dense(128, 10, activation="softmax")], seed=3
    )
    inferred = lm.Model(
        [L.Dense(units=128, activation="relu"), L.Dense(units=10, activation="softmax")],
        seed=3,
        input_shape=(784,),
    )
    X = np.random.default_rng(2).random((20, 784)).astype(np.float32)
    assert_equal_models(explicit, inferred, X)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_w2_built_from_input_shape_equals_the_explicit_cnn(batchnorm: bool) -> None:
    explicit = load_example("fashion_mnist_cnn").build(batchnorm=batchnorm, seed=0)

    def block(filters: int) -> list[lm.layers.Layer]:
        conv = L.Conv2D(filters=filters, kernel_size=3, activation="relu", weight_init="he_normal")
        return [conv, L.MaxPool2D(2), *([L.BatchNorm()] if batchnorm else [])]

    inferred = lm.Model(
        [
            *block(32),
            *block(64),
            L.Flatten(),
            L.Dense(units=128, activation="relu"),  # no 5 · 5 · 64 = 1600 by hand
            L.Dropout(0.5),
            L.Dense(units=10, activation="softmax"),
        ],
        seed=0,
        input_shape=(28, 28, 1),
    )
    X = np.random.default_rng(3).random((8, 28, 28, 1)).astype(np.float32)
    assert_equal_models(explicit, inferred, X)
    dense = next(layer for layer in inferred.layers if isinstance(layer, L.Dense))
    assert dense.n_inputs == 1600


def test_a_model_without_input_shape_infers_what_the_layers_before_fix() -> None:
    explicit = lm.Model([L.Conv1D(4, 8, 3), L.Conv1D(8, 6, 3, activation="relu")], seed=5)
    inferred = lm.Model([L.Conv1D(4, 8, 3), L.Conv1D(filters=6, kernel_size=3, activation="relu")])
    assert inferred.layers[1].in_channels == 8 and explicit.output_shape((10, 4)) == (6, 6)
    inferred = lm.Model([L.Conv1D(4, 8, 3), L.Conv1D(filters=6, kernel_size=3)], seed=5)
    X = np.random.default_rng(4).random((3, 10, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        explicit.layers[1].params["weights"], inferred.layers[1].params["weights"]
    )
    assert inferred.predict(X).shape == (3, 6, 6)


def test_recurrent_bidirectional_and_batchnorm_sizes_are_inferred_alike() -> None:
    explicit = lm.Model(
        [
            L.GRU(5, 4, return_sequences=True),
            L.Bidirectional(L.LSTM(4, 3)),
            L.BatchNorm(6),
            L.Dense(6, 2),
        ],
        seed=1,
    )
    inferred = lm.Model(
        [
            L.GRU(units=4, return_sequences=True),
            L.Bidirectional(L.LSTM(units=3)),
            L.BatchNorm(),
            L.Dense(units=2),
        ],
        seed=1,
        input_shape=(None, 5),  # sequences of any length, 5 features per step
    )
    X = np.random.default_rng(5).standard_normal((4, 7, 5)).astype(np.float32)
    assert_equal_models(explicit, inferred, X)
    inferred_rnn = lm.Model([L.SimpleRNN(units=3)], seed=2, input_shape=(6, 2))
    explicit_rnn = lm.Model([L.SimpleRNN(2, 3)], seed=2)
    assert_equal_models(explicit_rnn, inferred_rnn, X[:, :6, :2])


def test_a_saved_inferred_model_holds_the_resolved_sizes(tmp_path: Path) -> None:
    model = lm.Model(
        [L.Conv2D(filters=4, kernel_size=3), L.Flatten(), L.Dense(units=3, activation="softmax")],
        seed=0,
        input_shape=(6, 6, 1),
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    rng = np.random.default_rng(6)
    X, y = rng.random((16, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 16)
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.lamina"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    layers = [spec["config"] for spec in config["model"]["layers"]]
    assert layers[0]["in_channels"] == 1 and layers[2]["n_inputs"] == 4 * 4 * 4
    assert config["model"]["input_shape"] == [6, 6, 1]
    loaded = lm.load_model(path)
    assert loaded.input_shape == (6, 6, 1)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert "(batch, 4, 4, 4)" in loaded.summary()  # the saved input_shape gives the shapes


def test_a_layer_whose_size_nothing_fixes_is_an_error_naming_it_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        lm.Model([L.Flatten(), L.Dense(units=10)])
    message = str(caught.value)
    assert "Layer 'dense' (Dense) (layers[1]) was built without n_inputs" in message
    assert "input_shape=(28, 28, 1)" in message and "or pass n_inputs to the layer" in message
    assert caught.value.argument == "n_inputs"
    with pytest.raises(ConfigError, match=r"\(Conv2D\) \(layers\[0\]\) was built without in_"):
        lm.Model([L.Conv2D(filters=8, kernel_size=3)])
    with pytest.raises(ConfigError, match=r"its inputs, of shape \(batch, \?\), do not fix"):
        lm.Model([L.Conv2D(1, 8, 3), L.Flatten(), L.Dense(units=10)])  # H, W unknown
    with pytest.raises(ShapeError, match=r"has no n_inputs yet.*input_shape"):
        L.Dense(units=3).forward(np.zeros((2, 4), np.float32))  # outside a model


def test_keras_positional_habits_get_a_fix() -> None:
    with pytest.raises(ConfigError, match=r"Dense\(128\) reads 128 as n_inputs.*units=128"):
        L.Dense(128, activation="relu")
    with pytest.raises(ConfigError, match=r"in_channels=32, filters=3.*filters=32, kernel_size=3"):
        L.Conv2D(32, 3)
    with pytest.raises(ConfigError, match="both n_neurons=4 and units=4"):
        L.Dense(3, 4, units=4)
    with pytest.raises(ConfigError, match=r"Missing value for `LSTM\.units`"):
        L.LSTM(8)


def test_input_shape_is_checked_and_names_itself_when_the_layers_disagree() -> None:
    for bad in [(0,), (), "28", (2.5,), (True,)]:
        with pytest.raises(ConfigError, match="Invalid value for `input_shape`"):
            lm.Model([L.Dense(4, 2)], input_shape=bad)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"but input_shape=\(28, 28, 1\) gives"):
        lm.Model([L.Dense(784, 10)], input_shape=(28, 28, 1))


def test_an_unbuilt_layer_round_trips_its_config_and_builds_like_an_explicit_one() -> None:
    layer = L.Dense(units=5, activation="relu")
    assert not layer.built and layer.params == {} and layer.get_config()["n_inputs"] is None
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    assert not again.built and again.get_config() == layer.get_config()
    explicit = L.Dense(3, 5, activation="relu")
    layer.rng, explicit.rng = np.random.default_rng(9), np.random.default_rng(9)
    explicit.reset_parameters()
    layer.build((3,))
    assert layer.built and layer.get_config() == {**explicit.get_config(), "name": None}
    np.testing.assert_array_equal(layer.params["weights"], explicit.params["weights"])


@pytest.mark.parametrize(
    ("layer", "shape", "axes"),
    [
        (lambda: L.Conv2D(filters=4, kernel_size=3), (28, 28), "3 axes (height, width, channels)"),
        (lambda: L.GRU(units=4), (8,), "2 axes (steps, features)"),
        (lambda: L.Conv1D(filters=2, kernel_size=3), (10, 3, 1), "2 axes (steps, channels)"),
    ],
)
def test_a_size_is_not_inferred_from_inputs_of_the_wrong_rank(layer, shape, axes) -> None:
    # Conv2D on input_shape=(28, 28) once took 28 "channels" from the width
    with pytest.raises(ShapeError, match=re.escape(axes)) as raised:
        lm.Model([layer()], input_shape=shape, seed=0)
    assert "input_shape=(" in str(raised.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: lm.Model([L.Dense(units=4)], input_shape=(10**12,), seed=0),
        lambda: L.Dense(10**6, 10**6),
        lambda: L.Conv2D(10**5, 10**5, 3),
    ],
)
def test_absurd_sizes_are_refused_before_any_allocation(build) -> None:
    with pytest.raises(ConfigError, match="more than the 2,147,483,648 lamina allocates"):
        build()
