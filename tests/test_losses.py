"""Losses and metrics on values worked out by hand (notes §1.2, §1.7, §1.8)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import config

losses, metrics = lm.losses, lm.metrics


def test_categorical_crossentropy_by_hand() -> None:
    # notes §1.2: Lᵢ = −log ŷᵢ,ₖ
    y_pred = np.array([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]])
    labels = np.array([0, 1, 1])
    expected = [-math.log(0.7), -math.log(0.5), -math.log(0.9)]
    cce = losses.CategoricalCrossentropy()
    np.testing.assert_allclose(cce.forward(y_pred, labels), expected)
    np.testing.assert_allclose(cce.forward(y_pred, np.eye(3)[labels]), expected)
    assert cce.calculate(y_pred, labels) == pytest.approx(np.mean(expected))


def test_categorical_crossentropy_clips_zero_confidence() -> None:
    loss = losses.CategoricalCrossentropy().forward(np.array([[0.0, 1.0]]), np.array([0]))
    assert loss[0] == pytest.approx(-math.log(1e-7))


def test_fused_backward_is_prediction_minus_target_over_n() -> None:
    y_pred = np.array([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]])
    dz = losses.CategoricalCrossentropy().backward_through_softmax(y_pred, np.array([0, 2]))
    np.testing.assert_allclose(dz, [[-0.15, 0.05, 0.1], [0.05, 0.25, -0.3]])


def test_label_smoothing_by_hand_and_through_a_config(tmp_path: Path) -> None:
    # α = 0.3, K = 3: targets (1 − α)·y + α/K = [0.8, 0.1, 0.1] for class 0
    y_pred = np.array([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]])
    labels = np.array([0, 2])
    cce = losses.CategoricalCrossentropy(label_smoothing=0.3)
    expected = [
        -(0.8 * math.log(0.7) + 0.1 * math.log(0.1) + 0.1 * math.log(0.2)),
        -(0.1 * math.log(0.1) + 0.1 * math.log(0.5) + 0.8 * math.log(0.4)),
    ]
    np.testing.assert_allclose(cce.forward(y_pred, labels), expected)
    np.testing.assert_allclose(cce.forward(y_pred, np.eye(3)[labels]), expected)
    targets = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    for y in (labels, np.eye(3)[labels]):
        fused = cce.backward_through_softmax(y_pred, y)
        np.testing.assert_allclose(fused, (y_pred - targets) / 2, atol=1e-12)
        np.testing.assert_allclose(cce.backward(y_pred, y), -targets / y_pred / 2)
    assert losses.CategoricalCrossentropy.from_config(cce.get_config()).label_smoothing == 0.3
    with pytest.raises(lm.errors.ConfigError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=1.0)

    raw = {
        "data": {"dataset": "spiral"},
        "layers": [{"type": "dense", "n_inputs": 2, "n_neurons": 3, "activation": "softmax"}],
        "compile": {"loss": {"type": "categorical_crossentropy", "label_smoothing": 0.1}},
    }
    model = config.build_model(config.from_dict(raw))
    assert model.loss.label_smoothing == 0.1
    model.save(tmp_path / "smoothed.lamina")
    assert lm.load_model(tmp_path / "smoothed.lamina").loss.label_smoothing == 0.1
    raw["compile"]["loss"]["label_smooth"] = 0.1
    with pytest.raises(config.ConfigFileError, match="label_smooth"):
        config.from_dict(raw)


def test_binary_crossentropy_by_hand() -> None:
    # notes §1.7: Lᵢⱼ = −[y log ŷ + (1 − y) log(1 − ŷ)], averaged over outputs
    y_pred, y_true = np.array([[0.9, 0.2]]), np.array([[1.0, 0.0]])
    expected = (-math.log(0.9) - math.log(0.8)) / 2
    assert losses.BinaryCrossentropy().calculate(y_pred, y_true) == pytest.approx(expected)


def test_mse_and_mae_by_hand() -> None:
    y_pred, y_true = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [1.0, -1.0]])
    np.testing.assert_allclose(losses.MeanSquaredError().forward(y_pred, y_true), [0.5, 1.0])
    np.testing.assert_allclose(losses.MeanAbsoluteError().forward(y_pred, y_true), [0.5, 1.0])


def test_mae_derivative_is_zero_where_prediction_equals_target() -> None:
    grad = losses.MeanAbsoluteError().backward(np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]]))
    np.testing.assert_array_equal(grad, [[0.0, 0.5]])  # sign(ŷ − y)/J/N, 0 at ŷ = y


def test_accuracies() -> None:
    confidences = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    assert metrics.CategoricalAccuracy().calculate(confidences, np.array([0, 1, 1])) == 2 / 3
    binary = metrics.BinaryAccuracy()
    assert binary.calculate(np.array([[0.7], [0.4]]), np.array([[1.0], [1.0]])) == 0.5
    regression = metrics.RegressionAccuracy(precision=250)
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    allowance = y.std() / 250  # notes §1.8: ρ = σ(y)/λ
    prediction = y + np.array([[0.5 * allowance], [2 * allowance], [0.0], [-0.9 * allowance]])
    assert regression.calculate(prediction, y) == 0.75


def test_accuracy_name_picks_the_kind_for_the_loss() -> None:
    pairs = {
        "categorical_crossentropy": metrics.CategoricalAccuracy,
        "binary_crossentropy": metrics.BinaryAccuracy,
        "mean_squared_error": metrics.RegressionAccuracy,
    }
    for loss, kind in pairs.items():
        assert isinstance(metrics.get("accuracy", loss), kind)
