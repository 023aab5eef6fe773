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
reordered rows. Each block of S is folded into the running maximum right after its matmul,
while it is still in cache (W2's first convolution: S is 11 MB at batch 128).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamina.layers._workspace import Workspace
from lamina.layers.conv import Conv2D, ConvolutionCache, backward_needs_training
from lamina.layers.pooling import MaxPool2D, route_to_maxima, running_maximum

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
        conv, (ph, pw) = self.conv, self.pool.pool_size
        # the convolution's cache is kept if training
        blocks, convolution = conv.products(inputs, pool=(ph, pw), training=training)
        # a ShapeError here when the convolution's output is smaller than the pool
        pooled_h, pooled_w = self.pool.pooled_size(*convolution.geometry.output)
        shape = (len(inputs), pooled_h, pooled_w, conv.filters)
        # one block of S per position in the pooling window, folded in while in cache
        maximum, took_over = running_maximum((block.reshape(shape) for block in blocks), training)
        if took_over is not None:
            self._cache = PooledConvolutionCache(convolution, took_over)
        return maximum

    def backward(self, dvalues: Array) -> Array | None:
        cache = self._cache
        if cache is None:
            raise backward_needs_training(f"{self.conv.describe()} → {self.pool.describe()}")
        shape = (len(cache.took_over) + 1, *dvalues.shape)
        dz = self._workspace.empty("dz", shape, dvalues.dtype)
        route_to_maxima(dvalues, cache.took_over, list(dz), accumulate=False)
        return self.conv.backward_from(cache.convolution, dz)
