"""``@lamina.register`` (issue 14, must-show 3): a model with a registered custom layer,
activation and loss saves, loads in a fresh process that imports the module defining them,
and predicts bit-identically; an unregistered part is a clear error naming the class and
the decorator; names are checked; registered layers pass the gradient check.

Every class registered here is taken out again when its test ends (the ``parts`` fixture,
``lamina.registration.registered``), so the registry-driven tests (tests/test_contracts.py,
tests/test_params.py) see lamina's own classes only.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina import augmentation, losses, metrics, optimizers, preprocessing
from lamina.errors import ConfigError, ModelFileError
from lamina.layers import LAYERS
from lamina.registration import KINDS, registered, registry_for, snake_case, unregister

L = lm.layers

#: A user's module of custom parts, as they would write it (the Layer docstring's example).
PARTS = '''
"""Custom parts of a model, registered when this module is imported."""

import numpy as np

import lamina
from lamina._params import Interval, checked
from lamina.layers import Activation, Layer
from lamina.layers.base import new_tensor
from lamina.losses import Loss


@lamina.register
class Scale(Layer):  # outputs = X ⊙ w;  ∂L/∂w = Σₙ δₙ ⊙ Xₙ,  ∂L/∂X = δ ⊙ w
    @checked(n_features=Interval(int, 1))
    def __init__(self, n_features: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.n_features = n_features
        self.params["w"] = new_tensor((n_features,), np.float32, 1.0)

    def forward(self, inputs, *, training=False):
        self._inputs = inputs
        return inputs * self.params["w"]

    def backward(self, dvalues):
        np.sum(dvalues * self._inputs, axis=0, out=self.gradient_buffers()["w"])
        return dvalues * self.params["w"]

    def get_config(self):
        return {**super().get_config(), "n_features": self.n_features}


@lamina.register("scaled_tanh")
class ScaledTanh(Activation):  # σ(x) = a·tanh(x);  σ'(x) = a·(1 − tanh²(x))
    @checked(a=Interval(float, 0, closed="neither"))
    def __init__(self, a: float = 1.7159, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.a = a

    def forward(self, inputs, *, training=False):
        self._tanh = np.tanh(inputs)
        return self.a * self._tanh

    def backward(self, dvalues):
        return dvalues * (self.a * (1 - self._tanh * self._tanh))

    def get_config(self):
        return {**super().get_config(), "a": self.a}


@lamina.register
class MeanQuartic(Loss):  # Lᵢ = (1/J) Σⱼ (ŷᵢⱼ − yᵢⱼ)⁴;  ∂L/∂ŷᵢⱼ = 4 (ŷᵢⱼ − yᵢⱼ)³ / J / N
    def forward(self, y_pred, y_true):
        return np.mean((y_pred - y_true) ** 4, axis=-1)

    def backward(self, y_pred, y_true):
        n_samples, n_outputs = y_pred.shape
        return 4 * (y_pred - y_true) ** 3 / (n_outputs * n_samples)
'''

#: Run in a fresh interpreter: load without the module (refused), then with it.
LOADER = """
import sys
import numpy as np
import lamina

path, inputs, outputs = sys.argv[1:4]
try:
    lamina.load_model(path)
except lamina.errors.ModelFileError as error:
    print("without the module:", error)
else:
    raise SystemExit("loaded a model whose parts are not registered in this process")
