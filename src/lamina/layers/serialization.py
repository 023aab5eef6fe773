"""Layers to and from plain JSON-able dicts: ``{"class": "dense", "config": {...}}``.

Only registered classes can be built, by name; nothing is imported or evaluated from a config.
"""

from __future__ import annotations

from typing import Any

from lamina.errors import ConfigError, invalid
from lamina.layers.base import LAYERS, Layer


def serialize(layer: Layer) -> dict[str, Any]:
    return {"class": LAYERS.name_of(layer), "config": layer.get_config()}


def deserialize(spec: dict[str, Any]) -> Layer:
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise ConfigError(
            invalid("layer spec", 'a dict {"class": name, "config": {...}}', repr(spec)[:200])
        )
    cls = LAYERS.lookup(spec["class"])
    config = spec["config"]
    if not isinstance(config, dict):
        raise ConfigError(invalid(f"{spec['class']}.config", "a dict", type(config).__name__))
    try:
        return cls.from_config(config)
    except TypeError as error:
        raise ConfigError(
            f"Cannot build layer {spec['class']!r} from its config: {error}"
        ) from None
