"""The datasets a ``[data]`` table can name: one table, :data:`DATASETS`, gives each one's
keys, the keys it requires and how it is read. The config checks, :func:`load_data` and
``lamina evaluate`` all go through it.

A synthetic set's keys are its generator's arguments, checked by the generator's own rules
(:mod:`lamina.datasets.checks`), so a config and a Python call give the same message.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina import datasets
from lamina._params import Flag, Interval, Rule
from lamina.config.source import Source, nearest, shown
from lamina.config.values import PathText, check_known, check_values, written
from lamina.datasets.checks import (
    NOISE,
    SEED,
    Delimiter,
    ImageSize,
    Worded,
    check_rows,
    count_rule,
)
from lamina.datasets.images import MAX_IMAGE_PIXELS
from lamina.errors import ConfigError, LaminaError

if TYPE_CHECKING:
    from lamina.config.run import RunConfig


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


Reader = Callable[[Mapping[str, Any]], Data]  # the table's keys but dataset and limit -> Data


@dataclass(frozen=True)
class Dataset:
    """One dataset: the keys its table may hold besides ``dataset``, those it must hold,
    how it is read, and for a synthetic set its generator's defaults (its keys are the
    generator's arguments)."""

    keys: tuple[str, ...]
    read: Reader
    required: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _idx(loader: Callable[..., Any], class_names: tuple[str, ...]) -> Reader:
    def read(spec: Mapping[str, Any]) -> Data:
        (X, y), (X_test, y_test) = loader(spec.get("path"))
        return Data(X[..., None], y, X_test[..., None], y_test, class_names, {})

    return read


def _generated(generator: Callable[..., Any]) -> Dataset:
    def read(spec: Mapping[str, Any]) -> Data:
        X, y = generator(**spec)
        classification = np.issubdtype(y.dtype, np.integer)
        names = tuple(str(c) for c in range(int(y.max()) + 1)) if classification else None
        return Data(X, y, None, None, names, {})

    parameters = inspect.signature(generator).parameters
    defaults = {name: parameter.default for name, parameter in parameters.items()}
    return Dataset(tuple(parameters), read, defaults=defaults)


def _image_folder(spec: Mapping[str, Any]) -> Data:
    options = {"size": tuple(spec.get("size", (28, 28))), "grayscale": spec.get("grayscale", True)}
    train = datasets.image_folder(spec["path"], **options)
    test = None
    if "test_path" in spec:
        test = datasets.image_folder(spec["test_path"], class_names=train.class_names, **options)
    return Data(
        train.images,
        train.labels,
        None if test is None else test.images,
        None if test is None else test.labels,
        tuple(train.class_names),
        {},
    )


def _csv(spec: Mapping[str, Any]) -> Data:
    delimiter = spec.get("delimiter", ",")
    table = datasets.load_csv(spec["path"], spec["target"], delimiter=delimiter)
    test_X = test_y = None
    if "test_path" in spec:
        test = datasets.load_csv(spec["test_path"], spec["target"], delimiter=delimiter)
        test_X, test_y = test.X, test.y
    names = None if table.class_names is None else tuple(table.class_names)
    return Data(table.X, table.y, test_X, test_y, names, {}, tuple(table.feature_names))


DATASETS: dict[str, Dataset] = {
    "fashion_mnist": Dataset(
        ("path", "limit"), _idx(datasets.fashion_mnist, datasets.FASHION_MNIST_CLASSES)
    ),
    "mnist": Dataset(("path", "limit"), _idx(datasets.mnist, datasets.MNIST_CLASSES)),
    "spiral": _generated(datasets.spiral),
    "vertical": _generated(datasets.vertical),
    "sine": _generated(datasets.sine),
    "adding_problem": _generated(datasets.adding_problem),
    "noisy_sine": _generated(datasets.noisy_sine),
    "image_folder": Dataset(
        ("path", "test_path", "size", "grayscale", "limit"), _image_folder, required=("path",)
    ),
    "csv": Dataset(
        ("path", "test_path", "target", "delimiter", "limit"), _csv, required=("path", "target")
    ),
}
DATA_KEYS = {name: dataset.keys for name, dataset in DATASETS.items()}
DATA_REQUIRED = {name: dataset.required for name, dataset in DATASETS.items() if dataset.required}