import custom_parts  # registers Scale, scaled_tanh and MeanQuartic
model = lamina.load_model(path)
assert type(model.loss) is custom_parts.MeanQuartic
assert type(model.layers[0]) is custom_parts.Scale
np.save(outputs, model.predict(np.load(inputs)))
"""


def registry_names() -> dict[str, set[str]]:
    return {registry.kind: set(registry) for _, registry in KINDS}


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``custom_parts`` imported from a folder on sys.path, as a user's module is; whatever
    it registered is unregistered afterwards."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "custom_parts.py").write_text(PARTS)
    monkeypatch.syspath_prepend(str(folder))
    before = registry_names()
    module = importlib.import_module("custom_parts")
    try:
        yield module
    finally:
        for _, registry in KINDS:
            for name in set(registry) - before[registry.kind]:
                unregister(registry.lookup(name))
        sys.modules.pop("custom_parts", None)
        assert registry_names() == before


def custom_model(parts: ModuleType) -> lm.Model:
    model = lm.Model(
        [
            parts.Scale(3),
            L.Dense(3, 8, activation="scaled_tanh", weight_init="glorot_uniform"),
            L.Dense(8, 2, activation=parts.ScaledTanh(a=0.5), weight_init="glorot_uniform"),
        ],
        seed=0,
    )
    return model.compile(loss=parts.MeanQuartic(), optimizer="adam", metrics=[])


def regression_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    return X, 0.4 * np.tanh(X[:, :2] + X[:, 2:])


# --------------------------------------------------------------------------- must-show 3
def test_a_model_with_custom_parts_loads_in_a_fresh_process_and_predicts_the_same(
    parts: ModuleType, tmp_path: Path
) -> None:
    X, y = regression_data()
    model = custom_model(parts)
    history = model.fit(X, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.array_equal(model.layers[0].params["w"], np.ones(3))  # the custom layer trained
    path = tmp_path / "custom.lamina"
    model.save(path)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert [spec["class"] for spec in config["model"]["layers"]] == ["scale", "dense", "dense"]
    assert config["model"]["layers"][1]["config"]["activation"] == "scaled_tanh"
    assert config["model"]["layers"][2]["config"]["activation"] == {
        "class": "scaled_tanh",
        "config": {"name": None, "a": 0.5},
    }
    assert config["compile"]["loss"] == {"class": "mean_quartic", "config": {}}
    assert "custom_parts" not in zipfile.ZipFile(path).read("config.json").decode()

    np.save(tmp_path / "X.npy", X)
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(path), str(tmp_path / "X.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "user_code")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown layer 'scale'" in done.stdout  # the loader imported nothing by itself
    expected = model.predict(X)
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)
    assert np.load(tmp_path / "y.npy").dtype == expected.dtype


def test_a_loaded_custom_model_continues_training_exactly(
    parts: ModuleType, tmp_path: Path
) -> None:
    X, y = regression_data()
    straight = custom_model(parts)
    straight.fit(X, y, epochs=4, batch_size=16, verbose=0)
    resumed = custom_model(parts)
    resumed.fit(X, y, epochs=2, batch_size=16, verbose=0)
    resumed.save(tmp_path / "half.lamina")
    loaded = lm.load_model(tmp_path / "half.lamina")
    loaded.fit(X, y, epochs=4, batch_size=16, verbose=0, initial_epoch=2)
    assert np.array_equal(loaded.predict(X), straight.predict(X))


class Unregistered(L.Layer):
    def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
        return inputs

    def backward(self, dvalues: np.ndarray) -> np.ndarray:
        return dvalues


class UnregisteredTanh(L.Tanh):
    """A subclass of a registered class is a class of its own, registered under no name."""


class UnregisteredMSE(losses.MeanSquaredError):
    pass


class UnregisteredAccuracy(metrics.Metric):
    def per_sample(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        return np.zeros(len(y_pred))


@pytest.mark.parametrize(
    ("kind", "name", "build"),
    [
        ("layer", "Unregistered", lambda: ([Unregistered(name="mine"), L.Dense(3, 2)], "mse")),
        ("activation", "UnregisteredTanh", lambda: ([L.Dense(3, 2, UnregisteredTanh())], "mse")),
        ("loss", "UnregisteredMSE", lambda: ([L.Dense(3, 2)], UnregisteredMSE())),
    ],
)
def test_saving_an_unregistered_part_names_the_class_and_the_decorator(
    kind: str, name: str, build: Any, tmp_path: Path
) -> None:
    layers, loss = build()
    model = lm.Model(layers, seed=0)
    model.compile(loss=losses.MeanSquaredError() if loss == "mse" else loss, metrics=[])
    with pytest.raises(ModelFileError) as caught:
        model.save(tmp_path / "m.lamina")
    message = str(caught.value)
    assert f"its {kind} {name} (from {__name__}) is not registered" in message, message
    assert "Fix: decorate the class with @lamina.register" in message
    assert not (tmp_path / "m.lamina").exists()


def test_an_unregistered_metric_is_named_too(tmp_path: Path) -> None:
    model = lm.Model([L.Dense(3, 2)], seed=0)
    model.compile(loss="mean_squared_error", metrics=[UnregisteredAccuracy()])
    with pytest.raises(
        ModelFileError, match=r"its metric UnregisteredAccuracy .*@lamina\.register"
    ):
        model.save(tmp_path / "m.lamina")
    with registered(UnregisteredAccuracy):
        model.save(tmp_path / "m.lamina")
        assert type(lm.load_model(tmp_path / "m.lamina").metrics[0]) is UnregisteredAccuracy


# --------------------------------------------------------------------------- the contracts
def test_registered_custom_parts_pass_the_gradient_check(parts: ModuleType) -> None:
    rng = np.random.default_rng(0)
    scale = parts.Scale(4)
    scale.params["w"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    x = rng.standard_normal((5, 4))
    for layer in (scale, parts.ScaledTanh(), parts.ScaledTanh(a=0.3)):
        report = lm.gradcheck(layer, x)
        assert report.max_error < 1e-6, str(report)
    y_true = rng.standard_normal((6, 2))
    report = lm.gradcheck(parts.MeanQuartic(), y_true + rng.normal(0, 0.5, (6, 2)), y_true)
    assert report.max_error < 1e-6, str(report)
    model = custom_model(parts)
    report = lm.gradcheck(model, rng.standard_normal((6, 3)), 0.3 * y_true)
    assert report.max_error < 1e-6, str(report)


def test_a_registered_activation_is_a_valid_activation_name(parts: ModuleType) -> None:
    assert isinstance(L.Dense(2, 2, activation="scaled_tanh").activation, parts.ScaledTanh)
    with pytest.raises(ConfigError, match="'scale'"):  # a layer, not an activation
        L.Dense(2, 2, activation="scale")


def test_config_round_trip_of_registered_layers(parts: ModuleType) -> None:
    for layer in (parts.Scale(3, name="s"), parts.ScaledTanh(a=0.5)):
        spec = json.loads(json.dumps(L.serialize(layer)))
        assert L.deserialize(spec).get_config() == layer.get_config()


def test_the_docstrings_state_the_contracts() -> None:
    layer_doc, loss_doc = L.Layer.__doc__ or "", losses.Loss.__doc__ or ""
    for text in ("forward(inputs, *, training=False)", "backward(dvalues)", "new_tensor"):
        assert text in layer_doc
    for text in ("gradient_buffers()", "get_config()", "@lamina.register", "1/N", "state"):
        assert text in layer_doc
    for text in ("forward(y_pred, y_true) -> (N,)", "prepare_targets", "1/N", "*mean*"):
        assert text in loss_doc


# --------------------------------------------------------------------------- names
def test_register_puts_each_kind_in_its_registry() -> None:
    class MyLayer(L.Layer):
        pass

    class MyLoss(losses.Loss):
        pass

    class MyMetric(metrics.Metric):
        pass

    class MyOptimizer(optimizers.Optimizer):
        pass

    class MyTransformer(preprocessing.Transformer):
        pass

    class MyAugmentation(augmentation.Augmentation):
        pass

    expected = {
        MyLayer: (LAYERS, "my_layer"),
        MyLoss: (losses.LOSSES, "my_loss"),
        MyMetric: (metrics.METRICS, "my_metric"),
        MyOptimizer: (optimizers.OPTIMIZERS, "my_optimizer"),
        MyTransformer: (preprocessing.TRANSFORMERS, "my_transformer"),
        MyAugmentation: (augmentation.AUGMENTATIONS, "my_augmentation"),
    }
    before = registry_names()
    for cls, (registry, name) in expected.items():
        assert registry_for(cls) is registry
        with registered(cls):
            assert registry.lookup(name) is cls
        assert name not in registry
    assert registry_names() == before


def test_bare_and_called_forms() -> None:
    class Bare(L.Layer):
        pass

    class Called(L.Layer):
        pass

    class Named(L.Layer):
        pass

    try:
        assert lm.register(Bare) is Bare and LAYERS.lookup("bare") is Bare
        assert lm.register()(Called) is Called and LAYERS.lookup("called") is Called
        assert lm.register("my_named")(Named) is Named and LAYERS.lookup("my_named") is Named
        assert lm.register(Bare) is Bare  # the same class again: nothing changes
    finally:
        for cls in (Bare, Called, Named):
            unregister(cls)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ScaledTanh", "scaled_tanh"),
        ("GaussianNLL", "gaussian_nll"),
        ("MaxPool2D", "max_pool2d"),
        ("HTTPServerLayer", "http_server_layer"),
        ("dense2", "dense2"),
    ],
)
def test_default_names_are_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_refused_registrations_say_why() -> None:
    class Dense(L.Layer):  # the class name of a built-in
        pass

    class Mine(L.Layer):
        pass

    class Other(L.Layer):
        pass

    class Plain:
        pass

    with pytest.raises(ConfigError, match=r"'dense': that name belongs to lamina's built-in"):
        lm.register(Dense)
    with pytest.raises(ConfigError, match=r"Fix: pass another name"):
        lm.register("adam")(type("MyAdam", (optimizers.Adam,), {}))
    with pytest.raises(ConfigError, match=r"a class deriving from one of Layer, Loss, Metric"):
        lm.register(Plain)
    with pytest.raises(ConfigError, match=r"a class deriving from one of"):
        lm.register("relu_function")(lambda x: x)  # type: ignore[type-var]
    for bad in ("MyLayer", "my-layer", "2d", "", "x" * 101):
        with pytest.raises(ConfigError, match="snake_case"):
            lm.register(bad)(Mine)
    with pytest.raises(ConfigError, match="expected a str"):
        lm.register(3)  # type: ignore[call-overload]
    with registered(Mine, "mine"):
        with pytest.raises(ConfigError, match=r"'mine': that name belongs to the layer"):
            lm.register("mine")(Other)
        with pytest.raises(ConfigError, match="registered as 'mine' already"):
            lm.register("mine_again")(Mine)
    with pytest.raises(ConfigError, match="built-in layer; it stays registered"):
        unregister(L.Dense)
    with pytest.raises(ConfigError, match="is not a registered layer"):
        unregister(Mine)


def test_a_class_defined_again_replaces_its_earlier_definition() -> None:
    """A notebook cell run twice, or importlib.reload, defines the class anew."""
    source = "class Again(L.Layer):\n    version = {}\n"
    first: dict[str, Any] = {"L": L, "__name__": __name__}
    exec(textwrap.dedent(source.format(1)), first)
    second: dict[str, Any] = {"L": L, "__name__": __name__}
    exec(textwrap.dedent(source.format(2)), second)
    try:
        lm.register(first["Again"])
        lm.register(second["Again"])
        assert LAYERS.lookup("again") is second["Again"]
    finally:
        unregister(second["Again"])
    assert "again" not in LAYERS
