"""Convolutional layers (notes §1.11): the formula itself, pooling paths, batch norm modes,
and the errors users see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.checks import distinct
from lamina.engine.fusion import PooledConvolution

L = lm.layers


def reference_conv(
    images: np.ndarray, kernels: np.ndarray, biases: np.ndarray, stride: tuple[int, int]
) -> np.ndarray:
    """notes §1.11 literally: S(i, j) = Σₘ Σₙ I(i + m, j + n) · K(m, n), per filter, summed
    over channels, at stride s — nested loops, float64."""
    n, height, width, channels = images.shape
    kh, kw, _, filters = kernels.shape
    out_h, out_w = (height - kh) // stride[0] + 1, (width - kw) // stride[1] + 1
    out = np.zeros((n, out_h, out_w, filters))
    for sample in range(n):
        for i in range(out_h):
            for j in range(out_w):
                for f in range(filters):
                    total = biases[f]
                    for m in range(kh):
                        for k in range(kw):
                            for c in range(channels):
                                total += (
                                    images[sample, i * stride[0] + m, j * stride[1] + k, c]
                                    * kernels[m, k, c, f]
                                )
                    out[sample, i, j, f] = total
    return out


@pytest.mark.parametrize(
    ("kernel", "stride", "channels", "filters"),
    [(3, 1, 1, 4), ((3, 2), (2, 1), 3, 2), (2, 2, 2, 3), (5, 1, 4, 1)],
)
def test_conv_forward_equals_the_notes_formula(
    kernel: int | tuple[int, int], stride: int | tuple[int, int], channels: int, filters: int
) -> None:
    rng = np.random.default_rng(0)
    conv = L.Conv2D(channels, filters, kernel, stride=stride).astype(np.float64)
    conv.params["biases"][...] = rng.standard_normal(filters)
    images = rng.standard_normal((2, 7, 6, channels))
    expected = reference_conv(images, conv.params["weights"], conv.params["biases"], conv.stride)
    assert np.max(np.abs(conv.forward(images) - expected)) < 1e-10


def test_same_padding_keeps_the_size_at_stride_1_and_halves_it_at_stride_2() -> None:
    x = np.ones((1, 28, 28, 1), np.float32)
    assert L.Conv2D(1, 2, 3, padding="same").forward(x).shape == (1, 28, 28, 2)
    assert L.Conv2D(1, 2, 3, stride=2, padding="same").forward(x).shape == (1, 14, 14, 2)
    assert L.Conv2D(1, 2, 3, stride=2).forward(x).shape == (1, 13, 13, 2)


def test_same_padding_equals_valid_on_a_zero_padded_image() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 5, 2))
    same = L.Conv2D(2, 3, 3, padding="same").astype(np.float64)
    valid = L.Conv2D(2, 3, 3).astype(np.float64)
    valid.params = {k: v.copy() for k, v in same.params.items()}
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    np.testing.assert_allclose(same.forward(x), valid.forward(padded), atol=1e-12)


def test_one_dimensional_signals_work_as_h_by_1_images() -> None:
    conv = L.Conv2D(1, 2, (3, 1)).astype(np.float64)
    signal = np.arange(8.0).reshape(1, 8, 1, 1)
    out = conv.forward(signal)
    kernel = conv.params["weights"][:, 0, 0, 0]
    np.testing.assert_allclose(out[0, :, 0, 0], np.correlate(signal[0, :, 0, 0], kernel, "valid"))


@pytest.mark.parametrize("pool", [L.MaxPool2D, L.AvgPool2D])
def test_pooling_fast_path_equals_the_general_path(pool: type[L.Layer]) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 4, 5))
    d = rng.standard_normal((3, 3, 2, 5))
    fast, general = pool(2), pool(2)
    general._tiles = lambda shape: False  # type: ignore[method-assign]
    np.testing.assert_array_equal(fast.forward(x), general.forward(x))
    np.testing.assert_array_equal(fast.backward(d), general.backward(d))


def test_max_pool_gives_the_gradient_to_one_element_of_a_tie() -> None:
    x = np.ones((1, 2, 2, 1))
    pool = L.MaxPool2D(2)
    assert pool.forward(x)[0, 0, 0, 0] == 1
    dx = pool.backward(np.full((1, 1, 1, 1), 5.0))
    assert dx.sum() == 5.0 and np.count_nonzero(dx) == 1 and dx[0, 0, 0, 0] == 5.0


def test_max_pool_values_and_avg_pool_sharing() -> None:
    x = distinct(np.random.default_rng(3), (1, 4, 4, 1))
    blocks = x[0, :, :, 0].reshape(2, 2, 2, 2).swapaxes(1, 2)
    np.testing.assert_array_equal(L.MaxPool2D(2).forward(x)[0, :, :, 0], blocks.max(axis=(2, 3)))
    avg = L.AvgPool2D(2)
    avg.forward(x)
    np.testing.assert_allclose(avg.backward(np.ones((1, 2, 2, 1))), np.full((1, 4, 4, 1), 0.25))


def test_batch_norm_normalizes_each_channel_in_training() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 5, 5, 3)) * [1.0, 5.0, 0.1] + [0.0, 3.0, -2.0]
    out = L.BatchNorm(3).astype(np.float64).forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, rtol=1e-3)


def test_batch_norm_running_statistics_follow_the_momentum() -> None:
    norm = L.BatchNorm(2, momentum=0.9).astype(np.float64)
    x = np.array([[1.0, 10.0], [3.0, 14.0]])
    norm.forward(x, training=True)
    np.testing.assert_allclose(norm.state["running_mean"], 0.1 * np.array([2.0, 12.0]))
    # unbiased batch variance: [2, 8]; running = 0.9·1 + 0.1·var
    np.testing.assert_allclose(norm.state["running_var"], [0.9 + 0.2, 0.9 + 0.8])


def test_batch_norm_inference_uses_running_statistics() -> None:
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((200, 8, 8, 1)) * 2 + 1).astype(np.float32)
    y = (X.mean(axis=(1, 2, 3)) > 1).astype(int)
    model = lm.Model(
        [
            L.Conv2D(1, 4, 3, activation="relu"),
            L.BatchNorm(4),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(36, 8),
            L.BatchNorm(8),
            L.ReLU(),
            L.Dropout(0.2),
            L.Dense(8, 2, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, y, epochs=3, batch_size=32, verbose=0)
    batch = model.predict(X[:50])
    for index in (0, 17, 49):
        single = model.predict(X[index : index + 1])
        np.testing.assert_allclose(single[0], batch[index], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X[:50]), batch)  # no dropout, no batch stats


def test_flatten_round_trips_the_shape() -> None:
    flatten = L.Flatten()
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    assert flatten.forward(x).shape == (2, 12)
    assert flatten.backward(np.ones((2, 12))).shape == (2, 3, 2, 2)


def test_cnn_summary_and_size_checks() -> None:
    model = lm.Model(
        [
            L.Conv2D(1, 8, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(13 * 13 * 8, 10, activation="softmax"),
        ]
    )
    text = model.summary(input_shape=(28, 28, 1))
    assert "(batch, 26, 26, 8)" in text and "(batch, 13, 13, 8)" in text and "(batch, 1352)" in text
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    with pytest.raises(lm.errors.ShapeError, match=r"expects inputs of shape \(batch, 1352\)"):
        model.fit(np.zeros((2, 30, 30, 1)), np.zeros(2, int), verbose=0)


# -- bad input: the layer, the shape received, the shape expected ------------------------------
@pytest.mark.parametrize(
    ("call", "words"),
    [
        (
            lambda: L.Conv2D(1, 2, 3).forward(np.zeros((4, 784))),
            ["Conv2D", "(4, 784)", "(batch, ?, ?, 1)", "reshape"],
        ),
        (
            lambda: L.Conv2D(3, 2, 3).forward(np.zeros((4, 28, 28, 1))),
            ["Conv2D", "(4, 28, 28, 1)", "(batch, ?, ?, 3)"],
        ),
        (
            lambda: L.Conv2D(1, 2, 7).forward(np.zeros((4, 5, 5, 1))),
            ["Conv2D", "7×7 kernel", "5×5 padded input", "(batch, 5, 5, 1)", "Fix"],
        ),
        (lambda: L.MaxPool2D(2).forward(np.zeros((4, 10))), ["MaxPool2D", "(4, 10)"]),
        (lambda: L.MaxPool2D(4).forward(np.zeros((1, 3, 3, 1))), ["4×4 pool", "3×3 input"]),
        (lambda: L.BatchNorm(4).forward(np.zeros((2, 5))), ["BatchNorm", "4 features", "(2, 5)"]),
    ],
)
def test_bad_shapes_name_the_layer_and_both_shapes(
    call: Callable[[], object], words: list[str]
) -> None:
    with pytest.raises(lm.errors.ShapeError) as excinfo:
        call()
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: L.MaxPool2D(0), "MaxPool2D.pool_size"),
        (lambda: L.AvgPool2D((2, 0)), "AvgPool2D.pool_size"),
        (lambda: L.MaxPool2D(2, stride=-1), "MaxPool2D.stride"),
        (lambda: L.Conv2D(1, 2, 0), "Conv2D.kernel_size"),
        (lambda: L.Conv2D(1, 2, 3, padding="full"), "Conv2D.padding"),
        (lambda: L.Conv2D(0, 2, 3), "Conv2D.in_channels"),
        (lambda: L.BatchNorm(3, momentum=1.0), "BatchNorm.momentum"),
    ],
)
def test_bad_arguments_are_named(build: Callable[[], object], argument: str) -> None:
    with pytest.raises(lm.errors.ConfigError, match=argument):
        build()


def test_pooled_convolution_equals_the_layers_run_one_by_one() -> None:
    # the plan runs Conv2D(activation="relu") → MaxPool2D as one PooledConvolution (the
    # convolution in pool order), then the ReLU (execution.py, fusion.py); the reference
    # runs each layer's own forward/backward in the order given
    rng = np.random.default_rng(6)
    X = rng.standard_normal((16, 10, 10, 2)).astype(np.float32)
    X[:, :4] = 0.5  # flat regions: windows whose outputs tie
    y = rng.integers(0, 3, 16)
    model = lm.Model(
        [
            L.Conv2D(2, 5, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(4 * 4 * 5, 3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    assert [type(s).__name__ for s in model._plan.steps][:2] == [
        "PooledConvolution",
        "InPlaceActivation",
    ]
    y_pred = model.forward(X, training=True)
    model.backward(y_pred, y)
    planned = {
        f"{layer.name}/{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()
    }

    outputs = X
    for layer in model.layers:
        outputs = layer.forward(outputs, training=True)
    # the same dot products, in matmuls of other sizes: equal up to rounding
    np.testing.assert_allclose(outputs, y_pred, rtol=1e-5, atol=1e-7)
    conv, pool, flatten, dense = model.layers
    d = model.loss.backward_through_softmax(outputs, y)  # type: ignore[union-attr]
    conv.backward(pool.backward(flatten.backward(dense.backward_linear(d))))
    for layer in (dense, conv):  # ∂L/∂K also sums the same rows in another order
        for key, grad in layer.grads.items():
            np.testing.assert_allclose(grad, planned[f"{layer.name}/{key}"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("channels", "size", "conv_args", "pool_size"),
    [
        (1, (9, 9), {"kernel_size": 3}, 2),  # odd map: the last row/column is dropped
        (3, (10, 8), {"kernel_size": 3, "padding": "same"}, 2),
        (2, (13, 12), {"kernel_size": (3, 2), "stride": 2}, (2, 3)),
        (9, (8, 8), {"kernel_size": 2}, 3),  # ≥ 8 channels: the sliding-window copy
        (4, (12, 1), {"kernel_size": (3, 1)}, (2, 1)),  # a 1-D signal as an H×1 image
    ],
)
def test_pooled_convolution_float64_matches_layers_and_numerical_gradients(
    channels: int,
    size: tuple[int, int],
    conv_args: dict[str, Any],
    pool_size: int | tuple[int, int],
) -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, *size, channels))
    conv = L.Conv2D(channels, 4, **conv_args)
    pool = L.MaxPool2D(pool_size)
    conv.astype(np.float64)
    step = PooledConvolution(conv, pool)
    fused = step.forward(X, training=True)
    dvalues = rng.standard_normal(fused.shape)
    dx = step.backward(dvalues)
    fused_grads = {key: grad.copy() for key, grad in conv.grads.items()}
    reference = pool.forward(conv.forward(X), training=True)
    np.testing.assert_allclose(fused, reference, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx, conv.backward(pool.backward(dvalues)), rtol=1e-12, atol=1e-13)
    for key, grad in conv.grads.items():
        np.testing.assert_allclose(fused_grads[key], grad, rtol=1e-12, atol=1e-13)

    model = lm.Model(
        [L.Conv2D(channels, 4, **conv_args), L.MaxPool2D(pool_size), L.Flatten()], seed=1
    )
    model.compile(loss="mean_squared_error", optimizer="sgd")
    assert type(model._plan.steps[0]) is PooledConvolution
    targets = rng.standard_normal((5, fused[0].size))
    assert lm.gradcheck(model, X, targets).max_error < 1e-6


def test_pooling_that_overlaps_or_follows_another_activation_is_not_fused() -> None:
    for layers in (
        [L.Conv2D(1, 2, 3), L.MaxPool2D(3, stride=2)],
        [L.Conv2D(1, 2, 3, activation="tanh"), L.MaxPool2D(2)],
        [L.Conv2D(1, 2, 3), L.AvgPool2D(2)],
    ):
        model = lm.Model(layers)
        assert not any(isinstance(s, PooledConvolution) for s in model._plan.steps)
