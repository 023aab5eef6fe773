"""One way to check arguments where they enter: each constructor declares its parameters'
rules next to its signature, and the :func:`checked` decorator checks every call against
them before the body runs (as scikit-learn's ``_parameter_constraints`` and
``validate_params`` do)::

    class Dropout(Layer):
        @checked(rate=rule(Interval(float, 0, 1, closed="left"), fix="Dropout(0.1) drops 10%"))
        def __init__(self, rate: float, *, name: str | None = None) -> None:
            ...

A rule lists constraints; a value is accepted when any of them accepts it (``None`` in a
rule accepts None). The accepted value is passed on converted (a NumPy integer becomes an
``int``, a ``[2, 1]`` list a tuple). A refused value raises a :class:`ConfigError` in
lamina's *argument, expected, received, fix* form, naming ``Class.argument``, with
``error.argument`` set so a config file can point at its key.

Every constraint also lists values it refuses (:meth:`Constraint.refused`): a wrong type,
``True`` where a number is expected, values out of range. A registry-driven test passes
them to every argument of every registered class (``tests/test_params.py``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from lamina.errors import ConfigError, invalid

F = TypeVar("F", bound=Callable[..., Any])


class Constraint:
    """What one kind of value must be; subclasses define the three methods."""

    def convert(self, value: Any) -> Any:
        """The accepted value in its canonical type; raises ``ValueError`` to refuse it."""
        raise NotImplementedError

    def describe(self) -> str:
        """What is expected, as it reads in an error: ``"a float in [0, 1)"``."""
        raise NotImplementedError

    def refused(self) -> list[Any]:
        """Values this constraint refuses (for tests): a wrong type, ``True`` where a number
        is expected, values out of range."""
        raise NotImplementedError

    def suggest(self, value: Any) -> str | None:
        """A fix for a refused ``value`` more specific than the rule's (the nearest name)."""
        return None


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


class Interval(Constraint):
    """A number in a range: ``Interval(int, 1)`` is an int ≥ 1, ``Interval(float, 0, 1,
    closed="left")`` a finite float in [0, 1). Bools are not numbers here."""

    def __init__(
        self,
        kind: type,
        low: float | None = None,
        high: float | None = None,
        *,
        closed: str = "both",
    ) -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def convert(self, value: Any) -> Any:
        if not (_is_integer(value) if self.kind is int else _is_real(value)):
            raise ValueError
        number = self.kind(value)
        if self.kind is float and not math.isfinite(number):
            raise ValueError
        low_ok = self.low is None or (
            number >= self.low if self.closed in ("both", "left") else number > self.low
        )
        high_ok = self.high is None or (
            number <= self.high if self.closed in ("both", "right") else number < self.high
        )
        if not (low_ok and high_ok):
            raise ValueError
        return number

    def describe(self) -> str:
        noun = "an int" if self.kind is int else "a float"
        low_closed = self.closed in ("both", "left")
        high_closed = self.closed in ("both", "right")
        if self.low is None and self.high is None:
            return noun if self.kind is int else f"{noun} (finite)"
        if self.high is None:
            return f"{noun} {'≥' if low_closed else '>'} {_number(self.low)}"
        if self.low is None:
            return f"{noun} {'≤' if high_closed else '<'} {_number(self.high)}"
        left, right = "[" if low_closed else "(", "]" if high_closed else ")"
        return f"{noun} in {left}{_number(self.low)}, {_number(self.high)}{right}"

    def refused(self) -> list[Any]:
        values: list[Any] = ["1", True]
        if self.kind is int:
            values.append(1.5)
        else:
            values.append(math.nan)
        for bound, closed_side, step in (
            (self.low, self.closed in ("both", "left"), -1),
            (self.high, self.closed in ("both", "right"), 1),
        ):
            if bound is not None:
                values.append(bound + step if closed_side or self.kind is int else bound)
        return values


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


