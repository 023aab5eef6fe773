"""Conv2D → BatchNorm → MaxPool2D as one training step (``lamina.engine.normalized_pooling``,
``lamina.engine.tiled_normalized_pooling``):
the outputs, running statistics, gradients and ∂L/∂inputs of the three layers run one by
one (float64, 1e-10), ties and odd sizes included; which plans fuse; its errors."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest

import lamina as lm
from lamina.engine.normalized_pooling import NormalizedPooledConvolution
from lamina.engine.tiled_normalized_pooling import TiledNormalizedPooling
from lamina.errors import BackwardError
from lamina.layers import _lanes
from lamina.layers.stack import named_tensors

L = lm.layers
Block = tuple[L.Conv2D, L.BatchNorm, L.MaxPool2D]


def block(
    channels: int,
    kernel: int,
    padding: str = "valid",
    pool: int = 2,
    input_grad: bool = True,
    stride: int = 1,
) -> Block:
    rng = np.random.default_rng(channels * 10 + kernel)
    conv = L.Conv2D(channels, 5, kernel, stride, padding=padding, weight_l2=0.01)
    norm, max_pool = L.BatchNorm(5, momentum=0.7), L.MaxPool2D(pool)
    for layer in (conv, norm, max_pool):
        layer.astype(np.float64)
    conv.params["biases"][...] = rng.standard_normal(5)
    norm.params["gamma"][...] = [0.5, -1.5, 2.0, 1.0, -0.3]  # negative scales flip maxima
    norm.params["beta"][...] = rng.standard_normal(5)
    conv.input_grad = input_grad
    return conv, norm, max_pool


def one_by_one(
    layers: Block, x: np.ndarray, delta_of: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    conv, norm, pool = layers
    out = conv.linear_forward(x, training=True)
    out = pool.forward(norm.forward(out, training=True), training=True)
    dx = conv.backward_linear(norm.backward(pool.backward(delta_of(out))))
    return out, dx


def assert_fused_equals_layers(
    layers: Block,
    x: np.ndarray,
    kind: type[NormalizedPooledConvolution] = NormalizedPooledConvolution,
) -> NormalizedPooledConvolution:
    plain = copy.deepcopy(layers)
    step = kind(*layers)
    rng = np.random.default_rng(9)
    deltas: dict[tuple[int, ...], np.ndarray] = {}

    def delta_of(out: np.ndarray) -> np.ndarray:
        return deltas.setdefault(out.shape, rng.standard_normal(out.shape))

    for _ in range(2):  # twice: the running statistics move on
        expected, expected_dx = one_by_one(plain, x, delta_of)
        out = step.forward(x, training=True)
        dx = step.backward(delta_of(out))
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
        if expected_dx is None:
            assert dx is None
        else:
            np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-12)
        tensors = zip(named_tensors(list(layers)), named_tensors(list(plain)), strict=True)
        for (name, got), (_, want) in tensors:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)
        for layer, twin in zip(layers, plain, strict=True):
            for key in layer.params:
                got, want = layer.grads[key], twin.grads[key]
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=key)
    return step


@pytest.mark.parametrize(
    ("channels", "kernel", "padding", "pool", "size", "input_grad", "stride"),
    [
        (1, 3, "valid", 2, (10, 8), False, 1),  # W2-BN's first block, no ∂L/∂inputs
        (1, 3, "valid", 2, (10, 8), True, 1),
        (3, 2, "same", 3, (9, 6), True, 1),  # im2col's other layout (C ≥ 8 is row-major)
        (8, 3, "same", 2, (6, 6), True, 1),
        (3, 5, "valid", 2, (23, 23), True, 2),  # 10 × 10 outputs of a strided 5 × 5 kernel
    ],
)
def test_the_fused_step_is_the_three_layers(
    channels: int,
    kernel: int,
    padding: str,
    pool: int,
    size: tuple[int, int],
    input_grad: bool,
    stride: int,
) -> None:
    layers = block(channels, kernel, padding, pool, input_grad, stride)
    for layer, shape in zip(layers, [(*size, channels), None, None], strict=True):
        if shape is not None:
            layer.build(shape)
    layers[1].build((None, None, 5))
    x = np.random.default_rng(1).standard_normal((7, *size, channels))
    assert not assert_fused_equals_layers(layers, x)._chained  # the fused path ran


def test_ties_go_to_the_first_element_of_the_window_as_in_max_pooling() -> None:
    layers = block(1, 3, input_grad=True)
    layers[0].build((10, 10, 1))
    layers[1].build((None, None, 5))
    x = np.zeros((4, 10, 10, 1))  # flat images: every window's outputs tie
    x[1, 2:5, 3:7] = 1.0
    x[2] = np.random.default_rng(2).integers(0, 2, (10, 10, 1))
    assert_fused_equals_layers(layers, x)


def test_blocks_of_rows_smaller_than_the_batch_give_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lamina.layers import normalization

    monkeypatch.setattr(normalization, "BLOCK_BYTES", 5 * 8 * 7)  # 7 rows a block, a ragged last
    monkeypatch.setattr(_lanes, "MIN_WIDE_VALUES", 0)
    layers = block(1, 3, input_grad=True)
    layers[0].build((10, 8, 1))
    layers[1].build((None, None, 5))
    assert_fused_equals_layers(layers, np.random.default_rng(3).standard_normal((3, 10, 8, 1)))


def test_odd_sizes_and_inference_run_the_layers_one_by_one() -> None:
    layers = block(1, 3, input_grad=True)
    layers[0].build((9, 9, 1))  # 7 × 7 outputs: the pooling drops a row and a column
    layers[1].build((None, None, 5))
    x = np.random.default_rng(4).standard_normal((5, 9, 9, 1))
    assert assert_fused_equals_layers(layers, x)._chained
    step = NormalizedPooledConvolution(*layers)
    conv, norm, pool = copy.deepcopy(layers)
    expected = pool.forward(norm.forward(conv.linear_forward(x)))
    np.testing.assert_allclose(step.forward(x), expected, rtol=1e-12)
    with pytest.raises(BackwardError, match="training=True"):
        step.backward(np.ones_like(expected))


def test_a_backward_before_any_forward_is_refused() -> None:
    with pytest.raises(BackwardError, match="training=True"):
        NormalizedPooledConvolution(*block(1, 3)).backward(np.ones((1, 2, 2, 5)))


def normalized_cnn(channels: int, activation: str | None = None) -> lm.Model:
    return lm.Model(
        [
            L.Conv2D(channels, 4, 3, activation=activation),
            L.BatchNorm(),
            L.ReLU(),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(3 * 3 * 4, 3, activation="softmax"),
        ],
        input_shape=(8, 8, channels),
        seed=0,
        dtype="float64",
    )


def test_the_plan_fuses_an_im2col_convolution_its_batch_norm_and_pooling() -> None:
    model = normalized_cnn(1)
    step = model.plan.steps[0]
    assert isinstance(step, NormalizedPooledConvolution)
    assert model.plan.step_names[:2] == ["conv2d+batch_norm+max_pool2d", "relu"]
    # a convolution by F(2×2, 3×3) (3×3, ≥ 16 channels) takes the tiled step; an activation
    # before the BatchNorm keeps the layers apart
    assert type(normalized_cnn(16).plan.steps[0]) is TiledNormalizedPooling
    model = normalized_cnn(1, activation="tanh")
    assert not any(isinstance(s, NormalizedPooledConvolution) for s in model.plan.steps)


def test_a_fit_through_the_fused_step_equals_one_through_the_layers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lamina.engine import normalized_pooling

    rng = np.random.default_rng(5)
    X, y = rng.random((48, 8, 8, 1)), rng.integers(0, 3, 48)
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(normalized_pooling, "normalized_fusable", lambda *a: False)
            monkeypatch.setattr(lm.engine.plan, "normalized_fusable", lambda *a: False)
        model = normalized_cnn(1)
        assert isinstance(model.plan.steps[0], NormalizedPooledConvolution) is fused
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
        model.fit(X, y, epochs=2, batch_size=16, verbose=0)
        results.append([array.copy() for _, array in named_tensors(model.layers)])
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def tiled_block(size: tuple[int, int], padding: str, input_grad: bool) -> Block:
    rng = np.random.default_rng(size[0] * 10 + size[1])
    conv = L.Conv2D(16, 5, 3, padding=padding, weight_l2=0.01)  # F(2×2, 3×3): ≥ 16 channels
    norm, max_pool = L.BatchNorm(5, momentum=0.6), L.MaxPool2D(2)
    for layer in (conv, norm, max_pool):
        layer.astype(np.float64)
    conv.build((*size, 16))
    norm.build((None, None, 5))
    conv.params["biases"][...] = rng.standard_normal(5)
    norm.params["gamma"][...] = [0.5, -1.5, 2.0, 1.0, -0.3]
    norm.params["beta"][...] = rng.standard_normal(5)
    conv.input_grad = input_grad
    return conv, norm, max_pool


@pytest.mark.parametrize(
    ("size", "padding", "input_grad"),
    [
        ((7, 7), "valid", True),  # 5 × 5 outputs: a strip row and a strip column (W2-BN: 11)
        ((7, 6), "valid", True),  # a strip row only
        ((8, 8), "valid", True),  # no strips
        ((7, 7), "same", True),  # ∂L/∂I of the strips through the padding
        ((9, 9), "valid", False),
    ],
)
def test_the_tiled_step_is_the_three_layers(
    size: tuple[int, int], padding: str, input_grad: bool
) -> None:
    layers = tiled_block(size, padding, input_grad)
    x = np.random.default_rng(7).standard_normal((3, *size, 16))
    step = assert_fused_equals_layers(layers, x, TiledNormalizedPooling)
    assert not step._chained


def test_the_tiled_step_runs_the_layers_one_by_one_for_maps_too_small_to_pool() -> None:
    layers = tiled_block((3, 4), "valid", True)  # 1 × 2 outputs
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 16))
    with pytest.raises(lm.errors.ShapeError):
        TiledNormalizedPooling(*layers).forward(x, training=True)
    with pytest.raises(BackwardError, match="training=True"):
        TiledNormalizedPooling(*layers).backward(np.ones((2, 1, 1, 5)))


def test_the_plan_fuses_a_winograd_convolution_its_batch_norm_and_pooling() -> None:
    model = lm.Model(
        [
            L.Conv2D(1, 16, 3),
            L.BatchNorm(),
            L.ReLU(),
            L.MaxPool2D(2),  # 13 × 13
            L.Conv2D(16, 8, 3),  # 11 × 11, by F(2×2, 3×3)
            L.BatchNorm(),
            L.ReLU(),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(5 * 5 * 8, 3, activation="softmax"),
        ],
        input_shape=(28, 28, 1),
        seed=0,
    )
    assert type(model.plan.steps[0]) is NormalizedPooledConvolution
    assert type(model.plan.steps[2]) is TiledNormalizedPooling
    assert model.plan.step_names[2] == "conv2d_1+batch_norm_1+max_pool2d_1"
