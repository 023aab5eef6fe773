"""Aliases (issue 14, must-show 5): every alias resolves to the same object as its full name,
in every registry, and is accepted wherever a name is — ``Model.compile``, a TOML config,
a spec — while files and configs keep the registered spelling; an unknown name lists the
names of its own kind."""

from __future__ import annotations

import importlib
import json
import pkgutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina._registry import Registry
from lamina.errors import ConfigError

L = lm.layers

#: Every alias, by the kind of its registry: adding one means adding it here.
ALIASES: dict[str, dict[str, str]] = {
    "loss": {
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "bce": "binary_crossentropy",
        "cce": "categorical_crossentropy",
        "sparse_categorical_crossentropy": "categorical_crossentropy",  # integer labels
    },
    "metric": {
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "rmse": "root_mean_squared_error",
        "r2": "r2_score",
        "r_squared": "r2_score",
        "top_k": "top_k_accuracy",
        "top_k_categorical_accuracy": "top_k_accuracy",
        "sparse_top_k_categorical_accuracy": "top_k_accuracy",
        "sparse_categorical_accuracy": "categorical_accuracy",
    },
}


def registries() -> dict[str, Registry[Any]]:
    """Every registry of the package, by kind, found by importing every module."""
    found: dict[str, Registry[Any]] = {}
    for info in pkgutil.walk_packages(lm.__path__, "lamina."):
        if info.name.endswith("__main__"):
            continue
        for value in vars(importlib.import_module(info.name)).values():
            if isinstance(value, Registry):
                assert found.setdefault(value.kind, value) is value, f"two {value.kind} registries"
    return found


REGISTRIES = registries()
TABLE = [
    pytest.param(kind, alias, full, id=f"{kind} {alias}")
    for kind, aliases in ALIASES.items()
    for alias, full in aliases.items()
]


def test_every_registry_is_found_and_its_aliases_are_in_the_table() -> None:
    assert {"layer", "loss", "metric", "optimizer", "weight initializer"} <= set(REGISTRIES)
    for kind, registry in REGISTRIES.items():
        assert registry.aliases == ALIASES.get(kind, {}), kind


@pytest.mark.parametrize(("kind", "alias", "full"), TABLE)
def test_an_alias_resolves_to_the_entry_of_its_full_name(kind: str, alias: str, full: str) -> None:
    registry = REGISTRIES[kind]
    assert registry.lookup(alias) is registry.lookup(full)
    assert alias in registry and full in registry
    assert registry.canonical(alias) == full == registry.canonical(full)
    assert alias not in list(registry) and alias not in dict(registry.items())  # listed once
    built = registry.build({"class": alias, "config": {}})
    assert type(built) is registry.lookup(full)
    assert registry.name_of(built) == full and registry.spec(built)["class"] == full


@pytest.mark.parametrize(("kind", "alias", "full"), TABLE)
def test_an_alias_is_accepted_by_compile(kind: str, alias: str, full: str) -> None:
    model = lm.Model([L.Dense(3, 2)], seed=0)
    if kind == "loss":
        model.compile(loss=alias, metrics=[])
        assert type(model.loss) is REGISTRIES["loss"].lookup(full)
        assert type(lm.losses.get(alias)) is type(model.loss)
    else:
        model.compile(loss="mse", metrics=[alias, full])
        assert type(model.metrics[0]) is type(model.metrics[1]) is REGISTRIES[kind].lookup(full)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy", "mse", "mae"])
def test_acc_is_accuracy(loss: str) -> None:
    model = lm.Model([L.Dense(3, 2)], seed=0).compile(loss=loss, metrics=["acc", "accuracy"])
    assert type(model.metrics[0]) is type(model.metrics[1])
    assert model.metrics[0].name == "accuracy"


def test_mse_and_mae_fit_and_are_saved_under_their_full_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    model = lm.Model([L.Dense(3, 1)], seed=0).compile(loss="mse", metrics=["mae", "rmse"])
    history = model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert {"loss", "mae", "rmse"} <= set(history.history)
    model.save(tmp_path / "model.lamina")
    with zipfile.ZipFile(tmp_path / "model.lamina") as archive:
        compiled = json.loads(archive.read("config.json"))["compile"]
    assert compiled["loss"]["class"] == "mean_squared_error"
    assert [m["class"] for m in compiled["metrics"]] == [
        "mean_absolute_error",
        "root_mean_squared_error",
    ]
    assert type(lm.load_model(tmp_path / "model.lamina").loss) is lm.losses.MeanSquaredError


def test_sparse_categorical_crossentropy_trains_on_integer_labels_as_the_full_name() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), rng.integers(0, 3, 60)
    histories = []
    for name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        model = lm.Model([L.Dense(2, 3, activation="softmax")], seed=1)
        model.compile(loss=name)
        histories.append(model.fit(X, y, epochs=3, batch_size=16, verbose=0).history)
        assert model.plan.fused_softmax  # the same class, so the same fused backward
    assert histories[0] == histories[1]


