"""The values a search tries: lists, ranges drawn at random (:class:`RandomSearch`), and
their command-line form (``--grid KEY=V1,V2``, ``KEY=log_uniform:LOW:HIGH``)."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lamina.errors import ConfigError, invalid

DISTRIBUTIONS = ("log_uniform", "uniform", "int")
"""The kinds of range: ``(kind, low, high)``."""


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
        if kind.strip() in DISTRIBUTIONS and rest:
            bounds = rest.split(":")
            if len(bounds) != 2:
                raise ConfigError(
                    invalid(key, f"{kind}:LOW:HIGH", repr(values), f"write e.g. {key}={kind}:1:10")
                )
            low, high = (parse_value(bound) for bound in bounds)
            distributions[key] = check_distribution(key, (kind.strip(), low, high))
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


def check_distribution(key: str, value: Any) -> Any:
    """``value`` as a list of values, a ``(kind, low, high)`` range or an object with
    ``rvs``; else a ConfigError naming ``key``."""
    if hasattr(value, "rvs"):
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        kind = value[0]
        if kind not in DISTRIBUTIONS or len(value) != 3:
            raise ConfigError(
                invalid(
                    key,
                    f"(kind, low, high) with kind one of {', '.join(DISTRIBUTIONS)}",
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


def draw(distribution: Any, rng: np.random.Generator) -> Any:
    """One value of a checked distribution: a list item, a number in a range, or ``rvs``."""
    if isinstance(distribution, list):
        return plain(distribution[int(rng.integers(len(distribution)))])
    if isinstance(distribution, tuple):
        kind, low, high = distribution
        if kind == "log_uniform":
            return float(np.exp(rng.uniform(math.log(low), math.log(high))))
        if kind == "uniform":
            return float(rng.uniform(low, high))
        return int(rng.integers(int(low), int(high) + 1))
    return plain(distribution.rvs(random_state=rng))


def plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so configs stay TOML/JSON values."""
    return value.item() if isinstance(value, np.generic) else value
