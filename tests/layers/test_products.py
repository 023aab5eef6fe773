"""transposed_product (lamina/layers/_products.py) equals the plain aᵀ·b in float64."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.layers import Conv2D
from lamina.layers._products import LONG_REDUCTION, SLABS, THIN_OUTPUTS, transposed_product


@pytest.mark.parametrize(
    ("rows", "m", "n"),
    [
        (86_528, 10, 32),  # W2's first convolution: thin, slabs divide the rows
        (LONG_REDUCTION + 7, 9, 4),  # a remainder beyond the whole slabs
        (LONG_REDUCTION - 1, 10, 32),  # too short: one matmul
        (40_000, 64, 64),  # not thin (4,096 outputs): one matmul
    ],
)
def test_equals_the_plain_product_in_float64(rows: int, m: int, n: int) -> None:
    rng = np.random.default_rng(rows)
    a, b = rng.standard_normal((rows, m)), rng.standard_normal((rows, n))
    plain = a.T @ b
    result = transposed_product(a, b)
    assert result.shape == (m, n)
    assert np.max(np.abs(result - plain)) <= 1e-10 * max(1.0, np.max(np.abs(plain)))


def test_column_major_inputs_as_im2col_makes_them() -> None:
    rng = np.random.default_rng(0)
    a = np.empty((10, 40_000)).T  # cols of few channels are column-major
    a[...] = rng.standard_normal(a.shape)
    b = rng.standard_normal((40_000, 32))
    assert 10 * 32 <= THIN_OUTPUTS and 40_000 // SLABS > 0
    np.testing.assert_allclose(transposed_product(a, b), a.T @ b, rtol=0, atol=1e-10)


def test_a_thin_convolution_gradient_equals_the_plain_sum() -> None:
    # a batch large enough that ∂L/∂K of a 1-channel 3×3 convolution goes over slabs
    rng = np.random.default_rng(1)
    layer = Conv2D(1, 4, 3).astype(np.float64)
    x = rng.standard_normal((40, 28, 28, 1))
    outputs = layer.forward(x, training=True)
    dz = rng.standard_normal(outputs.shape)
    layer.backward(dz)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # N,26,26,1,3,3
    expected = np.einsum("nijcmk,nijf->mkcf", windows, dz)
    assert 40 * 26 * 26 >= LONG_REDUCTION
    np.testing.assert_allclose(layer.grads["weights"], expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.grads["biases"], dz.sum(axis=(0, 1, 2)), atol=1e-10)
