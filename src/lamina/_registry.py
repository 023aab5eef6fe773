"""Name → class (or function) registries with Keras-style ``get("adam")`` lookup.

A registry is also the list of what the contract tests cover: adding an entry enrols it in
the gradient checks and the config round-trip (tests/test_contracts.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from lamina.errors import ConfigError, invalid

V = TypeVar("V")


class Registry(Generic[V]):
    """A plain mapping from snake_case names to entries, filled by the ``register`` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, V] = {}

    def register(self, name: str) -> Callable[[V], V]:
        def decorate(entry: V) -> V:
            if name in self._entries:
                raise ConfigError(f"{self.kind} name {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, V]]:
        return list(self._entries.items())

    def lookup(self, name: str) -> V:
        """The entry registered under ``name``, or a ConfigError suggesting the nearest name."""
        key = name.lower() if isinstance(name, str) else name
        if key in self._entries:
            return self._entries[key]
        close = difflib.get_close_matches(str(key), list(self._entries), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Unknown {self.kind} {name!r}: expected one of {sorted(self._entries)}.{hint}"
        )

    def name_of(self, entry: object) -> str:
        """The registered name of an entry, or of an instance's class."""
        for name, registered in self._entries.items():
            if registered is entry or registered is type(entry):
                return name
        raise ConfigError(f"{entry!r} is not a registered {self.kind}")

    def spec(self, obj: Any) -> dict[str, Any]:
        """``{"class": registered name, "config": obj.get_config()}``, JSON-able."""
        return {"class": self.name_of(obj), "config": obj.get_config()}

    def build(self, spec: Any) -> Any:
        """The object a :meth:`spec` describes: only registered classes, built by name from
        their ``from_config`` — nothing is imported or evaluated from the spec."""
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
