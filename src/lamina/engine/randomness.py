"""Where a model's random draws come from (docs/conventions.md, "Randomness"): one
``numpy.random.SeedSequence(seed)`` spawns a Generator per layer (initial parameters,
dropout masks), one for the per-epoch order of the samples and one for augmentation, so the
same seed, data and BLAS thread count give bit-identical training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lamina.errors import ConfigError, invalid
from lamina.layers.base import Layer


class Generators:
    """A model's own Generators, ``shuffle`` and ``augment``; seeding also gives every
    layer its ``rng`` (and, with a seed, its initial parameters)."""

    def __init__(self, seed: int | None, layers: Sequence[Layer]) -> None:
        children = np.random.SeedSequence(seed).spawn(len(layers) + 2)
        self.shuffle = np.random.default_rng(children[0])
        self.augment = np.random.default_rng(children[-1])
        for layer, child in zip(layers, children[1:-1], strict=True):
            layer.rng = np.random.default_rng(child)
            if seed is not None:
                layer.reset_parameters()

    @property
    def state(self) -> dict[str, Any]:
        """The two Generators' states as JSON-able dicts."""
        return {
            "shuffle": self.shuffle.bit_generator.state,
            "augment": self.augment.bit_generator.state,
        }

    @state.setter
    def state(self, state: dict[str, Any]) -> None:
        for key, generator in (("shuffle", self.shuffle), ("augment", self.augment)):
            value = state.get(key) if isinstance(state, dict) else None
            kind = type(generator.bit_generator).__name__
            if not (isinstance(value, dict) and value.get("bit_generator") == kind):
                raise ConfigError(
                    invalid(f"random_state[{key!r}]", f"a {kind} state dict", repr(value)[:80])
                )
        self.shuffle.bit_generator.state = state["shuffle"]
        self.augment.bit_generator.state = state["augment"]
