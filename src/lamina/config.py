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

Every table, key and value is checked when the file is loaded: an unknown key, a value of
the wrong type or out of range, or an unknown class raises :class:`ConfigFileError` naming
the file, the line, the key and the nearest valid name or the fix. Only a regular file of at
most :data:`CONFIG_LIMIT` bytes is read.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import os
import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from lamina._files import read_regular
from lamina.datasets import synthetic
from lamina.datasets.folders import MAX_IMAGE_PIXELS
from lamina.errors import ConfigError, LaminaError, invalid

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
DATA_REQUIRED: dict[str, tuple[str, ...]] = {"image_folder": ("path",), "csv": ("path", "target")}
TRAIN_KEYS = ("epochs", "batch_size", "shuffle", "validation_split", "verbose")
COMPILE_KEYS = ("loss", "metrics")
MODEL_KEYS = ("seed", "dtype")
CONFIG_LIMIT = 1024 * 1024  # bytes: a config is a page of text; anything larger is a mistake


class ConfigFileError(ConfigError):
    """A config file that cannot be run: names the file, the line and the key."""


@dataclass
class RunConfig:
    """A parsed and checked config; ``path`` and ``text`` locate errors."""

    path: Path
    text: str
    data: dict[str, Any]
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    augmentation: list[dict[str, Any]] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    compile: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def error(
        self, message: str, table: str, index: int | None = None, key: str | None = None
    ) -> ConfigFileError:
        where = f"[[{table}]] #{index + 1}" if index is not None else f"[{table}]"
        if not self.text:  # a dict (a search's trial, a model's data record): no lines
            return ConfigFileError(f"{self.path}: {where}: {message}")
        line = _line_of(self.text, table, index, key)
        return ConfigFileError(f"{self.path}:{line}: {where}: {message}")


def load_config(path: str | Path) -> RunConfig:
    """Read and check a TOML run config (everything but building the objects)."""
    path = Path(path)
    data = read_regular(path, what="config file", limit=CONFIG_LIMIT, error=ConfigFileError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigFileError(
            f"{path}: not UTF-8 text ({error}). Fix: save the config as UTF-8."
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not valid TOML: {error}.") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigFileError(
            f"{path}: not a usable config: its arrays or inline tables are nested too deeply "
            "to parse. Fix: nest them at most a few levels deep."
        ) from None
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
    _check_values(run)
    return run


def data_config(data: Any, path: str | Path) -> RunConfig:
    """A run holding only a [data] table, checked as :func:`load_config` checks one: e.g.
    the data record a model file keeps, which ``lamina evaluate`` loads again."""
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{path}: [data]: expected a table naming a dataset, received "
            f"{_shown(data)}. Fix: pass the data explicitly (--data)."
        )
    run = RunConfig(path=Path(path), text="", data=data)
    _check_data(run)
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
    _check_data_keys(run)
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


def _check_data_keys(run: RunConfig) -> None:
    dataset = run.data.get("dataset")
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise run.error(
            f"unknown dataset {_shown(dataset)}{_nearest(str(dataset), DATASETS)}; "
            f"expected one of {', '.join(DATASETS)}.",
            "data",
            key="dataset",
        )
    _known(run, run.data, ("dataset", *DATA_KEYS[dataset]), "data")
    for key in DATA_REQUIRED.get(dataset, ()):
        if key not in run.data:
            example = DATA_EXAMPLES[key]
            raise run.error(
                f"missing key `{key}` for dataset {dataset!r}. Fix: add {key} = {example}.",
                "data",
            )


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


# -- values -----------------------------------------------------------------------------------
Check = Callable[[str, Any], object]  # raises ConfigError with an `invalid` message


def _rule(expected: str, test: Callable[[Any], bool], example: str) -> Check:
    def check(key: str, value: Any) -> None:
        if not test(value):
            raise ConfigError(invalid(key, expected, _shown(value), f"write {key} = {example}"))

    return check


def _is_int(value: Any, minimum: int) -> bool:
    return (
        isinstance(value, int | np.integer)
        and not isinstance(value, bool | np.bool_)
        and bool(value >= minimum)
    )


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and "\0" not in value


def _is_size(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(_is_int(side, 1) for side in value)
        and value[0] * value[1] <= MAX_IMAGE_PIXELS
    )


