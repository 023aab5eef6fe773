"""What ``Model.fit`` trains on: the checked training batches and validation arrays, from
in-memory arrays or a stream of batches (notes §1.5 "Validation", §1.9 "Batches").

The preprocessing is fitted on the training portion only — never on validation or test
data — and a validation split is taken from the end of the data before any shuffling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.engine.batches import ArrayBatches, BatchSource, stream_for
from lamina.errors import ConfigError, InputError, invalid
from lamina.validation import numeric_samples, targets_for

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray
Validation = tuple[Array, Array] | None


def array_batches(
    model: Model,
    X: ArrayLike,
    y: ArrayLike | None,
    *,
    batch_size: int | None,
    validation_data: tuple[ArrayLike, ArrayLike] | None,
    validation_split: float,
    shuffle: bool,
    rng: np.random.Generator,
) -> tuple[ArrayBatches, Validation]:
    """Checked training batches (shuffled by ``rng`` each epoch) and validation arrays."""
    if y is None:
        raise InputError(
            invalid(
                "y",
                "targets for X",
                "None",
                "pass fit(X, y), or a stream of (X_batch, y_batch) as X",
            )
        )
    X_raw = numeric_samples(X, "X")
    y_raw = targets_for(y, len(X_raw), ("X", "y"))
    validation_raw: tuple[Any, Any] | None = None
    if validation_data is not None:
        validation_raw = validation_pair(validation_data, validation_split)
    elif validation_split:
        n = len(X_raw)
        n_val = round(n * validation_split)
        if n_val < 1 or n_val >= n:
            raise InputError(
                invalid(
                    "validation_split",
                    "a fraction leaving ≥ 1 sample on each side",
                    f"{validation_split} of {n} samples",
                )
            )
        validation_raw = (X_raw[n - n_val :], y_raw[n - n_val :])
        X_raw, y_raw = X_raw[: n - n_val], y_raw[: n - n_val]
    pre = model.preprocessing
    if pre is not None and not getattr(pre, "fitted", False):
        pre.fit(X_raw, y_raw)
    X_train, y_train = model.prepare_data(X_raw, y_raw)
    for metric in model.metrics:
        metric.prepare(y_train)
    validation = None
    if validation_raw is not None:
        validation = model.prepare_data(*validation_raw, names=("X_val", "y_val"))
    size = len(X_train) if batch_size is None else batch_size
    return ArrayBatches(X_train, y_train, size, shuffle, rng), validation


def stream_batches(
    model: Model,
    X: Any,
    y: ArrayLike | None,
    *,
    validation_data: tuple[ArrayLike, ArrayLike] | None,
    validation_split: float,
    shuffle: bool,
    rng: np.random.Generator,
    epochs: int,
) -> tuple[BatchSource, Validation]:
    """Training batches from a Sequence or generator, each checked as it arrives."""
    if y is not None:
        raise ConfigError(
            invalid(
                "y",
                "None when X is a stream of (X_batch, y_batch)",
                type(y).__name__,
                "leave y out",
            )
        )
    if validation_split:
        raise ConfigError(
            invalid(
                "validation_split",
                "0 for a stream of batches",
                validation_split,
                "pass validation_data=(X_val, y_val)",
            )
        )
    model.require_fitted_preprocessing("fit on a stream of batches")
    source = stream_for(X, model.prepare_data, shuffle, rng, epochs)
    validation = None
    if validation_data is not None:
        validation = model.prepare_data(
            *validation_pair(validation_data, 0.0), names=("X_val", "y_val")
        )
    return source, validation


def validation_pair(validation_data: Any, validation_split: float) -> tuple[Any, Any]:
    """``(X_val, y_val)`` from fit's ``validation_data``, which excludes a split."""
    if validation_split:
        raise ConfigError(
            invalid(
                "validation_split",
                "0 when validation_data is given",
                validation_split,
                "pass only one of the two",
            )
        )
    if not (isinstance(validation_data, tuple | list) and len(validation_data) == 2):
        raise ConfigError(
            invalid("validation_data", "a pair (X_val, y_val)", type(validation_data).__name__)
        )
    return validation_data[0], validation_data[1]
