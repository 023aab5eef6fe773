"""Sequence outputs (N, T, K): every step scored, a padding mask followed from the layer that
makes it to the loss, each sequence one sample (engine/sequences.py, engine/plan.py)."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as lm
from lamina.errors import ShapeError
from lamina.layers.base import Layer

Array = np.ndarray


class ZeroStepsMask(Layer):
    """A minimal mask maker for these tests: the identity, with the steps whose features
    are all 0 masked (what ``Masking(0.0)`` computes, without zeroing anything)."""

    supports_masking = True

    @property
    def makes_mask(self) -> bool:
        return True

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        return np.any(inputs != 0, axis=-1)

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return inputs

    def backward(self, dvalues: Array) -> Array:
        return dvalues


def tagger(masked: bool, *, dtype: str = "float64") -> lm.Model:
    layers: list[Layer] = [
        lm.layers.Dense(3, 5, activation="tanh"),
        lm.layers.Dense(5, 4, activation="softmax"),
    ]
    model = lm.Model(
        [ZeroStepsMask(name="mask"), *layers] if masked else layers, seed=0, dtype=dtype
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def padded_batch(rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """6 sequences of 5 steps, post-padded to lengths 5, 3, 1, 4, 5, 2; labels per step."""
    lengths = np.array([5, 3, 1, 4, 5, 2])
    mask = np.arange(5)[None, :] < lengths[:, None]
    X = rng.standard_normal((6, 5, 3)) * mask[..., None]
    y = rng.integers(0, 4, (6, 5))
    return X, y, mask


def per_step_losses(model: lm.Model, X: Array, y: Array) -> Array:
    probabilities = model.predict(X)
    return -np.log(np.take_along_axis(probabilities, y[..., None], axis=-1)[..., 0])


def test_an_unmasked_sequence_loss_is_the_mean_over_every_step() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5, 3)), rng.integers(0, 4, (6, 5))
    model = tagger(masked=False)
    result = model.evaluate(X, y)
    np.testing.assert_allclose(result["loss"], per_step_losses(model, X, y).mean(), rtol=1e-12)
    accuracy = (model.predict(X).argmax(-1) == y).mean()
    np.testing.assert_allclose(result["accuracy"], accuracy, rtol=1e-12)
    assert model.predict(X).shape == (6, 5, 4)


def test_a_masked_sequence_counts_its_real_steps_only() -> None:
    X, y, mask = padded_batch(np.random.default_rng(1))
    model = tagger(masked=True)
    losses = per_step_losses(model, X, y)
    expected = np.mean([losses[i, mask[i]].mean() for i in range(len(X))])
    np.testing.assert_allclose(model.evaluate(X, y)["loss"], expected, rtol=1e-12)
    y_changed = y.copy()
    y_changed[~mask] = (y[~mask] + 1) % 4  # the targets of padded steps do not matter
    assert model.evaluate(X, y_changed) == model.evaluate(X, y)


def test_padded_steps_send_no_gradient_and_the_step_matches_the_loss() -> None:
    """The full-batch gradient equals the numerical gradient of the reported loss, and
    changing a padded step's target changes no gradient."""
    X, y, mask = padded_batch(np.random.default_rng(2))
    model = tagger(masked=True)
    report = lm.gradcheck(model, X, y)
    assert report.max_error < 1e-6, str(report)

    def gradients(targets: Array) -> list[Array]:
        model.backward(model.forward(X, training=True), targets)
        return [grad.copy() for layer in model.layers for grad in layer.grads.values()]

    y_changed = y.copy()
    y_changed[~mask] = (y[~mask] + 1) % 4
    for before, after in zip(gradients(y), gradients(y_changed), strict=True):
        np.testing.assert_array_equal(before, after)


