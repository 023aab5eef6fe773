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
from lamina.layers import _lanes, normalization
from lamina.layers._im2col import (
    col2im,
    crop,
    im2col,
    im2col_pool_order,
    kernel_matrix,
    pad,
    padded_geometry,
    pool_to_image_order,
)

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
    np.testing.assert_array_equal(fast.forward(x, training=True), general.forward(x, training=True))
    np.testing.assert_array_equal(fast.backward(d), general.backward(d))


def test_max_pool_gives_the_gradient_to_one_element_of_a_tie() -> None:
    x = np.ones((1, 2, 2, 1))
    pool = L.MaxPool2D(2)
    assert pool.forward(x, training=True)[0, 0, 0, 0] == 1
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


@pytest.mark.parametrize(
    ("wide_values", "blocks", "strided"),
    [(1, 7, False), (9, 9, False), (9, 7, True)],
    ids=["rows as they are", "3 rows per wide row", "strided rows"],
)
def test_batch_norm_in_blocks_of_rows_is_the_formula(
    monkeypatch: pytest.MonkeyPatch, wide_values: int, blocks: int, strided: bool
) -> None:
    # 96-byte blocks: 4 rows of 3 float64 features, 7 blocks over 26 rows, the last of 2;
    # viewed 3 rows wide (lamina.layers._lanes), blocks of 3 rows and a last one of 2 that
    # stays as it is; strided rows (every other feature of 6) are never viewed wide
    monkeypatch.setattr(normalization, "BLOCK_BYTES", 96)
    monkeypatch.setattr(_lanes, "WIDE_VALUES", wide_values)
    monkeypatch.setattr(_lanes, "MIN_WIDE_VALUES", 0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 13, 3)) * [1.0, 5.0, 0.1] + [0.0, 3.0, -2.0]
    delta = rng.standard_normal(x.shape)
    if strided:
        x, delta = (np.repeat(a, 2, axis=-1)[..., ::2] for a in (x, delta))
        assert not x.reshape(-1, 3).flags.c_contiguous
    norm = L.BatchNorm(3).astype(np.float64)
    norm.params["gamma"][...] = [0.5, -2.0, 1.5]
    norm.params["beta"][...] = [0.1, 0.2, -0.3]
    out = norm.forward(x, training=True)
    dx = norm.backward(delta)
    rows, d = x.reshape(-1, 3), delta.reshape(-1, 3)
    m, gamma = len(rows), norm.params["gamma"]
    x_hat = (rows - rows.mean(0)) / np.sqrt(rows.var(0) + norm.epsilon)
    np.testing.assert_allclose(
        out.reshape(-1, 3), gamma * x_hat + norm.params["beta"], rtol=1e-10, atol=1e-12
    )
    expected = (
        gamma
        / (m * np.sqrt(rows.var(0) + norm.epsilon))
        * (m * d - d.sum(0) - x_hat * (d * x_hat).sum(0))
    )
    np.testing.assert_allclose(dx.reshape(-1, 3), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norm.grads["gamma"], (d * x_hat).sum(0), rtol=1e-12)
    np.testing.assert_allclose(norm.grads["beta"], d.sum(0), rtol=1e-12)
    width = _lanes.lanes(3, x.reshape(-1, 3)).width
    assert len(normalization.row_blocks((26, 3), np.dtype(np.float64), width)) == blocks


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


def conv_model(in_channels: int = 1) -> lm.Model:
    model = lm.Model([L.Conv2D(in_channels, 4, 3, activation="relu"), L.Flatten()], seed=0)
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


LAYOUT_MISTAKES = {
    # (data, in_channels, words the message must hold)
    "channel axis missing": (
        np.zeros((2, 28, 28), np.float32),
        1,
        ["channel axis is missing", "X[..., None]", "(batch, 28, 28, 1)"],
    ),
    "channel axis missing, 3-channel layer": (
        np.zeros((2, 8, 8), np.float32),
        3,
        ["channel axis is missing", "X[..., None]", "expects 3"],
    ),
    "channels first (NCHW)": (
        np.zeros((2, 1, 28, 28), np.float32),
        1,
        ["channels come first", "NHWC", "X.transpose(0, 2, 3, 1)", "(batch, 28, 28, 1)"],
    ),
    "RGB channels first (NCHW)": (
        np.zeros((2, 3, 8, 8), np.float32),
        3,
        ["channels come first", "NHWC", "X.transpose(0, 2, 3, 1)", "(batch, 8, 8, 3)"],
    ),
    "other channel count": (
        np.zeros((2, 8, 8, 3), np.float32),
        1,
        ["3 channel(s)", "expects 1", "in_channels=3"],
    ),
}


