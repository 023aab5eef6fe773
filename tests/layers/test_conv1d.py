"""Conv1D, MaxPool1D and AvgPool1D: equal to Conv2D with (k, 1) kernels and to nested-loop
references, the padding formulas, clear errors, a model that trains, saves and loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import layers as L
from lamina.errors import BackwardError, ShapeError
from lamina.layers.conv1d import padding_1d

RNG = np.random.default_rng(0)


def reference_conv1d(
    x: np.ndarray, weights: np.ndarray, biases: np.ndarray, stride: int, dilation: int, pads
) -> np.ndarray:
    """S(n, t, f) = Σⱼ Σ_c X(n, t·s + j·d, c) · K(j, c, f) + b(f), one element at a time."""
    x = np.pad(x, ((0, 0), pads, (0, 0)))
    n, steps, channels = x.shape
    k, _, filters = weights.shape
    out = (steps - dilation * (k - 1) - 1) // stride + 1
    s = np.zeros((n, out, filters))
    for i in range(n):
        for t in range(out):
            for f in range(filters):
                total = biases[f]
                for j in range(k):
                    for c in range(channels):
                        total += x[i, t * stride + j * dilation, c] * weights[j, c, f]
                s[i, t, f] = total
    return s


def as_float64(layer: L.Layer) -> L.Layer:
    return layer.astype(np.float64)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(3, 1, "valid"), (3, 2, "same"), (4, 3, "same"), (2, 2, "valid")],
)
def test_conv1d_equals_conv2d_with_k_by_1_kernels(kernel: int, stride: int, padding: str) -> None:
    x = RNG.standard_normal((3, 11, 4))
    conv1d = as_float64(L.Conv1D(4, 5, kernel, stride=stride, padding=padding))
    conv2d = as_float64(L.Conv2D(4, 5, (kernel, 1), stride=(stride, 1), padding=padding))
    conv2d.params["weights"][...] = conv1d.params["weights"][:, None]
    conv1d.params["biases"][...] = RNG.standard_normal(5)
    conv2d.params["biases"][...] = conv1d.params["biases"]

    out1 = conv1d.forward(x, training=True)
    out2 = conv2d.forward(x[:, :, None], training=True)
    np.testing.assert_allclose(out1, out2[:, :, 0], rtol=0, atol=1e-12)
    delta = RNG.standard_normal(out1.shape)
    dx1 = conv1d.backward(delta)
    dx2 = conv2d.backward(delta[:, :, None])
    np.testing.assert_allclose(dx1, dx2[:, :, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        conv1d.grads["weights"], conv2d.grads["weights"][:, 0], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(conv1d.grads["biases"], conv2d.grads["biases"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding"),
    [(3, 1, 2, "valid"), (3, 2, 2, "same"), (2, 1, 3, "causal"), (3, 3, 2, "causal")],
)
def test_dilated_conv1d_equals_a_nested_loop_reference(
    kernel: int, stride: int, dilation: int, padding: str
) -> None:
    x = RNG.standard_normal((2, 13, 3))
    layer = as_float64(L.Conv1D(3, 4, kernel, stride, padding, dilation))
    layer.params["biases"][...] = RNG.standard_normal(4)
    out, before, after = padding_1d(13, kernel, stride, dilation, padding)
    weights, biases = layer.params["weights"], layer.params["biases"]
    expected = reference_conv1d(x, weights, biases, stride, dilation, (before, after))
    actual = layer.forward(x, training=True)
    assert actual.shape == (2, out, 4)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)

    # backward: the reference is linear in x and in K, so its gradients are read off it
    delta = RNG.standard_normal(actual.shape)
    dx = layer.backward(delta)
    expected_dx = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        unit = np.zeros_like(x)
        unit[index] = 1
        no_bias = reference_conv1d(unit, weights, 0 * biases, stride, dilation, (before, after))
        expected_dx[index] = np.sum(no_bias * delta)
    np.testing.assert_allclose(dx, expected_dx, rtol=0, atol=1e-12)
    expected_dk = np.zeros_like(weights)
    for index in np.ndindex(weights.shape):
        unit = np.zeros_like(weights)
        unit[index] = 1
        no_bias = reference_conv1d(x, unit, 0 * biases, stride, dilation, (before, after))
        expected_dk[index] = np.sum(no_bias * delta)
    np.testing.assert_allclose(layer.grads["weights"], expected_dk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.grads["biases"], delta.sum(axis=(0, 1)), atol=1e-12)


def test_output_size_formula_and_causal_padding() -> None:
    # T' = ⌊(T + pads − d(k − 1) − 1)/s⌋ + 1
    assert padding_1d(10, 3, 1, 1, "valid") == (8, 0, 0)
    assert padding_1d(10, 3, 2, 2, "valid") == (3, 0, 0)
    assert padding_1d(10, 3, 1, 2, "causal") == (10, 4, 0)
    assert padding_1d(10, 3, 3, 1, "same") == (4, 1, 1)
    assert padding_1d(10, 4, 1, 1, "same") == (10, 1, 2)  # the odd step after
    # causal: output t never reads an input after t
    x = RNG.standard_normal((1, 8, 1))
    layer = as_float64(L.Conv1D(1, 1, 3, padding="causal", dilation=2))
    changed = x.copy()
    changed[0, 5:] += 1.0
    np.testing.assert_array_equal(layer.forward(x)[0, :5], layer.forward(changed)[0, :5])


def test_inputs_are_not_modified_and_inference_keeps_nothing() -> None:
    x = RNG.standard_normal((2, 9, 3)).astype(np.float32)
    copy = x.copy()
    layer = L.Conv1D(3, 2, 3, padding="same", activation="relu")
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(x, copy)
    with pytest.raises(BackwardError, match="training=True"):
        layer.backward(np.ones_like(out))


def test_bad_inputs_are_clear_errors() -> None:
    layer = L.Conv1D(1, 4, 3, name="conv")
    with pytest.raises(ShapeError, match=r"channel axis is missing.*X\[\.\.\., None\]"):
        layer.forward(np.zeros((2, 10)))
    with pytest.raises(ShapeError, match="in_channels=5"):
        layer.forward(np.zeros((2, 10, 5)))
    with pytest.raises(ShapeError, match=r"X.transpose\(0, 2, 1\)"):
        L.Conv1D(3, 4, 3).forward(np.zeros((2, 3, 10)))
    with pytest.raises(ShapeError, match="spans 5 steps"):
        L.Conv1D(1, 4, 3, dilation=2).forward(np.zeros((2, 4, 1)))
    model = lm.Model([L.Conv1D(1, 4, 3), L.GlobalAveragePooling1D(), L.Dense(4, 2)])
    model.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ShapeError, match=r"X\[\.\.\., None\]"):
        model.fit(np.zeros((8, 10)), np.zeros((8, 2)), epochs=1, verbose=0)


@pytest.mark.parametrize("cls", [L.MaxPool1D, L.AvgPool1D])
@pytest.mark.parametrize(
    ("pool", "stride", "padding"), [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid")]
)
def test_pooling_1d_equals_a_loop_reference(cls: type, pool: int, stride, padding: str) -> None:
    x = RNG.standard_normal((2, 9, 3))
    layer = cls(pool, stride=stride, padding=padding)
    s = layer.stride
    geometry = layer.geometry(9)
    padded = np.pad(x, ((0, 0), (geometry.before, geometry.after), (0, 0)), constant_values=np.nan)
    expected = np.empty((2, geometry.out, 3))
    for t in range(geometry.out):
        window = padded[:, t * s : t * s + pool]
        expected[:, t] = (
            np.nanmax(window, axis=1) if cls is L.MaxPool1D else np.nanmean(window, axis=1)
        )
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=0, atol=1e-12)
    assert layer.output_shape((9, 3)) == (geometry.out, 3)


def test_max_pool_1d_ties_go_to_the_first_maximum() -> None:
    layer = L.MaxPool1D(2)
    x = np.array([[[1.0], [1.0], [0.0], [2.0]]])
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2, 1)))[0, :, 0], [1, 0, 0, 1])


def test_pool_longer_than_the_sequence_is_a_clear_error() -> None:
    with pytest.raises(ShapeError, match="padding='same'"):
        L.MaxPool1D(5).forward(np.zeros((1, 3, 2)))
    with pytest.raises(ShapeError, match=r"X\[\.\.\., None\]"):
        L.AvgPool1D(2).forward(np.zeros((1, 8)))


def rising_or_falling(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy ramps of 16 steps, up (class 1) or down (class 0), with a random offset."""
    labels = rng.integers(0, 2, n)
    ramp = np.linspace(-1, 1, 16)
    X = (np.where(labels[:, None], ramp, -ramp) + rng.normal(0, 0.3, (n, 16)))[..., None]
    return (X + rng.normal(0, 1, (n, 1, 1))).astype(np.float32), labels


def conv1d_model(seed: int = 0) -> lm.Model:
    model = lm.Model(
        [
            L.Conv1D(1, 8, 3, padding="causal", activation="relu"),
            L.MaxPool1D(2),
            L.Conv1D(8, 8, 3, dilation=2, activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(8, 2, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_a_conv1d_model_trains_and_stays_float32() -> None:
    X, y = rising_or_falling(400, np.random.default_rng(1))
    model = conv1d_model()
    history = model.fit(X, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    X_test, y_test = rising_or_falling(200, np.random.default_rng(2))
    predictions = model.predict(X_test)
    assert predictions.dtype == np.float32
    assert np.mean(predictions.argmax(axis=1) == y_test) > 0.9


def test_a_conv1d_model_saves_and_loads(tmp_path: Path) -> None:
    X, y = rising_or_falling(64, np.random.default_rng(3))
    model = conv1d_model()
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "conv1d.lamina")
    loaded = lm.load_model(tmp_path / "conv1d.lamina")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
