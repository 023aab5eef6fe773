"""Every constructor's arguments are checked by the one mechanism, ``lamina._params``
(issue 13, must-show 3): every parameter of every registered class has a rule, and each
value its rule refuses — a wrong type, ``True`` where a number is expected, values out of
range — raises a ConfigError naming ``Class.argument``."""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina import augmentation as aug
from lamina import callbacks as C
from lamina._params import Flag, Interval, Options, Pair, check, checked, rules_of
from lamina.augmentation import AUGMENTATIONS
from lamina.callbacks import CALLBACKS
from lamina.errors import ConfigError
from lamina.layers import LAYERS
from lamina.losses import LOSSES
from lamina.metrics import METRICS
from lamina.optimizers import OPTIMIZERS
from lamina.preprocessing import TRANSFORMERS

L, P = lm.layers, lm.preprocessing

#: Every class a user or a file can build, by where it is registered. Callbacks that a
#: config cannot name (they take a function, or are built by ``fit``) are listed too.
CLASSES: dict[str, type] = {
    **{f"layer {name}": cls for name, cls in LAYERS.items()},
    **{f"loss {name}": cls for name, cls in LOSSES.items()},
    **{f"metric {name}": cls for name, cls in METRICS.items()},
    **{f"optimizer {name}": cls for name, cls in OPTIMIZERS.items()},
    **{f"transformer {name}": cls for name, cls in TRANSFORMERS.items()},
    **{f"augmentation {name}": cls for name, cls in AUGMENTATIONS.items()},
    **{f"callback {name}": cls for name, cls in CALLBACKS.items()},
    "callback learning_rate_scheduler": C.LearningRateScheduler,
    "callback progress_bar": C.ProgressBar,
}

#: Valid values of the arguments without defaults.
REQUIRED: dict[type, dict[str, Any]] = {
    L.Dense: {"n_inputs": 3, "n_neurons": 2},
    L.Conv2D: {"in_channels": 1, "filters": 2, "kernel_size": 3},
    L.Conv1D: {"in_channels": 1, "filters": 2, "kernel_size": 3},
    L.Embedding: {"vocabulary": 10, "dimension": 4},
    L.SimpleRNN: {"n_inputs": 3, "units": 2},
    L.GRU: {"n_inputs": 3, "units": 2},
    L.LSTM: {"n_inputs": 3, "units": 2},
    L.Bidirectional: {"layer": L.GRU(3, 2)},
    L.BatchNorm: {"n_features": 3},
    L.Dropout: {"rate": 0.5},
    P.Pipeline: {"steps": [P.StandardScaler()]},
    C.ModelCheckpoint: {"path": "model.lamina"},
    C.CSVLogger: {"path": "log.csv"},
    C.TensorBoard: {"log_dir": "logs"},
    C.LearningRateScheduler: {"schedule": lambda epoch, rate: rate},
    C.CosineDecay: {"initial_learning_rate": 0.1, "epochs": 3},
}


def parameters(cls: type) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def build(cls: type, **overrides: Any) -> Any:
    return cls(**{**REQUIRED.get(cls, {}), **overrides})


def unruled(cls: type) -> list[str]:
    return [name for name in parameters(cls) if name not in rules_of(cls)]


def test_every_argument_of_every_registered_class_has_a_rule() -> None:
    missing = {cls: unruled(cls) for cls in CLASSES.values() if unruled(cls)}
    assert missing == {}, f"arguments without a rule (declare one with @checked): {missing}"


def test_every_bool_argument_is_a_flag() -> None:
    for cls in CLASSES.values():
        for name, parameter in inspect.signature(cls).parameters.items():
            if parameter.annotation in (bool, "bool"):
                constraints = rules_of(cls)[name].constraints
                assert any(isinstance(c, Flag) for c in constraints), f"{cls.__name__}.{name}"


def test_every_required_argument_has_a_valid_example() -> None:
    for cls in CLASSES.values():
        required = [
            name
            for name, parameter in inspect.signature(cls).parameters.items()
            if parameter.default is parameter.empty
        ]
        assert set(required) <= set(REQUIRED.get(cls, {})), f"add {cls.__name__} to REQUIRED"


def refused_cases() -> list[Any]:
    cases = []
    for label, cls in CLASSES.items():
        rules = rules_of(cls)
        for argument in parameters(cls):  # each has a rule (the test above)
            for value in rules[argument].refused():
                shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:27] + "..."
                cases.append(pytest.param(cls, argument, value, id=f"{label}: {argument}={shown}"))
    return cases


@pytest.mark.parametrize(("cls", "argument", "value"), refused_cases())
def test_a_refused_value_raises_a_config_error_naming_the_argument(
    cls: type, argument: str, value: Any
) -> None:
    with pytest.raises(ConfigError) as caught:
        build(cls, **{argument: value})
    message = str(caught.value)
    assert f"Invalid value for `{cls.__name__}.{argument}`: expected " in message, message
    assert f"received {value!r}"[:60] in message, message
    assert caught.value.argument == argument