EXAMPLES = {"path": '"data/train"', "target": '"label"'}
RULES: dict[str, Rule] = {
    "path": written("path", PathText(), EXAMPLES["path"]),
    "test_path": written("test_path", PathText(), '"data/test"'),
    "target": written(
        "target", Worded(PathText(), "a column name, as a string"), EXAMPLES["target"]
    ),
    "limit": written("limit", Worded(Interval(int, 1), "an integer >= 1"), "1000"),
    "size": written(
        "size",
        Worded(
            ImageSize(),
            f"[height, width], two integers >= 1 of at most {MAX_IMAGE_PIXELS:,} pixels",
        ),
        "[28, 28]",
    ),
    "grayscale": written("grayscale", Worded(Flag(), "true or false"), "true"),
    "delimiter": written("delimiter", Delimiter(), '";"'),
    # the generators' own rules, so that Python and a config give the same message
    "samples": count_rule("samples", 1, 100),
    "classes": count_rule("classes", 1, 3),
    "steps": count_rule("steps", 2, 50),
    "horizon": count_rule("horizon", 1, 1),
    "noise": NOISE,
    "seed": SEED,
}
GENERATOR_KEYS = ("samples", "classes", "steps", "horizon", "noise", "seed")


def check_data(table: Mapping[str, Any], source: Source) -> Dataset:
    """Check a [data] table: a known dataset, its keys, their values; returns the dataset.

    Raises:
        ConfigFileError: at the line of the first problem.
    """
    name = table.get("dataset")
    if not isinstance(name, str) or name not in DATASETS:
        raise source.error(
            f"unknown dataset {shown(name)}{nearest(str(name), DATASETS)}; "
            f"expected one of {', '.join(DATASETS)}.",
            "data",
            key="dataset",
        )
    dataset = DATASETS[name]
    check_known(source, table, ("dataset", *dataset.keys), "data")
    for key in dataset.required:
        if key not in table:
            raise source.error(
                f"missing key `{key}` for dataset {name!r}. Fix: add {key} = {EXAMPLES[key]}.",
                "data",
            )
    check_values(source, "data", table, RULES, as_python=GENERATOR_KEYS)
    if dataset.defaults:  # a generator: refuse more rows than it may make before it runs
        arguments = {**dataset.defaults, **table}
        try:
            steps = arguments.get("steps", 1) + arguments.get("horizon", 0)
            check_rows(arguments["samples"], arguments.get("classes", 1), steps=steps)
        except ConfigError as error:
            raise source.error(str(error), "data", key="samples") from None
    return dataset


def read_data(table: Mapping[str, Any], source: Source) -> Data:
    """The arrays a [data] table names, checked first; image sets come as uint8 NHWC."""
    dataset = check_data(table, source)
    table = resolved_paths(table, source)
    spec = {key: value for key, value in table.items() if key not in ("dataset", "limit")}
    try:
        data = dataset.read(spec)
    except (LaminaError, TypeError, OSError) as error:
        message = " ".join(str(error).split())  # one line, keeping a multi-line message's fix
        key = "path" if isinstance(error, FileNotFoundError | LaminaError) else None
        if key and source.text:
            message += f" (Relative paths in a config are read from its folder, {_folder(source)}.)"
        raise source.error(message, "data", key=key) from None
    data = dataclasses.replace(data, description=dict(table))
    limit = table.get("limit")
    if limit is not None:
        data.X_train, data.y_train = data.X_train[:limit], data.y_train[:limit]
    return data


PATH_KEYS = ("path", "test_path")


def resolved_paths(table: Mapping[str, Any], source: Source) -> dict[str, Any]:
    """``table`` with its relative paths read from the config file's folder (not the
    current one) and made absolute, so that the record a model keeps finds them from
    anywhere. A table that did not come from a file (a model's record) keeps its paths."""
    if not source.text:
        return dict(table)
    return {
        key: os.path.abspath(_folder(source) / os.path.expanduser(value))
        if key in PATH_KEYS and isinstance(value, str)
        else value
        for key, value in table.items()
    }


def _folder(source: Source) -> Path:
    return Path(os.path.abspath(source.path)).parent


def load_data(run: RunConfig) -> Data:
    """The arrays a run's [data] table names; image sets come as uint8 NHWC (N, H, W, C)."""
    return read_data(run.data, run)
