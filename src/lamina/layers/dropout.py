"""Dropout (notes §1.6 "Dropout", §3.5.3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina._params import Interval, checked, rule
from lamina.layers.base import LAYERS, Array, Layer


@LAYERS.register("dropout")
class Dropout(Layer):
    r"""Inverted dropout: ``z = x ⊙ r / (1 − p)`` with ``rᵢ ~ Bernoulli(1 − p)`` in training.

    ``rate`` is p, the fraction of units *dropped* (docs/formulas.md §21: the notes sometimes
    call the keep probability p). Kept units are scaled by 1/(1 − p) so the expected sum is
    unchanged, and at inference the layer is the identity (notes §3.5.3).

    Backward (notes §1.6): ``∂L/∂x = δ ⊙ r / (1 − p)``.

    ``sampling``: a Generator while ``Model.predict(..., samples=S)`` runs Monte-Carlo
    dropout — the layer then drops at inference too, with masks from that Generator.

    ``batch_part``: ``(start, stop, total)`` while a training step computes rows
    start … stop − 1 of a batch of ``total`` rows in this process and the rest in another
    (``lamina.engine.halves``): the mask is drawn for the whole batch and those rows kept,
    so every process drops what a one-process step drops.

    Args:
        rate: fraction dropped, in [0, 1).
    """

    supports_masking = True

    @checked(
        rate=rule(
            Interval(float, 0, 1, closed="left"),
            fix="pass the fraction of units to drop, e.g. Dropout(0.1)",
        )
    )
    def __init__(self, rate: float, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.rate = rate
        self.sampling: np.random.Generator | None = None
        self.batch_part: tuple[int, int, int] | None = None

    @property
    def random_in_inference(self) -> bool:
        return self.sampling is not None and self.rate > 0

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        if (not training and self.sampling is None) or self.rate == 0:
            self._mask = None
            return inputs
        generator = self.rng if training else self.sampling
        assert generator is not None
        part = self.batch_part  # set only around a split training step
        if part is None:
            keep = generator.random(inputs.shape, dtype=np.float32) >= self.rate
        else:
            start, stop, total = part
            drawn = generator.random((total, *inputs.shape[1:]), dtype=np.float32)
            keep = drawn[start:stop] >= self.rate
        self._mask = keep.astype(inputs.dtype)
        self._mask *= 1.0 / (1.0 - self.rate)
        return inputs * self._mask

    def backward(self, dvalues: Array) -> Array:
        return dvalues if self._mask is None else dvalues * self._mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}
