"""Hyper-parameters as config keys (``optimizer.learning_rate``, ``layers[0].n_neurons``),
applied to a copy of a run config, and read from the command line."""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lamina.errors import ConfigError, invalid

# A key is a name followed by `.name` and `[index]` parts: `optimizer.learning_rate`,
# `layers[0].n_neurons`, `train.batch_size`.
_KEY_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
# Tables a key may create when the config leaves them out: both have defaults for every key.
_CREATABLE = ("train", "model")
_TYPED_ARRAYS = ("layers", "preprocessing", "augmentation", "callbacks")

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
                if last and token in _allowed_keys(root, tokens[:depth]):
                    node[token] = value
                    return
                if depth == 0 and token in _CREATABLE:
                    node[token] = {}
                else:
                    where = f"`{_format_key(tokens[:depth])}`" if depth else "the config"
                    raise _unknown_key(root, key, tokens, depth, f"{where} has no key `{token}`")
        if last:
            node[token] = value
            return
        node = node[token]


def _allowed_keys(root: Mapping[str, Any], tokens: Sequence[Token]) -> tuple[str, ...]:
    """The keys the table at ``tokens`` accepts, whether or not the config sets them."""
    from lamina import augmentation, callbacks, optimizers, preprocessing
    from lamina import config as configs
    from lamina.layers.base import LAYERS

    plain = {
        "train": configs.TRAIN_KEYS,
        "model": configs.MODEL_KEYS,
        "compile": configs.COMPILE_KEYS,
    }
    registries: dict[str, Any] = {
        "optimizer": optimizers.OPTIMIZERS,
        "layers": LAYERS,
        "preprocessing": preprocessing.TRANSFORMERS,
        "augmentation": augmentation.AUGMENTATIONS,
        "callbacks": callbacks.CALLBACKS,
    }
    if not tokens:
        return tuple(configs.SECTIONS)
    table = tokens[0]
    if len(tokens) == 1 and isinstance(table, str) and table in plain:
        return tuple(plain[table])
    if list(tokens) == ["data"]:
        dataset = root.get("data", {}).get("dataset")
        return ("dataset", *configs.DATA_KEYS.get(str(dataset), ()))
    typed = (len(tokens) == 1 and table == "optimizer") or (
        len(tokens) == 2 and table in _TYPED_ARRAYS and isinstance(tokens[1], int)
    )
    if not typed:
        return ()
    item: Any = root.get(str(table))
    if isinstance(tokens[-1], int):
        item = item[tokens[-1]] if isinstance(item, list) and tokens[-1] < len(item) else None
    if not isinstance(item, dict):
        return ()
    classes = dict(registries[str(table)].items())
    kind = item.get("type")
    if kind not in classes:
        return ("type",)
    parameters = inspect.signature(classes[kind].__init__).parameters
    return ("type", *(name for name in parameters if name not in ("self", "args", "kwargs")))


def _config_paths(root: Mapping[str, Any]) -> list[str]:
    """Every key of the config, and every key its tables accept, as dotted paths."""
    paths: list[str] = []

    def walk(node: Any, tokens: list[Token]) -> None:
        if tokens:
            paths.append(_format_key(tokens))
        if isinstance(node, dict):
            for name in dict.fromkeys([*node, *_allowed_keys(root, tokens)]):
                if name in node:
                    walk(node[name], [*tokens, name])
                elif not tokens and name in _CREATABLE:
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


# --------------------------------------------------------------------------- command-line values


def parse_value(text: str) -> bool | int | float | str:
    """A command-line value as TOML would type it: ``true``/``false`` → bool, ``32`` → int,
    ``1e-3``/``0.5`` → float, ``"adam"`` or ``adam`` → str."""
    value = text.strip()
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    with contextlib.suppress(ValueError):
        number = float(value)
        if math.isfinite(number):
            return number
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["optimizer.learning_rate=0.01,0.1", "layers[0].n_neurons=32,64"]`` →
    ``{"optimizer.learning_rate": [0.01, 0.1], "layers[0].n_neurons": [32, 64]}``: the
    ``--grid KEY=V1,V2`` arguments of ``lamina search``, typed by :func:`parse_value`."""
    grid: dict[str, list[Any]] = {}
    for key, values in _split_specs(specs):
        grid[key] = [parse_value(value) for value in values.split(",")]
    return grid


def parse_distributions(specs: Sequence[str]) -> dict[str, list[Any] | tuple[str, float, float]]:
    """Like :func:`parse_grid`, and ``KEY=KIND:LOW:HIGH`` gives a range for
    :class:`RandomSearch`: ``optimizer.learning_rate=log_uniform:1e-4:1e-1``,
    ``layers[1].rate=uniform:0:0.5``, ``layers[0].n_neurons=int:16:128``."""
    distributions: dict[str, list[Any] | tuple[str, float, float]] = {}
    for key, values in _split_specs(specs):
        kind, _, rest = values.partition(":")
        if kind.strip() in _DISTRIBUTIONS and rest:
            bounds = rest.split(":")
            if len(bounds) != 2:
                raise ConfigError(
                    invalid(key, f"{kind}:LOW:HIGH", repr(values), f"write e.g. {key}={kind}:1:10")
                )
            low, high = (parse_value(bound) for bound in bounds)
            distributions[key] = _check_distribution(key, (kind.strip(), low, high))
        else:
            distributions[key] = [parse_value(value) for value in values.split(",")]
    return distributions


def _split_specs(specs: Sequence[str]) -> Iterator[tuple[str, str]]:
    if isinstance(specs, str):
        specs = [specs]
    seen: set[str] = set()
    for spec in specs:
        key, equals, values = spec.partition("=")
        key = key.strip()
        if not equals or not key or not values.strip():
            raise ConfigError(
                invalid(
                    "grid",
                    "KEY=V1,V2,... with a config key and at least one value",
                    repr(spec),
                    "write e.g. optimizer.learning_rate=0.001,0.01",
                )
            )
        if key in seen:
            raise ConfigError(
                invalid("grid", "each key once", f"{key!r} twice", "join the values with commas")
            )
        if any(not value.strip() for value in values.split(",")):
            raise ConfigError(
                invalid(
                    "grid", "non-empty values between the commas", repr(spec), "drop the empty one"
                )
            )
        seen.add(key)
        yield key, values


_DISTRIBUTIONS = ("log_uniform", "uniform", "int")


def _check_distribution(key: str, value: Any) -> Any:
    if hasattr(value, "rvs"):
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        kind = value[0]
        if kind not in _DISTRIBUTIONS or len(value) != 3:
            raise ConfigError(
                invalid(
                    key,
                    f"(kind, low, high) with kind one of {', '.join(_DISTRIBUTIONS)}",
                    repr(value),
                    "write e.g. ('log_uniform', 1e-4, 1e-1)",
                )
            )
        low, high = value[1], value[2]
        numbers = all(isinstance(b, int | float) and not isinstance(b, bool) for b in (low, high))
        if not numbers or not low < high or (kind == "log_uniform" and low <= 0):
            raise ConfigError(
                invalid(
                    key,
                    f"{kind} bounds low < high"
                    + (" with low > 0" if kind == "log_uniform" else ""),
                    repr(value),
                )
            )
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise ConfigError(invalid(key, "int bounds", repr(value), "write ('int', 16, 128)"))
        return (kind, low, high)
    if (
        isinstance(value, Sequence | np.ndarray)
        and not isinstance(value, str | bytes)
        and len(value)
    ):
        return list(value)
    raise ConfigError(
        invalid(
            key,
            "a non-empty list of values, (kind, low, high), or a distribution with rvs()",
            repr(value),
        )
    )
