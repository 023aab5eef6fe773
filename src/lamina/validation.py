"""Checks on the data users pass in: each failure names the argument, what was expected,
what was received and the fix (docs/conventions.md, "Errors")."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Interval, check
from lamina.errors import InputError, invalid

Array = np.ndarray


def as_array(X: ArrayLike, name: str) -> Array:
    """``np.asarray(X)``, with a clear error for a ragged list (rows of different lengths)."""
    try:
        return np.asarray(X)
    except ValueError:
        raise InputError(
            invalid(
                name,
                "a rectangular array (every sample of the same shape)",
                f"a ragged {type(X).__name__} whose rows have different lengths",
                "pad the rows to one length, or pass a NumPy array",
            )
        ) from None


def numeric_samples(X: ArrayLike, name: str, *, finite: bool = True) -> Array:
    """X as an array of numbers with at least one sample on axis 0 (and finite, if asked)."""
    array = as_array(X, name)
    if array.dtype.kind not in "biuf":
        raise InputError(
            invalid(
                name,
                "a numeric array",
                f"dtype {array.dtype}",
                f"convert {name} with np.asarray({name}, dtype=np.float32)",
            )
        )
    if array.ndim == 0 or len(array) == 0:
        raise InputError(
            invalid(
                name,
                "at least one sample",
                f"shape {array.shape}",
                "pass a non-empty array, batch axis first",
            )
        )
    if finite:
        check_finite(array, name)
    return array


def targets_for(y: ArrayLike, n_samples: int, names: tuple[str, str]) -> Array:
    """y as numeric, finite targets, one per sample of ``names[0]``."""
    targets = as_array(y, names[1])
    if targets.dtype.kind not in "biuf":
        raise InputError(
            invalid(
                names[1],
                "numeric targets",
                f"dtype {targets.dtype}",
                "encode class names as integers 0..n_classes-1",
            )
        )
    if targets.ndim == 0 or len(targets) != n_samples:
        received = "a scalar" if targets.ndim == 0 else f"{len(targets)} targets"
        raise InputError(
            invalid(
                names[1],
                f"one target per sample ({n_samples})",
                f"{received} for {n_samples} samples",
                f"pass {names[0]} and {names[1]} of the same length",
            )
        )
    check_finite(targets, names[1])
    return targets


#: the shortest row :func:`sums_finite` sums as a product (its output: one value a row)
ROW_SUMS_FROM = 16


def sums_finite(array: Array) -> bool:
    """Whether sums over ``array`` stay finite: True proves every value finite.

    A NaN or an inf anywhere makes every sum it enters non-finite (NaN·1 = NaN, ±inf·1 =
    ±inf, inf − inf = NaN), so only a non-finite result (or an overflow of large finite
    values) needs the element-wise scan. A C-contiguous float32/float64 table of rows of at
    least :data:`ROW_SUMS_FROM` values is summed row by row as the product X·1 (BLAS, on
    its threads: 0.65 ms for 10,000 × 784 float32 against 1.65 ms for NumPy's one-thread
    ``add.reduce``), whose one value per row is at most 1/16 of the input's memory;
    anything else with ``add.reduce``, which allocates nothing."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf, overflow: the caller scans
        if array.ndim >= 2 and array.size and array.flags.c_contiguous:
            table = array.reshape(len(array), -1)
            if array.dtype in (np.float32, np.float64) and table.shape[1] >= ROW_SUMS_FROM:
                return bool(np.isfinite(table @ np.ones(table.shape[1], table.dtype)).all())
        return bool(np.isfinite(np.add.reduce(array, axis=None)))


def check_finite(array: Array, name: str) -> None:
    """An InputError counting the NaN/inf values of ``array`` and locating the first."""
    if array.dtype.kind != "f" or sums_finite(array):
        return
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    first = np.unravel_index(int(np.argmax(bad)), array.shape)
    kinds = [
        kind
        for kind, present in (("NaN", np.isnan(array).any()), ("inf", np.isinf(array).any()))
        if present
    ]
    raise InputError(
        invalid(
            name,
            "finite values",
            f"{int(bad.sum())} {'/'.join(kinds)} value(s), the first at index "
            f"{tuple(map(int, first))}",
            "drop or impute those samples first",
        )
    )


def cast_samples(array: Array, dtype: np.dtype, name: str) -> Array:
    """``array`` as ``dtype`` (no copy when it already is); an InputError when narrowing
    turns a finite value into inf (1e300 does not fit in float32)."""
    if array.dtype == dtype:
        return array
    with np.errstate(invalid="ignore", over="ignore"):  # an overflow is reported below
        cast = array.astype(dtype)
    if array.dtype.kind == "f" and array.dtype.itemsize > dtype.itemsize:
        with np.errstate(invalid="ignore", over="ignore"):
            total = np.add.reduce(cast, axis=None)
        if not np.isfinite(total):
            overflowed = np.isinf(cast) & np.isfinite(array)
            if overflowed.any():
                first = tuple(
                    int(i) for i in np.unravel_index(int(np.argmax(overflowed)), array.shape)
                )
                raise InputError(
                    invalid(
                        name,
                        f"values within {dtype}'s range (|x| ≤ {np.finfo(dtype).max:.3g})",
                        f"{int(overflowed.sum())} larger value(s), e.g. {array[first]:.3g} at "
                        f"index {first}",
                        "rescale the data (e.g. a StandardScaler), or build the model with "
                        "dtype='float64'",
                    )
                )
    return cast


def positive_int(argument: str, value: object, minimum: int, example: str) -> int:
    """``value`` as an int ≥ ``minimum`` (bools refused), or a ConfigError."""
    number: int = check("", argument, value, Interval(int, minimum), fix=f"use e.g. {example}")
    return number
