"""Scaling to a range and standardisation (notes §1.5 "Preprocessing", §1.9 "Scaling")."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Bounds, Flag, Interval, checked, rule
from lamina.preprocessing.base import (
    CHUNK_VALUES,
    TRANSFORMERS,
    Transformer,
    check_array,
    check_features,
    float_dtype,
)

Array = np.ndarray


@TRANSFORMERS.register("min_max_scaler")
class MinMaxScaler(Transformer):
    r"""Linear scaling into ``feature_range`` = [a, b] (notes §1.5, §1.9 "Scaling"):

        x' = a + (x − min)·(b − a)/(max − min)

    with min and max learned from the training data. Notes §1.5's ranges are [0, 1] and
    [−1, 1] (the default). A constant feature (max = min) maps to the middle (a + b)/2 instead
    of dividing by zero. Data outside the training range maps outside [a, b] (no clipping;
    notes §1.5: "slightly outside of this range" is fine).

    Args:
        feature_range: (a, b) with a < b.
        per_feature: ``True``: min and max of every feature (all axes but the batch axis 0,
            i.e. of every pixel). ``False``: one global min and max, as the notes scale
            pixels (``x/255·2 − 1`` for [0, 255] data), for samples of any shape.
    Learned:
        data_min_, data_max_: float64, of the sample shape (``per_feature``) or scalars.
    Shape:
        X (batch, ...) -> same shape, float (X's float dtype, else float32)
    """

    learned: ClassVar[dict[str, np.dtype]] = {
        "data_min_": np.dtype(np.float64),
        "data_max_": np.dtype(np.float64),
    }

    @checked(
        feature_range=rule(Bounds(), fix="use (0, 1) or (-1, 1) (notes §1.5)"),
        per_feature=Flag(),
    )
    def __init__(
        self, feature_range: tuple[float, float] = (-1, 1), per_feature: bool = True
    ) -> None:
        self.feature_range = feature_range
        self.per_feature = per_feature
        self.data_min_: Array | None = None
        self.data_max_: Array | None = None

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        X = check_array(X, self, "fit", finite=True)
        axis = 0 if self.per_feature else None
        self.data_min_ = np.asarray(X.min(axis=axis), dtype=np.float64)
        self.data_max_ = np.asarray(X.max(axis=axis), dtype=np.float64)
        return self

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        X = check_array(X, self, "transform")
        assert self.data_min_ is not None and self.data_max_ is not None
        if self.per_feature:
            check_features(X, self.data_min_.shape, self)
        a, b = self.feature_range
        span = self.data_max_ - self.data_min_
        constant = span == 0
        scale = np.where(constant, 0.0, (b - a) / np.where(constant, 1.0, span))
        start = np.where(constant, (a + b) / 2, a)
        dtype = float_dtype(X)
        out = np.subtract(X, self.data_min_.astype(dtype), dtype=dtype)
        out *= scale.astype(dtype)
        out += start.astype(dtype)
        return out

    def inverse_transform(self, X: ArrayLike) -> Array:
        """x = min + (x' − a)·(max − min)/(b − a): back to the data's range (a constant
        feature maps back to its one value)."""
        self._check_fitted()
        X = check_array(X, self, "inverse_transform")
        assert self.data_min_ is not None and self.data_max_ is not None
        if self.per_feature:
            check_features(X, self.data_min_.shape, self)
        a, b = self.feature_range
        span = (self.data_max_ - self.data_min_) / (b - a)
        start = np.where(span == 0, (a + b) / 2, a)
        dtype = float_dtype(X)
        out = np.subtract(X, start.astype(dtype), dtype=dtype)
        out *= span.astype(dtype)
        out += self.data_min_.astype(dtype)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"feature_range": list(self.feature_range), "per_feature": self.per_feature}

    def _check_state(self, state: dict[str, Array]) -> None:
        _check_stat_shapes(self, state, "data_min_", "data_max_")
        if (state["data_min_"] > state["data_max_"]).any():
            raise self._state_error("data_min_", "values ≤ data_max_", "larger values")


@TRANSFORMERS.register("standard_scaler")
class StandardScaler(Transformer):
    r"""Standardisation to mean 0 and standard deviation 1 (notes §1.9, §2.2 "Dataset"):

        x' = (x − μ)/σ

    μ and σ (population, ddof = 0) are learned from the training data in float64. A σ below
    ``epsilon`` is replaced by 1: such a (near-)constant feature is only centred, because
    dividing by a tiny σ would turn noise at prediction time into huge inputs.

    Args:
        per_feature: ``True``: μ, σ of every feature (all axes but the batch axis 0).
            ``False``: one global μ, σ, for samples of any shape.
        epsilon: the smallest σ divided by, ≥ 0.
    Learned:
        mean_, scale_ (σ): float64, of the sample shape (``per_feature``) or scalars.
    Shape:
        X (batch, ...) -> same shape, float (X's float dtype, else float32)
    """

    learned: ClassVar[dict[str, np.dtype]] = {
        "mean_": np.dtype(np.float64),
        "scale_": np.dtype(np.float64),
    }

    @checked(per_feature=Flag(), epsilon=rule(Interval(float, 0), fix="use 1e-8"))
    def __init__(self, per_feature: bool = True, epsilon: float = 1e-8) -> None:
        self.per_feature = per_feature
        self.epsilon = epsilon
        self.mean_: Array | None = None
        self.scale_: Array | None = None

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        X = check_array(X, self, "fit", finite=True)
        mean, std = _mean_std(X, self.per_feature)
        self.mean_ = mean
        self.scale_ = np.where(std < self.epsilon, 1.0, std)
        return self

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        X = check_array(X, self, "transform")
        assert self.mean_ is not None and self.scale_ is not None
        if self.per_feature:
            check_features(X, self.mean_.shape, self)
        dtype = float_dtype(X)
        out = np.subtract(X, self.mean_.astype(dtype), dtype=dtype)
        out *= (1.0 / self.scale_).astype(dtype)
        return out

    def inverse_transform(self, X: ArrayLike) -> Array:
        """x = x'·σ + μ: back to the data's units."""
        self._check_fitted()
        X = check_array(X, self, "inverse_transform")
        assert self.mean_ is not None and self.scale_ is not None
        if self.per_feature:
            check_features(X, self.mean_.shape, self)
        dtype = float_dtype(X)
        out = np.multiply(X, self.scale_.astype(dtype), dtype=dtype)
        out += self.mean_.astype(dtype)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"per_feature": self.per_feature, "epsilon": self.epsilon}

    def _check_state(self, state: dict[str, Array]) -> None:
        _check_stat_shapes(self, state, "mean_", "scale_")
        if (state["scale_"] <= 0).any():
            raise self._state_error("scale_", "values > 0", "values ≤ 0")


def _mean_std(X: Array, per_feature: bool) -> tuple[Array, Array]:
    """μ and σ = √((1/n) Σ (x − μ)²) in float64, over chunks of rows (two passes)."""
    axis = 0 if per_feature else None
    count = len(X) if per_feature else X.size
    rows = max(1, CHUNK_VALUES // max(1, X[0].size))
    total = np.zeros(X.shape[1:] if per_feature else ())
    for start in range(0, len(X), rows):
        total += X[start : start + rows].sum(axis=axis, dtype=np.float64)
    mean = total / count
    squares = np.zeros_like(mean)
    for start in range(0, len(X), rows):
        squares += np.square(X[start : start + rows] - mean).sum(axis=axis)
    return mean, np.sqrt(squares / count)


def _check_stat_shapes(scaler: Transformer, state: dict[str, Array], *keys: str) -> None:
    """Both statistics share one shape: the sample shape, or () for global statistics."""
    first, second = (state[key] for key in keys)
    if getattr(scaler, "per_feature", True):
        if first.shape != second.shape:
            raise scaler._state_error(keys[1], f"shape {first.shape} like {keys[0]}", second.shape)
    else:
        for key in keys:
            if state[key].shape != ():
                raise scaler._state_error(
                    key, "shape () (per_feature=False: one global value)", state[key].shape
                )


# -- labels -------------------------------------------------------------------------------
