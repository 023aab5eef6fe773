"""Name → class (or function) registries with Keras-style ``get("adam")`` lookup.

A registry is also the list of what the contract tests cover: adding an entry enrols it in
the gradient checks and the config round-trip (tests/test_contracts.py). Iterating a
registry (``for name in LOSSES``, ``items()``, ``len``) gives every entry once, under its
registered name; aliases (``"mse"`` for ``"mean_squared_error"``) are other spellings that
``lookup``, ``in``, ``canonical`` and ``build`` accept, while ``name_of`` and ``spec`` always
give the registered name, so files and configs keep one spelling.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from lamina.errors import ConfigError, invalid

V = TypeVar("V")


class UnknownNameError(ConfigError):
    """A name no entry of a registry is registered under (nor an alias of)."""


class Registry(Generic[V]):
    """A plain mapping from snake_case names to entries, filled by the ``register`` decorator.

    Args:
        kind: what the entries are, as errors name them (``"loss"``, ``"activation"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, V] = {}
        self._aliases: dict[str, str] = {}  # alias → registered name

    def register(self, name: str, *, aliases: Iterable[str] = ()) -> Callable[[V], V]:
        """Decorator registering an entry under ``name`` (and the other spellings ``aliases``)."""

        def decorate(entry: V) -> V:
            self._refuse_taken(name)
            self._entries[name] = entry
            for alias in aliases:
                self.alias(alias, name)
            return entry

        return decorate

    def alias(self, alias: str, name: str) -> None:
        """Let ``alias`` stand for the entry registered as ``name`` (or for its alias's)."""
        self._refuse_taken(alias)
        self._aliases[alias] = self.canonical(name)

    def _refuse_taken(self, name: str) -> None:
        if name in self._entries or name in self._aliases:
            raise ConfigError(f"{self.kind} name {name!r} is registered twice")

    @property
    def aliases(self) -> dict[str, str]:
        """Every alias and the registered name it stands for."""
        return dict(self._aliases)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, V]]:
        """(registered name, entry) for each entry, once; aliases are not repeated."""
        return list(self._entries.items())

    def canonical(self, name: str) -> str:
        """The registered name ``name`` is or stands for; a ConfigError if it is neither."""
        if isinstance(name, str):
            key = name.lower()
            if key in self._entries:
                return key
            if key in self._aliases:
                return self._aliases[key]
        raise UnknownNameError(self._unknown(name))

    def lookup(self, name: str) -> V:
        """The entry registered under ``name`` or an alias of it, or a ConfigError listing
        this registry's names and suggesting the nearest one."""
        return self._entries[self.canonical(name)]

    def _unknown(self, name: object) -> str:
        close = difflib.get_close_matches(str(name), [*self._entries, *self._aliases], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        aliases = f" (aliases: {sorted(self._aliases)})" if self._aliases else ""
        names = f"expected one of {sorted(self._entries)}{aliases}"
        return f"Unknown {self.kind} {name!r}: {names}.{hint}"

    def name_of(self, entry: object) -> str:
        """The registered name of an entry, or of an instance's class (never an alias)."""
        for name, registered in self._entries.items():
            if registered is entry or registered is type(entry):
                return name
        shown = entry.__qualname__ if isinstance(entry, type) else type(entry).__qualname__
        raise ConfigError(
            f"{shown} is not a registered {self.kind}. Fix: decorate your class with "
            "@lamina.register (lamina.registration), or use one of lamina's."
        )

    def unregister(self, name: str) -> None:
        """Take the entry ``name`` out again, with its aliases (tests that register a class
        remove it afterwards)."""
        del self._entries[name]
        self._aliases = {k: v for k, v in self._aliases.items() if v != name}

    def spec(self, obj: Any) -> dict[str, Any]:
        """``{"class": registered name, "config": obj.get_config()}``, JSON-able."""
        return {"class": self.name_of(obj), "config": obj.get_config()}

    def build(self, spec: Any) -> Any:
        """The object a :meth:`spec` describes: only registered classes, built by name (or
        alias) from their ``from_config`` — nothing is imported or evaluated from the spec."""
        if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
            raise ConfigError(
                invalid(
                    f"{self.kind} spec", 'a dict {"class": name, "config": {...}}', repr(spec)[:200]
                )
            )
        cls: Any = self.lookup(spec["class"])
        config = spec["config"]
        if not isinstance(config, dict):
            raise ConfigError(invalid(f"{spec['class']}.config", "a dict", type(config).__name__))
        try:
            return cls.from_config(config)
        except TypeError as error:
            raise ConfigError(
                f"Cannot build {self.kind} {spec['class']!r} from its config: {error}"
            ) from None
