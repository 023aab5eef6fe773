"""Regression in the data's own units (issue 14): target preprocessing fitted on the
training targets, the loss in scaled units, predictions and metrics in the data's, saved
with the model; MAE reported by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L, P = lm.layers, lm.preprocessing


def problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 2)).astype(np.float32)
    y = 1000.0 + 300.0 * np.sin(X[:, 0]) + 50.0 * X[:, 1]  # far from 0, far from unit scale
    return X, y


def regressor(scaling: object) -> lm.Model:
    model = lm.Model(
        [L.Dense(2, 32, activation="tanh"), L.Dense(32, 1)],
        seed=0,
        target_preprocessing=scaling,
    )
    return model.compile(loss="mse", optimizer=lm.optimizers.Adam(1e-2))


def test_a_regression_reports_mae_by_default() -> None:
    X, y = problem()
    history = regressor(None).fit(X, y, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert lm.Model([L.Dense(2, 3, activation="softmax")]).compile("cce").metrics[0].name == (
        "accuracy"
    )


def test_scaled_targets_learn_far_better_and_come_back_in_the_datas_units(tmp_path: Path) -> None:
    X, y = problem()
    plain = regressor(None)
    plain.fit(X[:300], y[:300], epochs=40, batch_size=32, verbose=0)
    scaled = regressor(P.StandardScaler())
    history = scaled.fit(X[:300], y[:300], epochs=40, batch_size=32, verbose=0)
    error = np.abs(scaled.predict(X[300:])[:, 0] - y[300:]).mean()
    assert error < 0.2 * np.abs(plain.predict(X[300:])[:, 0] - y[300:]).mean()
    assert error < 30  # in the targets' units (they span about 1000 ± 350)
    assert history.history["mae"][-1] < 30  # the metric is in those units too
    assert history.history["loss"][-1] < 0.05  # the loss is in the scaled ones
    assert scaled.evaluate(X[300:], y[300:])["mae"] == pytest.approx(error, rel=1e-4)
    scaled.save(tmp_path / "scaled.lamina")
    loaded = lm.load_model(tmp_path / "scaled.lamina")
    np.testing.assert_array_equal(loaded.predict(X[300:]), scaled.predict(X[300:]))
    assert loaded.target_preprocessing.fitted


def test_target_preprocessing_must_be_invertible_and_for_a_regression() -> None:
    with pytest.raises(lm.errors.ConfigError, match="invertible"):
        regressor(P.Flatten())
    model = lm.Model([L.Dense(2, 3, activation="softmax")], target_preprocessing=P.StandardScaler())
    with pytest.raises(lm.errors.ConfigError, match="regression"):
        model.compile(loss="categorical_crossentropy")
    for loss in ("gaussian_nll", lm.losses.Loss()):  # two outputs per target; unknown kind
        with pytest.raises(lm.errors.ConfigError, match="one output per target"):
            model.compile(loss=loss)

    class Huber(lm.losses.MeanSquaredError):  # inherits kind = "regression"
        pass

    model.compile(loss=Huber())
    assert model.target_preprocessing is not None


def test_predicting_before_the_targets_scaling_is_fitted_says_so() -> None:
    X, _ = problem()
    with pytest.raises(lm.errors.NotCompiledError, match=r"target preprocessing is not fitted"):
        regressor(P.StandardScaler()).predict(X)
