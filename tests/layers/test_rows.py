"""lamina.layers._rows.row_max is x.max(axis=-1, keepdims=True), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.layers._rows import MANY_ROWS, row_max


@pytest.mark.parametrize(
    "shape",
    [(MANY_ROWS, 10), (1024, 10), (1024, 1), (1024, 32), (1024, 33), (128, 40, 10), (3, 10), (7,)],
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