def test_integer_sample_weights_equal_repeated_sequences() -> None:
    X, y, _ = padded_batch(np.random.default_rng(3))
    weights = np.array([3, 1, 0, 2, 1, 1])
    weighted, repeated = tagger(masked=True), tagger(masked=True)
    weighted.evaluate(X, y)  # the same initial weights: same seed
    result = weighted.evaluate(X, y, sample_weight=weights)
    rows = np.repeat(np.arange(len(X)), weights)
    np.testing.assert_allclose(result["loss"], repeated.evaluate(X[rows], y[rows])["loss"], 1e-12)
    weighted.train_step(X, y, weights.astype(np.float64))
    repeated.train_step(X[rows], y[rows])
    for (_, a, _), (_, b, _) in zip(weighted.parameters(), repeated.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_fit_trains_a_tagger_and_history_is_per_sequence() -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((256, 6, 3)).astype(np.float32)
    y = (X[..., 0] > 0).astype(int) + 2 * (X[..., 1] > 0)
    model = lm.Model(
        [lm.layers.Dense(3, 16, activation="relu"), lm.layers.Dense(16, 4, activation="softmax")],
        seed=0,
    )
    model.compile(
        loss="sparse_categorical_crossentropy", optimizer=lm.optimizers.Adam(learning_rate=0.01)
    )
    history = model.fit(X, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert history.history["loss"][-1] < history.history["loss"][0] / 2


def test_sequence_regression_with_target_scaling() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 4, 2)).astype(np.float32)
    y = 1000 + 300 * (X[..., :1] - 2 * X[..., 1:])  # (N, T, 1), in large units
    model = lm.Model(
        [lm.layers.Dense(2, 1)], seed=0, target_preprocessing=lm.preprocessing.StandardScaler()
    )
    model.compile(loss="mse", optimizer=lm.optimizers.Adam(learning_rate=0.05))
    history = model.fit(X, y, epochs=60, verbose=0)
    assert history.history["mae"][-1] < 5  # in the targets' units; their spread is ~670
    assert model.predict(X).shape == (200, 4, 1)
    assert np.abs(model.predict(X) - y).mean() < 5


def test_targets_without_one_per_step_name_the_shape_and_the_fix() -> None:
    model = tagger(masked=False)
    X = np.zeros((3, 5, 3))
    with pytest.raises(ShapeError, match=r"one target per step.*\(batch, 5\).*return_sequences"):
        model.evaluate(X, np.zeros(3, int))
    with pytest.raises(ShapeError, match=r"received y of shape \(3, 4\)"):
        model.evaluate(X, np.zeros((3, 4), int))


def test_a_mask_reaching_a_layer_that_cannot_take_it_is_refused() -> None:
    model = lm.Model(
        [ZeroStepsMask(name="mask"), lm.layers.Flatten(), lm.layers.Dense(15, 2)], seed=0
    )
    with pytest.raises(ShapeError, match=r"Flatten.*does not accept a padding mask.*Fix"):
        model.predict(np.ones((2, 5, 3)))


def test_models_without_a_mask_maker_do_not_follow_masks() -> None:
    assert not tagger(masked=False).plan.masked
    assert tagger(masked=True).plan.masked


def test_summary_shows_sequence_shapes_with_any_number_of_steps() -> None:
    L = lm.layers
    model = lm.Model(
        [
            L.Embedding(10, 4, mask_zero=True),
            L.Bidirectional(L.GRU(4, 8, return_sequences=True)),
            L.LSTM(16, 8),
            L.Dense(8, 2, activation="softmax"),
        ]
    )
    text = model.summary()
    for shown in ["(batch, ?, 4)", "(batch, ?, 16)", "(batch, 8)", "(batch, 2)"]:
        assert shown in text


def test_a_bad_id_is_named_by_its_row_of_X_before_training() -> None:
    model = lm.Model(
        [lm.layers.Embedding(10, 4), lm.layers.GRU(4, 3), lm.layers.Dense(3, 2)], seed=0
    )
    model.compile(loss="mse", optimizer="sgd")
    ids = np.ones((50, 6), int)
    ids[37, 4] = 10
    before = [p.copy() for _, p, _ in model.parameters()]
    with pytest.raises(lm.errors.InputError, match=r"id 10 .*sample 37, step 4 of X.*=11"):
        model.fit(ids, np.zeros((50, 2)), epochs=1, verbose=0)
    for a, (_, b, _) in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)  # refused before any step


def test_class_weight_with_a_label_per_step_is_refused_clearly() -> None:
    """Even when the steps number as many as the classes (one-hot lookalike)."""
    model = tagger(masked=False)  # 4 classes
    X, y = np.zeros((6, 4, 3)), np.zeros((6, 4), int)
    with pytest.raises(
        lm.errors.ConfigError, match=r"class_weight.*a class per time step.*sample_weight"
    ):
        model.fit(X, y, epochs=1, verbose=0, class_weight="balanced")
