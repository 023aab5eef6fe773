"""Run configurations in TOML (DESIGN §7), with the Python API's vocabulary.

A config names the data, the preprocessing, the layers, the loss, the optimizer, the
training settings and the callbacks::

    [data]
    dataset = "fashion_mnist"          # spiral, vertical, sine, mnist, image_folder, csv

    [[preprocessing]]
    type = "flatten"
    [[preprocessing]]
    type = "min_max_scaler"
    feature_range = [-1, 1]

    [model]
    seed = 0

    [[layers]]
    type = "dense"
    n_inputs = 784
    n_neurons = 128
    activation = "relu"

    [compile]
    loss = "categorical_crossentropy"  # or {type = "...", label_smoothing = 0.1}

    [optimizer]
    type = "adam"
    learning_rate = 0.001

    [train]
    epochs = 10
    batch_size = 128

Every table and key is checked: an unknown key, a wrong type or an unknown class raises
:class:`ConfigFileError` naming the file, the line, the key and the nearest valid name.
"""

from __future__ import annotations

import difflib
import inspect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamina.errors import ConfigError, LaminaError

SECTIONS = (
    "data",
    "preprocessing",
    "augmentation",
    "model",
    "layers",
    "compile",
    "optimizer",
    "train",
    "callbacks",
)
DATASETS = ("fashion_mnist", "mnist", "spiral", "vertical", "sine", "image_folder", "csv")
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("path", "limit"),
    "mnist": ("path", "limit"),
    "spiral": ("samples", "classes", "noise", "seed"),
    "vertical": ("samples", "classes", "seed"),
    "sine": ("samples",),
    "image_folder": ("path", "test_path", "size", "grayscale", "limit"),
    "csv": ("path", "test_path", "target", "delimiter", "limit"),
}
TRAIN_KEYS = ("epochs", "batch_size", "shuffle", "validation_split", "verbose")
COMPILE_KEYS = ("loss", "metrics")
MODEL_KEYS = ("seed", "dtype")


class ConfigFileError(ConfigError):
    """A config file that cannot be run: names the file, the line and the key."""


@dataclass
class RunConfig:
    """A parsed and checked config; ``path`` and ``text`` locate errors."""

    path: Path
    text: str
    data: dict[str, Any]
    preprocessing: list[dict[str, Any]]
    augmentation: list[dict[str, Any]]
    model: dict[str, Any]
    layers: list[dict[str, Any]]
    compile: dict[str, Any]
    optimizer: dict[str, Any]
    train: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def error(
        self, message: str, table: str, index: int | None = None, key: str | None = None
    ) -> ConfigFileError:
        line = _line_of(self.text, table, index, key)
        where = f"[[{table}]] #{index + 1}" if index is not None else f"[{table}]"
        return ConfigFileError(f"{self.path}:{line}: {where}: {message}")


