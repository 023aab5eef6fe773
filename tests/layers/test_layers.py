"""Layer behaviour beyond the gradient checks: known values, modes and edge cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.layers import GELU

L = lm.layers


def test_dense_computes_xw_plus_b() -> None:
    dense = L.Dense(2, 3)
    dense.params["weights"][...] = [[1, 2, 3], [4, 5, 6]]
    dense.params["biases"][...] = [0.5, 0, -1]
    out = dense.forward(np.array([[1.0, 1.0], [0.0, 2.0]], np.float32))
    np.testing.assert_array_equal(out, [[5.5, 7, 8], [8.5, 10, 11]])


@pytest.mark.parametrize("rows", [1, 2, 33])
def test_dense_gradients_are_the_notes_sums_for_any_batch(rows: int) -> None:
    # ∂L/∂W = Xᵀδ, ∂L/∂b = Σᵢ δᵢ, ∂L/∂X = δWᵀ (notes §1.3); one row takes the outer product
    rng = np.random.default_rng(8)
    dense = L.Dense(7, 5)
    dense.build(rng)
    x = rng.standard_normal((rows, 7)).astype(np.float32)
    delta = rng.standard_normal((rows, 5)).astype(np.float32)
    dense.forward(x, training=True)
    dx = dense.backward(delta)
    expected = x.astype(np.float64).T @ delta.astype(np.float64)
    np.testing.assert_allclose(dense.grads["weights"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dense.grads["biases"], delta.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, delta @ dense.params["weights"].T, rtol=1e-5, atol=1e-5)
    if rows == 1:  # the outer product is exact: each element is one product
        np.testing.assert_array_equal(dense.grads["weights"], np.outer(x[0], delta[0]))


@pytest.mark.parametrize(
    ("init", "check"),
    [
        ("small", lambda w: abs(w.std() - 0.01) < 0.001),
        ("glorot_uniform", lambda w: np.abs(w).max() <= np.sqrt(6 / (300 + 200))),
        ("he_normal", lambda w: abs(w.std() - np.sqrt(2 / 300)) < 0.005),
        # PyTorch's U(±1/√fan_in): variance 1/(3·fan_in)
        (
            "torch_uniform",
            lambda w: (
                np.abs(w).max() <= 1 / np.sqrt(300) and abs(w.std() - 1 / np.sqrt(3 * 300)) < 0.001
            ),
        ),
    ],
)
def test_initializers(init: str, check: object) -> None:
    dense = L.Dense(300, 200, weight_init=init)
    assert check(dense.params["weights"])  # type: ignore[operator]
    assert np.all(dense.params["biases"] == 0)  # biases start at zero (notes §1.1)
    assert dense.params["weights"].dtype == np.float32


@pytest.mark.parametrize(
    ("layer", "fan_in"),
    [
        (lambda **kw: L.Dense(300, 200, **kw), 300),
        (lambda **kw: L.Conv2D(3, 200, (5, 4), **kw), 5 * 4 * 3),
    ],
    ids=["dense", "conv2d"],
)
def test_torch_uniform_biases_are_drawn_as_pytorch_draws_them(layer: Any, fan_in: int) -> None:
    built = layer(bias_init="torch_uniform")
    biases = built.params["biases"]
    limit = 1 / np.sqrt(fan_in)  # nn.Linear / nn.Conv2d reset_parameters: U(±1/√fan_in)
    assert np.abs(biases).max() <= limit and np.abs(biases).max() > 0.8 * limit
    assert biases.dtype == np.float32 and built.get_config()["bias_init"] == "torch_uniform"
    assert layer().get_config()["bias_init"] == "zeros"


def test_zero_biases_draw_nothing() -> None:
    # bias_init="zeros" leaves the Generator where the weights left it: seeded results of
    # models built before bias_init existed stay the same
    a, b = L.Dense(4, 3, bias_init="zeros"), L.Dense(4, 3, bias_init="torch_uniform")
    for layer in (a, b):
        layer.rng = np.random.default_rng(0)
        layer.reset_parameters()
    np.testing.assert_array_equal(a.params["weights"], b.params["weights"])
    assert np.all(a.params["biases"] == 0) and np.all(b.params["biases"] != 0)


def test_zeros_is_a_bias_initializer_only() -> None:
    with pytest.raises(lm.errors.ConfigError, match="weight initializer"):
        L.Conv2D(1, 2, 3, weight_init="zeros")
    with pytest.raises(lm.errors.ConfigError, match=r"Dense\.bias_init"):
        L.Dense(3, 2, bias_init="he_normal")


def test_softmax_subtracts_the_maximum() -> None:
    out = L.Softmax().forward(np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1)
    np.testing.assert_allclose(out[0], np.exp([-2, -1, 0]) / np.exp([-2, -1, 0]).sum())


def test_softmax_backward_equals_the_jacobian_product() -> None:
    # notes §1.3: ∂Sᵢⱼ/∂zᵢₘ = Sᵢⱼ(δⱼₘ − Sᵢₘ); the layer contracts it without building it
    rng = np.random.default_rng(0)
    z, d = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    softmax = L.Softmax()
    S = softmax.forward(z)
    jacobians = np.einsum("ij,jk->ijk", S, np.eye(5)) - np.einsum("ij,ik->ijk", S, S)
    np.testing.assert_allclose(softmax.backward(d), np.einsum("ijk,ij->ik", jacobians, d))


def test_sigmoid_is_stable_for_large_inputs() -> None:
    with np.errstate(all="raise"):
        out = L.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0], np.float32))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_gelu_is_x_times_the_normal_cdf() -> None:
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.7])
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(GELU().forward(x), x * cdf, rtol=1e-15)
    assert GELU().forward(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, rel=1e-15)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    np.testing.assert_allclose(GELU("tanh").forward(x), 0.5 * x * (1 + np.tanh(u)), rtol=1e-15)
    # the two forms differ by at most 4.7e-4 (near |x| ≈ 2.7), as the docstring says
    grid = np.linspace(-8, 8, 16_001)
    assert np.abs(GELU().forward(grid) - GELU("tanh").forward(grid)).max() < 4.8e-4


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_keeps_float32_and_works_as_an_activation_name(approximate: str) -> None:
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    gelu = GELU(approximate)
    assert gelu.forward(x).dtype == np.float32
    assert gelu.backward(np.ones_like(x)).dtype == np.float32
    dense = L.Dense(4, 2, activation="gelu")
    assert type(dense.activation) is GELU and dense.activation.approximate == "none"
    assert GELU.from_config(gelu.get_config()).approximate == approximate


def test_relu_derivative_at_zero_is_zero() -> None:
    relu = L.ReLU()
    relu.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3)), [0, 0, 1])


def test_dropout_scales_kept_units_and_is_identity_at_inference() -> None:
    dropout = L.Dropout(0.25)
    dropout.rng = np.random.default_rng(0)
    x = np.ones((200, 500), np.float32)
    out = dropout.forward(x, training=True)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01  # rate = fraction dropped
    np.testing.assert_allclose(out[kept], 1 / 0.75)  # inverted dropout: 1/(1 − p)
    np.testing.assert_array_equal(dropout.backward(np.ones_like(x)), out)
    assert dropout.forward(x, training=False) is x


def test_dense_l1_l2_gradient_terms() -> None:
    dense = L.Dense(2, 2, weight_l1=0.1, weight_l2=0.2, bias_l1=0.3, bias_l2=0.4)
    dense.astype(np.float64)
    dense.params["weights"][...] = [[1.0, -2.0], [0.5, -0.5]]
    dense.params["biases"][...] = [1.0, -1.0]
    dense.forward(np.zeros((1, 2)))
    dense.backward(np.zeros((1, 2)))
    # ∂/∂θ = λ₁ sign(θ) + 2λ₂θ (notes §1.6)
    np.testing.assert_allclose(
        dense.grads["weights"],
        0.1 * np.sign([[1, -2], [0.5, -0.5]]) + 0.4 * np.array([[1, -2], [0.5, -0.5]]),
    )
    np.testing.assert_allclose(dense.grads["biases"], [0.3 + 0.8, -0.3 - 0.8])
    assert dense.regularization_penalty() == pytest.approx(
        0.1 * 4 + 0.2 * (1 + 4 + 0.25 + 0.25) + 0.3 * 2 + 0.4 * 2
    )


def test_activation_shortcut_equals_separate_layers() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    a = L.Dense(4, 2, activation="sigmoid")
    b = L.Dense(4, 2)
    b.params = {k: v.copy() for k, v in a.params.items()}
    np.testing.assert_array_equal(a.forward(x), L.Sigmoid().forward(b.forward(x)))
