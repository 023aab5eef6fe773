"""Metrics (issue 14, "Metrics that fit the task"): values worked out by hand, the
per_sample → finalize protocol that lets a model average any metric over batches of
different sizes and with sample weights, the defaults chosen from the loss, and saving."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm

import lamina as lm
from lamina.errors import ConfigError, InputError, ShapeError
from lamina.metrics import METRICS, Metric, score

M, L = lm.metrics, lm.layers

Y = np.array([[1.0], [2.0], [4.0], [5.0]])
Y_HAT = np.array([[1.5], [2.0], [3.0], [5.5]])  # errors e = ŷ − y: 0.5, 0, −1, 0.5


def regression_data(n: int = 23, outputs: int = 2, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, outputs)) * [1.0, 3.0][:outputs] + [0.5, -2.0][:outputs]
    return y + rng.normal(scale=0.7, size=y.shape), y


def classification_data(n: int = 23, classes: int = 6, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes))
    confidences = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return confidences, rng.integers(0, classes, n)


def example(name: str) -> tuple[Metric, np.ndarray, np.ndarray]:
    """A registered metric and data it scores."""
    metric = METRICS.lookup(name)()
    if name == "binary_accuracy":
        rng = np.random.default_rng(1)
        return metric, rng.random((23, 2)), rng.integers(0, 2, (23, 2)).astype(float)
    if name in ("categorical_accuracy", "top_k_accuracy"):
        if name == "top_k_accuracy":
            metric = M.TopKAccuracy(k=2)
        return (metric, *classification_data())
    if name == "regression_accuracy":
        y_pred, y = regression_data(outputs=1)
        metric = M.RegressionAccuracy(precision=2.0)
        metric.prepare(y)
        return metric, y_pred, y
    return (metric, *regression_data())


# -- by hand -----------------------------------------------------------------------------
def test_regression_metrics_by_hand() -> None:
    # notes §1.8: MAE = mean |y − ŷ| = (0.5 + 0 + 1 + 0.5)/4; MSE = (0.25 + 0 + 1 + 0.25)/4
    assert score(M.MeanAbsoluteError(), Y_HAT, Y) == 0.5
    assert score(M.MeanSquaredError(), Y_HAT, Y) == 0.375
    assert score(M.RootMeanSquaredError(), Y_HAT, Y) == pytest.approx(math.sqrt(0.375))
    # R² = 1 − SSE/SST = 1 − 1.5 / Σ(y − 3)² = 1 − 1.5/10
    assert score(M.R2Score(), Y_HAT, Y) == pytest.approx(0.85)
    assert score(M.R2Score(), Y, Y) == 1.0
    assert score(M.R2Score(), np.full_like(Y, 3.0), Y) == pytest.approx(0.0)  # predicts ȳ


def test_regression_metrics_accept_1d_targets_without_broadcasting() -> None:
    for metric in (M.MeanAbsoluteError(), M.MeanSquaredError(), M.R2Score()):
        assert score(metric, Y_HAT, Y[:, 0]) == score(metric, Y_HAT, Y)
        assert score(metric, Y_HAT[:, 0], Y[:, 0]) == score(metric, Y_HAT, Y)
    with pytest.raises(ShapeError, match=r"MeanAbsoluteError targets.*\(4, 2\).*\(4, 1\)"):
        score(M.MeanAbsoluteError(), np.hstack([Y_HAT, Y_HAT]), Y)


def test_regression_metrics_equal_scikit_learns() -> None:
    y_pred, y = regression_data(outputs=2)
    weights = np.random.default_rng(2).random(len(y))
    for weight in (None, weights):
        assert score(M.MeanAbsoluteError(), y_pred, y, weight) == pytest.approx(
            skm.mean_absolute_error(y, y_pred, sample_weight=weight)
        )
        assert score(M.MeanSquaredError(), y_pred, y, weight) == pytest.approx(
            skm.mean_squared_error(y, y_pred, sample_weight=weight)
        )
        # R² per output, averaged with equal weight (scikit-learn's default)
        assert score(M.R2Score(), y_pred, y, weight) == pytest.approx(
            skm.r2_score(y, y_pred, sample_weight=weight)
        )
    # RMSE: the root of the mean over samples and outputs (Keras's), not a mean of roots
    assert score(M.RootMeanSquaredError(), y_pred, y) == pytest.approx(
        math.sqrt(skm.mean_squared_error(y, y_pred))
    )


def test_r2_of_constant_targets_is_one_if_exact_else_zero() -> None:
    constant = np.full((5, 1), 7.0)
    assert score(M.R2Score(), constant, constant) == 1.0
    assert score(M.R2Score(), constant + 0.1, constant) == 0.0
    both = np.hstack([constant, Y_HAT[[0, 1, 2, 3, 0]]])  # a constant and a varying output
    truth = np.hstack([constant, Y[[0, 1, 2, 3, 0]]])
    assert score(M.R2Score(), both, truth) == pytest.approx(
        skm.r2_score(truth, both)  # scikit-learn scores a constant output as R² = 1 too
    )


def test_r2_keeps_the_variance_of_targets_far_from_zero_in_float32() -> None:
    y_pred, y = (values.astype(np.float32) + np.float32(1e4) for values in regression_data())
    exact = skm.r2_score(y.astype(np.float64), y_pred.astype(np.float64))
    assert score(M.R2Score(), y_pred, y) == pytest.approx(exact, rel=1e-7)  # ε·(ȳ/σ)² ≈ 1e-8
    y32, y_pred32 = y.astype(np.float32), y_pred.astype(np.float32)
    naive = 1 - np.mean((y_pred32 - y32) ** 2) / (np.mean(y32 * y32) - np.mean(y32) ** 2)
    assert abs(naive - exact) > 1e-3  # what float32 components would have given


def test_top_k_accuracy_by_hand() -> None:
    confidences = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.4, 0.4], [0.2, 0.2, 0.6]])
    labels = np.array([1, 0, 1, 1])
    # ranks of the true class: 2nd, 3rd, tied 1st, tied 2nd
    assert score(M.TopKAccuracy(k=1), confidences, labels) == 0.25
    assert score(M.TopKAccuracy(k=2), confidences, labels) == 0.75
    assert score(M.TopKAccuracy(k=3), confidences, labels) == 1.0
    assert score(M.TopKAccuracy(k=2), confidences, np.eye(3)[labels]) == 0.75  # one-hot
    assert score(M.TopKAccuracy(), confidences, labels) == 1.0  # k = 5 ≥ 3 classes
    nan_row = np.array([[np.nan, 0.5, 0.5]])
    assert score(M.TopKAccuracy(k=2), nan_row, np.array([1])) == 1.0  # NaN ranks higher
    assert score(M.TopKAccuracy(k=1), nan_row, np.array([1])) == 0.0
    assert score(M.TopKAccuracy(k=2), nan_row, np.array([0])) == 0.0
    assert M.TopKAccuracy(k=3).get_config() == {"k": 3}
    with pytest.raises(ConfigError, match=r"`TopKAccuracy\.k`: expected an int ≥ 1"):
        M.TopKAccuracy(k=0)


def test_top_1_accuracy_is_categorical_accuracy() -> None:
    confidences, labels = classification_data(n=200)
    assert score(M.TopKAccuracy(k=1), confidences, labels) == score(
        M.CategoricalAccuracy(), confidences, labels
    )
    assert score(M.TopKAccuracy(k=3), confidences, labels) == pytest.approx(
        skm.top_k_accuracy_score(labels, confidences, k=3, labels=range(6))
    )


# -- the protocol --------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(METRICS))
def test_components_add_up_over_uneven_batches_and_weights(name: str) -> None:
    """A model's statistics: Σ over batches of (Σ w·c) / Σ w, then finalize — equal to the
    metric over the whole arrays, whatever the batch sizes."""
    metric, y_pred, y = example(name)
    weights = np.random.default_rng(3).random(len(y))
    bounds = [0, 1, 8, 9, 20, len(y)]
    for weight in (np.ones(len(y)), weights):
        totals, total_weight = 0.0, 0.0
        for start, stop in itertools.pairwise(bounds):
            components = metric.per_sample(y_pred[start:stop], y[start:stop])
            assert components.shape[0] == stop - start and components.ndim in (1, 2)
            totals = totals + weight[start:stop] @ components.astype(np.float64)
            total_weight += weight[start:stop].sum()
        assert metric.finalize(totals / total_weight) == pytest.approx(
            score(metric, y_pred, y, weight), rel=1e-12
        )
    assert score(metric, y_pred, y, np.ones(len(y))) == pytest.approx(score(metric, y_pred, y))


@pytest.mark.parametrize("name", list(METRICS))
def test_integer_weights_equal_repeated_samples(name: str) -> None:
    metric, y_pred, y = example(name)
    counts = np.random.default_rng(4).integers(0, 4, len(y))
    counts[0] = 1
    rows = np.repeat(np.arange(len(y)), counts)
    assert score(metric, y_pred, y, counts) == pytest.approx(score(metric, y_pred[rows], y[rows]))


def test_the_existing_metrics_keep_one_component_and_their_values() -> None:
    for name in ("categorical_accuracy", "binary_accuracy", "regression_accuracy"):
        metric, y_pred, y = example(name)
        components = metric.per_sample(y_pred, y)
        assert components.shape == (len(y),)
        assert metric.calculate(y_pred, y) == pytest.approx(float(np.mean(components)))
        assert metric.finalize(np.array([0.25])) == 0.25 == metric.finalize(np.float64(0.25))
    assert M.R2Score().per_sample(*regression_data(n=5, outputs=2)).shape == (5, 6)


def test_a_metric_with_several_components_must_define_finalize() -> None:
    class Pair(Metric):
        def per_sample(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
            return np.stack([y_pred[:, 0], y_true[:, 0]], axis=1)

    with pytest.raises(NotImplementedError, match=r"2 components per sample.*finalize"):
        score(Pair(), Y_HAT, Y)


def test_score_refuses_bad_arguments() -> None:
    mae = M.MeanAbsoluteError()
    cases = [
        ((Y_HAT, Y[:3]), InputError, "as many targets as predictions"),
        ((Y_HAT[:0], Y[:0]), InputError, "at least one sample"),
        ((Y_HAT, Y, np.ones(3)), InputError, r"shape \(4,\)"),
        ((Y_HAT, Y, [1, -1, 1, 1]), InputError, "finite weights ≥ 0"),
        ((Y_HAT, Y, np.zeros(4)), InputError, "not all 0"),
        ((Y_HAT, Y, [1, np.nan, 1, 1]), InputError, "finite"),
        ((Y_HAT, Y, np.ones(4, bool)), InputError, "dtype bool"),
    ]
    for arguments, error, words in cases:
        with pytest.raises(error, match=words):
            score(mae, *arguments)

    class Scalar(Metric):
        def per_sample(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
            return np.array(1.0)

    with pytest.raises(ShapeError, match=r"Scalar.per_sample returned shape \(\)"):
        score(Scalar(), Y_HAT, Y)


# -- defaults from the loss, and "accuracy" -------------------------------------------------
class WeirdRegression(lm.losses.Loss):
    kind = "regression"


def test_defaults_follow_the_loss() -> None:
    cases: dict[object, list[type[Metric]]] = {
        "categorical_crossentropy": [M.CategoricalAccuracy],
        "sparse_categorical_crossentropy": [M.CategoricalAccuracy],
        "binary_crossentropy": [M.BinaryAccuracy],
        "mean_squared_error": [M.MeanAbsoluteError],
        "mse": [M.MeanAbsoluteError],
        lm.losses.MeanAbsoluteError(): [M.MeanAbsoluteError],
        lm.losses.CategoricalCrossentropy(label_smoothing=0.1): [M.CategoricalAccuracy],
        "gaussian_nll": [M.MeanAbsoluteError],  # on the means μ (the model's _scores)
        WeirdRegression(): [M.MeanAbsoluteError],  # any loss whose kind is regression
        lm.losses.Loss(): [],  # a loss of unknown kind: no guess
    }
    for loss, expected in cases.items():
        assert [type(metric) for metric in M.defaults_for(loss)] == expected, loss  # type: ignore[arg-type]
    assert M.defaults_for("mse")[0].name == "mae"
    with pytest.raises(ConfigError, match=r"Unknown loss 'msee'.*Did you mean 'mse'"):
        M.defaults_for("msee")


def test_accuracy_by_name_keeps_the_notes_accuracies() -> None:
    for loss, kind in {
        "categorical_crossentropy": M.CategoricalAccuracy,
        "binary_crossentropy": M.BinaryAccuracy,
        "mean_squared_error": M.RegressionAccuracy,
        "mae": M.RegressionAccuracy,
        lm.losses.MeanSquaredError(): M.RegressionAccuracy,
        lm.losses.GaussianNLL(): M.RegressionAccuracy,
        WeirdRegression(): M.RegressionAccuracy,
    }.items():
        for name in M.ACCURACY_NAMES:
            assert type(M.get(name, loss)) is kind  # type: ignore[arg-type]
    for loss in (None, lm.losses.Loss()):
        with pytest.raises(ConfigError, match="an explicit accuracy metric for a custom loss"):
            M.get("accuracy", loss)


def test_mode_follows_the_metric() -> None:
    modes = {"val_r2": "max", "r2": "max", "mae": "min", "val_rmse": "min", "loss": "min"}
    modes |= {"val_accuracy": "max", "top_k_accuracy": "max", "val_mse": "min"}
    assert {name: M.mode_for(name) for name in modes} == modes


# -- saving ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(METRICS))
def test_every_metric_rebuilds_from_its_spec(name: str) -> None:
    metric = example(name)[0]
    spec = json.loads(json.dumps(METRICS.spec(metric)))
    assert spec["class"] == name
    rebuilt = METRICS.build(spec)
    assert type(rebuilt) is type(metric) and rebuilt.get_config() == metric.get_config()


@pytest.mark.parametrize(
    ("loss", "metrics", "n_outputs"),
    [
        ("mean_squared_error", ["mae", "mse", "rmse", "r2", "accuracy"], 2),
        ("categorical_crossentropy", [M.TopKAccuracy(k=2), "accuracy"], 3),
    ],
)
def test_models_with_the_new_metrics_save_and_load(
    tmp_path: Path, loss: str, metrics: list[str | Metric], n_outputs: int
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = rng.normal(size=(40, n_outputs)) if n_outputs == 2 else rng.integers(0, 3, 40)
    activation = "softmax" if n_outputs == 3 else "linear"
    model = lm.Model([L.Dense(3, n_outputs, activation=activation)], seed=0)
    model.compile(loss=loss, optimizer="adam", metrics=metrics)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "model.lamina")
    loaded = lm.load_model(tmp_path / "model.lamina")
    assert [type(m) for m in loaded.metrics] == [type(m) for m in model.metrics]
    assert [m.get_config() for m in loaded.metrics] == [m.get_config() for m in model.metrics]
    assert loaded.evaluate(X, y) == model.evaluate(X, y)
