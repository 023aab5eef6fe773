"""Preprocessing fitted on training data only (notes §1.5 "Preprocessing", §1.9 "Data sets").

Notes §1.9's order for a training set: balance, augment, grayscale, scale, flatten,
shuffle. :func:`balance` is a function (it drops samples, so it runs on the training set
alone); grayscale, resize, scaling, flattening and one-hot encoding are transformers with
``fit``/``transform`` that a :class:`Pipeline` chains. Shuffling belongs to ``Model.fit``
and augmentation to ``lamina.augmentation``.

Every transformer is rebuilt from ``get_config()`` (its constructor's arguments, JSON-able)
plus ``get_state()`` (its learned arrays, named by attribute, for a safetensors file), so
the exact transformation fitted on the training data is saved with the model and applied to
validation, test and prediction data (notes §1.5).

Dtypes: transformers that compute return floats — float input keeps its dtype, any other
input (uint8 pixels, int) becomes float32. Statistics are computed and stored in float64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, ShapeError, invalid

__all__ = [
    "TRANSFORMERS",
    "BalanceReport",
    "Flatten",
    "Grayscale",
    "MinMaxScaler",
    "OneHotEncoder",
    "Pipeline",
    "Resize",
    "StandardScaler",
    "Transformer",
    "balance",
    "deserialize",
    "serialize",
]

Array = np.ndarray

TRANSFORMERS: Registry[type[Transformer]] = Registry("transformer")

# Rows per chunk hold about this many values, so float64 statistics of a uint8/float32 set
# never need a float64 copy of the whole set (60,000 × 784 would be 376 MB).
_CHUNK_VALUES = 1 << 20


class Transformer:
    """Base class: ``fit`` learns from training data, ``transform`` applies what it learned.

    Subclasses that learn something list their learned attributes and dtypes in
    ``learned`` (names end in ``_``, as in scikit-learn); they are ``None`` until ``fit``.
    Stateless transformers leave ``learned`` empty and are always :attr:`fitted`.
    """

    learned: ClassVar[dict[str, np.dtype]] = {}

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Learn from the training data ``X`` (``y`` is accepted and ignored); returns self."""
        _check_array(X, self, "fit")
        return self

    def transform(self, X: ArrayLike) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define transform")

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> Array:
        return self.fit(X, y).transform(X)

    @property
    def fitted(self) -> bool:
        return all(getattr(self, name, None) is not None for name in self.learned)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise InputError(
                f"{type(self).__name__} is not fitted yet. Fix: call fit(X_train) first "
                "(fit on training data only, notes §1.9)"
            )

    # -- config and state ----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able: ``from_config(get_config())`` rebuilds it."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def get_state(self) -> dict[str, Array]:
        """Copies of the learned arrays by attribute name; ``{}`` when not fitted."""
        if not self.fitted:
            return {}
        return {name: np.array(getattr(self, name)) for name in self.learned}

    def set_state(self, state: Mapping[str, Array]) -> None:
        """Restore :meth:`get_state`'s arrays (``{}`` makes the transformer unfitted again).

        Raises:
            ConfigError: a missing or unexpected name, or an array whose type, dtype, shape
                or values cannot be this transformer's; nothing is changed then.
        """
        self._load_state(self._validate_state(state))

    def _validate_state(self, state: Mapping[str, Array]) -> dict[str, Array]:
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise ConfigError(invalid(f"{name} state", "a dict of arrays", type(state).__name__))
        if not state:
            return {}
        missing = sorted(set(self.learned) - set(state))
        unexpected = sorted(set(state) - set(self.learned))
        if missing or unexpected:
            raise ConfigError(
                invalid(
                    f"{name} state",
                    f"exactly the arrays {sorted(self.learned)}",
                    f"names {sorted(state)} (missing {missing}, unexpected {unexpected})",
                    f"pass the dict that {name}.get_state() returned",
                )
            )
        checked = {}
        for key, dtype in self.learned.items():
            array = state[key]
            if not isinstance(array, np.ndarray):
                raise ConfigError(
                    invalid(f"{name} state[{key!r}]", "a numpy array", type(array).__name__)
                )
            if array.dtype != dtype:
                raise ConfigError(
                    invalid(f"{name} state[{key!r}]", f"dtype {dtype}", f"dtype {array.dtype}")
                )
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ConfigError(invalid(f"{name} state[{key!r}]", "finite values", "NaN or inf"))
            checked[key] = np.array(array)
        self._check_state(checked)
        return checked

    def _check_state(self, state: dict[str, Array]) -> None:
        """Class-specific shape and value checks of a complete state; raise ConfigError."""

    def _load_state(self, state: dict[str, Array]) -> None:
        for key in self.learned:
            setattr(self, key, state.get(key))

    def _state_error(self, key: str, expected: str, received: object) -> ConfigError:
        return ConfigError(invalid(f"{type(self).__name__} state[{key!r}]", expected, received))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