def regression_config(loss: Any, metrics: list[str]) -> dict[str, Any]:
    return {
        "data": {"dataset": "sine", "samples": 40},
        "model": {"seed": 0},
        "layers": [{"type": "dense", "n_inputs": 1, "n_neurons": 1, "activation": "linear"}],
        "compile": {"loss": loss, "metrics": metrics},
        "train": {"epochs": 1},
    }


def test_a_config_accepts_aliases() -> None:
    run = lm.config.from_dict(regression_config("mse", ["mae", "rmse", "r2", "acc"]))
    model = lm.config.build_model(run)
    assert type(model.loss) is lm.losses.MeanSquaredError
    kinds = [type(metric) for metric in model.metrics]
    M = lm.metrics
    assert kinds == [M.MeanAbsoluteError, M.RootMeanSquaredError, M.R2Score, M.RegressionAccuracy]
    model.fit(np.linspace(0, 1, 40)[:, None], np.sin(np.linspace(0, 1, 40)), verbose=0)


def test_an_inline_loss_table_accepts_aliases() -> None:
    raw = regression_config({"type": "mse"}, ["mae"])
    assert type(lm.config.build_model(lm.config.from_dict(raw)).loss) is lm.losses.MeanSquaredError


# -- unknown names list the names of their own kind ----------------------------------------
@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_an_unknown_name_lists_the_names_of_its_registry(kind: str) -> None:
    registry = REGISTRIES[kind]
    with pytest.raises(ConfigError) as caught:
        registry.lookup("no_such_name")
    message = str(caught.value)
    assert message.startswith(
        f"Unknown {kind} 'no_such_name': expected one of {sorted(registry)}"
    ), message
    for alias in registry.aliases:
        assert repr(alias) in message  # the other accepted spellings are listed too


def test_unknown_losses_and_metrics_say_their_kind_and_suggest_aliases() -> None:
    model = lm.Model([L.Dense(3, 2)])
    with pytest.raises(ConfigError) as caught:
        model.compile(loss="msee")
    message = str(caught.value)
    assert "Unknown loss 'msee'" in message and "Did you mean 'mse'?" in message
    assert "'mean_squared_error'" in message and "r2_score" not in message  # losses only
    with pytest.raises(ConfigError) as caught:
        model.compile(loss="mse", metrics=["rmsee"])
    message = str(caught.value)
    assert "Unknown metric 'rmsee'" in message and "Did you mean 'rmse'?" in message
    assert "'root_mean_squared_error'" in message and "binary_crossentropy" not in message


def test_an_unknown_activation_lists_activations_not_layers() -> None:
    activations = ["leaky_relu", "linear", "relu", "sigmoid", "softmax", "tanh"]
    for build in (
        lambda: L.Dense(3, 2, activation="rleu"),
        lambda: L.activations.get("rleu"),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        message = str(caught.value)
        assert "activation" in message, message
        assert all(repr(name) in message for name in activations), message
        for layer in ("dense", "conv2d", "dropout", "max_pool2d", "batch_norm"):
            assert repr(layer) not in message, message
        assert "use 'relu'" in message
    with pytest.raises(ConfigError, match="Unknown layer 'rleu'"):  # a layer is asked for
        L.deserialize({"class": "rleu", "config": {}})


def test_an_unknown_weight_initializer_lists_weight_initializers() -> None:
    with pytest.raises(ConfigError) as caught:
        L.Dense(3, 2, weight_init="glorot")
    message = str(caught.value)
    assert "'glorot_uniform'" in message and "'he_normal'" in message
    assert "'relu'" not in message and "'zeros'" not in message  # no activations, no biases


# -- the registry itself ---------------------------------------------------------------------
def test_registry_aliases() -> None:
    things: Registry[Any] = Registry("thing")

    @things.register("long_name", aliases=("short",))
    class Thing:
        def get_config(self) -> dict[str, Any]:
            return {}

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Thing:
            return cls()

    things.alias("shorter", "short")  # an alias of an alias stands for the name
    assert things.aliases == {"short": "long_name", "shorter": "long_name"}
    assert things.lookup("shorter") is things.lookup("SHORT") is Thing  # case as lookup was
    assert list(things) == ["long_name"] and len(things) == 1
    assert things.name_of(Thing()) == "long_name"
    assert things.spec(things.build({"class": "short", "config": {}})) == {
        "class": "long_name",
        "config": {},
    }
    for taken in ("long_name", "short"):
        with pytest.raises(ConfigError, match=f"thing name '{taken}' is registered twice"):
            things.alias(taken, "long_name")
        with pytest.raises(ConfigError, match="registered twice"):
            things.register(taken)(Thing)
    with pytest.raises(ConfigError, match="Unknown thing 'missing'"):
        things.alias("other", "missing")
    assert "other" not in things
    with pytest.raises(ConfigError, match="Unknown thing 3"):
        things.lookup(3)  # type: ignore[arg-type]
