r"""A convolution as one matmul (notes §1.11 "Convolutional Layer"): im2col, col2im and the
geometry they share, as pure functions — NumPy arrays in, arrays out, nothing kept.

    S(i, j) = Σₘ Σₙ I(i·s + m, j·s + n) · K(m, n)       (per filter, summed over channels)

im2col copies the kh·kw·C values that output pixel (i, j) reads (its *window*) into one
row of a matrix ``cols``, so that S = cols · K for every pixel at once, K reshaped to
(kh·kw·C, F). col2im goes back: it adds each window's gradient row onto the input pixels
the window was copied from. Rows come in one of two orders (*layouts*):

- **image order** (n, i, j): row (n·out_h + i)·out_w + j holds the window of output pixel
  (i, j) of image n, so S reshapes to NHWC;
- **pool order** (a, b, n, i, j), for a max pooling whose stride is its pool size (ph, pw):
  one block of rows per position (a, b) inside the pooling window, row (n, i, j) of block
  (a, b) holding the window of output pixel (ph·i + a, pw·j + b). Each block is one
  sub-grid the pooling reads (``lamina.engine.fusion``).

``Conv2D`` (``lamina.layers.conv``) and the fused step decide what to keep for backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray
Pair = tuple[int, int]
#: how cols is allocated: np.empty, or a layer's Workspace.empty under one name
Allocate = Callable[[tuple[int, ...], np.dtype], Array]

PADDINGS = ("valid", "same")
FEW_CHANNELS = 8  # below this, im2col fills column-major cols per kernel offset and channel


def output_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, padding before, padding after) along one spatial axis.

    ``"valid"``: no padding, ``⌊(size − kernel)/stride⌋ + 1`` outputs; ``"same"``:
    ``⌈size/stride⌉`` outputs with the padding split evenly, the odd pixel after (as Keras).
    """
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


@dataclass(frozen=True)
class PaddedGeometry:
    """How a convolution pads an H×W input, and the out_h × out_w outputs it then has."""

    size: Pair  # (H, W) of the input
    before: Pair  # rows added on top, columns on the left
    after: Pair  # rows added at the bottom, columns on the right
    output: Pair  # (out_h, out_w); < 1 when the kernel is larger than the padded input

    @property
    def padded_size(self) -> Pair:
        (height, width), (top, left), (bottom, right) = self.size, self.before, self.after
        return height + top + bottom, width + left + right


def padded_geometry(size: Pair, kernel: Pair, stride: Pair, padding: str) -> PaddedGeometry:
    """``output_size`` along both axes of an H×W input (``padding``: "valid" or "same")."""
    rows, columns = (
        output_size(n, k, s, padding) for n, k, s in zip(size, kernel, stride, strict=True)
    )
    return PaddedGeometry(size, (rows[1], columns[1]), (rows[2], columns[2]), (rows[0], columns[0]))


def pad(images: Array, geometry: PaddedGeometry) -> Array:
    """The NHWC batch with ``geometry``'s zero rows and columns around each image (the batch
    itself when there are none). Shape: (N, H, W, C) -> (N, H + top + bottom, W + left +
    right, C)."""
    (top, left), (bottom, right) = geometry.before, geometry.after
    if not (top or bottom or left or right):
        return images
    return np.pad(images, ((0, 0), (top, bottom), (left, right), (0, 0)))


def crop(images: Array, geometry: PaddedGeometry) -> Array:
    """The inverse of ``pad``: the H×W pixels of each padded image (a view)."""
    (height, width), (top, left) = geometry.size, geometry.before
    if images.shape[1:3] == (height, width):
        return images
    return images[:, top : top + height, left : left + width]


