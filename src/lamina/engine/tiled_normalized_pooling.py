r"""A convolution by F(2×2, 3×3), its batch normalization and a 2×2 max pooling as one
training step (notes §1.11).

Layer by layer, W2-BN's second block — 13 × 13 × 32 inputs, 11 × 11 × 64 outputs — computes
its convolution by 6 × 6 tiles of 2 × 2 outputs (the last tile row and column half outside
the image), copies them into image order for the BatchNorm, pools the normalized map
through strided views and goes back the same way. The pooling reads only the 10 × 10
outputs of the 5 × 5 whole tiles; the BatchNorm needs all 121. So this step computes

- the 10 × 10 the pooling reads by F(2×2, 3×3) in pool order, the four blocks of
  ``lamina.engine.fusion`` (25 tiles an image instead of 36), and
- the *strips* the pooling drops — the last row and the last column of an odd-sized map —
  by im2col: a row of cols per output pixel, and one matmul,

stacks both into one (rows, F) array for the BatchNorm (its statistics over rows in any
order are the same: the same sums, added in another order), and takes the running maximum
over the four normalized blocks, each a contiguous run of rows. Backward routes ∂L/∂P to
the maxima (0 for the strips), runs the BatchNorm's backward on the stacked rows, then the
F(2×2, 3×3) backward of the blocks and the im2col backward of the strips, whose ∂L/∂K and
∂L/∂I are added.

BatchNorm itself does its part as a layer: its sums (exchanged in a split step), running
statistics and gradients are its own code's. The step equals the three layers one by one
up to rounding (float64 tests at 1e-10); inference on the training plan, and maps too small
to pool, run them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lamina.engine.normalized_pooling import NormalizedPooledConvolution
from lamina.layers._im2col import PaddedGeometry, crop, pad
from lamina.layers._products import transposed_product
from lamina.layers.conv import Conv2D, ConvolutionCache
from lamina.layers.normalization import BatchNorm
from lamina.layers.pooling import MaxPool2D, route_to_maxima, running_maximum

Array = np.ndarray
Pair = tuple[int, int]


def tiled_normalized_fusable(conv: object, norm: object, pool: object) -> bool:
    """Whether ``conv``, ``norm`` and ``pool`` can run as a :class:`TiledNormalizedPooling`:
    a Conv2D without an activation of its own that runs by F(2×2, 3×3) into a 2×2 max
    pooling with stride 2, with lamina's BatchNorm between them."""
    return (
        isinstance(conv, Conv2D)
        and conv.activation is None
        and type(norm) is BatchNorm
        and type(pool) is MaxPool2D
        and pool.stride == pool.pool_size
        and conv.runs_by_tiles(pool.pool_size)
    )


@dataclass(frozen=True)
class Strips:
    """The output pixels a 2×2 pooling drops: ``bottom`` rows × all columns, then the first
    2·pooled_h rows × the ``right`` columns; ``cols`` holds their windows, one row each
    (kh·kw·C values, then a 1)."""

    cols: Array
    pooled: Pair
    out: Pair

    @property
    def bottom(self) -> int:
        return self.out[0] - 2 * self.pooled[0]

    @property
    def right(self) -> int:
        return self.out[1] - 2 * self.pooled[1]


@dataclass(frozen=True)
class TiledNormalizedCache:
    """What the fused backward needs: the convolution's cache (tiles in pool order), the
    strips, the running maximum's records and the rows of one block."""

    convolution: ConvolutionCache
    strips: Strips
    took_over: list[Array]
    block_rows: int


