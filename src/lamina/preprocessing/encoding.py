"""One-hot encoding of class labels (notes §1.2 "Categorical Cross-Entropy")."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Interval, checked, rule
from lamina.errors import InputError, ShapeError, invalid
from lamina.preprocessing.base import (
    TRANSFORMERS,
    Transformer,
    check_array,
)

Array = np.ndarray


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

    @checked(
        n_classes=rule(
            Interval(int, 1),
            None,
            fix="pass the number of classes as a positive int, or None to learn the classes "
            "from the labels",
        )
    )
    def __init__(self, n_classes: int | None = None) -> None:
        self.n_classes = n_classes
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
        Y = check_array(X, self, "inverse_transform")
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
    labels = check_array(X, who, method, finite=True)
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
