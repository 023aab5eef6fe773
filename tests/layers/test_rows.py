"""lamina.layers._rows: row_max is x.max(axis=-1, keepdims=True) bit for bit, row_sum is
x.sum(axis=-1, keepdims=True) to rounding; lamina.layers._bias.bias_gradient is δ.sum(0)."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.layers._bias import bias_gradient
from lamina.layers._rows import row_max, row_sum


@pytest.mark.parametrize(
    "shape",
    [(512, 10), (1024, 10), (1, 10), (1024, 1), (1024, 32), (1024, 33), (128, 40, 10), (7,)],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_is_numpy_max_over_the_last_axis(shape: tuple[int, ...], dtype: type) -> None:
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(row_max(x), x.max(axis=-1, keepdims=True))


def test_nan_and_inf_come_out_as_numpy_gives_them() -> None:
    x = np.random.default_rng(4).standard_normal((1024, 10)).astype(np.float32)
    x[0, 3], x[1, 0], x[2, 9], x[3] = np.nan, np.inf, -np.inf, -np.inf
    x[4, 9] = np.nan  # in the last column
    np.testing.assert_array_equal(row_max(x), x.max(axis=-1, keepdims=True))


def test_a_non_contiguous_view_is_read_as_it_is() -> None:
    x = np.random.default_rng(5).standard_normal((2048, 20))[::2, ::2]
    np.testing.assert_array_equal(row_max(x), x.max(axis=-1, keepdims=True))


@pytest.mark.parametrize("shape", [(32, 10), (1024, 10), (1, 10), (128, 40, 10), (64, 33), (5,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_is_numpy_sum_over_the_last_axis(shape: tuple[int, ...], dtype: type) -> None:
    x = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    expected = x.sum(axis=-1, keepdims=True)
    assert row_sum(x).shape == expected.shape
    rtol = 1e-6 if dtype is np.float32 else 1e-14
    np.testing.assert_allclose(row_sum(x), expected, rtol=rtol, atol=rtol)


def test_row_sum_keeps_nan_and_inf() -> None:
    x = np.ones((64, 10), np.float32)
    x[0, 3], x[1, 0], x[2, 1], x[2, 2] = np.nan, np.inf, np.inf, -np.inf
    with np.errstate(invalid="ignore"):  # inf − inf, as NumPy's own sum warns
        got = row_sum(x)
    assert np.isnan(got[0, 0]) and got[1, 0] == np.inf and np.isnan(got[2, 0])
    assert got[3, 0] == 10


@pytest.mark.parametrize("rows", [1, 32, 1024])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_is_the_sum_over_the_batch(rows: int, dtype: type) -> None:
    delta = np.random.default_rng(7).standard_normal((rows, 128)).astype(dtype)
    out = np.empty(128, dtype)
    assert bias_gradient(delta, out=out) is out
    scale = np.abs(delta).sum(axis=0)  # what a float sum's rounding error is relative to
    exact = delta.astype(np.float64).sum(axis=0)
    tolerance = (1e-6 if dtype is np.float32 else 1e-14) * scale
    assert np.all(np.abs(out - exact) <= tolerance)
