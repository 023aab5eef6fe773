"""Sample and class weights (issue 14): an integer weight is that many copies of a sample —
in the loss, its gradient, the statistics and evaluate — and class_weight="balanced" helps
the minority class of an imbalanced problem."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def network(loss: str, outputs: int, activation: str | None) -> lm.Model:
    model = lm.Model(
        [L.Dense(3, 5, activation="tanh"), L.Dense(5, outputs, activation=activation)],
        seed=0,
        dtype="float64",
    )
    model.compile(loss=loss, optimizer=lm.optimizers.SGD(learning_rate=0.1))
    return model


PROBLEMS = {
    "categorical cross-entropy (fused softmax)": ("categorical_crossentropy", 3, "softmax"),
    "binary cross-entropy": ("binary_crossentropy", 1, "sigmoid"),
    "mean squared error": ("mean_squared_error", 2, None),
}


def data(loss: str, outputs: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 3))
    if loss == "categorical_crossentropy":
        return X, rng.integers(0, outputs, 6)
    if loss == "binary_crossentropy":
        return X, rng.integers(0, 2, (6, 1)).astype(np.float64)
    return X, rng.standard_normal((6, outputs))


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_an_integer_weight_equals_repeating_the_row(name: str) -> None:
    loss, outputs, activation = PROBLEMS[name]
    X, y = data(loss, outputs)
    weights = np.array([3.0, 1.0, 0.0, 2.0, 1.0, 1.0])
    repeats = weights.astype(int)
    weighted, repeated = network(loss, outputs, activation), network(loss, outputs, activation)
    Xw, yw = weighted.prepare_data(X, y)
    Xr, yr = repeated.prepare_data(np.repeat(X, repeats, axis=0), np.repeat(y, repeats, axis=0))
    _, losses_w, _ = weighted.train_step(Xw, yw, weights)
    _, losses_r, _ = repeated.train_step(Xr, yr)
    assert np.sum(weights * losses_w) / weights.sum() == pytest.approx(losses_r.mean(), rel=1e-13)
    for layer_w, layer_r in zip(weighted.layers, repeated.layers, strict=True):
        for key in layer_w.params:
            np.testing.assert_allclose(
                layer_w.grads[key], layer_r.grads[key], rtol=1e-12, atol=1e-15
            )
            np.testing.assert_allclose(layer_w.params[key], layer_r.params[key], rtol=1e-12)
    fit_w = network(loss, outputs, activation).fit(
        X, y, batch_size=None, shuffle=False, sample_weight=weights, verbose=0
    )
    fit_r = network(loss, outputs, activation).fit(
        np.repeat(X, repeats, axis=0),
        np.repeat(y, repeats, axis=0),
        batch_size=None,
        shuffle=False,
        verbose=0,
    )
    for key in fit_w.history:
        assert fit_w.history[key] == pytest.approx(fit_r.history[key], rel=1e-12)
    scores_w = weighted.evaluate(X, y, sample_weight=weights)
    scores_r = weighted.evaluate(np.repeat(X, repeats, axis=0), np.repeat(y, repeats, axis=0))
    assert scores_w == pytest.approx(scores_r, rel=1e-12)


def test_zero_weight_batches_change_nothing() -> None:
    X, y = data("categorical_crossentropy", 3)
    model = network("categorical_crossentropy", 3, "softmax")
    before = [a.copy() for a in lm.io.model_tensors(model).values()]
    Xp, yp = model.prepare_data(X, y)
    model.train_step(Xp, yp, np.zeros(6))
    for a, b in zip(before, lm.io.model_tensors(model).values(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(lm.errors.InputError, match="some weight > 0"):
        model.fit(X, y, sample_weight=np.zeros(6), verbose=0)


def imbalanced(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes, the minority kept at 10 %."""
    rng = np.random.default_rng(seed)
    n_major, n_minor = 900, 100
    X = np.concatenate([rng.normal(0.0, 1.0, (n_major, 4)), rng.normal(1.0, 1.0, (n_minor, 4))])
    y = np.concatenate([np.zeros(n_major, int), np.ones(n_minor, int)])
    order = rng.permutation(len(X))
    X, y = X[order].astype(np.float32), y[order]
    return X[:700], y[:700], X[700:], y[700:]


