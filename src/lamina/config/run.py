"""A run config read from TOML (or given as a dict) and checked against the schema: every
table, key and value, before anything is built."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina._files import read_regular
from lamina.config.data import check_data
from lamina.config.schema import LOSS, SECTIONS, TABLES, Table, keys_of
from lamina.config.source import CONFIG_LIMIT, ConfigFileError, Source, line_of, nearest, shown
from lamina.config.values import check_known, check_values


@dataclass
class RunConfig(Source):
    """A parsed and checked config, one attribute per table; ``path`` and ``text`` locate
    errors (:meth:`Source.error`)."""

    data: dict[str, Any]
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    augmentation: list[dict[str, Any]] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    compile: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)


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
                f"{path}:{line_of(text, section, None, None)}: unknown table [{section}]"
                f"{nearest(section, SECTIONS)}; the tables are {', '.join(SECTIONS)}."
            )
    tables = {name: _section(raw, table, path, text) for name, table in TABLES.items()}
    run = RunConfig(path=path, text=text, **tables)
    check_data(run.data, run)
    if not run.layers:
        raise run.error("the model needs at least one [[layers]] table.", "layers")
    for table in TABLES.values():
        if table.name == "data":
            continue
        value = getattr(run, table.name)
        items = enumerate(value) if table.array else [(None, value)]
        for index, item in items:
            _check_item(run, table, item, index)
    return run


def data_config(data: Any, path: str | Path) -> RunConfig:
    """A run holding only a [data] table, checked as :func:`load_config` checks one: e.g.
    the data record a model file keeps."""
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{path}: [data]: expected a table naming a dataset, received {shown(data)}."
        )
    run = RunConfig(path=Path(path), text="", data=data)
    check_data(data, run)
    return run


def _section(raw: dict[str, Any], table: Table, path: Path, text: str) -> Any:
    """The table (a dict) or array of tables (a list) ``raw`` holds under its name."""
    value = raw.get(table.name)
    if value is None:
        if table.required:
            raise ConfigFileError(f"{path}: the config has no [{table.name}] table.")
        return [] if table.array else {}
    line = line_of(text, table.name, None, None)
    if table.array:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ConfigFileError(
                f"{path}:{line}: {table.name} must be an array of tables [[{table.name}]]."
            )
    elif not isinstance(value, dict):
        raise ConfigFileError(
            f"{path}:{line}: {table.name} must be a table [{table.name}], "
            f"not {type(value).__name__}."
        )
    return value


def _check_item(run: RunConfig, table: Table, item: dict[str, Any], index: int | None) -> None:
    """The keys of one [table] or [[table]] entry, and the values of a plain table."""
    if table.registry is not None:
        if not table.array and not item:
            return  # [optimizer] left out: Adam with its defaults
        _check_typed(run, table, item, table.name, index)
        return
    check_known(run, item, table.keys, table.name)
    if table.name == "compile":
        if "loss" not in item:
            raise run.error(
                'missing key `loss`, e.g. loss = "categorical_crossentropy".', "compile"
            )
        if isinstance(item["loss"], dict):  # loss = {type = "...", label_smoothing = 0.1}
            _check_typed(run, LOSS, item["loss"], "compile", None)
    check_values(run, table.name, item, table.rules)


def _check_typed(
    run: RunConfig, table: Table, item: dict[str, Any], where: str, index: int | None
) -> None:
    keys = keys_of(table, item)
    if keys is None:
        assert table.registry is not None
        names = sorted(table.registry)
        raise run.error(
            f"unknown type {item.get('type')!r}{nearest(str(item.get('type')), names)}; "
            f"expected one of {', '.join(names)}.",
            where,
            index,
            "type",
        )
    check_known(run, item, keys, where, index)