def load_config(path: str | Path) -> RunConfig:
    """Read and check a TOML run config (everything but building the objects)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such config file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"{path}: cannot read the config ({error}).") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not valid TOML: {error}.") from None
    return from_dict(raw, path, text)


def from_dict(raw: dict[str, Any], path: str | Path = "<config>", text: str = "") -> RunConfig:
    """Check a config given as a dict (the parsed TOML), e.g. one a search has modified."""
    path = Path(path)
    for section in raw:
        if section not in SECTIONS:
            raise ConfigFileError(
                f"{path}:{_line_of(text, section, None, None)}: unknown table [{section}]"
                f"{_nearest(section, SECTIONS)}; the tables are {', '.join(SECTIONS)}."
            )
    run = RunConfig(
        path=path,
        text=text,
        data=_table(raw, "data", path, text),
        preprocessing=_array(raw, "preprocessing", path, text),
        augmentation=_array(raw, "augmentation", path, text),
        model=_table(raw, "model", path, text, required=False),
        layers=_array(raw, "layers", path, text),
        compile=_table(raw, "compile", path, text),
        optimizer=_table(raw, "optimizer", path, text, required=False),
        train=_table(raw, "train", path, text, required=False),
        callbacks=_array(raw, "callbacks", path, text),
    )
    _check_keys(run)
    return run


# -- checking ---------------------------------------------------------------------------------
def _table(
    raw: dict[str, Any], name: str, path: Path, text: str, required: bool = True
) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigFileError(f"{path}: the config has no [{name}] table.")
        return {}
    if not isinstance(value, dict):
        raise ConfigFileError(
            f"{path}:{_line_of(text, name, None, None)}: {name} must be a "
            f"table [{name}], not {type(value).__name__}."
        )
    return value


def _array(raw: dict[str, Any], name: str, path: Path, text: str) -> list[dict[str, Any]]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigFileError(
            f"{path}:{_line_of(text, name, None, None)}: {name} must be an "
            f"array of tables [[{name}]]."
        )
    return value


def _check_keys(run: RunConfig) -> None:
    dataset = run.data.get("dataset")
    if dataset not in DATASETS:
        raise run.error(
            f"unknown dataset {dataset!r}{_nearest(str(dataset), DATASETS)}; "
            f"expected one of {', '.join(DATASETS)}.",
            "data",
            key="dataset",
        )
    _known(run, run.data, ("dataset", *DATA_KEYS[dataset]), "data")
    _known(run, run.train, TRAIN_KEYS, "train")
    _known(run, run.compile, COMPILE_KEYS, "compile")
    _known(run, run.model, MODEL_KEYS, "model")
    if "loss" not in run.compile:
        raise run.error('missing key `loss`, e.g. loss = "categorical_crossentropy".', "compile")
    if isinstance(run.compile["loss"], dict):  # loss = {type = "...", label_smoothing = 0.1}
        from lamina.losses import LOSSES

        _check_typed(run, run.compile["loss"], "compile", None, dict(LOSSES.items()))
    if not run.layers:
        raise run.error("the model needs at least one [[layers]] table.", "layers")
    from lamina import augmentation, callbacks, optimizers, preprocessing
    from lamina.layers.base import LAYERS

    for table, items, registry in (
        ("layers", run.layers, LAYERS),
        ("preprocessing", run.preprocessing, preprocessing.TRANSFORMERS),
        ("augmentation", run.augmentation, augmentation.AUGMENTATIONS),
    ):
        for index, item in enumerate(items):
            _check_typed(run, item, table, index, dict(registry.items()))
    if run.optimizer:
        _check_typed(run, run.optimizer, "optimizer", None, dict(optimizers.OPTIMIZERS.items()))
    for index, item in enumerate(run.callbacks):
        _check_typed(run, item, "callbacks", index, callbacks.CALLBACKS)


def _check_typed(
    run: RunConfig, item: dict[str, Any], table: str, index: int | None, classes: dict[str, Any]
) -> None:
    kind = item.get("type")
    if kind not in classes:
        raise run.error(
            f"unknown type {kind!r}{_nearest(str(kind), classes)}; expected one of "
            f"{', '.join(sorted(classes))}.",
            table,
            index,
            "type",
        )
    parameters = inspect.signature(classes[kind].__init__).parameters
    allowed = [name for name in parameters if name not in ("self", "args", "kwargs")]
    _known(run, item, ("type", *allowed), table, index)


def _known(
    run: RunConfig,
    table_value: dict[str, Any],
    allowed: tuple[str, ...] | list[str],
    table: str,
    index: int | None = None,
) -> None:
    for key in table_value:
        if key not in allowed:
            raise run.error(
                f"unknown key `{key}`{_nearest(key, allowed)}; valid keys: {', '.join(allowed)}.",
                table,
                index,
                key,
            )


def _nearest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" — did you mean `{close[0]}`?" if close else ""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _line_of(text: str, table: str, index: int | None, key: str | None) -> int:
    """The 1-based line of ``key`` in [table] (or the index-th [[table]]), else of the
    table's header, else 1: tomllib gives values without positions."""
    current, count, header_line, fallback = None, -1, None, 1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(2)
            if current == table:
                count = count + 1 if header.group(1) == "[[" else 0
                if index is None or count == index:
                    header_line = number
            continue
        match = _KEY.match(line)
        in_table = current == table and (index is None or count == index)
        if match and in_table and match.group(1) == key:
            return number
        if match and current is None and match.group(1) == table:
            fallback = number
    return header_line or fallback


# -- building -----------------------------------------------------------------------------------
def build_model(run: RunConfig, *, seed: int | None = None) -> Any:
    """The compiled Model a config describes (seed overrides [model] seed)."""
    from lamina import augmentation, losses, optimizers, preprocessing
    from lamina.layers.serialization import deserialize
    from lamina.model import Model

    layers = [
        _build(run, "layers", i, lambda c, k: deserialize({"class": k, "config": c}), item)
        for i, item in enumerate(run.layers)
    ]
    steps = [
        _build(
            run,
            "preprocessing",
            i,
            lambda c, k: preprocessing.deserialize({"class": k, "config": c}),
            item,
        )
        for i, item in enumerate(run.preprocessing)
    ]
    pipeline = None
    if steps:
        pipeline = steps[0] if len(steps) == 1 else preprocessing.Pipeline(steps)
    augments = [
        _build(
            run,
            "augmentation",
            i,
            lambda c, k: augmentation.deserialize({"class": k, "config": c}),
            item,
        )
        for i, item in enumerate(run.augmentation)
    ]
    try:
        model = Model(
            layers,
            seed=run.model.get("seed") if seed is None else seed,
            dtype=run.model.get("dtype", "float32"),
            preprocessing=pipeline,
            augmentation=augments,
        )
    except LaminaError as error:
        raise run.error(str(error), "layers") from None
    optimizer = (
        _build(
            run, "optimizer", None, lambda c, k: optimizers.OPTIMIZERS.lookup(k)(**c), run.optimizer
        )
        if run.optimizer
        else "adam"
    )
    loss = run.compile["loss"]
    if isinstance(loss, dict):
        loss = _build(run, "compile", None, lambda c, k: losses.LOSSES.lookup(k)(**c), loss)
    try:
        model.compile(
            loss=loss,
            optimizer=optimizer,
            metrics=run.compile.get("metrics", ["accuracy"]),
        )
    except LaminaError as error:
        raise run.error(str(error), "compile", key="loss") from None
    return model


