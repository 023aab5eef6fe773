"""Model: the training loop, statistics, reproducibility and the errors users see.

notes §1.9 (batches, epoch statistics) and §1.10 (evaluate, predict).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def small_classifier(seed: int | None = 0, n_inputs: int = 4) -> lm.Model:
    model = lm.Model(
        [
            L.Dense(n_inputs, 8, activation="relu"),
            L.Dropout(0.1),
            L.Dense(8, 3, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((50, 4)).astype(np.float32), rng.integers(0, 3, 50)


# -- the training loop -------------------------------------------------------------------
def test_fit_returns_epoch_and_step_statistics(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    history = small_classifier().fit(X, y, epochs=3, batch_size=16, verbose=0)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy"}
    assert len(history.steps["loss"]) == 3 * 4  # ceil(50 / 16) = 4 steps per epoch


def test_epoch_statistics_are_sample_weighted(data: tuple[np.ndarray, np.ndarray]) -> None:
    # notes §1.9: the epoch values are sample-wise averages, so the short last batch counts less
    X, y = data
    history = small_classifier().fit(X, y, epochs=1, batch_size=16, verbose=0)
    sizes = np.array([16, 16, 16, 2])
    for key in ("loss", "accuracy"):
        expected = np.sum(np.array(history.steps[key]) * sizes) / 50
        assert history.history[key][0] == pytest.approx(expected)


def test_loss_includes_the_regularization_penalty(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    model = lm.Model([L.Dense(4, 3, activation="softmax", weight_l2=0.5)], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    data_loss = model.loss.calculate(model.predict(X), y)  # type: ignore[union-attr]
    penalty = 0.5 * float(np.sum(model.layers[0].params["weights"].astype(np.float64) ** 2))
    assert model.evaluate(X, y)["loss"] == pytest.approx(data_loss + penalty, rel=1e-5)


def test_validation_data_and_split(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    history = small_classifier().fit(
        X, y, epochs=2, batch_size=10, validation_data=(X[:10], y[:10]), verbose=0
    )
    assert {"val_loss", "val_accuracy"} <= set(history.history)
    model = small_classifier()
    history = model.fit(X, y, epochs=1, batch_size=10, validation_split=0.2, verbose=0)
    assert len(history.steps["loss"]) == 4  # 40 training samples in batches of 10
    expected = model.evaluate(X[40:], y[40:])
    assert history.history["val_loss"][0] == pytest.approx(expected["loss"])


def test_predict_gives_confidences(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    model = small_classifier()
    model.fit(X, y, epochs=2, verbose=0)
    confidences = model.predict(X, batch_size=7)
    assert confidences.shape == (50, 3) and confidences.dtype == np.float32
    np.testing.assert_allclose(confidences.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(confidences, model.predict(X, batch_size=7))  # no dropout
    np.testing.assert_allclose(confidences, model.predict(X), rtol=1e-5)  # any batch size


def test_fused_softmax_is_chosen_by_compile() -> None:
    assert small_classifier().plan.fused_softmax
    model = lm.Model([L.Dense(4, 3), L.Softmax()])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    assert model.plan.fused_softmax
    model.compile(loss="mean_squared_error", optimizer="sgd")
    assert not model.plan.fused_softmax


def test_first_layer_skips_input_gradient(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    model = small_classifier()
    assert model.layers[0].input_grad is False
    model.forward(X, training=True)
    assert model.layers[0].backward(np.ones((50, 8), np.float32)) is None


def test_one_hot_and_integer_labels_train_identically(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    a, b = small_classifier(seed=3), small_classifier(seed=3)
    ha = a.fit(X, y, epochs=2, batch_size=8, verbose=0)
    hb = b.fit(X, np.eye(3)[y], epochs=2, batch_size=8, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(
        a.layers[0].params["weights"], b.layers[0].params["weights"], rtol=1e-4, atol=1e-6
    )


def test_parameters_are_views_of_one_flat_buffer(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    model = small_classifier()
    model.fit(X, y, epochs=1, verbose=0)
    arena = model._arena
    assert arena is not None
    for layer in (model.layers[0], model.layers[2]):
        for key in ("weights", "biases"):
            assert np.shares_memory(layer.params[key], arena.values)
    # replacing a parameter array by hand is noticed, and training uses the new values
    model.layers[0].params["weights"] = np.zeros((4, 8), np.float32)
    model.fit(X, y, epochs=1, verbose=0)
    assert np.shares_memory(model.layers[0].params["weights"], model._arena.values)  # type: ignore[union-attr]


def test_frozen_layer_does_not_change(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    model = small_classifier()
    model.layers[0].trainable = False
    before = model.layers[0].params["weights"].copy()
    head = model.layers[2].params["weights"].copy()
    model.fit(X, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.layers[0].params["weights"], before)
    assert not np.array_equal(model.layers[2].params["weights"], head)


def test_summary_lists_layers_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    text = small_classifier().summary()
    assert "dense (Dense)" in text and "(batch, 8)" in text and "Total params: 67" in text
    assert capsys.readouterr().out.strip() == text


def test_verbose_prints_one_line_per_epoch(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = data
    small_classifier().fit(X, y, epochs=2, verbose=2)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()  # on stdout, as Keras prints them
    assert captured.err == ""
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "loss:" in lines[1]


# -- reproducibility ----------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_weights_and_history(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    runs = []
    for _ in range(2):
        model = small_classifier(seed=42)
        history = model.fit(X, y, epochs=3, batch_size=8, verbose=0)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    for la, lb in zip(a.layers, b.layers, strict=True):
        for key in la.params:
            np.testing.assert_array_equal(la.params[key], lb.params[key])
    assert ha.history == hb.history and ha.steps == hb.steps


def test_different_seeds_differ(data: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = small_classifier(seed=1), small_classifier(seed=2)
    assert not np.array_equal(a.layers[0].params["weights"], b.layers[0].params["weights"])


def test_seed_none_keeps_the_layers_parameters() -> None:
    dense = L.Dense(4, 3)
    dense.params["weights"][...] = 0.5
    lm.Model([dense], seed=None)
    assert np.all(dense.params["weights"] == 0.5)


# -- bad input: argument, expected, received, fix -------------------------------------------
def _fit(**overrides: object) -> Callable[[], object]:
    rng = np.random.default_rng(0)
    kwargs: dict[str, object] = {
        "X": rng.standard_normal((20, 4)).astype(np.float32),
        "y": rng.integers(0, 3, 20),
        "epochs": 1,
        "verbose": 0,
    }
    kwargs.update(overrides)
    return lambda: small_classifier().fit(**kwargs)  # type: ignore[arg-type]


NAN_X = np.ones((20, 4))
NAN_X[3, 2] = np.nan
INF_Y = np.zeros((20, 3))
INF_Y[0, 0] = np.inf


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (_fit(X=NAN_X), ["`X`", "finite", "NaN", "index (3, 2)", "Fix"]),
        (_fit(X=np.full((20, 4), np.inf)), ["`X`", "inf", "Fix"]),
        (_fit(y=INF_Y), ["`y`", "finite", "inf"]),
        (_fit(y=np.zeros(19, int)), ["`y`", "19 targets for 20 samples", "Fix"]),
        (_fit(X=np.ones((20, 5))), ["Layer 'dense' (Dense)", "(batch, 4)", "(batch, 5)"]),
        (_fit(y=np.full(20, 3)), ["`y`", "labels in [0, 2]", "labels in [3, 3]", "Fix"]),
        (_fit(y=-np.ones(20, int)), ["`y`", "labels in [-1, -1]"]),
        (_fit(y=np.full(20, 0.5)), ["`y`", "integer class labels", "float"]),
        (_fit(X=np.array([["a"] * 4] * 20)), ["`X`", "numeric", "dtype <U1", "Fix"]),
        (_fit(y=np.array(["cat"] * 20)), ["`y`", "numeric", "Fix"]),
        (_fit(X=np.empty((0, 4)), y=np.empty(0, int)), ["`X`", "at least one sample"]),
        (_fit(batch_size=0), ["`batch_size`", "an int ≥ 1", "received 0", "Fix"]),
        (_fit(epochs=-1), ["`epochs`", "an int ≥ 0", "received -1"]),
        (_fit(validation_split=1.5), ["`validation_split`", "[0, 1)"]),
    ],
)
def test_bad_fit_input_is_explained(call: Callable[[], object], words: list[str]) -> None:
    with pytest.raises(ValueError) as excinfo:
        call()
    assert isinstance(excinfo.value, lm.errors.LaminaError)
    for word in words:
        assert word in str(excinfo.value), str(excinfo.value)


def test_fit_before_compile_says_what_to_do() -> None:
    model = lm.Model([L.Dense(4, 3)])
    with pytest.raises(lm.errors.NotCompiledError, match=r"model.compile\(loss=..."):
        model.fit(np.ones((2, 4)), np.zeros(2, int))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"loss": "categorical_crossentropyy"}, ["Unknown loss", "categorical_crossentropy"]),
        # "mse" and "adamw" were unknown names here until issue 14 made them an alias and an
        # optimizer; these two are still unknown.
        ({"loss": "msqe"}, ["Unknown loss", "expected one of"]),
        ({"loss": "mean_squared_error", "optimizer": "adamx"}, ["Unknown optimizer", "adam"]),
        ({"loss": 3}, ["`loss`"]),
    ],
)
def test_unknown_names_are_explained(kwargs: dict[str, object], words: list[str]) -> None:
    model = lm.Model([L.Dense(4, 3)])
    with pytest.raises(lm.errors.ConfigError) as excinfo:
        model.compile(**kwargs)  # type: ignore[arg-type]
    for word in words:
        assert word in str(excinfo.value)


def test_layer_size_mismatch_names_both_layers() -> None:
    with pytest.raises(lm.errors.ShapeError) as excinfo:
        lm.Model([L.Dense(4, 8), L.ReLU(), L.Dense(6, 3)])
    message = str(excinfo.value)
    assert "'dense_1' (Dense)" in message and "'re_lu'" not in message
    assert "(batch, 6)" in message and "(batch, 8)" in message and "ReLU" in message


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: L.Dense(0, 3), "Dense.n_inputs"),
        (lambda: L.Dense(3, 2.5), "Dense.n_neurons"),
        (lambda: L.Dense(3, 2, activation="relux"), "relu"),
        (lambda: L.Dense(3, 2, weight_init="zeros"), "weight initializer"),
        (lambda: L.Dense(3, 2, weight_l2=-1), "l2"),
        (lambda: L.Dropout(1.0), "Dropout.rate"),
        (lambda: lm.Model([]), "layers"),
        (lambda: lm.Model([L.Dense(2, 2)], seed=-1), "seed"),
    ],
)
def test_bad_constructor_arguments_are_named(build: Callable[[], object], argument: str) -> None:
    with pytest.raises(lm.errors.ConfigError, match=argument):
        build()


def test_divergence_stops_training_before_the_bad_update(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = data
    model = lm.Model([L.Dense(4, 1)], seed=0)
    model.compile(loss="mean_squared_error", optimizer=lm.optimizers.SGD(learning_rate=10.0))
    with pytest.warns(RuntimeWarning, match=r"Training stopped at epoch \d+, step \d+: the loss"):
        history = model.fit(X, X[:, 0] * 3, epochs=50, batch_size=10, verbose=0)
    assert len(history.epoch) < 50
    assert all(np.isfinite(p).all() for p in model.layers[0].params.values())
    with (
        pytest.raises(lm.errors.NumericalError, match="parameters were left"),
        np.errstate(all="ignore"),
    ):
        model.train_step(np.full((2, 4), 3e38, np.float32), np.ones((2, 1), np.float32))


@pytest.mark.parametrize("first", ["dense", "dropout"])
def test_predict_refuses_nan_and_inf_anywhere(first: str) -> None:
    layers = [L.Dense(4, 3, activation="relu"), L.Dense(3, 2, activation="softmax")]
    if first == "dropout":
        layers.insert(0, L.Dropout(0.2))
    model = lm.Model(layers, seed=0)
    X = np.ones((3000, 4), np.float32)
    for value, word in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")):
        bad = X.copy()
        bad[2500, 1] = value  # in the third batch of 1024
        with pytest.raises(lm.errors.InputError, match=rf"{word}.*index \(2500, 1\)"):
            model.predict(bad)
    assert np.isfinite(model.predict(X)).all()


def test_a_layer_that_assigns_new_gradient_arrays_still_trains() -> None:
    """A custom layer may write ``self.grads[key] = new_array`` (as STYLE.md's example does)
    instead of filling the buffer it was given; the optimizer must see that gradient."""

    class Scale(lm.layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.params["weights"] = np.ones(3, np.float32)

        def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
            self._inputs = inputs
            return inputs * self.params["weights"]

        def backward(self, dvalues: np.ndarray) -> np.ndarray:
            self.grads["weights"] = (dvalues * self._inputs).sum(axis=0)  # a new array
            return dvalues * self.params["weights"]

    layer = Scale()
    layer.name = "scale"
    model = lm.Model([layer], seed=None)
    model.compile(loss="mse", optimizer=lm.optimizers.SGD(learning_rate=0.1))
    X = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    model.fit(X, 2 * X, epochs=200, batch_size=None, verbose=0)
    np.testing.assert_allclose(layer.params["weights"], 2.0, atol=0.05)