@pytest.mark.parametrize("mistake", LAYOUT_MISTAKES)
def test_image_layout_mistakes_are_named_with_their_fix(mistake: str) -> None:
    X, in_channels, words = LAYOUT_MISTAKES[mistake]
    calls: list[Callable[[], object]] = [
        lambda: L.Conv2D(in_channels, 4, 3).forward(X),  # the layer alone
        lambda: conv_model(in_channels).predict(X),  # a model whose first layer it is
        lambda: conv_model(in_channels).fit(X, np.zeros((2, 1)), verbose=0),
        lambda: conv_model(in_channels).output_shape(X.shape[1:]),
    ]
    for call in calls:
        with pytest.raises(lm.errors.ShapeError) as excinfo:
            call()
        message = str(excinfo.value)
        assert "Conv2D" in message and "expects NHWC images" in message, message
        for word in words:
            assert word in message, message


def test_the_fixes_the_layout_errors_suggest_work() -> None:
    gray = np.random.default_rng(0).random((2, 6, 6)).astype(np.float32)  # (N, H, W)
    nchw = gray[:, None]  # (N, 1, H, W)
    model = conv_model()
    expected = model.predict(gray[..., None])
    assert expected.shape == (2, 4 * 4 * 4)
    np.testing.assert_array_equal(model.predict(nchw.transpose(0, 2, 3, 1)), expected)


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


def fused_and_layers(
    conv: L.Conv2D, pool: L.MaxPool2D, X: np.ndarray, rng: np.random.Generator
) -> tuple[list[np.ndarray | None], list[np.ndarray | None], dict[str, np.ndarray]]:
    """([P, ∂L/∂X, δ] of the PooledConvolution, [P, ∂L/∂X] of the two layers one by one,
    the fused step's gradients); the layers' gradients are left in ``conv.grads``."""
    step = PooledConvolution(conv, pool)
    fused = step.forward(X, training=True)
    dvalues = rng.standard_normal(fused.shape)
    dx = step.backward(dvalues)
    fused_grads = {key: grad.copy() for key, grad in conv.grads.items()}
    reference = pool.forward(conv.forward(X, training=True), training=True)
    reference_dx = conv.backward(pool.backward(dvalues))
    return [fused, dx, dvalues], [reference, reference_dx], fused_grads


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
    (fused, dx, _), (reference, reference_dx), fused_grads = fused_and_layers(conv, pool, X, rng)
    assert fused is not None
    np.testing.assert_allclose(fused, reference, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx, reference_dx, rtol=1e-12, atol=1e-13)
    for key, grad in conv.grads.items():
        np.testing.assert_allclose(fused_grads[key], grad, rtol=1e-12, atol=1e-13)

    model = lm.Model(
        [L.Conv2D(channels, 4, **conv_args), L.MaxPool2D(pool_size), L.Flatten()], seed=1
    )
    model.compile(loss="mean_squared_error", optimizer="sgd")
    assert type(model._plan.steps[0]) is PooledConvolution
    targets = rng.standard_normal((5, fused[0].size))
    assert lm.gradcheck(model, X, targets).max_error < 1e-6