def build_callbacks(run: RunConfig, out: Path) -> list[Any]:
    from lamina import callbacks

    built = []
    for index, item in enumerate(run.callbacks):
        config = {k: v for k, v in item.items() if k != "type"}
        if "path" in config:  # files go under the run's output folder
            config["path"] = str(out / config["path"])
        built.append(
            _build(
                run,
                "callbacks",
                index,
                lambda c, k: callbacks.CALLBACKS[k](**c),
                {**config, "type": item["type"]},
            )
        )
    return built


def _build(run: RunConfig, table: str, index: int | None, make: Any, item: dict[str, Any]) -> Any:
    config = {k: v for k, v in item.items() if k != "type"}
    try:
        return make(config, item["type"])
    except (LaminaError, TypeError, ValueError) as error:
        key = _key_in_message(str(error), config)
        raise run.error(str(error), table, index, key) from None


def _key_in_message(message: str, config: dict[str, Any]) -> str | None:
    for key in config:
        if f"`{key}`" in message or f".{key}`" in message or f"'{key}'" in message:
            return key
    return None


# -- data ---------------------------------------------------------------------------------------
@dataclass
class Data:
    """Training and test arrays of a run, with the class names when there are any."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...] | None
    description: dict[str, Any]
    feature_names: tuple[str, ...] | None = None


def load_data(run: RunConfig) -> Data:
    """The arrays the [data] table names; image sets come as uint8 NHWC (N, H, W, C)."""
    from lamina import datasets

    spec = dict(run.data)
    kind = spec.pop("dataset")
    names: tuple[str, ...] | None
    limit = spec.pop("limit", None)
    try:
        if kind in ("fashion_mnist", "mnist"):
            loader = datasets.fashion_mnist if kind == "fashion_mnist" else datasets.mnist
            (X, y), (X_test, y_test) = loader(spec.get("path"))
            names = (
                datasets.FASHION_MNIST_CLASSES
                if kind == "fashion_mnist"
                else datasets.MNIST_CLASSES
            )
            data = Data(X[..., None], y, X_test[..., None], y_test, tuple(names), run.data)
        elif kind in ("spiral", "vertical", "sine"):
            X, y = getattr(datasets, kind)(**spec)
            names = None if kind == "sine" else tuple(str(c) for c in range(int(y.max()) + 1))
            data = Data(X, y, None, None, names, run.data)
        elif kind == "image_folder":
            train = datasets.image_folder(
                spec["path"],
                size=tuple(spec.get("size", (28, 28))),
                grayscale=spec.get("grayscale", True),
            )
            test = None
            if "test_path" in spec:
                test = datasets.image_folder(
                    spec["test_path"],
                    size=tuple(spec.get("size", (28, 28))),
                    grayscale=spec.get("grayscale", True),
                    class_names=train.class_names,
                )
            data = Data(
                train.images,
                train.labels,
                None if test is None else test.images,
                None if test is None else test.labels,
                tuple(train.class_names),
                run.data,
            )
        else:
            table = datasets.load_csv(
                spec["path"], spec["target"], delimiter=spec.get("delimiter", ",")
            )
            test_X = test_y = None
            if "test_path" in spec:
                test_table = datasets.load_csv(
                    spec["test_path"], spec["target"], delimiter=spec.get("delimiter", ",")
                )
                test_X, test_y = test_table.X, test_table.y
            labels = getattr(table, "class_names", None)
            names = None if labels is None else tuple(labels)
            data = Data(
                table.X, table.y, test_X, test_y, names, run.data, tuple(table.feature_names)
            )
    except KeyError as error:
        raise run.error(f"missing key `{error.args[0]}` for dataset {kind!r}.", "data") from None
    except (LaminaError, TypeError, OSError) as error:
        if isinstance(error, FileNotFoundError) or isinstance(error, LaminaError):
            raise run.error(str(error).splitlines()[0], "data", key="path") from None
        raise run.error(str(error), "data") from None
    if limit is not None:
        data.X_train, data.y_train = data.X_train[:limit], data.y_train[:limit]
    return data