class Options(Constraint):
    """One of a fixed set of strings (``Options("valid", "same")``), or of the names of a
    registry (``Options(registry)``, read at each check, so later entries count; ``where``
    keeps the entries it is true for), matched as written."""

    def __init__(self, *choices: Any, where: Callable[[Any], bool] | None = None) -> None:
        self.choices, self.where = choices, where

    def _entries(self) -> dict[str, Any] | None:
        """The registry's entries by name, or None for a fixed set of strings."""
        if len(self.choices) == 1 and not isinstance(self.choices[0], str):
            return dict(self.choices[0].items())  # a Registry or a dict
        return None

    def _names(self) -> list[str]:
        entries = self._entries()
        if entries is None:
            return list(self.choices)
        return sorted(n for n, entry in entries.items() if self.where is None or self.where(entry))

    def convert(self, value: Any) -> Any:
        entries = self._entries()
        if not isinstance(value, str):
            raise ValueError
        if entries is None:
            known = value in self.choices
        else:
            known = value in entries and (self.where is None or self.where(entries[value]))
        if not known:
            raise ValueError
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(repr(name) for name in self._names())

    def refused(self) -> list[Any]:
        return ["no_such_choice", True, 3]

    def suggest(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        close = difflib.get_close_matches(value.lower(), self._names(), n=1)
        return f"use {close[0]!r}" if close else None


class Flag(Constraint):
    """``True`` or ``False`` (NumPy's bools too), never 0, 1 or a string."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, bool | np.bool_):
            raise ValueError
        return bool(value)

    def describe(self) -> str:
        return "True or False"

    def refused(self) -> list[Any]:
        return ["yes", 1, 0.0]


class Text(Constraint):
    """A non-empty string."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise ValueError
        return value

    def describe(self) -> str:
        return "a non-empty string"

    def refused(self) -> list[Any]:
        return [3, True, ""]


class FilePath(Constraint):
    """A path to a file: a non-empty string or ``os.PathLike``, returned as a string."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str | os.PathLike) or not os.fspath(value) or "\0" in str(value):
            raise ValueError
        return os.fspath(value)

    def describe(self) -> str:
        return "a file path"

    def refused(self) -> list[Any]:
        return [3, True, ""]


class Pair(Constraint):
    """A value of ``item``, or a ``(height, width)`` pair of them, returned as a pair."""

    def __init__(self, item: Interval) -> None:
        self.item = item

    def convert(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError
            return tuple(self.item.convert(v) for v in value)
        single = self.item.convert(value)
        return (single, single)

    def describe(self) -> str:
        return f"{self.item.describe()}, or a (height, width) pair of them"

    def refused(self) -> list[Any]:
        return [*self.item.refused(), (1,), (1, 1, 1)]


class Floats(Constraint):
    """A sequence of ``length`` finite numbers, returned as a tuple of floats."""

    def __init__(self, length: int) -> None:
        self.length = length

    def convert(self, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ValueError
        items = tuple(value)
        if len(items) != self.length:
            raise ValueError
        return tuple(Interval(float).convert(item) for item in items)

    def describe(self) -> str:
        return f"{self.length} finite numbers"

    def refused(self) -> list[Any]:
        return [1.0, "ab", (1.0,) * (self.length + 1), (True,) * self.length]


class Bounds(Constraint):
    """A pair ``(a, b)`` of finite numbers with a < b (``strict``) or a ≤ b, returned as a
    tuple of floats: a range such as ``feature_range=(0, 1)``."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict

    def convert(self, value: Any) -> Any:
        a, b = Floats(2).convert(value)
        if a > b or (self.strict and a == b):
            raise ValueError
        return (a, b)

    def describe(self) -> str:
        return f"a pair (a, b) of finite numbers with a {'<' if self.strict else '≤'} b"

    def refused(self) -> list[Any]:
        return [*Floats(2).refused(), (1.0, 0.0), *([(1.0, 1.0)] if self.strict else [])]


class Instance(Constraint):
    """An instance of ``cls`` (a class, or a tuple of classes as ``isinstance`` takes)."""

    def __init__(self, cls: type | tuple[type, ...], description: str) -> None:
        self.cls, self.description = cls, description

    def convert(self, value: Any) -> Any:
        if not isinstance(value, self.cls):
            raise ValueError
        return value

    def describe(self) -> str:
        return self.description

    def refused(self) -> list[Any]:
        return [3, True]


class Function(Constraint):
    """A callable."""

    def __init__(self, description: str = "a function") -> None:
        self.description = description

    def convert(self, value: Any) -> Any:
        if not callable(value):
            raise ValueError
        return value

    def describe(self) -> str:
        return self.description

    def refused(self) -> list[Any]:
        return [3, "lambda x: x"]


class Stream(Constraint):
    """A text stream: an object with a ``write`` method (``sys.stderr``, ``io.StringIO()``)."""

    def convert(self, value: Any) -> Any:
        if not callable(getattr(value, "write", None)):
            raise ValueError
        return value

    def describe(self) -> str:
        return "a text stream (an object with a write method)"

    def refused(self) -> list[Any]:
        return [3, "stderr"]


class FloatType(Constraint):
    """float32 or float64, given as a name (``"float32"``), a NumPy type or a dtype;
    returned as a dtype."""

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool | np.bool_):
            raise ValueError
        dtype = np.dtype(value)  # TypeError for what names no dtype: refused
        if dtype not in (np.float32, np.float64):
            raise ValueError
        return dtype

    def describe(self) -> str:
        return "'float32' or 'float64'"

    def refused(self) -> list[Any]:
        return ["float33", "int8", True, 3]


