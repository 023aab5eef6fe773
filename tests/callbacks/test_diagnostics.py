"""Diagnostics (notes §2.2): networks built to fail raise the warning that names the layer
and the failure; healthy W1- and W2-like runs on Fashion-MNIST raise none."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lamina as lm
from lamina.callbacks import Diagnostics, DiagnosticsWarning

L = lm.layers


@pytest.fixture(scope="module")
def fashion() -> tuple[np.ndarray, np.ndarray]:
    (X, y), _ = lm.datasets.fashion_mnist()
    return X[:3000], y[:3000]


def standardised(X: np.ndarray) -> np.ndarray:
    rows = X.reshape(len(X), -1).astype(np.float32)
    return (rows - rows.mean(axis=0)) / (rows.std(axis=0) + 1e-3)


def fit_watched(
    model: lm.Model, X: np.ndarray, y: np.ndarray, *, epochs: int = 1, batch_size: int = 128
) -> tuple[list[str], Diagnostics]:
    diagnostics = Diagnostics()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[diagnostics])
    found = [str(w.message) for w in caught if issubclass(w.category, DiagnosticsWarning)]
    return found, diagnostics


def mlp(*hidden: L.Layer, outputs: int = 10) -> lm.Model:
    return lm.Model([*hidden, L.Dense(hidden[-1].n_neurons, outputs, activation="softmax")], seed=0)


def test_relu_layer_with_large_negative_biases_is_reported_dead(fashion) -> None:
    X, y = standardised(fashion[0][:1000]), fashion[1][:1000]
    model = mlp(L.Dense(784, 32, activation="relu"), L.Dense(32, 32, activation="relu"))
    model.layers[1].params["biases"][...] = -50.0
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    found, diagnostics = fit_watched(model, X, y)
    assert len(found) == 1  # not also "vanishing" upstream: the dead layer is the cause
    assert "100% of dense_1's ReLUs were dead all epoch" in found[0]
    assert "He or Glorot" in found[0] and "notes §2.2 Dead Neurons" in found[0]
    layers = diagnostics.report[0]["layers"]
    assert layers["dense_1/relu"]["dead_fraction"] == 1.0
    assert layers["dense/relu"]["dead_fraction"] < 0.5
    assert model.history is not None and model.history.diagnostics == diagnostics.report


def test_deep_sigmoid_stack_reports_vanishing_gradients_in_its_first_layers(fashion) -> None:
    X, y = standardised(fashion[0][:1000]), fashion[1][:1000]
    hidden = [L.Dense(784, 32, activation="sigmoid")]
    hidden += [L.Dense(32, 32, activation="sigmoid") for _ in range(8)]
    model = mlp(*hidden)
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(0.1))
    found, diagnostics = fit_watched(model, X, y)
    assert len(found) == 1
    assert found[0].startswith("epoch 1: gradients vanished in dense (")
    assert "dense_1 (" in found[0] and "the last layer, dense_9" in found[0]
    assert "dense_8 (" not in found[0]  # next to the output the gradient is still there
    assert "ReLU instead of sigmoid" in found[0]
    layers = diagnostics.report[0]["layers"]
    assert layers["dense"]["relative_gradient"] < 1e-3 * layers["dense_9"]["relative_gradient"]


def test_sigmoid_on_unscaled_pixels_is_reported_saturated(fashion) -> None:
    X = fashion[0][:1000].reshape(1000, -1).astype(np.float32)  # 0 … 255, not scaled
    model = mlp(L.Dense(784, 32, activation="sigmoid"))
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(0.1))
    found, diagnostics = fit_watched(model, X, fashion[1][:1000])
    saturated = [message for message in found if "saturated" in message]
    assert len(saturated) == 1
    assert "of dense's sigmoid outputs were saturated" in saturated[0]
    assert "scale the inputs" in saturated[0]
    assert diagnostics.report[0]["layers"]["dense/sigmoid"]["saturated_fraction"] > 0.9


def test_exploding_learning_rate_is_reported_with_the_layers_and_clipnorm(fashion) -> None:
    X, y = standardised(fashion[0][:1000]), fashion[1][:1000]
    model = mlp(L.Dense(784, 32, activation="relu"), L.Dense(32, 32, activation="relu"))
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(5.0))
    found, _ = fit_watched(model, X, y, epochs=2)
    exploded = [message for message in found if "exploded" in message]
    assert len(exploded) == 1
    for name in ("dense (", "dense_1 (", "dense_2 ("):
        assert name in exploded[0]
    assert "clipnorm" in exploded[0] and "lower the learning rate" in exploded[0]


def test_healthy_w1_like_mlp_raises_no_warning(fashion) -> None:
    X, y = standardised(fashion[0]), fashion[1]
    model = mlp(L.Dense(784, 128, activation="relu"), L.Dense(128, 128, activation="relu"))
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-3))
    found, diagnostics = fit_watched(model, X, y, epochs=2)
    assert found == []
    last = diagnostics.report[-1]["layers"]
    assert last["dense/relu"]["dead_fraction"] < 0.05
    assert 1e-4 < last["dense"]["update_ratio"] < 0.05


def test_healthy_small_cnn_raises_no_warning(fashion) -> None:
    X = fashion[0][:1000].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    model = lm.Model(
        [
            L.Conv2D(1, 8, 3, activation="relu", weight_init="he_normal"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(13 * 13 * 8, 32, activation="relu"),
            L.Dropout(0.5),
            L.Dense(32, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(2e-3))
    found, diagnostics = fit_watched(model, X, fashion[1][:1000], batch_size=32)
    assert found == []
    assert set(diagnostics.report[0]["layers"]) >= {"conv2d/relu", "conv2d", "dense/relu"}


def test_on_by_default_at_verbose_1_and_replaced_by_the_users_instance(fashion) -> None:
    X, y = standardised(fashion[0][:256]), fashion[1][:256]
    model = mlp(L.Dense(784, 16, activation="relu"))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    history = model.fit(X, y, epochs=1, batch_size=128, verbose=2)
    assert len(history.diagnostics) == 1 and "dense/relu" in history.diagnostics[0]["layers"]
    history = model.fit(X, y, epochs=1, batch_size=128, verbose=0)
    assert history.diagnostics == []
    quiet = Diagnostics(warn=False)
    history = model.fit(X, y, epochs=1, batch_size=128, verbose=2, callbacks=[quiet])
    assert history.diagnostics == quiet.report  # one instance, not the default as well
    assert model.plan.observers == []  # the observer leaves with the fit


def test_watching_changes_no_result(fashion) -> None:
    X, y = standardised(fashion[0][:512]), fashion[1][:512]

    def trained(callbacks: list[Diagnostics]) -> list[np.ndarray]:
        model = mlp(L.Dense(784, 16, activation="relu"))
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        model.fit(X, y, epochs=2, batch_size=64, verbose=0, callbacks=callbacks)
        return [theta for _, theta, _ in model.parameters()]

    for a, b in zip(trained([]), trained([Diagnostics(every=1)]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_default_sgd_rate_on_a_learnable_problem_is_not_called_exploding() -> None:
    """SGD's default η = 1 (the notes' suggestion) takes a few large early steps on small
    initial weights while the loss falls: a typical step is judged, not the largest."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = lm.Model(
        [L.Dense(20, 64, activation="relu"), L.Dense(64, 2, activation="softmax")], seed=0
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    found, diagnostics = fit_watched(model, X, y, epochs=2, batch_size=32)
    assert found == []
    assert diagnostics.report[0]["layers"]["dense_1"]["max_update_ratio"] > 0.3  # early ones