# -- input checks -------------------------------------------------------------------------
def _check_array(X: ArrayLike, who: Transformer | str, method: str, finite: bool = False) -> Array:
    """``X`` as a numeric array with a batch axis and at least one sample.

    ``finite`` (used by ``fit``): also reject NaN/inf, naming how many and the first index.
    """
    where = f"{who if isinstance(who, str) else type(who).__name__}.{method}"
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise InputError(
            f"{where}: "
            + invalid(
                "X",
                "a numeric array (bool, int, uint or float)",
                f"dtype {X.dtype}",
                "convert it, e.g. np.asarray(X, dtype=np.float32)",
            )
        )
    if X.ndim == 0:
        raise ShapeError(
            f"{where}: "
            + invalid("X", "an array with a batch axis (axis 0)", f"a scalar {X!r}", "pass [X]")
        )
    if X.size == 0:
        raise InputError(
            f"{where}: " + invalid("X", "at least one sample", f"an empty array of shape {X.shape}")
        )
    if finite and X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), X.shape))
            raise InputError(
                f"{where}: "
                + invalid(
                    "X",
                    "finite values",
                    f"{int(bad.sum())} NaN/inf values (the first at index {first})",
                    "remove or impute them before fitting",
                )
            )
    return X


def _check_features(X: Array, expected: tuple[int, ...], who: Transformer) -> None:
    """ShapeError unless each sample of ``X`` has the shape seen by ``fit``."""
    if X.shape[1:] != expected:
        name = type(who).__name__
        raise ShapeError(
            f"{name}.transform: "
            + invalid(
                "X",
                f"samples of shape {_batch_shape(expected)}, as {name} was fitted on",
                f"X of shape {X.shape}",
                f"transform data with the training data's features, or fit {name} again",
            )
        )


def _batch_shape(sample_shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["batch", *map(str, sample_shape)]) + ")"


def _float_dtype(X: Array) -> np.dtype:
    """The output dtype of a computing transformer: X's float dtype, else float32."""
    return X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)


def _check_flag(value: object, argument: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(invalid(argument, "True or False", repr(value)))
    return bool(value)


# -- scaling (notes §1.5, §1.9 "Scaling") -------------------------------------------------
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

    def __init__(self, feature_range: Sequence[float] = (-1, 1), per_feature: bool = True) -> None:
        pair = tuple(feature_range) if isinstance(feature_range, Sequence) else ()
        if not (
            len(pair) == 2
            and all(isinstance(v, int | float) and np.isfinite(v) for v in pair)
            and pair[0] < pair[1]
        ):
            raise ConfigError(
                invalid(
                    "MinMaxScaler.feature_range",
                    "a pair (a, b) of finite numbers with a < b",
                    repr(feature_range),
                    "use (0, 1) or (-1, 1) (notes §1.5)",
                )
            )
        self.feature_range = (float(pair[0]), float(pair[1]))
        self.per_feature = _check_flag(per_feature, "MinMaxScaler.per_feature")
        self.data_min_: Array | None = None
        self.data_max_: Array | None = None

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        X = _check_array(X, self, "fit", finite=True)
        axis = 0 if self.per_feature else None
        self.data_min_ = np.asarray(X.min(axis=axis), dtype=np.float64)
        self.data_max_ = np.asarray(X.max(axis=axis), dtype=np.float64)
        return self

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        X = _check_array(X, self, "transform")
        assert self.data_min_ is not None and self.data_max_ is not None
        if self.per_feature:
            _check_features(X, self.data_min_.shape, self)
        a, b = self.feature_range
        span = self.data_max_ - self.data_min_
        constant = span == 0
        scale = np.where(constant, 0.0, (b - a) / np.where(constant, 1.0, span))
        start = np.where(constant, (a + b) / 2, a)
        dtype = _float_dtype(X)
        out = np.subtract(X, self.data_min_.astype(dtype), dtype=dtype)
        out *= scale.astype(dtype)
        out += start.astype(dtype)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"feature_range": list(self.feature_range), "per_feature": self.per_feature}

    def _check_state(self, state: dict[str, Array]) -> None:
        _check_stat_shapes(self, state, "data_min_", "data_max_")
        if (state["data_min_"] > state["data_max_"]).any():
            raise self._state_error("data_min_", "values ≤ data_max_", "larger values")