@pytest.mark.parametrize("block_bytes", [normalization.BLOCK_BYTES, 4 * 8 * 7])
@pytest.mark.parametrize("input_grad", [False, True])
def test_pooled_convolution_in_blocks_of_rows_is_the_layers(
    monkeypatch: pytest.MonkeyPatch, block_bytes: int, input_grad: bool
) -> None:
    # by im2col, S is made and pooled a block of rows at a time (7 rows a block, the last
    # ragged, or one block), and a first layer's ∂L/∂K is summed over the same blocks,
    # each routed just before; integer pixels make windows whose outputs tie
    monkeypatch.setattr(normalization, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(11)
    X = rng.integers(0, 3, (6, 9, 11, 1)).astype(np.float64)
    conv, pool = L.Conv2D(1, 4, 3), L.MaxPool2D(2)
    conv.astype(np.float64)
    conv.params["weights"][...] = rng.integers(-1, 2, conv.params["weights"].shape)
    conv.input_grad = input_grad
    (fused, dx, dvalues), (reference, reference_dx), fused_grads = fused_and_layers(
        conv, pool, X, rng
    )
    assert dvalues is not None
    np.testing.assert_array_equal(fused, reference)  # the same dot products, each exact
    if input_grad:
        np.testing.assert_allclose(dx, reference_dx, rtol=1e-12, atol=1e-13)
    else:
        assert dx is None
    for key, grad in conv.grads.items():
        np.testing.assert_allclose(fused_grads[key], grad, rtol=1e-12, atol=1e-13)
    step = PooledConvolution(conv, pool)
    inference = step.forward(X)  # keeps nothing: a backward now is refused
    np.testing.assert_array_equal(inference, reference)
    with pytest.raises(lm.errors.BackwardError):
        step.backward(dvalues)


@pytest.mark.parametrize("channels", [1, 16])  # by im2col, by F(2×2, 3×3)
def test_pooled_convolution_names_the_shape_errors(channels: int) -> None:
    step = PooledConvolution(L.Conv2D(channels, 4, 3), L.MaxPool2D(2))
    with pytest.raises(lm.errors.ShapeError, match="pool is larger than the 1×1 input"):
        step.forward(np.zeros((2, 3, 3, channels), np.float32), training=True)
    for shape in ((2, 6, 6, channels + 1), (2, 6, 6)):
        with pytest.raises(lm.errors.ShapeError, match="expects NHWC images"):
            step.forward(np.zeros(shape, np.float32))


def test_pooling_that_overlaps_or_follows_another_activation_is_not_fused() -> None:
    for layers in (
        [L.Conv2D(1, 2, 3), L.MaxPool2D(3, stride=2)],
        [L.Conv2D(1, 2, 3, activation="tanh"), L.MaxPool2D(2)],
        [L.Conv2D(1, 2, 3), L.AvgPool2D(2)],
    ):
        model = lm.Model(layers)
        assert not any(isinstance(s, PooledConvolution) for s in model._plan.steps)


# -- the pure functions of lamina.layers._im2col, against their definitions ---------------------
def window(padded: np.ndarray, n: int, top: int, left: int, kernel: tuple[int, int]) -> list[float]:
    """The kh·kw·C values of the window at (top, left) of image n, in (m, k, c) row-major
    order (the order of K(m, k, c, f) reshaped to (kh·kw·C, F)) — nested loops."""
    values = []
    for m in range(kernel[0]):
        for k in range(kernel[1]):
            for c in range(padded.shape[-1]):
                values.append(padded[n, top + m, left + k, c])
    return values


@pytest.mark.parametrize(
    ("kernel", "stride", "channels"),
    [((3, 3), (1, 1), 2), ((3, 2), (2, 1), 3), ((2, 2), (2, 2), 9), ((1, 3), (1, 2), 8)],
)
def test_im2col_rows_are_the_windows_of_the_notes_formula(
    kernel: tuple[int, int], stride: tuple[int, int], channels: int
) -> None:
    # < 8 channels fill column-major cols, ≥ 8 copy sliding windows: both are checked
    rng = np.random.default_rng(7)
    padded = rng.standard_normal((2, 7, 6, channels))
    out = ((7 - kernel[0]) // stride[0] + 1, (6 - kernel[1]) // stride[1] + 1)
    cols = im2col(padded, kernel, stride, out)
    expected = [
        [*window(padded, n, i * stride[0], j * stride[1], kernel), 1.0]
        for n in range(2)
        for i in range(out[0])
        for j in range(out[1])
    ]
    np.testing.assert_array_equal(cols, expected)
    weights = rng.standard_normal((*kernel, channels, 3))
    biases = rng.standard_normal(3)
    S = (cols @ kernel_matrix(weights, biases)).reshape(2, *out, 3)
    np.testing.assert_allclose(S, reference_conv(padded, weights, biases, stride), atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "stride", "pool", "channels"),
    [((3, 3), (1, 1), (2, 2), 1), ((3, 2), (2, 1), (2, 3), 2), ((2, 2), (1, 1), (3, 3), 9)],
)
def test_image_order_and_pool_order_hold_the_same_windows(
    kernel: tuple[int, int], stride: tuple[int, int], pool: tuple[int, int], channels: int
) -> None:
    rng = np.random.default_rng(8)
    padded = rng.standard_normal((3, 9, 10, channels))
    out = ((9 - kernel[0]) // stride[0] + 1, (10 - kernel[1]) // stride[1] + 1)
    (ph, pw), pooled = pool, (out[0] // pool[0], out[1] // pool[1])
    pool_order = im2col_pool_order(padded, kernel, stride, pooled, pool)
    # block (a, b), row (n, i, j): the window of output pixel (ph·i + a, pw·j + b)
    expected = [
        [*window(padded, n, (ph * i + a) * stride[0], (pw * j + b) * stride[1], kernel), 1.0]
        for a in range(ph)
        for b in range(pw)
        for n in range(3)
        for i in range(pooled[0])
        for j in range(pooled[1])
    ]
    np.testing.assert_array_equal(pool_order, expected)
    covered = (ph * pooled[0], pw * pooled[1])  # the pixels a pooling with stride = pool reads
    image_order = im2col(padded, kernel, stride, covered)
    np.testing.assert_array_equal(pool_to_image_order(pool_order, 3, pooled, pool), image_order)


@pytest.mark.parametrize(
    ("kernel", "stride"), [((3, 3), (1, 1)), ((3, 2), (2, 1)), ((2, 2), (3, 2))]
)
def test_col2im_adds_each_window_gradient_back_onto_its_pixels(
    kernel: tuple[int, int], stride: tuple[int, int]
) -> None:
    rng = np.random.default_rng(9)
    n, size, channels, filters = 2, (8, 7), 3, 4
    out = ((size[0] - kernel[0]) // stride[0] + 1, (size[1] - kernel[1]) // stride[1] + 1)
    delta = rng.standard_normal((n * out[0] * out[1], filters))
    weights = rng.standard_normal((*kernel, channels, filters))
    # ∂L/∂I(n, i·sh + m, j·sw + k, c) += Σ_f δ(n, i, j, f) · K(m, k, c, f), nested loops
    expected = np.zeros((n, *size, channels))
    for row, (sample, i, j) in enumerate(np.ndindex(n, *out)):
        for m in range(kernel[0]):
            for k in range(kernel[1]):
                for c in range(channels):
                    expected[sample, i * stride[0] + m, j * stride[1] + k, c] += sum(
                        delta[row, f] * weights[m, k, c, f] for f in range(filters)
                    )
    dx = col2im(delta, weights, stride, out, (n, *size, channels))
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_padded_geometry_counts_the_windows_that_fit(padding: str) -> None:
    x = np.random.default_rng(10).standard_normal((1, 9, 9, 1))
    for size in range(1, 10):
        for kernel in range(1, 5):
            for stride in range(1, 4):
                geometry = padded_geometry((size, 9), (kernel, 1), (stride, 1), padding)
                (top, _), (bottom, _) = geometry.before, geometry.after
                padded = size + top + bottom
                assert geometry.padded_size[0] == padded
                fitting = sum(1 for i in range(padded) if i * stride + kernel <= padded)
                # a kernel larger than the padded input fits nowhere (Conv2D: a ShapeError)
                assert max(geometry.output[0], 0) == fitting
                if padding == "same":  # ⌈size/stride⌉ outputs, the odd padding pixel after
                    assert geometry.output[0] == -(-size // stride) and 0 <= bottom - top <= 1
                else:
                    assert top == bottom == 0
                cropped = crop(pad(x[:, :size], geometry), geometry)
                np.testing.assert_array_equal(cropped, x[:, :size])


# -- what forward keeps for backward --------------------------------------------------------------
def arrays_held(obj: object) -> list[np.ndarray]:
    """Every array an object holds, through the attributes of lamina objects (layers, steps,
    caches), lists, tuples and dicts."""
    found, seen, stack = [], set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif type(item).__module__.startswith("lamina") and hasattr(item, "__dict__"):
            stack.extend(vars(item).values())
    return found


def cols_bytes(x: np.ndarray, conv: lm.layers.Conv2D, out: tuple[int, int]) -> int:
    kh, kw = conv.kernel_size
    return len(x) * out[0] * out[1] * (kh * kw * conv.in_channels + 1) * x.itemsize


def test_an_inference_forward_keeps_no_cols() -> None:
    x = np.random.default_rng(11).standard_normal((4, 9, 9, 2))
    conv, fused = L.Conv2D(2, 3, 3).astype(np.float64), L.Conv2D(2, 3, 3).astype(np.float64)
    step = PooledConvolution(fused, L.MaxPool2D(2))
    for target, layer, out in ((conv, conv, (7, 7)), (step, fused, (6, 6))):
        target.backward(np.ones_like(target.forward(x, training=True)))
        kept = max(a.nbytes for a in arrays_held(target))
        assert kept >= cols_bytes(x, layer, out)  # the training forward keeps cols
        target.forward(x, training=False)
        with pytest.raises(lm.errors.BackwardError):  # no cache for backward …
            target.backward(np.ones((4, *out, 3)))
        target.release_scratch()  # … and its scratch memory goes when predict is done
        owned = {id(a) for a in [*layer.params.values(), *layer.grads.values()]}
        assert {id(a) for a in arrays_held(target)} == owned


def test_a_model_keeps_no_cols_of_its_fused_convolution_after_predict() -> None:
    rng = np.random.default_rng(12)
    X, y = rng.standard_normal((8, 8, 8, 1)), rng.standard_normal((8, 2))
    model = lm.Model(
        [L.Conv2D(1, 4, 3, activation="relu"), L.MaxPool2D(2), L.Flatten(), L.Dense(36, 2)],
        seed=0,
    )
    model.compile(loss="mean_squared_error", optimizer="sgd")
    cols_shape = (8 * 6 * 6, 3 * 3 * 1 + 1)  # the 2×2 pooling reads all 6×6 outputs

    def shapes_held() -> set[tuple[int, ...]]:
        return {a.shape for a in arrays_held(model)}

    model.fit(X, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert cols_shape in shapes_held()
    model.predict(X)
    assert cols_shape not in shapes_held()


def conv_step() -> PooledConvolution:
    return PooledConvolution(L.Conv2D(2, 3, 3, name="c"), L.MaxPool2D(2, name="p"))


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: L.Conv2D(2, 3, 3, name="conv"), ["'conv' (Conv2D).backward"]),
        (lambda: L.Conv2D(2, 3, 3, activation="relu"), ["(Conv2D).backward"]),
        (lambda: L.MaxPool2D(2, name="pool"), ["'pool' (MaxPool2D).backward"]),
        (conv_step, ["'c' (Conv2D) → Layer 'p' (MaxPool2D).backward"]),
    ],
)
def test_backward_after_an_inference_forward_raises_a_clear_error(
    build: Callable[[], Any], words: list[str]
) -> None:
    # not a silent rerun of forward, nor a reuse of the last training pass's cache
    x = np.random.default_rng(13).standard_normal((2, 8, 8, 2))
    target = build()
    target.backward(np.ones_like(target.forward(x, training=True)))
    dvalues = np.ones_like(target.forward(x, training=False))
    with pytest.raises(lm.errors.LaminaError) as excinfo:
        target.backward(dvalues)
    for word in ["`training`", "training=True", "training=False", "Fix: call forward", *words]:
        assert word in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("build", [lambda: L.Conv2D(2, 3, 3), lambda: L.MaxPool2D(2), conv_step])
def test_backward_before_any_forward_raises_the_same_error(build: Callable[[], Any]) -> None:
    with pytest.raises(lm.errors.LaminaError, match="training=True"):
        build().backward(np.ones((2, 3, 3, 3)))