TRAIN_CHECKS: dict[str, Check] = {
    "epochs": _rule("an integer >= 1", lambda v: _is_int(v, 1), "10"),
    "batch_size": _rule("an integer >= 1", lambda v: _is_int(v, 1), "32"),
    "validation_split": _rule(
        "a float in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1, "0.1"
    ),
    "shuffle": _rule("true or false", lambda v: isinstance(v, bool), "true"),
    "verbose": _rule("0, 1 or 2", lambda v: _is_int(v, 0) and v <= 2, "2"),
}
MODEL_CHECKS: dict[str, Check] = {
    "seed": _rule("an integer >= 0", lambda v: _is_int(v, 0), "0"),
    "dtype": _rule(
        '"float32" or "float64"',
        lambda v: isinstance(v, str) and v in ("float32", "float64"),
        '"float32"',
    ),
}
COMPILE_CHECKS: dict[str, Check] = {
    "metrics": _rule(
        "a list of metric names",
        lambda v: isinstance(v, list) and all(isinstance(name, str) for name in v),
        '["accuracy"]',
    ),
}
DATA_EXAMPLES = {"path": '"data/train"', "target": '"label"'}
DATA_CHECKS: dict[str, Check] = {
    "path": _rule("a path, as a string", _is_path, DATA_EXAMPLES["path"]),
    "test_path": _rule("a path, as a string", _is_path, '"data/test"'),
    "target": _rule("a column name, as a string", _is_path, DATA_EXAMPLES["target"]),
    "limit": _rule("an integer >= 1", lambda v: _is_int(v, 1), "1000"),
    "size": _rule(
        f"[height, width], two integers >= 1 of at most {MAX_IMAGE_PIXELS:,} pixels",
        _is_size,
        "[28, 28]",
    ),
    "grayscale": _rule("true or false", lambda v: isinstance(v, bool), "true"),
    "delimiter": _rule(
        "one character other than a quote or a newline",
        lambda v: isinstance(v, str) and len(v) == 1 and v not in '"\r\n',
        '";"',
    ),
    # the generators' own checks, so that Python and a config give the same message
    "samples": lambda key, v: synthetic.check_count(key, v, 1, 100),
    "classes": lambda key, v: synthetic.check_count(key, v, 1, 3),
    "noise": lambda key, v: synthetic.check_noise(v),
    "seed": lambda key, v: synthetic.check_seed(v),
}


def _check_values(run: RunConfig) -> None:
    """Check every value of [data], [model], [compile] metrics and [train] (the other tables
    are checked by the constructors they are passed to, in :func:`build_model`)."""
    _check_data(run)
    for table, values, checks in (
        ("model", run.model, MODEL_CHECKS),
        ("compile", run.compile, COMPILE_CHECKS),
        ("train", run.train, TRAIN_CHECKS),
    ):
        _check_table(run, table, values, checks)


def _check_data(run: RunConfig) -> None:
    _check_data_keys(run)
    _check_table(run, "data", run.data, DATA_CHECKS)
    dataset = run.data["dataset"]
    if dataset in ("spiral", "vertical", "sine"):
        samples = run.data.get("samples", 1000 if dataset == "sine" else 100)
        classes = 1 if dataset == "sine" else run.data.get("classes", 3)
        try:
            synthetic.check_rows(samples, classes)
        except ConfigError as error:
            raise run.error(str(error), "data", key="samples") from None


def _check_table(
    run: RunConfig, table: str, values: dict[str, Any], checks: dict[str, Check]
) -> None:
    for key, value in values.items():
        if key in checks:
            try:
                checks[key](key, value)
            except ConfigError as error:
                raise run.error(str(error), table, key=key) from None


