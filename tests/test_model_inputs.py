"""What a careless user passes (issue 12, "Found" 8): each gets a clear error naming the
argument and the fix, or the right behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def model() -> lm.Model:
    network = lm.Model([L.Dense(3, 2, activation="softmax")], seed=0)
    network.compile(loss="categorical_crossentropy", optimizer="adam")
    return network


X = np.random.default_rng(0).standard_normal((12, 3))
y = np.arange(12) % 2


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_float64_values_beyond_float32_are_an_error_not_inf(method: str) -> None:
    huge = X.copy()
    huge[4, 1] = 1e300
    call = getattr(model(), method)
    arguments = (huge,) if method == "predict" else (huge, y)
    with pytest.raises(
        lm.errors.InputError, match=r"within float32's range.*1e\+300 at index \(4, 1\)"
    ):
        call(*arguments, **({"verbose": 0} if method == "fit" else {}))
    wide = lm.Model([L.Dense(3, 2)], seed=0, dtype="float64")
    assert wide.predict(huge).dtype == np.float64  # a float64 model takes such values


@pytest.mark.parametrize("dtype", ["float33", "int8", object, "no such type"])
def test_a_bad_model_dtype_is_a_config_error(dtype: object) -> None:
    with pytest.raises(lm.errors.ConfigError, match=r"`dtype`.*'float32' or 'float64'.*Fix"):
        lm.Model([L.Dense(3, 2)], dtype=dtype)  # type: ignore[arg-type]


def test_a_ragged_list_is_named() -> None:
    with pytest.raises(lm.errors.InputError, match=r"`X`.*rectangular.*ragged list.*Fix: pad"):
        model().predict([[1.0, 2.0, 3.0], [1.0, 2.0]])
    with pytest.raises(lm.errors.InputError, match=r"`y`.*ragged"):
        model().fit(X[:2], [[1, 0], [1]], verbose=0)


def test_numpy_scalars_are_accepted_where_numbers_are() -> None:
    history = model().fit(X, y, epochs=np.int64(2), validation_split=np.float32(0.25), verbose=0)
    assert len(history.history["val_loss"]) == 2
    with pytest.raises(lm.errors.ConfigError, match="validation_split"):
        model().fit(X, y, validation_split=True, verbose=0)


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_predict_refuses_a_bad_batch_size(size: object) -> None:
    with pytest.raises(lm.errors.ConfigError, match="batch_size"):
        model().predict(X, batch_size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("shuffle", ["no", 0, None, "False"])
def test_shuffle_must_be_a_bool(shuffle: object) -> None:
    with pytest.raises(lm.errors.ConfigError, match=r"`shuffle`.*True or False"):
        model().fit(X, y, shuffle=shuffle, verbose=0)  # type: ignore[arg-type]
    model().fit(X, y, shuffle=np.bool_(False), verbose=0)


@pytest.mark.parametrize("name", ["\x1b[31mred", "a/b", "", "x" * 101, 3])
def test_layer_names_are_printable_and_short(name: object) -> None:
    with pytest.raises(lm.errors.ConfigError, match="layer name"):
        L.Dense(3, 2, name=name)  # type: ignore[arg-type]
    if name:  # an empty name means "unnamed": the model names the layer
        layer = L.Dense(3, 2)
        layer.name = name  # type: ignore[assignment]
        with pytest.raises(lm.errors.ConfigError, match="layer name"):
            lm.Model([layer])


def test_save_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "model.lamina"
    with pytest.raises(lm.errors.FileWriteError) as caught:
        model().save(target)
    assert str(target) in str(caught.value) and ".tmp" not in str(caught.value)
    assert "Fix: create the folder first" in str(caught.value)
    with pytest.raises(lm.errors.FileWriteError, match="character device"):
        model().save("/dev/null")
    with pytest.raises(lm.errors.FileWriteError, match="character device"):
        model().save_weights("/dev/null")


def test_a_model_without_trainable_parameters_trains_without_error() -> None:
    network = lm.Model([L.Softmax()])
    network.compile(loss="categorical_crossentropy", optimizer="adam")
    history = network.fit(
        np.random.default_rng(0).standard_normal((8, 3)), np.arange(8) % 3, verbose=0
    )
    assert len(history.epoch) == 1
