"""A convolution feeding a max pooling, run as one step of the execution plan (notes §1.11).

``Conv2D → MaxPool2D`` is the pattern of every convolutional block (with a ReLU between
them, which the plan moves after the pooling: the two commute). Run layer by layer, the
pooling reads its ph·pw sub-grids as strided views of the NHWC feature map — each view a
run of C contiguous floats, then a jump — and so do its masks and its backward. Run
together, the convolution computes its outputs in *pool order*: one block of rows per
position (a, b) inside the pooling window, holding the convolution at (ph·i + a, pw·j + b)
for every pooled pixel (i, j). The pooling's sub-grids are then contiguous blocks of the
matmul's output, and every pooling pass streams through memory. Outputs the pooling
drops — the last row and column of an odd-sized map — are never computed: W2's second
convolution does 100 of its 121 windows per image. (W2's first convolution and pooling,
forward and backward in a training step at batch 128: 3.3 ms instead of 7.2 ms.)

Every output is the same dot product as in the layer-by-layer run, computed by a matmul of
another size (so equal up to rounding); the maximum and its gradient go to the first of
tied elements in row-major window order, as in MaxPool2D; ∂L/∂K sums the same terms over
reordered rows.

By im2col, S is never made whole: :func:`pooled_maximum` makes it a block of rows at a
time (BLOCK_BYTES of each position's block), each folded into the running maximum while it
is still in cache, and a backward that passes no ∂L/∂inputs on (a model's first layer)
sums ∂L/∂K = colsᵀ·δ over the same blocks of rows, each routed just before
(:func:`routed_product`) — S and δ of W2's first convolution are 11 MB at batch 128. (Its
forward, half a batch on one core: 0.7 against 1.3 ms; its backward 1.4 against 1.9 ms.)
By F(2×2, 3×3) into a 2×2 pooling, each chunk of tiles' four outputs is pooled while in
cache (``Conv2D.max_pooled_by_tiles``), so those four blocks are never written whole either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina.layers._maxima import fold_maximum
from lamina.layers._workspace import Workspace
from lamina.layers.conv import Conv2D, ConvolutionCache, backward_needs_training
from lamina.layers.normalization import row_blocks
from lamina.layers.pooling import MaxPool2D, route_to_maxima

Array = np.ndarray


def fusable(conv: object, pool: object) -> bool:
    """Whether ``conv`` then ``pool`` can run as a :class:`PooledConvolution`: a Conv2D
    straight into a MaxPool2D whose windows do not overlap or skip (stride = pool size)."""
    return isinstance(conv, Conv2D) and type(pool) is MaxPool2D and pool.stride == pool.pool_size


@dataclass(frozen=True)
class PooledConvolutionCache:
    """What the fused backward needs from a training forward: the convolution's cache (cols
    in pool order) and, per position in the pooling window after the first, where its block
    of S took over the maximum (``running_maximum``)."""

    convolution: ConvolutionCache
    took_over: list[Array]


class PooledConvolution:
    """``MaxPool2D(Conv2D(x))`` as one step: the convolution's linear part computed in pool
    order, then the running maximum over contiguous blocks.

    Forward: P(i, j, f) = max_{a,b} S(ph·i + a, pw·j + b, f), with S the convolution of
    notes §1.11 evaluated only where the pooling reads it. Backward: ∂L/∂S is ∂L/∂P at the
    element that held each maximum and 0 elsewhere, then the convolution's own backward
    (∂L/∂K = colsᵀ·δ, ∂L/∂I by col2im) over the same rows. A training forward keeps a
    :class:`PooledConvolutionCache`; an inference forward keeps nothing, and a backward after
    it raises.
    """

    def __init__(self, conv: Conv2D, pool: MaxPool2D) -> None:
        self.conv = conv
        self.pool = pool
        self._cache: PooledConvolutionCache | None = None  # made by a training forward
        self._workspace = Workspace()  # ∂L/∂S of the blocks, reused from batch to batch

    def release_scratch(self) -> None:
        """Let go of the scratch arrays of this step and of its convolution."""
        self._workspace.clear()
        self.conv.release_scratch()

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self._cache = None  # the last pass's cols go first: the new ones reuse their memory
        conv, pool = self.conv, self.pool.pool_size
        shape = self._pooled_shape(inputs)
        if conv.runs_by_tiles(pool):  # a 2×2 pool: each chunk of tiles pooled in cache
            maximum, took_over, convolution = conv.max_pooled_by_tiles(inputs, training=training)
        else:
            convolution = conv.unfold(inputs, pool=pool, scratch=True)
            assert convolution.cols is not None
            kernel = conv.kernel_matrix()
            maximum, took_over = pooled_maximum(
                convolution.cols, kernel, pool[0] * pool[1], self._workspace, record=training
            )
        if took_over is not None:  # shaped like P, as the pooling's records
            self._cache = PooledConvolutionCache(
                convolution, [took.reshape(shape) for took in took_over]
            )
        return maximum.reshape(shape)

    def _pooled_shape(self, inputs: Array) -> tuple[int, int, int, int]:
        """(N, pooled_h, pooled_w, F); the convolution's ShapeError for a batch of the wrong
        shape, the pooling's when the convolution's output is smaller than the pool."""
        self.conv.check_batch(inputs)
        out_h, out_w, _ = self.conv.output_shape(inputs.shape[1:])
        assert out_h is not None and out_w is not None  # an array's sizes are known
        pooled_h, pooled_w = self.pool.pooled_size(out_h, out_w)
        return (len(inputs), pooled_h, pooled_w, self.conv.filters)

    def backward(self, dvalues: Array) -> Array | None:
        cache = self._cache
        if cache is None:
            raise backward_needs_training(f"{self.conv.describe()} → {self.pool.describe()}")
        cols, conv = cache.convolution.cols, self.conv
        if cols is not None and not conv.input_grad:  # ∂L/∂K alone, a block of rows at a time
            delta = dvalues.reshape(-1, conv.filters)
            took_over = [took.reshape(delta.shape) for took in cache.took_over]
            product = routed_product(cols, delta, took_over, self._workspace)
            conv.store_kernel_gradient(product.astype(delta.dtype))
            return None
        shape = (len(cache.took_over) + 1, *dvalues.shape)
        dz = self._workspace.empty("dz", shape, dvalues.dtype)
        route_to_maxima(dvalues, cache.took_over, list(dz), accumulate=False)
        return conv.backward_from(cache.convolution, dz)


def pooled_maximum(
    cols: Array, kernel: Array, windows: int, workspace: Workspace, *, record: bool
) -> tuple[Array, list[Array] | None]:
    """(P, and ``record``: the running maximum's records), both (pooled rows, F): the
    maximum over the ``windows`` blocks of ``cols`` (pool order) of cols · K, made and
    folded in a block of rows at a time (each block of the product still in cache when the
    maximum reads it). Ties go to the first block, as in ``running_maximum``."""
    pooled_rows, features = len(cols) // windows, kernel.shape[1]
    dtype = np.result_type(cols, kernel)
    maximum = np.empty((pooled_rows, features), dtype)
    took_over = [np.empty(maximum.shape, np.bool_) for _ in range(windows - 1)]
    for rows in row_blocks((pooled_rows, features), dtype):
        size = rows.stop - rows.start
        product = workspace.empty("product", (size, features), dtype)
        np.matmul(cols[rows], kernel, out=maximum[rows])
        for position in range(1, windows):
            start = position * pooled_rows
            np.matmul(cols[start + rows.start : start + rows.stop], kernel, out=product)
            took = took_over[position - 1][rows] if record else None
            fold_maximum(maximum[rows], product, took)
    return maximum, took_over if record else None


def routed_product(
    cols: Array, delta: Array, took_over: list[Array], workspace: Workspace
) -> Array:
    """colsᵀ·δ in float64 (cols in pool order), δ = δ_P at each window's maximum and 0
    elsewhere, routed a block of rows at a time (:func:`routed_rows`)."""
    windows, (pooled_rows, features) = len(took_over) + 1, delta.shape
    product = np.zeros((cols.shape[1], features), np.float64)
    for rows in row_blocks((pooled_rows, features), delta.dtype):
        routed = routed_rows(delta, took_over, rows, workspace)
        for position in range(windows):
            start = position * pooled_rows
            product += np.matmul(cols[start + rows.start : start + rows.stop].T, routed[position])
    return product


def routed_rows(delta: Array, took_over: list[Array], rows: slice, workspace: Workspace) -> Array:
    """δ_P of ``rows`` given to the block that held each maximum: (positions, rows, F)."""
    shape = (len(took_over) + 1, rows.stop - rows.start, delta.shape[1])
    routed = workspace.empty("routed", shape, delta.dtype)
    took = [took_over_k[rows] for took_over_k in took_over]
    route_to_maxima(delta[rows], took, list(routed), accumulate=False)
    return routed
