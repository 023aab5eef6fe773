r"""Matrix products whose shape the BLAS library handles badly, computed in a shape it
handles well — same mathematics, another summation order.

A convolution's kernel gradient ∂L/∂K = colsᵀ·δ (notes §1.11) sums over every output pixel
of the batch: for W2's first convolution that is (10 × 86,528)·(86,528 × 32), a *thin*
product (M·N = 320 outputs) with a very long reduction. OpenBLAS splits work over M and N,
not over the reduction, and runs it at ~37 GFLOP/s here; cut into 32 slabs of rows, the
same sum is one batched product of 32 short reductions and a sum of 32 small matrices:

    Aᵀ·B = Σₛ A_sᵀ·B_s      (A_s, B_s: the s-th slab of rows of A and B)

1.13 → 0.53 ms for that product on this machine (benchmarks/README.md, "Where the time
goes"). Products that are not thin keep the single call (slabs made them slower).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

#: a product is thin when its output has at most this many entries …
THIN_OUTPUTS = 1024
#: … and its reduction at least this many rows; it is then summed over SLABS slabs
LONG_REDUCTION = 16_384
SLABS = 32


def transposed_product(a: Array, b: Array) -> Array:
    """aᵀ·b for a (K, M) and b (K, N): (M, N), over slabs of rows when it is thin
    (M·N ≤ THIN_OUTPUTS and K ≥ LONG_REDUCTION), else one matmul. The rows that do not
    fill a whole slab are added by one more product."""
    rows, m = a.shape
    n = b.shape[1]
    if m * n > THIN_OUTPUTS or rows < LONG_REDUCTION:
        return np.matmul(a.T, b)
    per_slab = rows // SLABS
    whole = per_slab * SLABS
    slabs_a = a[:whole].reshape(SLABS, per_slab, m).transpose(0, 2, 1)
    slabs_b = b[:whole].reshape(SLABS, per_slab, n)
    total = np.matmul(slabs_a, slabs_b).sum(axis=0)
    if whole < rows:
        total += np.matmul(a[whole:].T, b[whole:])
    return total