class TiledNormalizedPooling(NormalizedPooledConvolution):
    """``MaxPool2D(BatchNorm(Conv2D(x)))`` for a convolution by F(2×2, 3×3) and a 2×2
    pooling, as one training step; see the module's text."""

    def __init__(self, conv: Conv2D, norm: BatchNorm, pool: MaxPool2D) -> None:
        super().__init__(conv, norm, pool)
        self._tiled: TiledNormalizedCache | None = None  # made by a training forward

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._tiled = None
        self._chained = not (training and self._pools_some(inputs))
        if self._chained:
            return self._forward_chained(inputs, training=training)
        conv, features = self.conv, self.conv.filters
        blocks, convolution = conv.products(inputs, pool=(2, 2), training=True)
        out = convolution.geometry.output
        pooled = (out[0] // 2, out[1] // 2)
        strips = Strips(strip_windows(pad(inputs, convolution.geometry), pooled, out), pooled, out)
        block_rows = len(inputs) * pooled[0] * pooled[1]
        dtype = np.result_type(inputs, conv.params["weights"])
        stacked = np.empty((4 * block_rows + len(strips.cols), features), dtype)
        for position, block in enumerate(blocks):
            stacked[position * block_rows : (position + 1) * block_rows] = block
        np.matmul(strips.cols, conv.kernel_matrix(), out=stacked[4 * block_rows :])
        normalized = self.norm.forward(stacked, training=True)
        grids = (normalized[k * block_rows : (k + 1) * block_rows] for k in range(4))
        maximum, took_over = running_maximum(grids, True)
        assert took_over is not None
        self._tiled = TiledNormalizedCache(convolution, strips, took_over, block_rows)
        return maximum.reshape(len(inputs), *pooled, features)

    def _pools_some(self, inputs: Array) -> bool:
        """Whether the convolution has outputs for the 2×2 pooling to read (else the layers
        one by one name the problem)."""
        if inputs.ndim != 4:
            return False
        out_h, out_w, _ = self.conv.output_shape(inputs.shape[1:])
        return (out_h or 0) >= 2 and (out_w or 0) >= 2

    def backward(self, dvalues: Array) -> Array | None:
        if self._chained:
            return self._backward_chained(dvalues)
        cache = self._tiled
        if cache is None:
            raise self._untrained()
        conv, rows = self.conv, cache.block_rows
        delta = np.empty((4 * rows + len(cache.strips.cols), conv.filters), dvalues.dtype)
        delta[4 * rows :] = 0  # the strips are not pooled
        grids = [delta[k * rows : (k + 1) * rows] for k in range(4)]
        route_to_maxima(dvalues.reshape(rows, -1), cache.took_over, grids, accumulate=False)
        dz = self.norm.backward(delta)
        dx = conv.backward_from(cache.convolution, dz[: 4 * rows].reshape(4, rows, -1))
        strip_delta = dz[4 * rows :]
        kernel_grad = transposed_product(cache.strips.cols, strip_delta)
        grads = conv.grads
        grads["weights"].reshape(-1, conv.filters)[...] += kernel_grad[:-1]
        grads["biases"][...] += kernel_grad[-1]
        if dx is not None:
            weights = conv.params["weights"]
            windows = strip_delta @ weights.reshape(-1, conv.filters).T
            add_strip_gradient(
                windows, cache.strips, weights.shape[:2], cache.convolution.geometry, dx
            )
        return dx


def strip_windows(padded: Array, pooled: Pair, out: Pair) -> Array:
    """cols of the output pixels a 2×2 pooling drops (:class:`Strips`' order), for a 3×3
    kernel with stride 1 (F(2×2, 3×3)'s): (rows, 9·C + 1), the last column 1.

    Shape: padded (N, out_h + 2, out_w + 2, C) -> (N·(bottom·out_w + 2·pooled_h·right), 9C + 1)
    """
    channels = padded.shape[-1]
    windows = sliding_window_view(padded, (3, 3), axis=(1, 2))  # (N, out_h, out_w, C, 3, 3)
    parts = [
        windows[:, 2 * pooled[0] : out[0], : out[1]],
        windows[:, : 2 * pooled[0], 2 * pooled[1] : out[1]],
    ]
    rows = sum(part.shape[0] * part.shape[1] * part.shape[2] for part in parts)
    cols = np.empty((rows, 9 * channels + 1), padded.dtype)
    cols[:, -1] = 1
    start = 0
    for part in parts:
        count = part.shape[0] * part.shape[1] * part.shape[2]
        target = cols[start : start + count, :-1].reshape(*part.shape[:3], 3, 3, channels)
        np.copyto(target, part.transpose(0, 1, 2, 4, 5, 3))  # (…, C, m, n) -> (…, m, n, C)
        start += count
    return cols


def add_strip_gradient(
    windows: Array, strips: Strips, kernel: Pair, geometry: PaddedGeometry, dx: Array
) -> None:
    """Add each strip pixel's ∂L/∂(window), (rows, kh·kw·C), onto the input pixels its
    window was read from (col2im for the strips), into ``dx`` (N, H, W, C)."""
    n, channels = len(dx), dx.shape[-1]
    (out_h, out_w), (pooled_h, pooled_w) = strips.out, strips.pooled
    kh, kw = kernel
    padded = dx if dx.shape[1:3] == geometry.padded_size else None
    target = (
        padded if padded is not None else np.zeros((n, *geometry.padded_size, channels), dx.dtype)
    )
    bottom_rows = n * strips.bottom * out_w
    bottom = windows[:bottom_rows].reshape(n, strips.bottom, out_w, kh, kw, channels)
    right = windows[bottom_rows:].reshape(n, 2 * pooled_h, strips.right, kh, kw, channels)
    for m in range(kh):
        for k in range(kw):
            target[:, 2 * pooled_h + m : out_h + m, k : out_w + k] += bottom[:, :, :, m, k]
            target[:, m : 2 * pooled_h + m, 2 * pooled_w + k : out_w + k] += right[:, :, :, m, k]
    if padded is None:
        dx += crop(target, geometry)
