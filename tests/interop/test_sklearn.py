"""Tests for lamina.sklearn: LaminaClassifier and LaminaRegressor as scikit-learn estimators."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import lamina as lm
from lamina.errors import ConfigError
from lamina.sklearn import (
    EXPECTED_FAILED_CHECKS,
    LaminaClassifier,
    LaminaRegressor,
    expected_failed_checks,
)


@parametrize_with_checks(
    [LaminaClassifier(), LaminaRegressor()], expected_failed_checks=expected_failed_checks
)
def test_scikit_learn_common_checks(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_no_common_check_is_excluded() -> None:
    assert EXPECTED_FAILED_CHECKS == {"LaminaClassifier": {}, "LaminaRegressor": {}}


@pytest.fixture(scope="module")
def classification() -> tuple[np.ndarray, ...]:
    X, y = make_classification(
        n_samples=400, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    X = X * 10 + 50  # unscaled features, so the scaler in the pipeline matters
    return tuple(train_test_split(X, y, test_size=0.25, random_state=0, stratify=y))


def test_a_pipeline_with_a_scaler_reaches_a_sane_accuracy(
    classification: tuple[np.ndarray, ...],
) -> None:
    X_train, X_test, y_train, y_test = classification
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("net", LaminaClassifier(epochs=30, learning_rate=1e-2))]
    )
    pipeline.fit(X_train, y_train)
    assert pipeline.score(X_test, y_test) > 0.75  # chance is 1/3
    probabilities = pipeline.predict_proba(X_test)
    assert probabilities.shape == (len(X_test), 3) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        pipeline.predict(X_test), pipeline.classes_[probabilities.argmax(axis=1)]
    )
    net = pipeline.named_steps["net"]
    assert net.n_features_in_ == 8 and isinstance(net.model_, lm.Model)


def test_grid_search_cv_over_learning_rate_and_hidden_sizes(
    classification: tuple[np.ndarray, ...],
) -> None:
    X_train, _, y_train, _ = classification
    pipeline = Pipeline([("scale", StandardScaler()), ("net", LaminaClassifier(epochs=10))])
    grid = {"net__learning_rate": [1e-3, 1e-2], "net__hidden_layer_sizes": [(8,), (32, 16)]}
    search = GridSearchCV(pipeline, grid, cv=3).fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["net__learning_rate"] in (1e-3, 1e-2)
    layers = search.best_estimator_.named_steps["net"].model_.layers
    sizes = search.best_params_["net__hidden_layer_sizes"]
    assert [layer.params["weights"].shape[1] for layer in layers] == [*sizes, 3]


def test_cross_val_score_of_a_regressor_pipeline() -> None:
    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("net", LaminaRegressor(epochs=60, learning_rate=1e-2))]
    )
    scores = cross_val_score(pipeline, X, (y - y.mean()) / y.std(), cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8  # R²


def test_regressor_predicts_the_shape_of_its_targets() -> None:
    X, y = make_regression(n_samples=60, n_features=3, n_targets=2, random_state=0)
    two = LaminaRegressor(epochs=2).fit(X, y)
    assert two.n_outputs_ == 2 and two.predict(X).shape == (60, 2)
    one = LaminaRegressor(epochs=2).fit(X, y[:, 0])
    assert one.n_outputs_ == 1 and one.predict(X).shape == (60,)


def test_clone_keeps_the_arguments_and_drops_the_fit(
    classification: tuple[np.ndarray, ...],
) -> None:
    X_train, _, y_train, _ = classification
    net = LaminaClassifier(hidden_layer_sizes=(16, 8), epochs=3, learning_rate=0.01, seed=4)
    net.fit(X_train, y_train)
    copy = clone(net)
    assert copy.get_params() == net.get_params()
    assert not hasattr(copy, "model_") and not hasattr(copy, "classes_")
    copy.set_params(epochs=5, optimizer="sgd")
    assert copy.epochs == 5 and net.epochs == 3
    # The same seed gives the same network, fit after fit and after pickling.
    again = clone(net).fit(X_train, y_train)
    np.testing.assert_array_equal(again.predict_proba(X_train), net.predict_proba(X_train))
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X_train), net.predict_proba(X_train))


def test_string_class_labels_round_trip_through_predict() -> None:
    X, codes = lm.datasets.vertical(40, 3, seed=0)
    names = np.array(["coat", "shirt", "sneaker"])
    y = names[codes]
    net = LaminaClassifier(hidden_layer_sizes=(16,), epochs=40, learning_rate=0.02).fit(X, y)
    assert list(net.classes_) == ["coat", "shirt", "sneaker"]
    predicted = net.predict(X)
    assert predicted.dtype == y.dtype and set(predicted) <= set(names)
    assert np.mean(predicted == y) > 0.9


def test_binary_labels_use_two_softmax_outputs() -> None:
    X, y = make_classification(n_samples=100, n_features=4, random_state=1)
    net = LaminaClassifier(epochs=5).fit(X, np.where(y == 1, "yes", "no"))
    assert net.predict_proba(X).shape == (100, 2)
    assert net.model_.layers[-1].params["weights"].shape == (100, 2)


def build_logistic(n_features: int, n_outputs: int, seed: int | None) -> lm.Model:
    model = lm.Model([lm.layers.Dense(n_features, n_outputs, activation="softmax")], seed=seed)
    return model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(0.05))


def test_a_custom_build_makes_the_network(classification: tuple[np.ndarray, ...]) -> None:
    X_train, X_test, y_train, y_test = classification
    net = Pipeline(
        [("scale", StandardScaler()), ("net", LaminaClassifier(build_logistic, epochs=20))]
    )
    net.fit(X_train, y_train)
    assert len(net.named_steps["net"].model_.layers) == 1
    assert net.score(X_test, y_test) > 0.5


def test_bad_arguments_are_reported_in_fit() -> None:
    X, y = lm.datasets.vertical(10, 2, seed=0)
    with pytest.raises(ConfigError, match="hidden_layer_sizes"):
        LaminaClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ConfigError, match="optimizer"):
        LaminaClassifier(optimizer="adamm").fit(X, y)
    with pytest.raises(ConfigError, match="compiled"):
        LaminaClassifier(lambda n, k, seed: lm.Model([lm.layers.Dense(n, k)])).fit(X, y)


def test_balanced_class_weight_in_cross_val_score() -> None:
    """Issue 14: on an imbalanced problem (minority 10 %), class_weight="balanced" raises
    the minority's recall and the balanced accuracy, mean of 3 seeds, via cross_val_score."""
    from sklearn.metrics import make_scorer, recall_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0, 1, (540, 4)), rng.normal(1, 1, (60, 4))])
    y = np.concatenate([np.zeros(540, int), np.ones(60, int)])
    minority = make_scorer(recall_score, pos_label=1)

    def scores(class_weight: object, seed: int) -> tuple[float, float]:
        net = LaminaClassifier(
            hidden_layer_sizes=(16,),
            epochs=15,
            learning_rate=1e-2,
            seed=seed,
            class_weight=class_weight,
        )
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        recall = cross_val_score(net, X, y, cv=folds, scoring=minority).mean()
        balanced = cross_val_score(net, X, y, cv=folds, scoring="balanced_accuracy").mean()
        return recall, balanced

    plain = np.mean([scores(None, seed) for seed in range(3)], axis=0)
    weighted = np.mean([scores("balanced", seed) for seed in range(3)], axis=0)
    assert weighted[0] > plain[0] + 0.2 and weighted[1] > plain[1]