@dataclass(frozen=True)
class WindowGrid:
    """Where a set of windows starts in the padded input: along each axis a (first pixel,
    step, count) triple. Image order reads one grid, window (i, j) at (i·sh, j·sw); pool
    order reads one grid per position (a, b) inside the pooling window."""

    rows: tuple[int, int, int]
    columns: tuple[int, int, int]

    @property
    def shape(self) -> Pair:
        return self.rows[2], self.columns[2]

    def offset(self, m: int, k: int) -> tuple[slice, slice]:
        """The input rows and columns that kernel offset (m, k) reads in every window."""
        (r0, rs, rn), (c0, cs, cn) = self.rows, self.columns
        return slice(r0 + m, r0 + m + rn * rs, rs), slice(c0 + k, c0 + k + cn * cs, cs)

    def offsets(self, kernel: Pair) -> list[tuple[Pair, slice, slice]]:
        """``offset`` for every (m, k) of a kh×kw kernel: loops run over the kh·kw offsets,
        never over pixels."""
        return [((m, k), *self.offset(m, k)) for m in range(kernel[0]) for k in range(kernel[1])]


def image_grid(stride: Pair, out: Pair) -> WindowGrid:
    """The windows of the first out_h × out_w output pixels, in image order: window (i, j)
    starts at (i·sh, j·sw)."""
    (sh, sw), (out_h, out_w) = stride, out
    return WindowGrid((0, sh, out_h), (0, sw, out_w))


def pool_grids(stride: Pair, pooled: Pair, pool: Pair) -> list[WindowGrid]:
    """The windows of output pixels (ph·i + a, pw·j + b), i < pooled_h, j < pooled_w: one
    grid per position (a, b) of the ph×pw pooling window, in row-major (a, b) order."""
    (sh, sw), (pooled_h, pooled_w), (ph, pw) = stride, pooled, pool
    return [
        WindowGrid((a * sh, ph * sh, pooled_h), (b * sw, pw * sw, pooled_w))
        for a in range(ph)
        for b in range(pw)
    ]


def strided_windows(x: Array, kernel: Pair, stride: Pair, out: Pair) -> Array:
    """A view (N, out_h, out_w, kh, kw, C) of the kh×kw windows of an NHWC batch.

    Window (i, j) starts at pixel (i·sh, j·sw); nothing is copied.
    """
    windows = sliding_window_view(x, kernel, axis=(1, 2))  # (N, H', W', C, kh, kw)
    windows = windows[:, : out[0] * stride[0] : stride[0], : out[1] * stride[1] : stride[1]]
    return windows.transpose(0, 1, 2, 4, 5, 3)


def im2col(
    padded: Array, kernel: Pair, stride: Pair, out: Pair, allocate: Allocate = np.empty
) -> Array:
    """cols in **image order**: the window of each of the first out_h × out_w output pixels.

        cols[(n·out_h + i)·out_w + j] = [I(n, i·sh + m, j·sw + k, c) for m, k, c] + [1]

    with (m, k, c) in row-major order, as K(m, k, c, f) reshapes to (kh·kw·C, F). The last
    column of 1s multiplies the bias row of ``kernel_matrix``: the bias add and ∂L/∂b ride
    along in the matmuls.

    Shape: padded (N, Hp, Wp, C) -> cols (N·out_h·out_w, kh·kw·C + 1), made by ``allocate``
    """
    return _windows_into_rows(padded, kernel, [image_grid(stride, out)], allocate)


def im2col_pool_order(
    padded: Array,
    kernel: Pair,
    stride: Pair,
    pooled: Pair,
    pool: Pair,
    allocate: Allocate = np.empty,
) -> Array:
    """cols in **pool order**: the windows of output pixels (ph·i + a, pw·j + b) for every
    pooled pixel (i, j) < (pooled_h, pooled_w), block (a, b) after block, each block in image
    order (n, i, j). Rows as in ``im2col``; output pixels beyond ph·pooled_h × pw·pooled_w
    (which a pooling with stride = pool size drops) are left out.

    Shape: padded (N, Hp, Wp, C) -> cols (ph·pw·N·pooled_h·pooled_w, kh·kw·C + 1)
    """
    return _windows_into_rows(padded, kernel, pool_grids(stride, pooled, pool), allocate)


