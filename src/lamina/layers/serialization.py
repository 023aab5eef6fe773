"""Layers to and from plain JSON-able dicts: ``{"class": "dense", "config": {...}}``.

Only registered classes can be built, by name; nothing is imported or evaluated from a config.
"""

from __future__ import annotations

from typing import Any

from lamina.layers.base import LAYERS, Layer


def serialize(layer: Layer) -> dict[str, Any]:
    return LAYERS.spec(layer)


def deserialize(spec: dict[str, Any]) -> Layer:
    layer: Layer = LAYERS.build(spec)
    return layer
