"""Hyper-parameters as config keys (``optimizer.learning_rate``, ``layers[0].n_neurons``),
applied to a copy of a run config; which keys a table accepts is read from the schema."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lamina.config.schema import LOSS, SECTIONS, TABLES, Table, keys_of
from lamina.errors import ConfigError, invalid

# A key is a name followed by `.name` and `[index]` parts: `optimizer.learning_rate`,
# `layers[0].n_neurons`, `train.batch_size`.
_KEY_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")

Token = str | int


def set_config_value(config: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of a config dict (parsed TOML) with one key set: ``set_config_value(c,
    "layers[0].n_neurons", 32)`` sets ``c["layers"][0]["n_neurons"]``.

    The path up to the last part must exist (an index must be within its array); the last
    part may be a key the table leaves out if it is one the table accepts (a ``[train]``
    setting, a constructor argument of the layer's or optimizer's type). ``[train]`` and
    ``[model]`` are created if missing. ``a+b`` sets both keys to the value, e.g.
    ``layers[0].n_neurons+layers[1].n_inputs`` to resize a hidden layer.

    Raises:
        ConfigError: a malformed key, or one the config does not have; the message names
            the key, what is there, and the nearest valid key.
    """
    return apply_params(config, {key: value})


def apply_params(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with every ``key: value`` of ``params`` set, as
    :func:`set_config_value` does; ``config`` itself is left unchanged."""
    if not isinstance(config, Mapping):
        raise ConfigError(invalid("config", "a config dict (parsed TOML)", type(config).__name__))
    root: dict[str, Any] = copy.deepcopy(dict(config))
    for key, value in params.items():
        if not isinstance(key, str):
            raise ConfigError(
                invalid("key", "a config key string such as 'optimizer.learning_rate'", repr(key))
            )
        for part in key.split("+"):
            _set_path(root, part.strip(), copy.deepcopy(value))
    return root


def _parse_key(key: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(key):
        match = _KEY_PART.match(key, position)
        # A name needs a dot before it, except the first; an index never does.
        if match is None or (
            match.group(1) is not None and (match.group(0)[0] == ".") != bool(tokens)
        ):
            raise ConfigError(
                invalid(
                    "key",
                    "config keys joined by dots, with [i] for an array item",
                    repr(key),
                    "write e.g. 'optimizer.learning_rate' or 'layers[0].n_neurons'",
                )
            )
        tokens.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not tokens:
        raise ConfigError(
            invalid("key", "a config key", "an empty key", "write e.g. 'train.epochs'")
        )
    return tokens


def _format_key(tokens: Sequence[Token]) -> str:
    text = ""
    for token in tokens:
        text += f"[{token}]" if isinstance(token, int) else (f".{token}" if text else token)
    return text


def _creatable(token: Token) -> bool:
    """A table a key may create when the config leaves it out: every key has a default."""
    return isinstance(token, str) and token in TABLES and TABLES[token].creatable


def _set_path(root: dict[str, Any], key: str, value: Any) -> None:
    tokens = _parse_key(key)
    node: Any = root
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        if isinstance(token, int):
            if not isinstance(node, list):
                raise _unknown_key(
                    root, key, tokens, depth, f"`{_format_key(tokens[:depth])}` is not an array"
                )
            if token >= len(node):
                raise _unknown_key(
                    root,
                    key,
                    tokens,
                    depth,
                    f"`{_format_key(tokens[:depth])}` has {len(node)} item(s), "
                    f"indices 0 to {len(node) - 1}",
                )
        else:
            if not isinstance(node, dict):
                raise _unknown_key(
                    root, key, tokens, depth, f"`{_format_key(tokens[:depth])}` is not a table"
                )
            if token not in node:
                if last and token in allowed_keys(root, tokens[:depth]):
                    node[token] = value
                    return
                if depth == 0 and _creatable(token):
                    node[token] = {}
                elif depth == 0 and token in TABLES:
                    example = 'type = "adam"' if token == "optimizer" else 'type = "..."'
                    header = f"[[{token}]]" if TABLES[token].array else f"[{token}]"
                    raise ConfigError(
                        f"Config key `{key}` names the {header} table, which the config "
                        f"leaves out. Fix: add the table, e.g. {header} {example}."
                    )
                else:
                    where = f"`{_format_key(tokens[:depth])}`" if depth else "the config"
                    raise _unknown_key(root, key, tokens, depth, f"{where} has no key `{token}`")
        if last:
            node[token] = value
            return
        node = node[token]


def allowed_keys(root: Mapping[str, Any], tokens: Sequence[Token]) -> tuple[str, ...]:
    """The keys the table at ``tokens`` accepts, whether or not the config sets them: the
    tables at the root, a plain table's keys, a typed item's ``type`` and constructor
    arguments, the dataset's keys in ``[data]``."""
    if not tokens:
        return SECTIONS
    name = tokens[0]
    table = TABLES.get(name) if isinstance(name, str) else None
    if table is None:
        return ()
    item: Any = root.get(table.name)
    if table.array:
        if len(tokens) != 2 or not isinstance(tokens[1], int):
            return ()
        index = tokens[1]
        item = item[index] if isinstance(item, list) and index < len(item) else None
    elif list(tokens[1:]) == ["loss"] and table.name == "compile":
        item = item.get("loss") if isinstance(item, Mapping) else None
        table = LOSS
        if not isinstance(item, Mapping):  # loss = "name": no keys below it
            return ()
    elif len(tokens) != 1:
        return ()
    return _keys_here(table, item if isinstance(item, Mapping) else None)


def _keys_here(table: Table, item: Mapping[str, Any] | None) -> tuple[str, ...]:
    keys = keys_of(table, item)
    if keys is not None:
        return keys
    if item is None and table.registry is not None:
        return ()  # no table there to hold a `type`
    return ("dataset",) if table.name == "data" else ("type",)


def _config_paths(root: Mapping[str, Any]) -> list[str]:
    """Every key of the config, and every key its tables accept, as dotted paths."""
    paths: list[str] = []

    def walk(node: Any, tokens: list[Token]) -> None:
        if tokens:
            paths.append(_format_key(tokens))
        if isinstance(node, dict):
            for name in dict.fromkeys([*node, *allowed_keys(root, tokens)]):
                if name in node:
                    walk(node[name], [*tokens, name])
                elif not tokens and _creatable(name):
                    walk({}, [name])
                else:
                    paths.append(_format_key([*tokens, name]))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, [*tokens, index])

    walk(root, [])
    return paths


def _unknown_key(
    root: Mapping[str, Any], key: str, tokens: Sequence[Token], depth: int, what: str
) -> ConfigError:
    paths = _config_paths(root)
    nearest = difflib.get_close_matches(key, paths, n=1, cutoff=0.5)
    parent = tokens[:depth]
    siblings = [p for p in paths if p.startswith(_format_key(parent)) and p != _format_key(parent)]
    here = [p for p in siblings if p.count(".") + p.count("[") == len(parent)]
    message = f"Unknown config key `{key}`: {what}."
    if here:
        message += f" Keys there: {', '.join(here[:30])}."
    if nearest:
        message += f" Fix: use `{nearest[0]}`."
    return ConfigError(message)
