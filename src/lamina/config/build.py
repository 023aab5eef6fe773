"""The objects a checked config describes: the compiled model and the callbacks of a run.

A constructor that refuses an argument raises a ``ConfigError`` whose ``argument`` names it
(:mod:`lamina._params`); the error is reported at that key's line, else at the table's.
"""

from __future__ import annotations

import inspect
import os
import string
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lamina import augmentation, callbacks, losses, optimizers, preprocessing
from lamina._params import Rule
from lamina.config.run import RunConfig
from lamina.config.schema import LOSS, TABLES, parameters
from lamina.config.source import shown
from lamina.config.values import PathText
from lamina.datasets.checks import Worded
from lamina.errors import ConfigError, LaminaError
from lamina.layers import serialization
from lamina.model import Model

_FILE_NAME = Rule([Worded(PathText(), "a file name, as a string")])


def build_model(run: RunConfig, *, seed: int | None = None) -> Model:
    """The compiled Model a config describes (seed overrides [model] seed)."""
    layers = _each(run, "layers", serialization.deserialize)
    steps = _each(run, "preprocessing", preprocessing.deserialize)
    pipeline = None
    if steps:
        pipeline = steps[0] if len(steps) == 1 else preprocessing.Pipeline(steps)
    augments = _each(run, "augmentation", augmentation.deserialize)
    shape = run.model.get("input_shape")
    try:
        model = Model(
            layers,
            seed=run.model.get("seed") if seed is None else seed,
            dtype=run.model.get("dtype", "float32"),
            preprocessing=pipeline,
            augmentation=augments,
            input_shape=None if shape is None else tuple(shape),
        )
    except LaminaError as error:
        unsized = [i for i, layer in enumerate(layers) if not layer.built]
        if not unsized:
            raise run.error(str(error), "layers") from None
        index = unsized[0]
        argument = layers[index].inferred_size
        raise run.error(
            f"no `{argument}`: the size of this layer's inputs is not given, and nothing "
            f"before it fixes it ([model] has no input_shape). Fix: add {argument} = ... "
            "(the size of its inputs' last axis), or set [model] input_shape to the data's "
            "per-sample shape after [[preprocessing]], e.g. input_shape = [28, 28, 1] for "
            "images or [784] for flat rows.",
            "layers",
            index,
        ) from None
    optimizer = (
        _build(
            run, "optimizer", None, lambda c, k: optimizers.OPTIMIZERS.lookup(k)(**c), run.optimizer
        )
        if run.optimizer
        else "adam"
    )
    loss = run.compile["loss"]
    if isinstance(loss, dict):
        loss = _build(
            run, "compile", None, lambda c, k: losses.LOSSES.lookup(k)(**c), loss, at="loss"
        )
    try:
        model.compile(
            loss=loss,
            optimizer=optimizer,
            metrics=run.compile.get("metrics", "auto"),
        )
    except LaminaError as error:
        raise run.error(str(error), "compile", key="loss") from None
    return model