def _shown(value: Any) -> str:
    """A value as the TOML file writes it (true, "text"), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)  # double quotes, control characters escaped
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


def build_callbacks(run: RunConfig, out: Path, model: Any) -> list[Any]:
    """The [[callbacks]] of a run whose files go under ``out``, for ``model`` (the model
    about to be trained, whose metrics name the values the run logs).

    Everything that would fail only during training is refused here, before the first
    epoch: a ``path`` outside ``out`` (absolute, or escaping it with ``..``), a checkpoint
    template naming a value the run does not log or that does not parse, a ``monitor`` the
    run does not log.
    """
    from lamina import callbacks

    logged = _logged_names(run, model)
    built = []
    for index, item in enumerate(run.callbacks):
        config = {k: v for k, v in item.items() if k != "type"}
        if "path" in config:  # files go under the run's output folder
            _check_inside(run, index, config["path"])
            if item["type"] == "model_checkpoint":
                _check_template(run, index, config["path"], logged)
            config["path"] = str(out / config["path"])
        _check_monitor(run, index, item, logged)
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


def _logged_names(run: RunConfig, model: Any) -> list[str]:
    """The values ``fit`` will log each epoch: loss and the metrics, and their ``val_``
    versions when [train] validation_split holds some data out."""
    names = ["loss", *(metric.name for metric in model.metrics)]
    if run.train.get("validation_split", 0.0) > 0:
        names += [f"val_{name}" for name in names]
    return names


def _check_inside(run: RunConfig, index: int, path: Any) -> None:
    fix = 'Fix: give a path relative to the --out folder, e.g. path = "checkpoints/best.lamina".'
    if not _is_path(path):
        raise run.error(
            f"Invalid value for `path`: expected a file name, as a string, received "
            f"{_shown(path)}. {fix}",
            "callbacks",
            index,
            "path",
        )
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if os.path.isabs(path):
        problem = "is absolute"
    elif _escapes(parts):
        problem = "leaves the --out folder through `..`"
    elif not parts or parts[-1] in (".", ".."):
        problem = "names a folder, not a file"
    else:
        return
    raise run.error(
        f"the path {_shown(path)} {problem}; a run writes its files only inside its "
        f"--out folder. {fix}",
        "callbacks",
        index,
        "path",
    )


def _escapes(parts: tuple[str, ...]) -> bool:
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _check_template(run: RunConfig, index: int, template: str, logged: list[str]) -> None:
    """A checkpoint path is formatted with ``epoch`` and the logged values after each
    epoch: check now that it parses and names only those (plain names: no ``.attr``)."""
    allowed = ["epoch", *logged]
    fix = f"the fields a checkpoint path may hold are {', '.join('{' + n + '}' for n in allowed)}"
    if not any(name.startswith("val_") for name in logged):
        fix += " (val_ values only with [train] validation_split > 0)"
    try:
        fields = [
            name for _, name, _, _ in string.Formatter().parse(template) if name is not None
        ]
    except ValueError as error:
        raise run.error(
            f"the checkpoint path {_shown(template)} is not a valid template ({error}). "
            f"Fix: close every {{ with }} (write {{{{ for a literal brace); {fix}.",
            "callbacks",
            index,
            "path",
        ) from None
    for name in fields:
        if name not in allowed:
            raise run.error(
                f"the checkpoint path {_shown(template)} names {{{name}}}, which this run "
                f"does not log. Fix: {fix}.",
                "callbacks",
                index,
                "path",
            )
    try:  # the format specs too: {loss:d} fails on a float
        template.format(epoch=1, **dict.fromkeys(logged, 0.5))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise run.error(
            f"the checkpoint path {_shown(template)} cannot be formatted ({error}). "
            "Fix: use {epoch:02d} for the epoch and e.g. {val_loss:.3f} for a logged value.",
            "callbacks",
            index,
            "path",
        ) from None


def _check_monitor(run: RunConfig, index: int, item: dict[str, Any], logged: list[str]) -> None:
    from lamina import callbacks

    parameters = inspect.signature(callbacks.CALLBACKS[item["type"]].__init__).parameters
    if "monitor" not in parameters:
        return
    if item["type"] == "model_checkpoint" and not item.get("save_best_only", False):
        return  # a checkpoint compares the monitored value only to keep the best
    monitor = item.get("monitor", parameters["monitor"].default)
    if monitor not in logged:
        default = "" if "monitor" in item else " (the default)"
        hint = (
            ", or set [train] validation_split = 0.1 to log val_ values"
            if isinstance(monitor, str) and monitor.startswith("val_")
            else ""
        )
        raise run.error(
            f"monitor = {_shown(monitor)}{default} is not a value this run logs. Fix: "
            f"monitor one of {', '.join(logged)}{hint}.",
            "callbacks",
            index,
            "monitor",
        )


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
        message = " ".join(str(error).split())  # one line, keeping a multi-line message's fix
        if isinstance(error, FileNotFoundError) or isinstance(error, LaminaError):
            raise run.error(message, "data", key="path") from None
        raise run.error(message, "data") from None
    if limit is not None:
        data.X_train, data.y_train = data.X_train[:limit], data.y_train[:limit]
    return data
