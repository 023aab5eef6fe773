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

import numpy as np

from lamina.layers.conv import Conv2D
from lamina.layers.pooling import MaxPool2D, route_to_maxima, running_maximum

Array = np.ndarray


def fusable(conv: object, pool: object) -> bool:
    """Whether ``conv`` then ``pool`` can run as a :class:`PooledConvolution`: a Conv2D
    straight into a MaxPool2D whose windows do not overlap or skip (stride = pool size)."""
    return isinstance(conv, Conv2D) and type(pool) is MaxPool2D and pool.stride == pool.pool_size


class PooledConvolution:
    """``MaxPool2D(Conv2D(x))`` as one step: the convolution's linear part computed in pool
    order, then the running maximum over contiguous blocks.

    Forward: P(i, j, f) = max_{a,b} S(ph·i + a, pw·j + b, f), with S the convolution of
    notes §1.11 evaluated only where the pooling reads it. Backward: ∂L/∂S is ∂L/∂P at the
    element that held each maximum and 0 elsewhere, then the convolution's own backward
    (∂L/∂K = colsᵀ·δ, ∂L/∂I by col2im) over the same rows.
    """

    def __init__(self, conv: Conv2D, pool: MaxPool2D) -> None:
        self.conv = conv
        self.pool = pool
        self._took_over: list[Array] | None = None

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        conv, (ph, pw) = self.conv, self.pool.pool_size
        padded, (out_h, out_w) = conv.pad(inputs)
        pooled_h, pooled_w = self.pool.pooled_size(out_h, out_w)
        cols = conv.im2col(padded, (ph * pooled_h, pw * pooled_w), pool=(ph, pw))
        kernel, shape = conv.kernel_matrix(), (len(inputs), pooled_h, pooled_w, conv.filters)
        # one block of S per position in the pooling window, folded in while in cache
        blocks = (np.matmul(block, kernel).reshape(shape) for block in np.split(cols, ph * pw))
        maximum, self._took_over = running_maximum(blocks, training)
        self._inputs = inputs  # after an inference pass, backward runs forward again
        return maximum

    def backward(self, dvalues: Array) -> Array | None:
        if self._took_over is None:
            self.forward(self._inputs, training=True)
        assert self._took_over is not None
        dz = np.empty((len(self._took_over) + 1, *dvalues.shape), dtype=dvalues.dtype)
        route_to_maxima(dvalues, self._took_over, list(dz), accumulate=False)
        return self.conv.backward_linear(dz)