class Rule:
    """The constraints of one parameter and the fix an error suggests."""

    def __init__(self, constraints: list[Constraint | None], fix: str | None = None) -> None:
        self.constraints = constraints
        self.fix = fix

    def check(self, owner: str, argument: str, value: Any) -> Any:
        for constraint in self.constraints:
            if constraint is None:
                if value is None:
                    return None
                continue
            try:
                return constraint.convert(value)
            except (ValueError, TypeError, OverflowError):
                continue
        name = f"{owner}.{argument}" if owner else argument
        suggestions = (c.suggest(value) for c in self.constraints if c is not None)
        fix = next((hint for hint in suggestions if hint), self.fix)
        raise ConfigError(invalid(name, self.describe(), _shown(value), fix), argument=argument)

    def describe(self) -> str:
        parts = [c.describe() for c in self.constraints if c is not None]
        if None in self.constraints:
            parts.append("None")
        return " or ".join(parts)

    def refused(self) -> list[Any]:
        """Values every constraint of the rule refuses."""
        candidates = [v for c in self.constraints if c is not None for v in c.refused()]
        if None not in self.constraints:
            candidates.append(None)
        return [v for v in candidates if not self._accepts(v)]

    def _accepts(self, value: Any) -> bool:
        try:
            self.check("", "", value)
        except ConfigError:
            return False
        return True


def rule(*constraints: Constraint | None, fix: str | None = None) -> Rule:
    """The constraints of one parameter: ``rule(Interval(int, 1), fix="use e.g. 32")``."""
    return Rule(list(constraints), fix)


def checked(**rules: Rule | Constraint) -> Callable[[F], F]:
    """Decorate ``__init__`` (or any function) to check the named arguments against their
    rules before its body runs, and pass them on converted. The owner named in errors is
    the class of ``self`` (``Adam.learning_rate``), or the function's name. Defaults are
    checked and converted once, here: an invalid default is an error in the declaration."""

    def decorate(function: F) -> F:
        parameters = inspect.signature(function).parameters
        table = {name: r if isinstance(r, Rule) else Rule([r]) for name, r in rules.items()}
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        unusable = [n for n in table if n not in parameters or parameters[n].kind not in keyword]
        if unusable:
            raise TypeError(f"{function.__qualname__} has no keyword parameters {unusable}")
        method = next(iter(parameters), None) == "self"
        positions = {name: index for index, name in enumerate(parameters)}
        defaults = {
            name: table[name].check(function.__qualname__, name, parameter.default)
            for name, parameter in parameters.items()
            if name in table and parameter.default is not parameter.empty
        }

        # Binding by position and name by hand: inspect.Signature.bind would triple the
        # cost of building a layer (a model file may hold thousands of them).
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            owner = type(args[0]).__name__ if method and args else function.__name__
            values = list(args)
            for name, parameter_rule in table.items():
                index = positions[name]
                if index < len(values):
                    values[index] = parameter_rule.check(owner, name, values[index])
                elif name in kwargs:
                    kwargs[name] = parameter_rule.check(owner, name, kwargs[name])
                elif name in defaults:
                    kwargs[name] = defaults[name]
            return function(*values, **kwargs)

        wrapper.__rules__ = table  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def rules_of(cls: type) -> dict[str, Rule]:
    """Every parameter rule of ``cls.__init__`` and of the ``__init__`` it extends."""
    table: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        table.update(getattr(klass.__dict__.get("__init__"), "__rules__", {}))
    return table


def check(
    owner: str,
    argument: str,
    value: Any,
    *constraints: Constraint | None,
    fix: str | None = None,
) -> Any:
    """Check one value where no constructor takes it (``fit``'s arguments, say); the error
    names ``owner.argument``, or ``argument`` alone when ``owner`` is empty."""
    return Rule(list(constraints), fix).check(owner, argument, value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
