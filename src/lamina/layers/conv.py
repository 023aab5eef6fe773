"""2-D convolution on NHWC batches (notes §1.11 "Convolutional Layer")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lamina import initializers
from lamina.errors import ConfigError, ShapeError, invalid
from lamina.layers.activated import ActivatedLayer, with_activation_built
from lamina.layers.base import (
    LAYERS,
    Array,
    Layer,
    Shape,
    as_pair,
    format_shape,
    new_tensor,
    regularizers_for,
)

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


def strided_windows(
    x: Array, kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]
) -> Array:
    """A view (N, out_h, out_w, kh, kw, C) of the kh×kw windows of an NHWC batch.

    Window (i, j) starts at pixel (i·sh, j·sw); nothing is copied.
    """
    windows = sliding_window_view(x, kernel, axis=(1, 2))  # (N, H', W', C, kh, kw)
    windows = windows[:, : out[0] * stride[0] : stride[0], : out[1] * stride[1] : stride[1]]
    return windows.transpose(0, 1, 2, 4, 5, 3)


@dataclass(frozen=True)
class WindowGrid:
    """Where a set of windows starts in the (padded) input: along each axis a
    (first pixel, step, count) triple. A convolution reads one grid, window (i, j) at
    (i·sh, j·sw); a convolution feeding a max pooling reads one grid per position inside
    the pool (see ``lamina.engine.fusion``)."""

    rows: tuple[int, int, int]
    columns: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows[2], self.columns[2]

    def offset(self, m: int, k: int) -> tuple[slice, slice]:
        """The input rows and columns that kernel offset (m, k) reads in every window."""
        (r0, rs, rn), (c0, cs, cn) = self.rows, self.columns
        return slice(r0 + m, r0 + m + rn * rs, rs), slice(c0 + k, c0 + k + cn * cs, cs)

    def offsets(self, kernel: tuple[int, int]) -> list[tuple[tuple[int, int], slice, slice]]:
        """``offset`` for every (m, k) of a kh×kw kernel: loops run over the kh·kw offsets,
        never over pixels."""
        return [((m, k), *self.offset(m, k)) for m in range(kernel[0]) for k in range(kernel[1])]


def window_grids(
    stride: tuple[int, int], out: tuple[int, int], pool: tuple[int, int] | None
) -> list[WindowGrid]:
    """Where the windows of the first out_h × out_w output pixels start: one grid in image
    order, or (``pool`` = (ph, pw)) one grid per position (a, b) in the pooling window,
    holding the pixels (ph·i + a, pw·j + b)."""
    (sh, sw), (out_h, out_w) = stride, out
    if pool is None:
        return [WindowGrid((0, sh, out_h), (0, sw, out_w))]
    ph, pw = pool
    return [
        WindowGrid((a * sh, ph * sh, out_h // ph), (b * sw, pw * sw, out_w // pw))
        for a in range(ph)
        for b in range(pw)
    ]


@LAYERS.register("conv2d")
class Conv2D(ActivatedLayer):
    r"""2-D convolution (cross-correlation, as in the notes and every framework), NHWC.

    Forward (notes §1.11), for each filter f and output pixel (i, j), with stride s:

        S(i, j, f) = Σₘ Σₙ Σ_c I(i·s + m, j·s + n, c) · K(m, n, c, f) + b(f)

    computed as one matmul: the kh·kw·C values of every window are copied into a row of
    ``cols`` (im2col, from a ``sliding_window_view``), then ``Z = cols · K`` with K reshaped
    to (kh·kw·C, F). Each row of ``cols`` ends with a 1 and K with the bias row, so the bias
    is added by the same matmul (and ∂L/∂b = Σ δ comes out of the ∂L/∂K one).

    Backward, with δ = ∂L/∂S:

        ∂L/∂K(m, n, c, f) = Σᵢ Σⱼ δ(i, j, f) · I(i·s + m, j·s + n, c)   (notes §1.11)
                          = colsᵀ · δ                                  (one matmul)
        ∂L/∂b(f)          = Σᵢ Σⱼ δ(i, j, f)
        ∂L/∂I             = col2im(δ · Kᵀ): each window's gradient row is added back onto
                            the pixels it came from, one matmul and one strided add per
                            kernel offset (m, n) — never a loop over pixels, no np.add.at.

    Args:
        in_channels: C, channels of the input (its last axis).
        filters: F, number of kernels (output channels).
        kernel_size: kh×kw, an int or a (height, width) pair.
        stride: an int or a (height, width) pair.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size ⌈input/stride⌉).
        activation, weight_init, weight_l1, weight_l2, bias_l1, bias_l2: as for ``Dense``;
            the weights are initialised with fan-in kh·kw·C and fan-out kh·kw·F.
    Shape:
        inputs (batch, H, W, in_channels) -> outputs (batch, H', W', filters)
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | Layer | None = None,
        *,
        weight_init: str = "he_normal",
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        bias_l1: float = 0.0,
        bias_l2: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(activation, name=name)
        for argument, value in (("in_channels", in_channels), ("filters", filters)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ConfigError(invalid(f"Conv2D.{argument}", "a positive int", repr(value)))
        if padding not in PADDINGS:
            raise ConfigError(invalid("Conv2D.padding", "'valid' or 'same'", repr(padding)))
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.kernel_size = as_pair(kernel_size, "kernel_size", "Conv2D")
        self.stride = as_pair(stride, "stride", "Conv2D")
        self.padding = padding
        self.weight_init = weight_init
        self._initializer = initializers.get(weight_init)
        self.regularizers = regularizers_for(weight_l1, weight_l2, bias_l1, bias_l2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        dtype = self.dtype or np.dtype(np.float32)
        kh, kw = self.kernel_size
        shape = (kh, kw, self.in_channels, self.filters)
        fan_in, fan_out = kh * kw * self.in_channels, kh * kw * self.filters
        self.params["weights"] = new_tensor(
            shape, dtype, lambda: self._initializer(shape, fan_in, fan_out, self.rng, dtype)
        )
        self.params["biases"] = new_tensor((self.filters,), dtype, 0.0)

    # -- shapes ----------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape:
        return (None, None, self.in_channels)

    def _geometry(self, height: int, width: int) -> tuple[tuple[int, int, int], ...]:
        """Per axis (output size, pad before, pad after); a ShapeError if the kernel is
        larger than the padded input."""
        geometry = tuple(
            output_size(size, kernel, stride, self.padding)
            for size, kernel, stride in zip(
                (height, width), self.kernel_size, self.stride, strict=True
            )
        )
        if any(out < 1 for out, _, _ in geometry):
            padded = tuple(
                size + before + after
                for size, (_, before, after) in zip((height, width), geometry, strict=True)
            )
            raise ShapeError(
                f"{self.describe()}: the {self.kernel_size[0]}×{self.kernel_size[1]} kernel is "
                f"larger than the {padded[0]}×{padded[1]} padded input (inputs of shape "
                f"{format_shape((height, width, self.in_channels))}). Fix: use a smaller "
                f"kernel_size, padding='same', or larger images."
            )
        return geometry

    def output_shape(self, input_shape: Shape) -> Shape:
        height, width, _ = input_shape
        if height is None or width is None:
            return (None, None, self.filters)
        (out_h, _, _), (out_w, _, _) = self._geometry(height, width)
        return (out_h, out_w, self.filters)

    def _check(self, inputs: Array) -> None:
        if inputs.ndim != 4 or inputs.shape[-1] != self.in_channels:
            raise ShapeError(
                f"{self.describe()} expects NHWC images of shape "
                f"{format_shape((None, None, self.in_channels))}, but received an array of "
                f"shape {inputs.shape}. Fix: pass a 4-D batch (batch, height, width, "
                f"{self.in_channels}), e.g. images.reshape(-1, 28, 28, 1)."
            )

    # -- forward / backward ------------------------------------------------------------------
    def linear_forward(self, inputs: Array) -> Array:
        padded, (out_h, out_w) = self.pad(inputs)
        z = self.convolve(padded, (out_h, out_w))
        return z.reshape(len(inputs), out_h, out_w, self.filters)

    def pad(self, inputs: Array) -> tuple[Array, tuple[int, int]]:
        """Check an NHWC batch and pad it; returns it with the output size (out_h, out_w)."""
        self._check(inputs)
        _, height, width, _ = inputs.shape
        (out_h, top, bottom), (out_w, left, right) = self._geometry(height, width)
        if top or bottom or left or right:
            inputs = np.pad(inputs, ((0, 0), (top, bottom), (left, right), (0, 0)))
        self._input_geometry = (inputs.shape, (top, left), (height, width))
        return inputs, (out_h, out_w)

    def convolve(
        self, padded: Array, out: tuple[int, int], pool: tuple[int, int] | None = None
    ) -> Array:
        """S at the first out_h × out_w output pixels, as a (rows, F) matrix, rows in the
        order of ``im2col``."""
        return np.matmul(self.im2col(padded, out, pool), self.kernel_matrix())

    def kernel_matrix(self) -> Array:
        """K reshaped to (kh·kw·C, F) with the biases as a last row (see ``im2col``)."""
        window = self.kernel_size[0] * self.kernel_size[1] * self.in_channels
        weights = self.params["weights"].reshape(window, self.filters)
        return np.concatenate([weights, self.params["biases"][None]])

    def im2col(
        self, padded: Array, out: tuple[int, int], pool: tuple[int, int] | None = None
    ) -> Array:
        """The windows of the first out_h × out_w output pixels, one per row, kept for
        backward.

        Rows in image order (n, i, j); or, with ``pool`` = (ph, pw) dividing ``out``, in
        *pool order* (a, b, n, i, j) for the pixel (ph·i + a, pw·j + b): one block per
        position (a, b) inside the pooling window (``lamina.engine.fusion``).

        Each row holds a window's kh·kw·C values, then a 1 that multiplies the bias row of
        ``kernel_matrix`` — the bias add and ∂L/∂b ride along in the matmuls.
        """
        n = len(padded)
        kh, kw = self.kernel_size
        window = kh * kw * self.in_channels
        grids = window_grids(self.stride, out, pool)
        rows = n * out[0] * out[1]
        if self.in_channels >= FEW_CHANNELS:  # row-major: a window's kw·C values are a run
            cols = np.empty((rows, window + 1), dtype=padded.dtype)
        else:  # column-major: each column one run (W2's first convolution: 0.3 vs 0.8 ms)
            cols = np.empty((window + 1, rows), dtype=padded.dtype).T
        cols[:, window] = 1
        for grid, block in zip(grids, np.split(cols[:, :window], len(grids)), strict=True):
            if self.in_channels >= FEW_CHANNELS:
                windows = block.reshape(n, *grid.shape, kh, kw, self.in_channels)
                origin = padded[:, grid.rows[0] :, grid.columns[0] :]
                steps = (grid.rows[1], grid.columns[1])
                np.copyto(windows, strided_windows(origin, self.kernel_size, steps, grid.shape))
                continue
            for (m, k), rows_read, columns_read in grid.offsets(self.kernel_size):
                for c in range(self.in_channels):
                    column = block[:, (m * kw + k) * self.in_channels + c]
                    column.reshape(n, *grid.shape)[...] = padded[:, rows_read, columns_read, c]
        self._cols, self._layout = cols, (out, pool)
        return cols

    def backward_linear(self, dz: Array) -> Array | None:
        """From ∂L/∂S in the order ``convolve`` produced it (any shape ending in F)."""
        grads = self.gradient_buffers()
        delta = dz.reshape(-1, self.filters)
        kernel_grad = np.matmul(self._cols.T, delta)  # (kh·kw·C + 1, F): ∂L/∂K, then ∂L/∂b
        grads["weights"].reshape(-1, self.filters)[...] = kernel_grad[:-1]
        grads["biases"][...] = kernel_grad[-1]
        self.add_regularization_gradients()
        if not self.input_grad:
            return None
        return self._col2im(delta)

    def _col2im(self, delta: Array) -> Array:
        """∂L/∂I: each window's gradient row δ·Kᵀ added back onto the pixels it came from.

        Done per kernel offset (m, n): the (rows, C) block δ·K(m, n)ᵀ is one matmul into a
        reused buffer, then one strided add onto the input pixels at offset (m, n) of every
        window. Same sums as one big δ·Kᵀ followed by the scatter, but the adds read a
        contiguous block: 4.1 ms instead of 7.4 ms for W2's second convolution. Rows in pool
        order are put back in image order first (0.1 ms), so that each add moves runs of
        out_w·C values, not C (0.9 instead of 1.6 ms there).
        """
        padded_shape, (top, left), (height, width) = self._input_geometry
        (out_h, out_w), pool = self._layout
        n = padded_shape[0]
        if pool is not None:
            (ph, pw), channels = pool, self.filters
            pooled = delta.reshape(ph, pw, n, out_h // ph, out_w // pw, channels)
            delta = np.ascontiguousarray(pooled.transpose(2, 3, 0, 4, 1, 5))
            delta = delta.reshape(-1, channels)
        (grid,) = window_grids(self.stride, (out_h, out_w), None)
        weights = self.params["weights"]
        dx = np.zeros(padded_shape, dtype=delta.dtype)
        block = np.empty((len(delta), self.in_channels), dtype=delta.dtype)
        for (m, k), rows, columns in grid.offsets(self.kernel_size):
            np.matmul(delta, weights[m, k].T, out=block)
            dx[:, rows, columns] += block.reshape(n, out_h, out_w, self.in_channels)
        if dx.shape[1:3] != (height, width):
            dx = dx[:, top : top + height, left : left + width]
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding,
            "activation": self.activation_config(),
            "weight_init": self.weight_init,
            **self.regularization_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Conv2D:
        return cls(**with_activation_built(config))
