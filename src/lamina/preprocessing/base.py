"""The Transformer protocol and registry, and the input checks every transformer shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, ShapeError, invalid

Array = np.ndarray


TRANSFORMERS: Registry[type[Transformer]] = Registry("transformer")

# Rows per chunk hold about this many values, so float64 statistics of a uint8/float32 set
# never need a float64 copy of the whole set (60,000 × 784 would be 376 MB).
CHUNK_VALUES = 1 << 20


class Transformer:
    """Base class: ``fit`` learns from training data, ``transform`` applies what it learned.

    Subclasses that learn something list their learned attributes and dtypes in
    ``learned`` (names end in ``_``, as in scikit-learn); they are ``None`` until ``fit``.
    Stateless transformers leave ``learned`` empty and are always :attr:`fitted`.
    """

    learned: ClassVar[dict[str, np.dtype]] = {}

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Learn from the training data ``X`` (``y`` is accepted and ignored); returns self."""
        check_array(X, self, "fit")
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
def check_array(X: ArrayLike, who: Transformer | str, method: str, finite: bool = False) -> Array:
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


def check_features(X: Array, expected: tuple[int, ...], who: Transformer) -> None:
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


def float_dtype(X: Array) -> np.dtype:
    """The output dtype of a computing transformer: X's float dtype, else float32."""
    return X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)


# -- scaling (notes §1.5, §1.9 "Scaling") -------------------------------------------------
