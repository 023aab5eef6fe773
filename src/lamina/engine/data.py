"""What ``Model.fit`` trains on: the checked training batches and validation arrays, from
in-memory arrays or a stream of batches (notes §1.5 "Validation", §1.9 "Batches").

The preprocessing is fitted on the training portion only — never on validation or test
data — and a validation split is taken from the end of the data before any shuffling, with
its sample weights. Class weights (``engine/weights.py``) weigh the training samples only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.engine import inputs
from lamina.engine import weights as weighting
from lamina.engine.batches import ArrayBatches, Batch, BatchSource, is_batch_stream, stream_for
from lamina.errors import ConfigError, InputError, invalid
from lamina.losses import BinaryCrossentropy, CategoricalCrossentropy
from lamina.validation import numeric_samples, targets_for

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray
Validation = tuple[Array, Array, Array | None] | None


def training_data(
    model: Model,
    X: Any,
    y: ArrayLike | None,
    *,
    batch_size: int | None,
    validation_data: tuple[ArrayLike, ...] | None,
    validation_split: float,
    shuffle: bool,
    rng: np.random.Generator,
    epochs: int,
    sample_weight: ArrayLike | None,
    class_weight: weighting.ClassWeight,
) -> tuple[BatchSource, Validation]:
    """``fit``'s batches and validation arrays, from in-memory arrays or from a stream of
    batches (a Sequence, a generator function or an iterator as X, y None)."""
    if not is_batch_stream(X):
        return array_batches(
            model,
            X,
            y,
            batch_size=batch_size,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=shuffle,
            rng=rng,
            sample_weight=sample_weight,
            class_weight=class_weight,
        )
    if sample_weight is not None:
        raise ConfigError(
            invalid(
                "sample_weight",
                "None when X is a stream of batches",
                "an array",
                "yield (X_batch, y_batch, weights) triples",
            )
        )
    return stream_batches(
        model,
        X,
        y,
        validation_data=validation_data,
        validation_split=validation_split,
        shuffle=shuffle,
        rng=rng,
        epochs=epochs,
        class_weight=class_weight,
    )


def array_batches(
    model: Model,
    X: ArrayLike,
    y: ArrayLike | None,
    *,
    batch_size: int | None,
    validation_data: tuple[ArrayLike, ...] | None,
    validation_split: float,
    shuffle: bool,
    rng: np.random.Generator,
    sample_weight: ArrayLike | None = None,
    class_weight: weighting.ClassWeight = None,
) -> tuple[ArrayBatches, Validation]:
    """Checked training batches (shuffled by ``rng`` each epoch, with their weights) and
    validation arrays."""
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
    w_raw = weighting.check_sample_weight(sample_weight, len(X_raw))
    validation_raw: tuple[Any, Any, Any] | None = None
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
        w_val = None if w_raw is None else w_raw[n - n_val :]
        validation_raw = (X_raw[n - n_val :], y_raw[n - n_val :], w_val)
        X_raw, y_raw = X_raw[: n - n_val], y_raw[: n - n_val]
        w_raw = None if w_raw is None else w_raw[: n - n_val]
    pre = model.preprocessing
    if pre is not None and not getattr(pre, "fitted", False):
        pre.fit(X_raw, y_raw)
    X_train = inputs.model_inputs(model, X_raw, "X", finite=True, raw_checked=True)
    inputs.fit_target_preprocessing(model, y_raw, X_train)
    y_train = model.prepare_targets(y_raw, X_train)
    for metric in model.metrics:
        metric.prepare(inputs.original_units(model, y_train))
    classes = weighting.class_sample_weight(class_weight, y_train, class_count(model, X_train))
    weights = weighting.combine(w_raw, classes)
    if weights is not None and not weights.sum() > 0:
        raise InputError(
            invalid("sample_weight", "some weight > 0", "all weights 0", "weigh some samples")
        )
    validation = None
    if validation_raw is not None:
        X_val, y_val, w_val = validation_raw
        split = validation_data is None  # a slice of X_raw, checked above
        X_val = inputs.model_inputs(model, X_val, "X_val", finite=True, raw_checked=split)
        y_val = model.prepare_targets(y_val, X_val, ("X_val", "y_val"))
        validation = (X_val, y_val, weighting.check_sample_weight(w_val, len(X_val)))
    size = len(X_train) if batch_size is None else batch_size
    return ArrayBatches(X_train, y_train, size, shuffle, rng, weights), validation


def stream_batches(
    model: Model,
    X: Any,
    y: ArrayLike | None,
    *,
    validation_data: tuple[ArrayLike, ...] | None,
    validation_split: float,
    shuffle: bool,
    rng: np.random.Generator,
    epochs: int,
    class_weight: weighting.ClassWeight = None,
) -> tuple[BatchSource, Validation]:
    """Training batches from a Sequence or generator, each checked as it arrives (a
    ``"balanced"`` class weight needs the whole data's counts: pass a dict instead)."""
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
    if isinstance(class_weight, str):
        raise ConfigError(
            invalid(
                "class_weight",
                "a dict {class: weight} for a stream of batches",
                repr(class_weight),
                "compute the classes' weights once, e.g. n / (k · n_c), and pass them",
            ),
            argument="class_weight",
        )

    def prepare(X_batch: Any, y_batch: Any, w_batch: Any) -> Batch:
        inputs, targets = model.prepare_data(X_batch, y_batch)
        given = weighting.check_sample_weight(w_batch, len(inputs))
        n_classes = class_count(model, inputs) if class_weight is not None else None
        classes = weighting.class_sample_weight(class_weight, targets, n_classes)
        return inputs, targets, weighting.combine(given, classes)

    source = stream_for(X, prepare, shuffle, rng, epochs)
    validation = None
    if validation_data is not None:
        X_val, y_val, w_val = validation_pair(validation_data, 0.0)
        prepared = model.prepare_data(X_val, y_val, names=("X_val", "y_val"))
        validation = (*prepared, weighting.check_sample_weight(w_val, len(prepared[0])))
    return source, validation


def class_count(model: Model, inputs: Array) -> int | None:
    """How many classes the model tells apart (2 for binary cross-entropy, the outputs for
    categorical), so that class weights apply; None for a loss that compares no classes."""
    if isinstance(model.loss, BinaryCrossentropy):
        return 2
    if isinstance(model.loss, CategoricalCrossentropy):
        return int(model.output_shape(inputs.shape[1:])[-1] or 0)
    return None


def validation_pair(validation_data: Any, validation_split: float) -> tuple[Any, Any, Any]:
    """``(X_val, y_val, weights or None)`` from fit's ``validation_data``, which excludes a
    split."""
    if validation_split:
        raise ConfigError(
            invalid(
                "validation_split",
                "0 when validation_data is given",
                validation_split,
                "pass only one of the two",
            )
        )
    if not (isinstance(validation_data, tuple | list) and len(validation_data) in (2, 3)):
        raise ConfigError(
            invalid(
                "validation_data",
                "a pair (X_val, y_val) or a triple (X_val, y_val, sample_weight_val)",
                type(validation_data).__name__,
            )
        )
    weights = validation_data[2] if len(validation_data) == 3 else None
    return validation_data[0], validation_data[1], weights
