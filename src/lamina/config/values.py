"""The keys and values of a config's tables, checked; values by :mod:`lamina._params` rules.

The constraints below are the kinds of value a config holds that ``_params`` has no class
for. :func:`check_values` reports a refused value at its key's line, showing it as the TOML
file writes it (``true``, ``"text"``); keys that are a Python function's arguments (the
synthetic generators') keep the message the Python API gives, so a config and a call say
the same. :func:`check_known` refuses a key a table does not take.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any

from lamina._params import Constraint, Rule
from lamina.config.source import Source, nearest, shown
from lamina.errors import ConfigError, invalid


class PathText(Constraint):
    """A string that names a file or a column: not blank, no NUL."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise ValueError
        return value

    def describe(self) -> str:
        return "a path, as a string"

    def refused(self) -> list[Any]:
        return [3, True, " ", "a\0b"]


class Names(Constraint):
    """A list of strings (metric names)."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise ValueError
        return value

    def describe(self) -> str:
        return "a list of metric names"

    def refused(self) -> list[Any]:
        return ["accuracy", [1], True]


class Sizes(Constraint):
    """A non-empty list of sizes, integers ≥ 1 (a per-sample shape: ``[28, 28, 1]``)."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError
        for size in value:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError
        return value

    def describe(self) -> str:
        return "a list of sizes >= 1, the per-sample shape of the data"

    def refused(self) -> list[Any]:
        return [784, [], [28, 0], [True], ["28"]]


class ClassWeights(Constraint):
    """``"balanced"``, or a table of class label → weight ≥ 0 (``{"0" = 1.0, "1" = 5.0}``)."""

    def convert(self, value: Any) -> Any:
        if value == "balanced":
            return value
        if not isinstance(value, dict) or not value:
            raise ValueError
        for key, weight in value.items():
            if not str(key).strip().isdigit():
                raise ValueError
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
                raise ValueError
        return value

    def describe(self) -> str:
        return '"balanced" or a table of class weights, e.g. {"0" = 1.0, "1" = 5.0}'

    def refused(self) -> list[Any]:
        return ["even", {"a": 1.0}, {"0": -1.0}, True]


def written(key: str, constraint: Constraint, example: str) -> Rule:
    """The rule of a config key whose fix shows the line to write: ``epochs = 10``."""
    return Rule([constraint], fix=f"write {key} = {example}")


def check_known(
    source: Source,
    values: Mapping[str, Any],
    allowed: Sequence[str],
    table: str,
    index: int | None = None,
) -> None:
    """Refuse the first key of ``values`` that is not in ``allowed``, naming the nearest."""
    for key in values:
        if key not in allowed:
            raise source.error(
                f"unknown key `{key}`{nearest(key, allowed)}; valid keys: {', '.join(allowed)}.",
                table,
                index,
                key,
            )


def check_values(
    source: Source,
    table: str,
    values: Mapping[str, Any],
    rules: Mapping[str, Rule],
    *,
    as_python: Container[str] = (),
) -> None:
    """Check each value of ``values`` that ``rules`` has a rule for; the message of a key in
    ``as_python`` is the rule's own (the value as Python shows it).

    Raises:
        ConfigFileError: at the line of the first refused key.
    """
    for key, value in values.items():
        rule = rules.get(key)
        if rule is None:
            continue
        try:
            rule.check("", key, value)
        except ConfigError as error:
            python = key in as_python
            message = (
                str(error) if python else invalid(key, rule.describe(), shown(value), rule.fix)
            )
            raise source.error(message, table, key=key) from None