def _windows_into_rows(
    padded: Array, kernel: Pair, grids: list[WindowGrid], allocate: Allocate
) -> Array:
    """cols for the windows of ``grids``, one block of rows per grid, in the grids' order."""
    n, channels = len(padded), padded.shape[-1]
    kh, kw = kernel
    window = kh * kw * channels
    rows = n * len(grids) * grids[0].shape[0] * grids[0].shape[1]  # the grids are equal-sized
    if channels >= FEW_CHANNELS:  # row-major: a window's kw·C values are a run
        cols = allocate((rows, window + 1), padded.dtype)
    else:  # column-major: each column one run (W2's first convolution: 0.3 vs 0.8 ms)
        cols = allocate((window + 1, rows), padded.dtype).T
    cols[:, window] = 1
    for grid, block in zip(grids, np.split(cols[:, :window], len(grids)), strict=True):
        if channels >= FEW_CHANNELS:
            windows = block.reshape(n, *grid.shape, kh, kw, channels)
            origin = padded[:, grid.rows[0] :, grid.columns[0] :]
            steps = (grid.rows[1], grid.columns[1])
            np.copyto(windows, strided_windows(origin, kernel, steps, grid.shape))
            continue
        for (m, k), rows_read, columns_read in grid.offsets(kernel):
            for c in range(channels):
                column = block[:, (m * kw + k) * channels + c]
                column.reshape(n, *grid.shape)[...] = padded[:, rows_read, columns_read, c]
    return cols


def pool_to_image_order(rows: Array, batch: int, pooled: Pair, pool: Pair) -> Array:
    """Rows in pool order (a, b, n, i, j) rearranged into image order (n, ph·i + a, pw·j + b),
    as a contiguous copy.

    Shape: (ph·pw·N·pooled_h·pooled_w, F) -> (N·ph·pooled_h·pw·pooled_w, F)
    """
    (ph, pw), (pooled_h, pooled_w), features = pool, pooled, rows.shape[-1]
    blocks = rows.reshape(ph, pw, batch, pooled_h, pooled_w, features)
    image = np.ascontiguousarray(blocks.transpose(2, 3, 0, 4, 1, 5))  # (n, i, a, j, b, f)
    return image.reshape(-1, features)


def col2im(
    delta: Array, weights: Array, stride: Pair, out: Pair, padded_shape: tuple[int, ...]
) -> Array:
    """∂L/∂I of the padded input from δ = ∂L/∂S in **image order** (notes §1.11):

        ∂L/∂I(n, i·sh + m, j·sw + k, c) += Σ_f δ(n, i, j, f) · K(m, k, c, f)

    for every output pixel (i, j) < (out_h, out_w) and kernel offset (m, k): each window's
    gradient row δ·Kᵀ added back onto the pixels it was copied from.

    Done per kernel offset (m, k): the (rows, C) block δ·K(m, k)ᵀ is one matmul into a
    reused buffer, then one strided add onto the input pixels at offset (m, k) of every
    window. Same sums as one big δ·Kᵀ followed by the scatter, but the adds read a
    contiguous block: 4.1 ms instead of 7.4 ms for W2's second convolution. Image order
    makes each add move runs of out_w·C values; rows in pool order go through
    ``pool_to_image_order`` first (0.1 ms, and 0.9 instead of 1.6 ms for the adds there).

    Shape: delta (N·out_h·out_w, F), weights (kh, kw, C, F) -> (N, Hp, Wp, C) = padded_shape
    """
    n, channels = padded_shape[0], padded_shape[-1]
    kernel = (weights.shape[0], weights.shape[1])
    dx = np.zeros(padded_shape, dtype=delta.dtype)
    block = np.empty((len(delta), channels), dtype=delta.dtype)
    for (m, k), rows, columns in image_grid(stride, out).offsets(kernel):
        np.matmul(delta, weights[m, k].T, out=block)
        dx[:, rows, columns] += block.reshape(n, *out, channels)
    return dx


def kernel_matrix(weights: Array, biases: Array) -> Array:
    """K reshaped to (kh·kw·C, F), then the biases as a last row: S = cols · K + b is one
    matmul with the 1s column of ``im2col``.

    Shape: weights (kh, kw, C, F), biases (F,) -> (kh·kw·C + 1, F)
    """
    filters = weights.shape[-1]
    return np.concatenate([weights.reshape(-1, filters), biases[None]])
