"""Max and average pooling on NHWC batches (notes §1.11 "Pooling Layer")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lamina._params import checked
from lamina.errors import ShapeError
from lamina.layers._maxima import fold_maximum
from lamina.layers.base import LAYERS, Array, Layer, Shape, format_shape, size_pair
from lamina.layers.conv import backward_needs_training


class Pooling2D(Layer):
    """Shared geometry of the pooling layers: windows of ``pool_size``, moved by ``stride``
    (default: ``pool_size``), no padding. A window is read as ph·pw strided sub-grids, one
    per offset (m, n) inside the window: loops run over those offsets, never over pixels.
    """

    fresh_output = True

    @checked(pool_size=size_pair("pool_size"), stride=size_pair("stride", optional=True))
    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.pool_size: tuple[int, int] = pool_size  # type: ignore[assignment]
        self.stride: tuple[int, int] = self.pool_size if stride is None else stride  # type: ignore[assignment]

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ShapeError(self._shape_message(f"per-sample shape {input_shape}"))
        height, width, channels = input_shape
        if height is None or width is None:
            return (None, None, channels)
        return (*self.pooled_size(height, width), channels)

    def pooled_size(self, height: int, width: int) -> tuple[int, int]:
        """Output height and width for a height × width input; a ShapeError if the pool is
        larger than the input."""
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        if ph > height or pw > width:
            raise ShapeError(
                f"{self.describe()}: the {ph}×{pw} pool is larger than the {height}×{width} "
                "input. Fix: use a smaller pool_size."
            )
        return (height - ph) // sh + 1, (width - pw) // sw + 1

    def _shape_message(self, received: str) -> str:
        return (
            f"{self.describe()} expects NHWC feature maps {format_shape((None, None, None))},"
            f" but received {received}. Fix: pool after a Conv2D, before Flatten."
        )

    def _geometry(self, inputs: Array) -> tuple[int, int]:
        """The pooled size of an NHWC batch; a ShapeError for any other array."""
        if inputs.ndim != 4:
            raise ShapeError(self._shape_message(f"an array of shape {inputs.shape}"))
        return self.pooled_size(*inputs.shape[1:3])

    def _sub_grids(self, x: Array, out: tuple[int, int]) -> list[Array]:
        """The ph·pw strided views of ``x`` (input-shaped), one per offset (m, n) in the
        window, each shaped like the output. When the windows tile the input exactly
        (stride = pool size, sizes divisible) they come from one reshape of x."""
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        n, _, _, channels = x.shape
        if self._tiles(x.shape):
            blocks = x.reshape(n, out[0], ph, out[1], pw, channels)
            return [blocks[:, :, m, :, k] for m in range(ph) for k in range(pw)]
        return [
            x[:, m : m + out[0] * sh : sh, k : k + out[1] * sw : sw]
            for m in range(ph)
            for k in range(pw)
        ]

    def _gradient_buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Array, bool]:
        """(∂L/∂inputs of ``shape`` to fill, whether windows overlap and their gradients must
        add up)."""
        overlapping = self.stride[0] < self.pool_size[0] or self.stride[1] < self.pool_size[1]
        # every pixel is written when the windows tile the input; otherwise start from 0
        fill = np.empty if self._tiles(shape) else np.zeros
        return fill(shape, dtype), overlapping

    def _tiles(self, shape: tuple[int, ...]) -> bool:
        """Whether the windows tile the input exactly: stride = pool size, sizes divisible."""
        (ph, pw), (_, height, width, _) = self.pool_size, shape
        return self.stride == self.pool_size and height % ph == 0 and width % pw == 0

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
        }


@dataclass(frozen=True)
class MaxPoolCache:
    """What MaxPool2D's backward needs from a training forward: the input shape and, per
    sub-grid after the first, where it took over the maximum (``running_maximum``)."""

    input_shape: tuple[int, ...]
    took_over: list[Array]


@LAYERS.register("max_pool2d")
class MaxPool2D(Pooling2D):
    r"""Max pooling: ``P(i, j, c) = max_{m,n} I(i·s + m, j·s + n, c)`` (notes §1.11).

    Backward: the gradient goes to the input element that held the maximum, only; when
    several elements tie, to the first of them in row-major window order.

    The maximum is a running ``np.maximum`` over the ph·pw sub-grids; for each sub-grid k
    after the first, a boolean "strictly greater than every earlier one" marks where it took
    over. In backward the last sub-grid that took over a window owns its gradient. (The
    obvious ``blocks.max(axis=(2, 4))`` and an int8 argmax were 7× and 8× slower here.)

    A training forward keeps those marks for backward (a :class:`MaxPoolCache`); an
    inference forward keeps nothing, and a backward after it raises.

    Args:
        pool_size: window ph×pw, an int or a (height, width) pair.
        stride: step between windows; default ``pool_size`` (non-overlapping).
    Shape:
        inputs (batch, H, W, C) -> outputs (batch, ⌊(H − ph)/sh⌋ + 1, ⌊(W − pw)/sw⌋ + 1, C)
    """

    _cache: MaxPoolCache | None = None  # made by a training forward, read by backward

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        out = self._geometry(inputs)
        # which windows each sub-grid takes over: recorded in training only
        maximum, took_over = running_maximum(self._sub_grids(inputs, out), training)
        self._cache = None if took_over is None else MaxPoolCache(inputs.shape, took_over)
        return maximum

    def backward(self, dvalues: Array) -> Array:
        cache = self._cache
        if cache is None:
            raise backward_needs_training(self.describe())
        dx, overlapping = self._gradient_buffer(cache.input_shape, dvalues.dtype)
        grids = self._sub_grids(dx, dvalues.shape[1:3])
        route_to_maxima(dvalues, cache.took_over, grids, accumulate=overlapping)
        return dx


def running_maximum(grids: Iterable[Array], record: bool) -> tuple[Array, list[Array] | None]:
    """The element-wise maximum of same-shaped ``grids`` (read once, in order), and
    (``record``) for each grid after the first a boolean "strictly greater than every
    earlier grid": where it took over the maximum. The last grid that took over an element
    holds the first of its tied maxima."""
    remaining = iter(grids)
    maximum = next(remaining).copy()
    took_over: list[Array] = []
    for grid in remaining:
        took = np.empty(maximum.shape, np.bool_) if record else None
        fold_maximum(maximum, grid, took)
        if took is not None:
            took_over.append(took)
    return maximum, took_over if record else None


def route_to_maxima(
    dvalues: Array, took_over: list[Array], grids: list[Array], *, accumulate: bool
) -> None:
    """Give ``dvalues`` to the grid that holds each maximum (``running_maximum``'s record),
    0 to the others; ``accumulate`` adds instead of writing (overlapping windows)."""
    unclaimed = np.ones(dvalues.shape, dtype=np.bool_)
    owners = [*took_over[::-1], unclaimed]  # grids K−1 … 1, then 0
    for grid, took in zip(grids[::-1], owners, strict=True):
        owner = took if took is unclaimed else took & unclaimed
        if took is not unclaimed:
            unclaimed &= ~took
        if accumulate:
            grid += dvalues * owner
        else:
            np.multiply(dvalues, owner, out=grid)


@LAYERS.register("avg_pool2d")
class AvgPool2D(Pooling2D):
    r"""Average pooling: ``P(i, j, c) = (1/(ph·pw)) Σ_{m,n} I(i·s + m, j·s + n, c)`` (§1.11).

    Backward: each window's gradient is shared equally, δ/(ph·pw) to each of its elements.

    Args:
        pool_size: window ph×pw, an int or a (height, width) pair.
        stride: step between windows; default ``pool_size`` (non-overlapping).
    Shape:
        inputs (batch, H, W, C) -> outputs (batch, ⌊(H − ph)/sh⌋ + 1, ⌊(W − pw)/sw⌋ + 1, C)
    """

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        out = self._geometry(inputs)
        self._input_shape = inputs.shape  # all backward needs, as small in both modes
        grids = self._sub_grids(inputs, out)
        total = grids[0].copy()
        for grid in grids[1:]:
            total += grid
        total *= 1.0 / len(grids)
        return total

    def backward(self, dvalues: Array) -> Array:
        dx, overlapping = self._gradient_buffer(self._input_shape, dvalues.dtype)
        share = dvalues * (1.0 / (self.pool_size[0] * self.pool_size[1]))
        for grid in self._sub_grids(dx, dvalues.shape[1:3]):
            if overlapping:
                grid += share
            else:
                grid[...] = share
        return dx