def _each(run: RunConfig, table: str, deserialize: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """The objects of an array of typed tables, built by their registry's ``deserialize``."""
    return [
        _build(run, table, index, lambda c, k: deserialize({"class": k, "config": c}), item)
        for index, item in enumerate(getattr(run, table))
    ]


def build_callbacks(
    run: RunConfig, out: Path, model: Model, *, epochs: int | None = None
) -> list[Any]:
    """The [[callbacks]] of a run whose files go under ``out``, for ``model`` (the model
    about to be trained, whose metrics name the values the run logs).

    A callback's ``epochs`` (``cosine_decay``'s span) follows the run: left out, or equal
    to [train] epochs, it becomes ``epochs`` — the epochs the model will have trained when
    the run ends (``--epochs``, plus those before for ``--resume``).

    Everything that would fail only during training is refused here, before the first
    epoch: a ``path`` (or a TensorBoard ``log_dir``) outside ``out`` (absolute, or escaping
    it with ``..``), a checkpoint template naming a value the run does not log or that does
    not parse, a ``monitor`` the run does not log.
    """
    logged = _logged_names(run, model)
    built = []
    for index, item in enumerate(run.callbacks):
        config = {k: v for k, v in item.items() if k != "type"}
        follows = config.get("epochs", run.train.get("epochs", 10)) == run.train.get("epochs", 10)
        if epochs is not None and follows and "epochs" in _arguments("callbacks", item):
            config["epochs"] = epochs
        for key in ("path", "log_dir"):  # files and folders go under the run's output folder
            if key not in config:
                continue
            _check_inside(run, index, config[key], key)
            if item["type"] == "model_checkpoint":
                _check_template(run, index, config[key], logged)
            config[key] = str(out / config[key])
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


def _logged_names(run: RunConfig, model: Model) -> list[str]:
    """The values ``fit`` will log each epoch: loss and the metrics, and their ``val_``
    versions when [train] validation_split holds some data out."""
    names = ["loss", *(metric.name for metric in model.metrics)]
    if run.train.get("validation_split", 0.0) > 0:
        names += [f"val_{name}" for name in names]
    return names


def _check_inside(run: RunConfig, index: int, path: Any, key: str = "path") -> None:
    """``key`` (``path``: a file, ``log_dir``: a folder) names a place inside --out."""
    example = '"tensorboard"' if key == "log_dir" else '"checkpoints/best.lamina"'
    fix = f"Fix: give a path relative to the --out folder, e.g. {key} = {example}."
    try:
        _FILE_NAME.check("", key, path)
    except ConfigError:
        raise run.error(
            f"Invalid value for `{key}`: expected {_FILE_NAME.describe()}, received "
            f"{shown(path)}. {fix}",
            "callbacks",
            index,
            key,
        ) from None
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if os.path.isabs(path):
        problem = "is absolute"
    elif _escapes(parts):
        problem = "leaves the --out folder through `..`"
    elif key == "path" and (not parts or parts[-1] in (".", "..")):
        problem = "names a folder, not a file"
    else:
        return
    raise run.error(
        f"the path {shown(path)} {problem}; a run writes its files only inside its "
        f"--out folder. {fix}",
        "callbacks",
        index,
        key,
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
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise run.error(
            f"the checkpoint path {shown(template)} is not a valid template ({error}). "
            f"Fix: close every {{ with }} (write {{{{ for a literal brace); {fix}.",
            "callbacks",
            index,
            "path",
        ) from None
    for name in fields:
        if name not in allowed:
            raise run.error(
                f"the checkpoint path {shown(template)} names {{{name}}}, which this run "
                f"does not log. Fix: {fix}.",
                "callbacks",
                index,
                "path",
            )
    try:  # the format specs too: {loss:d} fails on a float
        template.format(epoch=1, **dict.fromkeys(logged, 0.5))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise run.error(
            f"the checkpoint path {shown(template)} cannot be formatted ({error}). "
            "Fix: use {epoch:02d} for the epoch and e.g. {val_loss:.3f} for a logged value.",
            "callbacks",
            index,
            "path",
        ) from None


def _check_monitor(run: RunConfig, index: int, item: dict[str, Any], logged: list[str]) -> None:
    arguments = parameters(TABLES["callbacks"].entry(item["type"]))
    if "monitor" not in arguments:
        return
    if item["type"] == "model_checkpoint" and not item.get("save_best_only", False):
        return  # a checkpoint compares the monitored value only to keep the best
    monitor = item.get("monitor", arguments["monitor"].default)
    if monitor not in logged:
        default = "" if "monitor" in item else " (the default)"
        hint = (
            ", or set [train] validation_split = 0.1 to log val_ values"
            if isinstance(monitor, str) and monitor.startswith("val_")
            else ""
        )
        raise run.error(
            f"monitor = {shown(monitor)}{default} is not a value this run logs. Fix: "
            f"monitor one of {', '.join(logged)}{hint}.",
            "callbacks",
            index,
            "monitor",
        )


def _arguments(table: str, item: dict[str, Any]) -> Mapping[str, inspect.Parameter]:
    """The constructor arguments of the class ``item``'s ``type`` names in ``table``."""
    cls = (LOSS if table == "loss" else TABLES[table]).entry(item.get("type"))
    return {} if cls is None else parameters(cls)


def _build(
    run: RunConfig,
    table: str,
    index: int | None,
    make: Callable[[dict[str, Any], str], Any],
    item: dict[str, Any],
    *,
    at: str | None = None,
) -> Any:
    """``make(arguments, type)``; an error names the line of the refused argument's key (of
    ``at`` for an inline table, whose keys share its line), else the table's."""
    config = {k: v for k, v in item.items() if k != "type"}
    arguments = _arguments(table if at is None else "loss", item)
    for name, parameter in arguments.items():
        if parameter.default is inspect.Parameter.empty and name not in config:
            raise run.error(
                f"missing key `{name}`: {item['type']} needs it. Fix: add {name} = ... to this "
                f"table ({', '.join(arguments)} are its keys).",
                table,
                index,
                at,
            )
    try:
        return make(config, item["type"])
    except (LaminaError, TypeError, ValueError) as error:
        argument = getattr(error, "argument", None)
        key = at or (argument if argument in config else None)
        raise run.error(str(error), table, index, key) from None