def test_sample_weight_reaches_the_network_and_labels_key_class_weight() -> None:
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = np.where(X[:, 0] > 0.8, "rare", "common")
    weighted = LaminaClassifier(epochs=3, class_weight={"rare": 10.0}).fit(X, y)
    plain = LaminaClassifier(epochs=3).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), plain.predict_proba(X))
    same = LaminaClassifier(epochs=3).fit(X, y, sample_weight=np.ones(40))
    np.testing.assert_array_equal(same.predict_proba(X), plain.predict_proba(X))


def test_random_state_is_the_seed_under_scikit_learns_name() -> None:
    X, y = lm.datasets.vertical(30, 3, seed=0)

    def first_weights(**arguments: object) -> np.ndarray:
        net = LaminaClassifier(hidden_layer_sizes=(5,), epochs=1, **arguments).fit(X, y)
        return net.model_.layers[0].params["weights"].copy()

    np.testing.assert_array_equal(first_weights(random_state=7), first_weights(seed=7))
    np.testing.assert_array_equal(first_weights(random_state=7, seed=7), first_weights(seed=7))
    assert not np.array_equal(first_weights(random_state=7), first_weights(random_state=8))
    # a RandomState gives every fit a new seed, drawn from it: reproducible as a sequence
    drawn = [first_weights(random_state=np.random.RandomState(3)) for _ in range(2)]
    np.testing.assert_array_equal(*drawn)
    shared = np.random.RandomState(3)
    assert not np.array_equal(
        first_weights(random_state=shared), first_weights(random_state=shared)
    )
    assert clone(LaminaClassifier(random_state=5)).get_params()["random_state"] == 5
    with pytest.raises(ConfigError, match=r"random_state=7 and seed=8.*pass only one"):
        LaminaClassifier(random_state=7, seed=8).fit(X, y)
    for bad in (-1, 1.5, "0", True, np.random.default_rng(0)):
        with pytest.raises(ConfigError, match="random_state"):
            LaminaRegressor(random_state=bad).fit(X, y.astype(float))  # type: ignore[arg-type]