def test_the_drift_issue_13_names_is_gone() -> None:
    with pytest.raises(ConfigError, match=r"`BatchNorm\.epsilon`: expected a float > 0"):
        L.BatchNorm(8, epsilon=True)
    for argument, value in (("patience", -1), ("cooldown", 1.5), ("min_lr", True)):
        with pytest.raises(ConfigError, match=rf"`ReduceLROnPlateau\.{argument}`"):
            C.ReduceLROnPlateau(**{argument: value})
    for build_with_flag in (
        lambda: P.StandardScaler(per_feature=1),
        lambda: C.CSVLogger("log.csv", append=0),
        lambda: C.EarlyStopping(restore_best_weights="yes"),
        lambda: C.ModelCheckpoint("m.lamina", save_best_only=np.int64(1)),
    ):
        with pytest.raises(ConfigError, match="True or False"):
            build_with_flag()


def test_errors_keep_the_argument_expected_received_fix_form() -> None:
    with pytest.raises(ConfigError) as caught:
        L.Dense(0, 3)
    assert str(caught.value) == (
        "Invalid value for `Dense.n_inputs`: expected an int ≥ 1 or None, received 0. "
        "Fix: pass the layer sizes, e.g. Dense(784, 128), or leave it out and build the "
        "Model with input_shape=(...)."
    )
    with pytest.raises(ConfigError) as caught:
        L.Dense(3, 2, activation="Relu")
    assert str(caught.value).endswith("received 'Relu'. Fix: use 'relu'.")  # the nearest name
    with pytest.raises(ConfigError) as caught:
        check("fit", "batch_size", 0, Interval(int, 1), fix="use e.g. batch_size=32")
    assert str(caught.value) == (
        "Invalid value for `fit.batch_size`: expected an int ≥ 1, received 0. "
        "Fix: use e.g. batch_size=32."
    )
    assert caught.value.argument == "batch_size"


def test_accepted_values_are_passed_on_converted() -> None:
    dense = L.Dense(np.int64(3), np.int64(2))
    assert type(dense.n_inputs) is int and json.dumps(dense.get_config())
    assert type(L.BatchNorm(4, momentum=np.float32(0.5)).momentum) is float
    assert type(lm.optimizers.Adam(learning_rate=1).learning_rate) is float
    assert aug.RandomShift(max_fraction=[0.1, 0.2]).max_fraction == (0.1, 0.2)
    assert aug.RandomShift(max_fraction=0.1).max_fraction == 0.1  # one value stays one
    assert P.Resize(4).size == (4, 4)
    assert P.MinMaxScaler(feature_range=[0, 1]).feature_range == (0.0, 1.0)
    assert C.ModelCheckpoint(Path("m.lamina")).path == "m.lamina"
    assert Pair(Interval(int, 1)).convert([2, np.int64(1)]) == (2, 1)
    assert Options(LAYERS, where=lambda cls: cls is L.Dense).describe() == "one of 'dense'"


def test_checked_refuses_declarations_it_cannot_keep() -> None:
    with pytest.raises(TypeError, match="no keyword parameters"):
        checked(size=Interval(int, 1))(lambda sise: sise)
    with pytest.raises(ConfigError, match="size"):  # an invalid default: a declaration bug
        checked(size=Interval(int, 1))(lambda size=0: size)
    with pytest.raises(ConfigError, match=r"Missing value for `Dense\.n_neurons`"):
        L.deserialize({"class": "dense", "config": {"n_inputs": 3}})
    with pytest.raises(ConfigError, match="Cannot build layer 'dense'"):  # an unknown key
        L.deserialize({"class": "dense", "config": {"n_inputs": 3, "n_neuron": 2}})


def classes(*, callbacks: bool) -> list[Any]:
    return [
        pytest.param(cls, id=label)
        for label, cls in CLASSES.items()
        if label.startswith("callback ") == callbacks
    ]


@pytest.mark.parametrize("cls", classes(callbacks=False))
def test_valid_examples_build_and_round_trip_their_config(cls: type) -> None:
    built = build(cls)
    config = built.get_config()
    rebuild: Callable[..., Any] = getattr(cls, "from_config", None) or (lambda c: cls(**c))
    assert rebuild(json.loads(json.dumps(config))).get_config() == config


@pytest.mark.parametrize("cls", classes(callbacks=True))
def test_valid_example_callbacks_build_and_run_a_fit(
    cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # ModelCheckpoint and CSVLogger write their files here
    callback = build(cls, file=io.StringIO()) if cls is C.ProgressBar else build(cls)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    model = lm.Model([L.Dense(3, 2, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.fit(X, y, epochs=2, validation_data=(X, y), callbacks=[callback], verbose=0)
    assert model.epochs_done == 2
