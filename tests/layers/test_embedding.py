"""Embedding: the lookup and its scatter-add gradient, ids checked with clear errors, the
padding mask of mask_zero, and a model of token ids that trains, saves and loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import layers as L
from lamina.errors import BackwardError, InputError, ShapeError

RNG = np.random.default_rng(0)


def test_forward_is_a_row_lookup_and_backward_a_scatter_add() -> None:
    layer = L.Embedding(7, 4).astype(np.float64)
    ids = np.array([[1, 1, 3, 0], [3, 6, 1, 1]])
    out = layer.forward(ids, training=True)
    np.testing.assert_array_equal(out, layer.params["weights"][ids])
    assert out.shape == (2, 4, 4) and layer.output_shape((4,)) == (4, 4)
    delta = RNG.standard_normal(out.shape)
    assert layer.backward(delta) is None  # no ∂L/∂ids
    expected = np.zeros((7, 4))
    np.add.at(expected, ids.ravel(), delta.reshape(-1, 4))
    np.testing.assert_allclose(layer.grads["weights"], expected, rtol=0, atol=1e-12)
    assert not layer.grads["weights"][[2, 4, 5]].any()  # ids not in the batch: no gradient


def test_integer_valued_float_ids_are_accepted() -> None:
    layer = L.Embedding(5, 3)
    ids = np.array([[0, 4, 2]])
    np.testing.assert_array_equal(layer.forward(ids.astype(np.float32)), layer.forward(ids))
    assert layer.forward(ids).dtype == np.float32


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (10, r"received the id 10 at position \(1, 2\).*vocabulary of 10 ids.*vocabulary=11"),
        (-1, r"received the id -1 at position \(1, 2\).*ids count from 0"),
        (2.5, r"received 2\.5 at position \(1, 2\).*not a whole-number id"),
        (np.nan, r"received nan at position \(1, 2\).*not a whole-number id"),
        (np.inf, r"received inf at position \(1, 2\)"),
    ],
)
def test_bad_ids_name_the_layer_the_value_its_position_and_the_fix(value, pattern: str) -> None:
    layer = L.Embedding(10, 3, name="tokens")
    ids = np.zeros((2, 4), dtype=np.float64)
    ids[1, 2] = value
    with pytest.raises(InputError, match=pattern) as caught:
        layer.forward(ids)
    assert "Layer 'tokens' (Embedding)" in str(caught.value)
    assert "Fix:" in str(caught.value)


def test_wrong_shapes_and_dtypes_are_clear_errors() -> None:
    layer = L.Embedding(10, 3)
    with pytest.raises(ShapeError, match=r"X\[\.\.\., 0\]"):
        layer.forward(np.zeros((2, 4, 1)))
    with pytest.raises(InputError, match="integer ids"):
        layer.forward(np.zeros((2, 4), dtype=bool))
    with pytest.raises(BackwardError):
        layer.forward(np.zeros((2, 4)))
        layer.backward(np.zeros((2, 4, 3)))


def test_mask_zero_gives_the_real_steps() -> None:
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]], dtype=np.float32)
    mask = L.Embedding(4, 2, mask_zero=True).compute_mask(ids, None)
    np.testing.assert_array_equal(mask, [[True, True, False, False], [True, False, False, False]])
    assert L.Embedding(4, 2).compute_mask(ids, None) is None


def test_default_initialisation_is_keras_uniform() -> None:
    weights = L.Embedding(1000, 16).params["weights"]
    assert weights.dtype == np.float32
    assert -0.05 <= weights.min() < -0.049 and 0.049 < weights.max() <= 0.05


def has_token_3(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 12 ids from 1 … 9; class 1 when token 3 occurs (about half of them)."""
    ids = rng.integers(1, 10, (n, 12))
    ids[ids == 3] = 4
    labels = rng.integers(0, 2, n)
    ids[labels == 1, rng.integers(0, 12, int(labels.sum()))] = 3
    return ids, labels


def embedding_model(seed: int = 0) -> lm.Model:
    model = lm.Model(
        [L.Embedding(10, 8), L.GlobalMaxPooling1D(), L.Dense(8, 2, activation="softmax")],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_an_embedding_model_trains_on_integer_ids_and_predicts_float32() -> None:
    ids, labels = has_token_3(512, np.random.default_rng(1))
    model = embedding_model()
    model.fit(ids, labels, epochs=30, batch_size=32, verbose=0)
    test_ids, test_labels = has_token_3(256, np.random.default_rng(2))
    predictions = model.predict(test_ids)
    assert predictions.dtype == np.float32
    assert np.mean(predictions.argmax(axis=1) == test_labels) > 0.95


def test_a_model_refuses_ids_out_of_its_vocabulary() -> None:
    model = embedding_model()
    ids, labels = has_token_3(16, np.random.default_rng(3))
    ids[5, 7] = 12
    with pytest.raises(InputError, match=r"id 12 at position \(5, 7\).*of X.*vocabulary=13"):
        model.fit(ids, labels, epochs=1, verbose=0)


def test_an_embedding_model_saves_and_loads(tmp_path: Path) -> None:
    ids, labels = has_token_3(64, np.random.default_rng(4))
    model = embedding_model()
    model.fit(ids, labels, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "tokens.lamina")
    loaded = lm.load_model(tmp_path / "tokens.lamina")
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
    assert loaded.layers[0].get_config() == model.layers[0].get_config()


def test_a_model_keeps_ids_above_two_to_the_24_exact() -> None:
    """float32 holds integers exactly only up to 2**24: a model whose first layer takes ids
    does not cast them to its dtype."""
    model = lm.Model([lm.layers.Embedding(2**24 + 2, 1), lm.layers.GlobalAveragePooling1D()])
    weights = model.layers[0].params["weights"]
    weights[2**24], weights[2**24 + 1] = -1.0, 1.0
    ids = np.array([[2**24 + 1, 2**24 + 1]])
    np.testing.assert_array_equal(model.predict(ids), [[1.0]])
    np.testing.assert_array_equal(model.predict(ids.astype(np.float64)), [[1.0]])
    assert model.predict(ids).dtype == np.float32
