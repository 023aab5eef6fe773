"""How a model takes its data: preprocessing fitted on the training portion only,
augmentation per batch in training only, and streams of batches (notes §1.5, §1.9)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import lamina as lm
from lamina.errors import InputError

L = lm.layers


class MeanCentering:
    """A minimal transformer: learns the per-feature mean of what it is fitted on."""

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.fit_calls = 0

    @property
    def fitted(self) -> bool:
        return self.mean_ is not None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> MeanCentering:
        self.mean_ = X.astype(np.float64).mean(axis=0)
        self.fit_calls += 1
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None
        return (X - self.mean_).astype(np.float32)


def classifier(**kwargs: object) -> lm.Model:
    model = lm.Model([L.Dense(4, 3, activation="softmax")], seed=0, **kwargs)  # type: ignore[arg-type]
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4)) + np.arange(100)[:, None]  # a trend: portions differ
    return X.astype(np.float32), rng.integers(0, 3, 100)


def test_preprocessing_is_fitted_on_the_training_portion_only(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    centering = MeanCentering()
    model = classifier(preprocessing=centering)
    model.fit(X, y, epochs=1, validation_split=0.2, verbose=0)
    np.testing.assert_allclose(centering.mean_, X[:80].astype(np.float64).mean(axis=0))
    assert not np.allclose(centering.mean_, X.astype(np.float64).mean(axis=0))
    model.fit(X, y, epochs=1, validation_data=(X[:10], y[:10]), verbose=0)
    assert centering.fit_calls == 1  # fitted once; later fits keep the statistics


def test_evaluate_and_predict_apply_the_preprocessing(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    model = classifier(preprocessing=MeanCentering())
    model.fit(X, y, epochs=2, verbose=0)
    plain = lm.Model([L.Dense(4, 3, activation="softmax")], seed=0)
    plain.layers[0].params = {k: v.copy() for k, v in model.layers[0].params.items()}
    expected = plain.predict(model.preprocessing.transform(X))  # type: ignore[union-attr]
    np.testing.assert_array_equal(model.predict(X), expected)


def test_unfitted_preprocessing_at_prediction_is_explained() -> None:
    model = classifier(preprocessing=MeanCentering())
    with pytest.raises(lm.errors.NotCompiledError, match="preprocessing is not fitted"):
        model.predict(np.zeros((2, 4)))


def test_augmentation_runs_in_training_only_and_is_seeded(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    seen: list[np.ndarray] = []

    def jitter(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = batch + rng.normal(0, 0.1, batch.shape).astype(batch.dtype)
        seen.append(out)
        return out

    runs = []
    for _ in range(2):
        seen.clear()
        model = classifier(augmentation=[jitter])
        model.fit(X, y, epochs=2, batch_size=25, verbose=0)
        runs.append([batch.copy() for batch in seen])
        assert len(seen) == 8
        model.predict(X)
        model.evaluate(X, y)
        assert len(seen) == 8  # not at inference
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


class Batches:
    """A Sequence of batches (len + [i]), like keras.utils.Sequence."""

    def __init__(self, X: np.ndarray, y: np.ndarray, size: int) -> None:
        self.X, self.y, self.size = X, y, size
        self.epochs_ended = 0

    def __len__(self) -> int:
        return -(-len(self.X) // self.size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * self.size, (index + 1) * self.size)
        return self.X[part], self.y[part]

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


def test_fit_takes_a_sequence_of_batches(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    sequence = Batches(X, y, 32)
    a = classifier()
    history = a.fit(sequence, epochs=3, shuffle=False, verbose=0)
    assert sequence.epochs_ended == 3 and len(history.steps["loss"]) == 12
    b = classifier()
    b.fit(X, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.layers[0].params["weights"], b.layers[0].params["weights"])


def test_fit_takes_a_generator_function(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, 100, 50):
            yield X[start : start + 50], y[start : start + 50]

    history = classifier().fit(batches, epochs=2, validation_data=(X, y), verbose=0)
    assert len(history.steps["loss"]) == 4 and "val_loss" in history.history
    with pytest.raises(lm.errors.ConfigError, match="generator function itself"):
        classifier().fit(batches(), epochs=2, verbose=0)


def test_bad_batches_in_a_stream_are_explained(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data

    def nan_batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield X[:10], y[:10]
        bad = X[10:20].copy()
        bad[2, 1] = np.nan
        yield bad, y[10:20]

    with pytest.raises(lm.errors.InputError, match="NaN"):
        classifier().fit(nan_batches, epochs=1, verbose=0)
    with pytest.raises(lm.errors.InputError, match="pair"):
        classifier().fit(lambda: iter([X[:10]]), epochs=1, verbose=0)
    with pytest.raises(lm.errors.ConfigError, match="y"):
        classifier().fit(Batches(X, y, 10), y, verbose=0)


def test_standard_scaler_statistics_come_from_the_training_portion_alone(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    # issue 4: with validation_split, the scaler never sees the held-out samples (notes §1.9)
    X, y = data
    scaler = lm.preprocessing.StandardScaler()
    model = classifier(preprocessing=lm.preprocessing.Pipeline([scaler]))
    model.fit(X, y, epochs=1, validation_split=0.25, verbose=0)
    training = X[:75].astype(np.float64)
    np.testing.assert_allclose(scaler.mean_, training.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, training.std(axis=0), rtol=1e-6)
    assert not np.allclose(scaler.mean_, X.astype(np.float64).mean(axis=0))


def test_augmentation_from_the_library_trains_a_cnn() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((64, 12, 12, 1)).astype(np.float32)
    model = lm.Model(
        [
            L.Conv2D(1, 4, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(5 * 5 * 4, 3, activation="softmax"),
        ],
        seed=0,
        augmentation=[lm.augmentation.RandomFlip("horizontal"), lm.augmentation.RandomShift(0.1)],
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    history = model.fit(images, rng.integers(0, 3, 64), epochs=2, batch_size=16, verbose=0)
    assert len(history.epoch) == 2 and np.isfinite(history.history["loss"]).all()


class NaNAbove:
    """A transformer that makes NaN of every value above ``limit`` (as log(−x) would)."""

    fitted = True

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> NaNAbove:
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.where(X > self.limit, np.nan, X).astype(np.float32)


@pytest.mark.parametrize("validation_split", [0.0, 0.2])
def test_fit_scans_its_inputs_for_nan_and_inf_once(
    monkeypatch: pytest.MonkeyPatch, data: tuple[np.ndarray, np.ndarray], validation_split: float
) -> None:
    from lamina import validation

    X, y = data
    scanned: list[tuple[int, ...]] = []
    real = validation.sums_finite

    def counting(array: np.ndarray) -> bool:
        scanned.append(array.shape)
        return real(array)

    monkeypatch.setattr(validation, "sums_finite", counting)
    classifier().fit(X, y, epochs=1, verbose=0, validation_split=validation_split)
    assert scanned.count(X.shape) == 1  # the whole X, before the split
    n_val = round(len(X) * validation_split)
    assert not any(shape[0] in (len(X) - n_val, n_val) for shape in scanned if shape != X.shape)


def test_fit_still_refuses_nan_in_its_inputs_and_after_the_preprocessing(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(
        InputError,
        match=r"`X`: expected finite values, received 1 NaN value\(s\), the first at index \(7, 2",
    ):
        classifier().fit(bad, y, epochs=1, verbose=0)
    with pytest.raises(InputError, match="`X after preprocessing`: expected finite"):
        classifier(preprocessing=NaNAbove(50.0)).fit(X, y, epochs=1, verbose=0)
    with pytest.raises(
        InputError, match="`X_val after preprocessing`: expected finite"
    ):  # the held-out rows
        classifier(preprocessing=NaNAbove(85.0)).fit(  # rows 0–79 (values < 83) train
            X, y, epochs=1, verbose=0, validation_split=0.2
        )
    model = classifier()
    with pytest.raises(InputError, match="`X_val`: expected finite"):  # validation_data: checked
        model.fit(X, y, epochs=1, verbose=0, validation_data=(bad, y))


@pytest.mark.parametrize("with_weights", [False, True])
def test_shuffled_batches_are_new_arrays_of_the_drawn_rows(with_weights: bool) -> None:
    from lamina.engine.batches import ArrayBatches

    rng = np.random.default_rng(4)
    X = rng.standard_normal((23, 4, 3)).astype(np.float32)  # rows of any shape
    y = np.arange(23) % 5
    weights = rng.random(23) if with_weights else None
    batches = ArrayBatches(X, y, 5, True, np.random.default_rng(0), weights)
    order = np.random.default_rng(0).permutation(23)
    seen = []
    for k, (xb, yb, wb) in enumerate(batches):
        rows = order[5 * k : 5 * k + 5]
        np.testing.assert_array_equal(xb, X[rows])
        np.testing.assert_array_equal(yb, y[rows])
        assert xb.dtype == X.dtype and not np.shares_memory(xb, X)
        assert (wb is None) == (weights is None)
        if weights is not None:
            np.testing.assert_array_equal(wb, weights[rows])
        seen.extend(rows)
    assert len(seen) == 23 and sorted(seen) == list(range(23))  # the last batch short