@TRANSFORMERS.register("standard_scaler")
class StandardScaler(Transformer):
    r"""Standardisation to mean 0 and standard deviation 1 (notes §1.9, §2 "Preprocessing"):

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

    def __init__(self, per_feature: bool = True, epsilon: float = 1e-8) -> None:
        if not (
            isinstance(epsilon, int | float)
            and not isinstance(epsilon, bool)
            and np.isfinite(epsilon)
            and epsilon >= 0
        ):
            raise ConfigError(
                invalid("StandardScaler.epsilon", "a finite float ≥ 0", repr(epsilon), "use 1e-8")
            )
        self.per_feature = _check_flag(per_feature, "StandardScaler.per_feature")
        self.epsilon = float(epsilon)
        self.mean_: Array | None = None
        self.scale_: Array | None = None

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        X = _check_array(X, self, "fit", finite=True)
        mean, std = _mean_std(X, self.per_feature)
        self.mean_ = mean
        self.scale_ = np.where(std < self.epsilon, 1.0, std)
        return self

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        X = _check_array(X, self, "transform")
        assert self.mean_ is not None and self.scale_ is not None
        if self.per_feature:
            _check_features(X, self.mean_.shape, self)
        dtype = _float_dtype(X)
        out = np.subtract(X, self.mean_.astype(dtype), dtype=dtype)
        out *= (1.0 / self.scale_).astype(dtype)
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
    rows = max(1, _CHUNK_VALUES // max(1, X[0].size))
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
@TRANSFORMERS.register("one_hot_encoder")
class OneHotEncoder(Transformer):
    """Integer class labels to one-hot rows: label ``classes_[k]`` → row with 1 at column k.

    Categorical cross-entropy takes either form (notes §1.2); one-hot rows are what
    ``Model.predict`` returns confidences against, and ``inverse_transform`` maps those
    back to labels (argmax, notes §1.2 "Accuracy").

    Args:
        n_classes: K. Given: the classes are 0 … K−1, the encoder needs no ``fit`` (``fit``
            only checks the labels' range). ``None``: ``fit`` learns the sorted unique
            labels, so labels such as ``[3, 7, 9]`` get columns 0, 1, 2.
    Learned:
        classes_: int64 (K,), sorted.
    Shape:
        labels (N,) of ints (or whole floats) -> (N, K) float32
    """

    learned: ClassVar[dict[str, np.dtype]] = {"classes_": np.dtype(np.int64)}

    def __init__(self, n_classes: int | None = None) -> None:
        if n_classes is not None and (
            not isinstance(n_classes, int | np.integer)
            or isinstance(n_classes, bool)
            or n_classes < 1
        ):
            raise ConfigError(
                invalid(
                    "OneHotEncoder.n_classes",
                    "a positive int or None (learn the classes from the labels)",
                    repr(n_classes),
                )
            )
        self.n_classes = None if n_classes is None else int(n_classes)
        self.classes_: Array | None = None
        self._load_state({})

    def _load_state(self, state: dict[str, Array]) -> None:
        if not state and self.n_classes is not None:
            state = {"classes_": np.arange(self.n_classes, dtype=np.int64)}
        super()._load_state(state)

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        labels = _check_labels(X, self, "fit")
        if self.n_classes is None:
            self.classes_ = np.unique(labels)
        else:
            self._find(labels, "fit", f"n_classes={self.n_classes}")
        return self

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        labels = _check_labels(X, self, "transform")
        assert self.classes_ is not None
        columns = self._find(labels, "transform", "the labels fit saw")
        out = np.zeros((len(labels), len(self.classes_)), dtype=np.float32)
        out[np.arange(len(labels)), columns] = 1.0
        return out

    def inverse_transform(self, X: ArrayLike) -> Array:
        """One-hot rows or confidences (N, K) → labels (N,): ``classes_[argmax]``."""
        self._check_fitted()
        Y = _check_array(X, self, "inverse_transform")
        assert self.classes_ is not None
        if Y.ndim != 2 or Y.shape[1] != len(self.classes_):
            raise ShapeError(
                "OneHotEncoder.inverse_transform: "
                + invalid("X", f"shape (N, {len(self.classes_)})", f"shape {Y.shape}")
            )
        return self.classes_[np.argmax(Y, axis=1)]

    def _find(self, labels: Array, method: str, known: str) -> Array:
        """Column of each label; InputError naming the first label outside ``classes_``."""
        assert self.classes_ is not None
        columns = np.searchsorted(self.classes_, labels)
        np.minimum(columns, len(self.classes_) - 1, out=columns)
        unknown = self.classes_[columns] != labels
        if unknown.any():
            first = int(np.argmax(unknown))
            raise InputError(
                f"OneHotEncoder.{method}: "
                + invalid(
                    "X",
                    f"labels among {_short_list(self.classes_)} ({known})",
                    f"label {labels[first]} at index {first} "
                    f"({int(unknown.sum())} unknown labels in all)",
                    "fit on training labels that include every class, or pass n_classes=K",
                )
            )
        return columns

    def get_config(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes}

    def _check_state(self, state: dict[str, Array]) -> None:
        classes = state["classes_"]
        if classes.ndim != 1 or len(classes) == 0:
            raise self._state_error("classes_", "a non-empty 1-D array", f"shape {classes.shape}")
        if self.n_classes is not None and not np.array_equal(classes, np.arange(self.n_classes)):
            raise self._state_error(
                "classes_", f"0 … {self.n_classes - 1} (n_classes={self.n_classes})", classes
            )
        if (np.diff(classes) <= 0).any():
            raise self._state_error("classes_", "sorted unique labels", classes)


def _check_labels(X: ArrayLike, who: Transformer | str, method: str) -> Array:
    """Class labels as an int64 (N,) array; whole-number floats are accepted."""
    labels = _check_array(X, who, method, finite=True)
    where = f"{who if isinstance(who, str) else type(who).__name__}.{method}"
    if labels.ndim != 1:
        raise ShapeError(
            f"{where}: "
            + invalid(
                "X",
                "class labels of shape (N,)",
                f"shape {labels.shape}",
                "pass integer labels, e.g. y.ravel() or y.argmax(axis=1) for one-hot rows",
            )
        )
    if labels.dtype.kind == "f" and (labels != np.round(labels)).any():
        first = int(np.argmax(labels != np.round(labels)))
        raise InputError(
            f"{where}: "
            + invalid("X", "whole-number class labels", f"{labels[first]} at index {first}")
        )
    return labels.astype(np.int64, copy=False)


def _short_list(values: Array, limit: int = 10) -> str:
    items = [str(v) for v in values[:limit]]
    return "[" + ", ".join(items) + (", …" if len(values) > limit else "") + "]"


# -- images (notes §1.9 "Grayscale", "Flattening") ----------------------------------------
@TRANSFORMERS.register("flatten")
class Flatten(Transformer):
    """Each sample to one row (notes §1.9 "Flattening"): (N, d₁, d₂, …) → (N, d₁·d₂·…).

    Stateless; keeps the dtype and returns a view of ``X`` when ``X`` is contiguous.
    """

    def transform(self, X: ArrayLike) -> Array:
        X = _check_array(X, self, "transform")
        return X.reshape(len(X), -1)


@TRANSFORMERS.register("grayscale")
class Grayscale(Transformer):
    """RGB(A) images to one luma channel with ITU-R BT.601 weights (notes §1.9 "Grayscale"):

        Y = 0.299·R + 0.587·G + 0.114·B

    (Pillow's ``convert("L")`` uses the same weights but rounds to uint8.) Alpha is ignored,
    not composited. One-channel images pass through. Stateless.

    Shape:
        X (N, H, W, C) with C in {1, 3, 4} -> (N, H, W, 1), float (X's float dtype, else
        float32; uint8 pixels stay in [0, 255])
    """

    weights = np.array([0.299, 0.587, 0.114])

    def transform(self, X: ArrayLike) -> Array:
        X = _check_array(X, self, "transform")
        if X.ndim != 4 or X.shape[3] not in (1, 3, 4):
            raise ShapeError(
                "Grayscale.transform: "
                + invalid(
                    "X",
                    "NHWC images of shape (N, H, W, C) with C = 1, 3 (RGB) or 4 (RGBA)",
                    f"shape {X.shape}",
                    "add a channel axis to one-channel images (X[..., np.newaxis])"
                    if X.ndim == 3
                    else "pass channels-last images",
                )
            )
        dtype = _float_dtype(X)
        if X.shape[3] == 1:
            return X.astype(dtype, copy=False)
        luma = X[..., :3].astype(dtype, copy=False) @ self.weights.astype(dtype)
        return luma[..., np.newaxis]


@TRANSFORMERS.register("resize")
class Resize(Transformer):
    r"""Resize every image to ``size`` with bilinear interpolation, as Pillow does it.

    The resampling is separable: along each axis, output pixel o (centre at (o + ½)·s in
    input pixels, s = n_in/n_out) is the weighted mean of input pixels i with weights

        w(i, o) = max(0, 1 − |(i + ½) − (o + ½)·s| / max(s, 1)),  normalised to sum 1

    i.e. the triangle filter of Pillow's ``Image.resize(size, Image.BILINEAR)`` (equal to
    it within float rounding for mode "F"; Pillow's uint8 path also rounds each pass).
    Enlarging is plain bilinear interpolation with half-pixel centres (edge pixels
    repeat). Shrinking widens the triangle to ±s input pixels, so every input pixel
    contributes (antialiasing): halving is a (1, 3, 3, 1)/8-style blur and subsample, not
    a 2×2 block mean. Weights falling outside the image are dropped and the rest
    renormalised. Each axis is one matrix product over the whole batch. Stateless.

    Args:
        size: (height, width) of the output, or one int for squares.
    Shape:
        X (N, H, W, C) or (N, H, W) -> (N, height, width, C) or (N, height, width), float
        (X's float dtype, else float32; uint8 pixels stay in [0, 255], unrounded). When
        the size already matches, X is returned as is (cast if needed).
    """

    def __init__(self, size: int | Sequence[int] = (28, 28)) -> None:
        pair = (size, size) if isinstance(size, int | np.integer) else tuple(size)
        if len(pair) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1 for v in pair
        ):
            raise ConfigError(
                invalid(
                    "Resize.size",
                    "a (height, width) pair of positive ints, or one positive int",
                    repr(size),
                    "use e.g. size=(28, 28)",
                )
            )
        self.size = (int(pair[0]), int(pair[1]))

    def transform(self, X: ArrayLike) -> Array:
        X = _check_array(X, self, "transform")
        if X.ndim not in (3, 4):
            raise ShapeError(
                "Resize.transform: "
                + invalid("X", "images of shape (N, H, W, C) or (N, H, W)", f"shape {X.shape}")
            )
        dtype = _float_dtype(X)
        out = X.astype(dtype, copy=False)
        n, height, width = X.shape[:3]
        channels = X.shape[3:]
        if height != self.size[0]:
            rows = _bilinear_weights(height, self.size[0]).astype(dtype)
            out = rows @ out.reshape(n, height, -1)
        if width != self.size[1]:
            columns = _bilinear_weights(width, self.size[1]).astype(dtype)
            out = columns @ out.reshape(n * self.size[0], width, -1)
        return out.reshape(n, *self.size, *channels)

    def get_config(self) -> dict[str, Any]:
        return {"size": list(self.size)}


def _bilinear_weights(n_in: int, n_out: int) -> Array:
    """The (n_out, n_in) matrix of Pillow's bilinear (triangle) filter, rows summing to 1."""
    s = n_in / n_out
    centre = (np.arange(n_out) + 0.5) * s
    distance = np.abs((np.arange(n_in) + 0.5)[np.newaxis, :] - centre[:, np.newaxis])
    weights = np.maximum(0.0, 1.0 - distance / max(s, 1.0))
    # every row has a positive weight: the nearest input centre is ≤ ½ pixel from the output's
    return weights / weights.sum(axis=1, keepdims=True)


# -- pipeline -----------------------------------------------------------------------------
@TRANSFORMERS.register("pipeline")
class Pipeline(Transformer):
    """Transformers applied in order; ``fit`` fits each on the previous one's output.

    ``get_state`` prefixes each step's arrays with its index (``"0/mean_"``, ``"2/classes_"``;
    nested pipelines nest: ``"1/0/data_min_"``); ``get_config`` holds the steps' specs.

    Args:
        steps: transformers, or their specs ``{"class": name, "config": {...}}``.
    """

    def __init__(self, steps: Sequence[Transformer | dict[str, Any]]) -> None:
        if isinstance(steps, str | bytes | Mapping) or not isinstance(steps, Sequence):
            raise ConfigError(
                invalid("Pipeline.steps", "a list of transformers", type(steps).__name__)
            )
        self.steps: list[Transformer] = []
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                step = deserialize(step)
            if not isinstance(step, Transformer):
                raise ConfigError(
                    invalid(
                        f"Pipeline.steps[{index}]",
                        "a Transformer or its spec",
                        f"{type(step).__name__} {step!r}"[:200],
                    )
                )
            self.steps.append(step)

    @property
    def fitted(self) -> bool:
        return all(step.fitted for step in self.steps)

    def _check_fitted(self) -> None:
        for index, step in enumerate(self.steps):
            if not step.fitted:
                raise InputError(
                    f"Pipeline is not fitted yet (step {index}, {type(step).__name__}, is not). "
                    "Fix: call fit(X_train) first (fit on training data only, notes §1.9)"
                )

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        self._fit(X, y, transform_last=False)
        return self

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> Array:
        return self._fit(X, y, transform_last=True)

    def _fit(self, X: ArrayLike, y: ArrayLike | None, transform_last: bool) -> Array:
        out = np.asarray(X)
        for index, step in enumerate(self.steps):
            if index < len(self.steps) - 1 or transform_last:
                out = step.fit_transform(out, y)
            else:
                step.fit(out, y)
        return out

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        out = np.asarray(X)
        for step in self.steps:
            out = step.transform(out)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"steps": [serialize(step) for step in self.steps]}

    def get_state(self) -> dict[str, Array]:
        return {
            f"{index}/{key}": array
            for index, step in enumerate(self.steps)
            for key, array in step.get_state().items()
        }

    def _validate_state(self, state: Mapping[str, Array]) -> dict[str, Array]:
        if not isinstance(state, Mapping):
            raise ConfigError(invalid("Pipeline state", "a dict of arrays", type(state).__name__))
        checked: dict[str, Array] = {}
        for index, (step, part) in enumerate(zip(self.steps, self._split(state), strict=True)):
            try:
                step_state = step._validate_state(part)
            except ConfigError as error:
                raise ConfigError(f"Pipeline step {index}: {error}") from None
            checked.update({f"{index}/{key}": array for key, array in step_state.items()})
        return checked

    def _load_state(self, state: dict[str, Array]) -> None:
        for step, part in zip(self.steps, self._split(state), strict=True):
            step._load_state(dict(part))

    def _split(self, state: Mapping[str, Array]) -> list[dict[str, Array]]:
        """The state's arrays per step, by their ``"<index>/"`` prefix."""
        parts: list[dict[str, Array]] = [{} for _ in self.steps]
        for key, array in state.items():
            index, _, rest = str(key).partition("/")
            if not (index.isdigit() and int(index) < len(self.steps) and rest):
                raise ConfigError(
                    invalid(
                        "Pipeline state",
                        f"names '<step>/<name>' with a step in 0…{len(self.steps) - 1}",
                        repr(key),
                        "pass the dict that Pipeline.get_state() returned",
                    )
                )
            parts[int(index)][rest] = array
        return parts


def serialize(transformer: Transformer) -> dict[str, Any]:
    """``{"class": registered name, "config": get_config()}``, JSON-able."""
    return {"class": TRANSFORMERS.name_of(transformer), "config": transformer.get_config()}


def deserialize(spec: dict[str, Any]) -> Transformer:
    """Build a transformer from :func:`serialize`'s spec; only registered classes, by name."""
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise ConfigError(
            invalid("transformer spec", 'a dict {"class": name, "config": {...}}', repr(spec)[:200])
        )
    cls = TRANSFORMERS.lookup(spec["class"])
    config = spec["config"]
    if not isinstance(config, dict):
        raise ConfigError(invalid(f"{spec['class']}.config", "a dict", type(config).__name__))
    try:
        return cls.from_config(config)
    except TypeError as error:
        raise ConfigError(
            f"Cannot build transformer {spec['class']!r} from its config: {error}"
        ) from None


# -- balancing (notes §1.9 "Balancing") ---------------------------------------------------
BALANCE_STRATEGIES = ("undersample",)


@dataclass(frozen=True)
class BalanceReport:
    """Samples per class before and after :func:`balance`."""

    strategy: str
    before: dict[Any, int]
    after: dict[Any, int]

    @property
    def removed(self) -> int:
        return sum(self.before.values()) - sum(self.after.values())

    def __str__(self) -> str:
        total_before, total_after = sum(self.before.values()), sum(self.after.values())
        width = max(5, *(len(str(label)) for label in self.before))
        lines = [
            f"balance ({self.strategy}): {total_before:,} → {total_after:,} samples, "
            f"{self.removed:,} removed",
            f"{'class':<{width}}  {'before':>8}  {'after':>8}",
        ]
        lines += [
            f"{label!s:<{width}}  {count:>8,}  {self.after[label]:>8,}"
            for label, count in self.before.items()
        ]
        return "\n".join(lines)


def balance(
    X: ArrayLike,
    y: ArrayLike,
    strategy: str = "undersample",
    seed: int | np.random.Generator | None = None,
) -> tuple[Array, Array, BalanceReport]:
    """Make every class equally frequent (notes §1.9 "Balancing"): training data only.

    ``"undersample"`` keeps, of every class, a random subset as large as the smallest class
    (drawn without replacement from ``np.random.default_rng(seed)``); kept samples stay in
    their original relative order. Balancing by augmentation is ``lamina.augmentation``'s.

    Args:
        X: samples along axis 0, of any dtype (images, feature rows, file paths).
        y: class labels (N,), integers or strings.
        strategy: only ``"undersample"``.
        seed: an int, a Generator, or ``None`` for fresh entropy.
    Returns:
        ``(X_balanced, y_balanced, report)``; ``print(report)`` shows the counts per class.
    """
    if strategy not in BALANCE_STRATEGIES:
        raise ConfigError(
            invalid(
                "balance strategy",
                f"one of {list(BALANCE_STRATEGIES)}",
                repr(strategy),
                "use strategy='undersample', or augment the small classes (notes §1.9)",
            )
        )
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim != 1:
        raise ShapeError(
            "balance: "
            + invalid(
                "X, y",
                "samples X (N, ...) and labels y (N,)",
                f"X of shape {X.shape}, y of shape {y.shape}",
                "pass integer labels, e.g. y.argmax(axis=1) for one-hot rows",
            )
        )
    if len(X) != len(y):
        raise InputError(
            "balance: "
            + invalid("X, y", "as many labels as samples", f"{len(X)} samples, {len(y)} labels")
        )
    if len(y) == 0:
        raise InputError("balance: " + invalid("X", "at least one sample", "empty arrays"))
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise InputError("balance: " + invalid("y", "finite labels", "NaN or inf"))
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = int(counts.min())
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.choice(indices, size=keep, replace=False) for indices in by_class]
    kept = np.sort(np.concatenate(chosen))
    labels = [label.item() for label in classes]
    report = BalanceReport(
        strategy=strategy,
        before={label: int(count) for label, count in zip(labels, counts, strict=True)},
        after=dict.fromkeys(labels, keep),
    )
    return X[kept], y[kept], report