def minority_recall_and_balanced_accuracy(class_weight: object, seed: int) -> tuple[float, float]:
    X, y, X_test, y_test = imbalanced(seed)
    model = lm.Model(
        [L.Dense(4, 16, activation="relu"), L.Dense(16, 2, activation="softmax")], seed=seed
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-2))
    model.fit(X, y, epochs=20, batch_size=32, class_weight=class_weight, verbose=0)
    predicted = model.predict(X_test).argmax(axis=1)
    recalls = [float(np.mean(predicted[y_test == c] == c)) for c in (0, 1)]
    return recalls[1], float(np.mean(recalls))


def test_balanced_class_weight_helps_the_minority_class() -> None:
    plain = np.array([minority_recall_and_balanced_accuracy(None, seed) for seed in range(3)])
    balanced = np.array(
        [minority_recall_and_balanced_accuracy("balanced", seed) for seed in range(3)]
    )
    assert balanced[:, 0].mean() > plain[:, 0].mean() + 0.2  # minority recall
    assert balanced[:, 1].mean() > plain[:, 1].mean()  # balanced accuracy


def test_balanced_is_n_over_k_times_the_class_count() -> None:
    from lamina.engine.weights import balanced, class_sample_weight

    labels = np.array([0, 0, 0, 1])
    assert balanced(labels) == {0: 4 / 6, 1: 2.0}
    weights = class_sample_weight({1: 5}, labels, n_classes=2)
    np.testing.assert_array_equal(weights, [1, 1, 1, 5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_weight": [1.0, 2.0]}, r"one weight per sample, shape \(6,\)"),
        ({"sample_weight": [1, 1, -1, 1, 1, 1]}, "weights ≥ 0"),
        ({"sample_weight": [1, 1, np.nan, 1, 1, 1]}, "finite"),
        ({"sample_weight": ["a"] * 6}, "numbers"),
        ({"class_weight": "even"}, "'balanced' or a dict"),
        ({"class_weight": {"x": 1.0}}, "class labels"),
        ({"class_weight": {0: -2.0}}, "≥ 0"),
        ({"class_weight": {0: 1.0, 5: 2.0}}, r"keys among the model's 3 classes 0 … 2.*class 5"),
        ({"class_weight": [1.0, 2.0, 1.0]}, "'balanced' or a dict"),
    ],
)
def test_bad_weights_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    X, y = data("categorical_crossentropy", 3)
    with pytest.raises(lm.errors.LaminaError, match=message):
        network("categorical_crossentropy", 3, "softmax").fit(X, y, verbose=0, **kwargs)


def test_class_weight_on_a_regression_is_refused() -> None:
    X, y = data("mean_squared_error", 2)
    with pytest.raises(lm.errors.ConfigError, match="regression"):
        network("mean_squared_error", 2, None).fit(X, y, class_weight="balanced", verbose=0)


def test_validation_split_splits_the_weights_and_streams_carry_them() -> None:
    X, y = data("categorical_crossentropy", 3)
    weights = np.array([1.0, 2.0, 1.0, 1.0, 3.0, 0.5])
    split = network("categorical_crossentropy", 3, "softmax").fit(
        X, y, validation_split=1 / 3, sample_weight=weights, verbose=0, shuffle=False
    )
    direct = network("categorical_crossentropy", 3, "softmax").fit(
        X[:4],
        y[:4],
        validation_data=(X[4:], y[4:], weights[4:]),
        sample_weight=weights[:4],
        verbose=0,
        shuffle=False,
    )
    assert split.history == direct.history

    class Batches:
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
            rows = slice(3 * index, 3 * index + 3)
            return X[rows], y[rows], weights[rows]

    streamed = network("categorical_crossentropy", 3, "softmax").fit(
        Batches(), shuffle=False, verbose=0
    )
    arrays = network("categorical_crossentropy", 3, "softmax").fit(
        X, y, batch_size=3, shuffle=False, sample_weight=weights, verbose=0
    )
    assert streamed.history == arrays.history
    with pytest.raises(lm.errors.ConfigError, match="dict"):
        network("categorical_crossentropy", 3, "softmax").fit(
            Batches(), class_weight="balanced", verbose=0
        )
