"""Layers to and from plain JSON-able dicts: ``{"class": "dense", "config": {...}}``.

Only registered classes can be built, by name; nothing is imported or evaluated from a config.
"""

from __future__ import annotations

from typing import Any

from lamina.layers.base import LAYERS, Layer


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class": "dense", "config": layer.get_config()}``, JSON-able: the layer's registered
    name and its constructor's arguments (no weights: a model file stores those apart)."""
    return LAYERS.spec(layer)


def deserialize(spec: dict[str, Any]) -> Layer:
    """The layer a :func:`serialize` spec describes, built by its registered name with
    ``from_config``; an unregistered name raises a ``ConfigError``, and nothing is imported
    or evaluated from the spec."""
    layer: Layer = LAYERS.build(spec)
    return layer
