r"""A convolution, its batch normalization and a max pooling as one training step (notes
§1.11 "Convolutional Layer", "Batch Normalization").

``Conv2D → BatchNorm → ReLU → MaxPool2D`` is the block of a normalized CNN (the plan moves
the ReLU after the pooling: they commute). Run layer by layer, a training step writes and
reads the convolution's output S in full about a dozen times — the product, BatchNorm's
sums, x − μ and y, the pooling, and in backward the routed gradient, BatchNorm's sums and
∂L/∂x — and W2-BN's first S is 11 MB at batch 128. Everything BatchNorm needs of S is linear
in the rows of cols (S = cols·K, 10 values a row for a 3×3 kernel on one channel), so this
step takes it from the small Gram matrix colsᵀ·cols (float64) and never makes S whole:

    forward    Σ S = (Σ cols)·K = Gram[last row]·K        (cols' last column is 1)
               Σ (S − μ)²  = K″ᵀ·Gram·K″ per filter        K″: K with μ off its bias row,
                                                           so that cols·K″ = S − μ
               y = (S − μ)·γ/√(σ² + ε) + β = cols·K′        K′ = K″·γ/√(σ² + ε), + β
               P = max over the pooling window of y        one block of rows at a time
    backward   δ = ∂L/∂y is δ_P at each window's maximum, 0 elsewhere, routed a block of
               rows at a time into D = colsᵀ·δ (the product the pooled convolution of
               ``lamina.engine.fusion`` makes for ∂L/∂K);
               Σ δ = Σ δ_P,  Σ δ (x − μ) = Σ_k K″ ⊙ D per filter
               ∂L/∂K = colsᵀ·∂L/∂S, with BatchNorm's ∂L/∂S = ((S − μ)·(−k) + δ − u)·a
                     = (Gram·K″·(−k) + D − (Σ cols) u)·a

with a = γ/√(σ² + ε), k = Σ δ (x − μ) / (m (σ² + ε)) and u = Σ δ / m, per filter
(docs/formulas.md §12). In a split step (``lamina.engine.halves``) Σ S and m, Σ (S − μ)²,
and Σ δ with Σ δ (x − μ) are exchanged in the order BatchNorm exchanges them; the running
statistics are updated as BatchNorm updates them. Every number is the layer-by-layer
formula's, summed in another order: float64 tests at 1e-10, and float32 sums are more
exact here than there (the Gram matrix is float64). W2-BN's first block, a training step's
forward and backward at batch 128 on one core: 14 ms against 56–59 ms layer by layer.

It runs where it is exact and pays: a convolution by im2col (F(2×2, 3×3) keeps no cols), a
Conv2D without an activation of its own, lamina's own BatchNorm, and an output the pooling
reads in full (an odd-sized map has pixels BatchNorm counts and the pooling drops). A
convolution that passes ∂L/∂inputs on gets ∂L/∂S = cols·(K″·(−k)·a) − u·a + δ·a, made a
block at a time, for its own backward. Inference on the training plan and odd sizes run
the three layers one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina.engine.fusion import pooled_maximum, routed_product, routed_rows
from lamina.errors import BackwardError
from lamina.layers._rows import ones_vector
from lamina.layers._workspace import Workspace
from lamina.layers.conv import Conv2D, ConvolutionCache, backward_needs_training
from lamina.layers.normalization import BatchNorm, row_blocks
from lamina.layers.pooling import MaxPool2D

Array = np.ndarray


def normalized_fusable(conv: object, norm: object, pool: object) -> bool:
    """Whether ``conv``, ``norm`` and ``pool`` can run as a :class:`NormalizedPooledConvolution`:
    a Conv2D without an activation of its own that runs by im2col, lamina's BatchNorm over
    its channels, and a MaxPool2D whose windows neither overlap nor skip."""
    return (
        isinstance(conv, Conv2D)
        and conv.activation is None
        and not conv.runs_by_tiles(pool_size(pool))
        and type(norm) is BatchNorm
        and type(pool) is MaxPool2D
        and pool.stride == pool.pool_size
    )


def pool_size(pool: object) -> tuple[int, int] | None:
    return pool.pool_size if isinstance(pool, MaxPool2D) else None


@dataclass(frozen=True)
class NormalizedPoolingCache:
    """What the fused backward needs from its training forward: the convolution's cache
    (cols in pool order), Gram = colsᵀ·cols (float64), K with μ taken off its bias row
    (float64), 1/√(σ² + ε), m, and where each block of the pooling window after the first
    took over the running maximum (flat (pooled rows, F) booleans)."""

    convolution: ConvolutionCache
    gram: Array
    centered_kernel: Array
    inverse_std: Array
    count: int
    took_over: list[Array]


class NormalizedPooledConvolution:
    """``MaxPool2D(BatchNorm(Conv2D(x)))`` as one training step; see the module's text."""

    def __init__(self, conv: Conv2D, norm: BatchNorm, pool: MaxPool2D) -> None:
        self.conv, self.norm, self.pool = conv, norm, pool
        self._cache: NormalizedPoolingCache | None = None
        self._chained = False  # whether the last forward ran the three layers one by one
        self._workspace = Workspace()  # a block's y and routed δ, reused

    def release_scratch(self) -> None:
        """Let go of the scratch arrays of this step and of its layers."""
        self._workspace.clear()
        for layer in (self.conv, self.norm, self.pool):
            layer.release_scratch()

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._cache = None
        self._chained = not (training and self._reads_all(inputs))
        if self._chained:
            return self._forward_chained(inputs, training=training)
        conv, norm = self.conv, self.norm
        dtype = np.result_type(inputs, norm.params["gamma"])
        convolution = conv.unfold(
            inputs.astype(dtype, copy=False), pool=self.pool.pool_size, scratch=True
        )
        cols = convolution.cols
        assert cols is not None
        gram, kernel = gram_matrix(cols), conv.kernel_matrix().astype(np.float64)
        sums, m = norm.whole_batch((gram[-1] @ kernel).astype(dtype), len(cols))  # Σ S, m
        centered_kernel = kernel.copy()
        centered_kernel[-1] -= sums.astype(np.float64) / m  # cols · this = S − μ
        # Σ (S − μ)² per filter f: K″_fᵀ · Gram · K″_f
        squares = np.einsum("kf,kf->f", gram @ centered_kernel, centered_kernel)
        (squares,) = norm.whole_batch(squares.astype(dtype))
        variance = squares / m
        inverse_std = 1.0 / np.sqrt(variance + norm.epsilon)
        norm.update_running(sums / m, variance * (m / max(m - 1, 1)))
        # y = (S − μ)·γ/√(σ² + ε) + β = cols · K′
        gamma, beta = norm.params["gamma"], norm.params["beta"]
        normalizing = centered_kernel * (gamma * inverse_std).astype(np.float64)
        normalizing[-1] += beta
        windows = len(self.pool_positions())
        maximum, took_over = pooled_maximum(
            cols, normalizing.astype(dtype), windows, self._workspace, record=True
        )
        assert took_over is not None
        self._cache = NormalizedPoolingCache(
            convolution, gram, centered_kernel, inverse_std, m, took_over
        )
        (out_h, out_w), (ph, pw) = convolution.out, self.pool.pool_size
        return maximum.reshape(convolution.batch, out_h // ph, out_w // pw, conv.filters)

    def _forward_chained(self, inputs: Array, *, training: bool) -> Array:
        """The three layers' forwards one after another."""
        outputs = self.conv.linear_forward(inputs, training=training)
        outputs = self.norm.forward(outputs, training=training)
        return self.pool.forward(outputs, training=training)

    def _backward_chained(self, dvalues: Array) -> Array | None:
        """The three layers' backwards, after :meth:`_forward_chained`."""
        gradient = self.pool.backward(dvalues)
        return self.conv.backward_linear(self.norm.backward(gradient))

    def _untrained(self) -> BackwardError:
        """The error of a backward with no training forward before it."""
        return backward_needs_training(
            f"{self.conv.describe()} → {self.norm.describe()} → {self.pool.describe()}"
        )

    def _reads_all(self, inputs: Array) -> bool:
        """Whether the pooling reads every output pixel of the convolution (its size a
        multiple of the pool's) — and there are some."""
        if inputs.ndim != 4:
            return False  # the convolution's own check names the problem
        out_h, out_w, _ = self.conv.output_shape(inputs.shape[1:])
        ph, pw = self.pool.pool_size
        return bool(out_h and out_w and out_h % ph == 0 and out_w % pw == 0)

    def pool_positions(self) -> range:
        """The positions (a·pw + b) inside a pooling window: one block of cols each."""
        return range(self.pool.pool_size[0] * self.pool.pool_size[1])

    def backward(self, dvalues: Array) -> Array | None:
        if self._chained:
            return self._backward_chained(dvalues)
        cache = self._cache
        if cache is None:
            raise self._untrained()
        norm, conv = self.norm, self.conv
        delta = dvalues.reshape(-1, conv.filters)  # δ_P, (pooled rows, F)
        cols = cache.convolution.cols
        assert cols is not None
        routed = routed_product(cols, delta, cache.took_over, self._workspace)  # colsᵀ·δ
        sum_delta = column_sums(delta).astype(np.float64)  # Σ δ = Σ δ_P
        sum_delta_centered = np.einsum("kf,kf->f", routed, cache.centered_kernel)
        grads = norm.gradient_buffers()  # this process's part, as BatchNorm's backward
        grads["gamma"][...] = sum_delta_centered * cache.inverse_std
        grads["beta"][...] = sum_delta
        sum_delta, sum_delta_centered = norm.whole_batch(sum_delta, sum_delta_centered)
        inverse_std, m = cache.inverse_std.astype(np.float64), cache.count
        a = norm.params["gamma"].astype(np.float64) * inverse_std
        minus_k = -inverse_std * inverse_std * sum_delta_centered / m
        u = sum_delta / m
        # ∂L/∂K = colsᵀ·∂L/∂S = (Gram·K″·(−k) + colsᵀ·δ − (Σ cols) u)·a, per filter
        gram = cache.gram
        kernel_grad = (gram @ cache.centered_kernel * minus_k + routed - np.outer(gram[-1], u)) * a
        if not conv.input_grad:
            conv.store_kernel_gradient(kernel_grad.astype(delta.dtype))
            return None
        # ∂L/∂S = cols·(K″·(−k)·a) − u·a + δ·a, gathered for the convolution's backward
        dz_kernel = cache.centered_kernel * (minus_k * a)
        dz_kernel[-1] -= u * a
        return self._input_gradient(
            cache, delta, dz_kernel.astype(delta.dtype), a.astype(delta.dtype)
        )

    def _input_gradient(
        self, cache: NormalizedPoolingCache, delta: Array, dz_kernel: Array, a: Array
    ) -> Array | None:
        """∂L/∂inputs by the convolution's own backward, from ∂L/∂S made block by block."""
        cols = cache.convolution.cols
        assert cols is not None
        pooled_rows = len(delta)
        dz = np.empty((len(cols), delta.shape[1]), delta.dtype)
        for rows in row_blocks(delta.shape, delta.dtype):
            routed = routed_rows(delta, cache.took_over, rows, self._workspace)
            for position in self.pool_positions():
                block = slice(
                    position * pooled_rows + rows.start, position * pooled_rows + rows.stop
                )
                np.matmul(cols[block], dz_kernel, out=dz[block])
                dz[block] += routed[position] * a
        return self.conv.backward_from(cache.convolution, dz)


def gram_matrix(cols: Array) -> Array:
    """colsᵀ·cols in float64, a block of rows at a time (its last row: Σ cols, and m)."""
    width = cols.shape[1]
    gram = np.zeros((width, width), np.float64)
    for rows in row_blocks((len(cols), width), np.dtype(np.float64)):
        block = cols[rows].astype(np.float64)
        gram += block.T @ block
    return gram


def column_sums(rows: Array) -> Array:
    """Σ over the rows of a (rows, F) array per column, as ones·rows (one BLAS pass)."""
    return ones_vector(len(rows), rows.dtype) @ rows
