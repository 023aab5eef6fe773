"""lamina.validation's finiteness check: the fast sums prove finiteness, never hide a NaN."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.errors import InputError
from lamina.validation import ROW_SUMS_FROM, check_finite, sums_finite

LAYOUTS = {
    "C 2-D": lambda a: a,
    "C 3-D": lambda a: a.reshape(len(a), 4, -1),
    "transposed": lambda a: a.T,
    "strided": lambda a: a[:, ::2],
    "1-D": lambda a: a.ravel(),
}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_non_finite_value_anywhere_is_found(dtype: type, layout: str, bad: float) -> None:
    rng = np.random.default_rng(0)
    for position in [(0, 0), (18, 8), (-1, -2)]:  # first, middle, last (all in every view)
        array = rng.standard_normal((37, 16)).astype(dtype)
        array[position] = bad
        view = LAYOUTS[layout](array)
        assert not sums_finite(view)
        with pytest.raises(InputError, match=r"1 (NaN|inf) value\(s\), the first at index"):
            check_finite(view, "X")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_finite_values_pass_even_when_their_sums_overflow(layout: str) -> None:
    array = np.full((37, 16), np.finfo(np.float32).max, np.float32)  # every row sum is inf
    view = LAYOUTS[layout](array)
    assert not sums_finite(view)  # the sums overflow …
    check_finite(view, "X")  # … and the element-wise scan finds nothing wrong


def test_inf_and_minus_inf_in_one_row_are_found() -> None:
    array = np.zeros((5, 8), np.float32)
    array[2, 1], array[2, 6] = np.inf, -np.inf  # the row's sum is NaN, not a finite value
    with pytest.raises(InputError, match="2 inf value"):
        check_finite(array, "X")


@pytest.mark.parametrize("width", [1, ROW_SUMS_FROM - 1, ROW_SUMS_FROM])
def test_short_and_long_rows_alike(width: int) -> None:
    # rows shorter than ROW_SUMS_FROM are summed by add.reduce (no per-row output)
    array = np.ones((50, width), np.float32)
    assert sums_finite(array)
    array[49, width - 1] = np.nan
    assert not sums_finite(array)


def test_finite_and_empty_arrays_pass() -> None:
    check_finite(np.random.default_rng(1).random((100, 784), dtype=np.float32), "X")
    check_finite(np.zeros((0, 784), np.float32), "X")
    check_finite(np.zeros((3, 0), np.float64), "X")
    assert sums_finite(np.ones((4, 3), np.float64))
