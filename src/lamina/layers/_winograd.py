r"""A 3×3 convolution with stride 1 by Winograd's minimal filtering F(2×2, 3×3) (Lavin &
Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the same S as notes
§1.11, with 16 multiplications per 2×2 outputs instead of 36.

For one 4×4 *tile* d of the input (rows 2i … 2i + 3, columns 2j … 2j + 3) and one channel's
3×3 kernel g, the 2×2 outputs S(2i + a, 2j + b) = Σₘ Σₙ d(a + m, b + n) · g(m, n) are

    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A

        Bᵀ = [1  0 −1  0]     G = [ 1    0    0 ]     Aᵀ = [1  1  1  0]
             [0  1  1  0]         [ ½    ½    ½ ]          [0  1 −1 −1]
             [0 −1  1  0]         [ ½   −½    ½ ]
             [0  1  0 −1]         [ 0    0    1 ]

Summed over the channels c and done for every filter f, the element-wise product becomes
16 matrix products, one per element ξ of the 4×4 transformed tile:

    V_ξ = (Bᵀ d B)_ξ for every tile        (tiles × C)
    U_ξ = (G g Gᵀ)_ξ for every (c, f)      (C × F)
    M_ξ = V_ξ · U_ξ                         (tiles × F)
    Y   = Aᵀ M A                            (4 outputs per tile and filter)

Written for the 16 (or 9, or 4) entries of a tile as vectors, Bᵀ d B is (Bᵀ ⊗ Bᵀ)·vec(d),
G g Gᵀ is (G ⊗ G)·vec(g) and Aᵀ M A is (Aᵀ ⊗ Aᵀ)·vec(M). The kernel and output transforms
are one small matmul each over all tiles at once. The input transform's entries are 0 and
±1, so it is done as the adds it stands for, one line direction at a time — Bᵀ on the
four rows of a tile, then on its four columns (:func:`_input_lines`) — over contiguous
planes of the gathered tiles: 0.26 instead of 0.34–0.36 ms per chunk of W2's second
convolution, where the matmul with a reduction of 16 ran at a third of OpenBLAS's rate.
The bias is added to M₅ (ξ = (1, 1)): every output of a tile has coefficient 1 on it.

Backward is the chain rule through the same linear maps, with δ = ∂L/∂Y:

    ∂L/∂M = (Aᵀ ⊗ Aᵀ)ᵀ δ              ∂L/∂b = Σ_tiles ∂L/∂M₅ = Σ δ
    ∂L/∂U_ξ = V_ξᵀ · ∂L/∂M_ξ          ∂L/∂K = (G ⊗ G)ᵀ ∂L/∂U
    ∂L/∂V_ξ = ∂L/∂M_ξ · U_ξᵀ          ∂L/∂d = (Bᵀ ⊗ Bᵀ)ᵀ ∂L/∂V, added onto the input pixels
                                       each tile was read from (tiles overlap by 2)

and (Bᵀ ⊗ Bᵀ)ᵀ, too, as the adds it stands for (:func:`_gradient_lines`; W2: 0.37–0.38
instead of 0.48–0.50 ms per chunk with the matmul and four quadrant adds).

W2's second convolution at batch 128: 210 instead of 473 MFLOP in the products of its
forward, 420 instead of 946 in those of its backward. In exact arithmetic the outputs and
gradients are those of the direct formula; in floating point they differ by rounding
(float64: ≤ 1e-12 relative, tests/layers/test_winograd.py).

The four outputs of a tile are returned as four *blocks* of rows, block (a, b) holding the
output pixels (2i + a, 2j + b) of every tile (n, i, j): the pool order of
``lamina.layers._im2col`` for a 2×2 max pooling, so the fused step of
``lamina.engine.fusion`` reads them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lamina.layers._maxima import fold_maximum
from lamina.layers._workspace import Workspace

Array = np.ndarray
Pair = tuple[int, int]

KERNEL: Pair = (3, 3)
#: the pooling whose windows are a tile's outputs
POOL: Pair = (2, 2)
#: tiles per pass (W2's second convolution: 8 images, 25 tiles each — a pass's tiles and
#: products, 0.4 and 0.8 MB, stay in a core's 1 MB L2 cache: a W2 training step split over
#: two processes, both cores busy, took 16–19.5 ms with 200 tiles against 19.5–25 ms with
#: 800; inference and the one-process step did not change beyond the machine's noise)
CHUNK_TILES = 200
#: where a core's L2 cache size is, on Linux
L2_CACHE = "/sys/devices/system/cpu/cpu0/cache/index2/size"


def core_l2_bytes(path: str = L2_CACHE) -> int | None:
    """The L2 cache of one core, in bytes (``"1024K"`` in sysfs), or None where unknown."""
    try:
        with open(path, encoding="ascii") as file:
            text = file.read(32).strip().upper()
    except (OSError, UnicodeDecodeError):
        return None
    scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in ("K", "M") else text
    return int(digits) * scale if digits.isdigit() and int(digits) > 0 else None


#: this machine's :func:`core_l2_bytes`
L2_BYTES = core_l2_bytes()


def inference_chunk_tiles(l2_bytes: int | None) -> int:
    """Tiles per pass of an inference forward: 400 per MB of a core's L2, from 200 to 800
    (800 where the size is unknown).

    An inference forward keeps no tiles for a backward, so its passes may be larger than
    training's: fewer, larger NumPy calls hold the GIL less often, and two inference
    threads (``engine/spread``) overlap better — until a pass outgrows the cache. Measured,
    W2 ``predict``: on an Intel Xeon with 2 MB of L2, 15.3–16.0k samples/s with 800 tiles
    against 12.0–14.0k with 200 (3,200 and whole batches no better than 800); on an AMD
    Zen 5 with 1 MB, three alternating runs of 6–12 predictions each, medians 34.3k,
    32.5k and 37.6k with 400 tiles against 31.9k, 28.7k and 35.9k with 800 (200: 31.7k)."""
    if l2_bytes is None:
        return 800
    return int(min(800, max(200, 400 * l2_bytes / (1 << 20))))


#: tiles per pass of an inference forward on this machine (:func:`inference_chunk_tiles`)
INFERENCE_CHUNK_TILES = inference_chunk_tiles(L2_BYTES)


def pooled_chunk_tiles(l2_bytes: int | None) -> int:
    """Tiles per pass of :func:`max_pooled`: half of :func:`inference_chunk_tiles` (at least
    200) where a core's L2 holds 1 MB or more or its size is unknown, and 800 where it holds
    less.

    A pass also holds its four outputs, so where a pass nearly fits in L2 it is best kept
    smaller than an unpooled one. Where L2 is small, no pass of a useful size fits (W2's
    second convolution needs ~7 KB a tile), the passes run from L3 whatever their size, and
    fewer, larger NumPy calls win. Measured, W2 ``predict`` of 5,120 images, the settings
    alternating in one process: on the Intel Xeon with 2 MB of L2, medians of three runs of
    six, 10.0k, 8.7k, 11.1k samples/s with 400 tiles, 9.3k, 9.2k, 10.0k with 200 and 7.9k,
    7.8k, 9.5k with 800; on an AMD Zen 3 with 512 KB (runs of six), 19.9k with 800 against
    18.2k with 400, 18.6k with 600 and 1,200, and 12.1–15.4k with 200. The 1 MB case is
    not measured. Training's W2 epochs were the same with 200, 400 and 800 (6.2–6.5k
    samples/s, within their noise)."""
    if l2_bytes is not None and l2_bytes < 1 << 20:
        return 800
    return max(200, inference_chunk_tiles(l2_bytes) // 2)


#: tiles per pass of :func:`max_pooled` on this machine (:func:`pooled_chunk_tiles`)
POOLED_CHUNK_TILES = pooled_chunk_tiles(L2_BYTES)
#: the fewest tiles a block of products takes (:func:`product_tiles`)
MIN_PRODUCT_TILES = 100


def product_tiles(l2_bytes: int | None, filters: int, itemsize: int) -> int:
    """Tiles per block of products M = V·U within a pass: as many as fit, with the block's
    four outputs (Aᵀ ⊗ Aᵀ)·M, in half of a core's L2 (1 MB assumed where its size is
    unknown), at least MIN_PRODUCT_TILES. A pass's input transform stays whole — fewer,
    larger NumPy calls — and the output transform reads M while it is still in cache.

    Measured on the Intel Xeon with 2 MB of L2, W2's second convolution in inference, 128
    images on one core, passes of 400 tiles, 35 alternations: 4.35 ms with blocks of 200
    tiles (204 by this rule), 4.62 ms with 100, 5.73 ms with whole passes — of which the
    output transform 0.40, 0.38 and 1.33 ms: M of 400 tiles (1.6 MB) and its outputs do
    not stay in L2. The 512 KB and 1 MB cases are not measured."""
    budget = (1 << 19) if l2_bytes is None else l2_bytes // 2
    return max(MIN_PRODUCT_TILES, budget // ((16 + 4) * filters * itemsize))


#: below this many input channels the products are too thin to pay for the transforms
#: (W2's first convolution, C = 1, stays with im2col)
MIN_CHANNELS = 16

_B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
_A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
BIAS_ELEMENT = 5  # ξ = (1, 1): Aᵀ[a, 1]·Aᵀ[b, 1] = 1 for every output (a, b)


@cache
def transforms(dtype: np.dtype) -> tuple[Array, Array, Array]:
    """(Bᵀ ⊗ Bᵀ, G ⊗ G, Aᵀ ⊗ Aᵀ) in ``dtype``: (16, 16), (16, 9) and (4, 16)."""
    return tuple(  # type: ignore[return-value]
        np.kron(m, m).astype(dtype) for m in (_B_T, _G, _A_T)
    )


def applicable(kernel: Pair, stride: Pair, channels: int, pool: Pair | None) -> bool:
    """Whether a convolution runs by F(2×2, 3×3): a 3×3 kernel with stride 1, at least
    MIN_CHANNELS input channels, and no pooling or a 2×2 one to read its blocks."""
    return (
        tuple(kernel) == KERNEL
        and tuple(stride) == (1, 1)
        and channels >= MIN_CHANNELS
        and (pool is None or tuple(pool) == POOL)
    )


def tile_grid(out: Pair, pool: Pair | None) -> Pair:
    """(tile rows, tile columns) for out_h × out_w outputs: enough tiles for all of them
    (the last row or column of tiles half outside for an odd size), or with a 2×2 pooling
    only the ⌊out/2⌋ the pooling reads."""
    if pool is None:
        return -(-out[0] // 2), -(-out[1] // 2)
    return out[0] // 2, out[1] // 2


@dataclass(frozen=True)
class WinogradCache:
    """What the backward needs from a training forward: the transformed tiles V (16, T, C),
    the transformed kernel U (16, C, F), the tile grid (th, tw) and the padded input's
    shape (N, Hp, Wp, C)."""

    tiles: Array
    kernel: Array
    grid: Pair
    padded_shape: tuple[int, ...]


def image_chunks(batch: int, grid: Pair, tiles: int | None = None) -> list[slice]:
    """The images of a batch in runs of about ``tiles`` tiles (default CHUNK_TILES), the
    unit each pass of :func:`forward` and :func:`backward` works on."""
    step = max(1, (CHUNK_TILES if tiles is None else tiles) // (grid[0] * grid[1]))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def tile_rows(images: slice, grid: Pair) -> slice:
    """The rows of the tiles of ``images`` in the (…, N·th·tw, …) arrays."""
    per_image = grid[0] * grid[1]
    return slice(images.start * per_image, images.stop * per_image)


def transform_input(padded: Array, grid: Pair, workspace: Workspace, out: Array) -> None:
    """V = (Bᵀ ⊗ Bᵀ)·vec(d) for every 4×4 tile d, into ``out``: tile (n, i, j) covers rows
    2i … 2i + 3 and columns 2j … 2j + 3 of the padded input (zero rows or columns are added
    below or to the right by :func:`covering` when the last tiles reach past it; ``forward``
    adds them once for the whole batch).

    Shape: padded (N, Hp, Wp, C) -> out (16, N·th·tw, C), row n·th·tw + i·tw + j for each ξ
    """
    th, tw = grid
    n, _, _, channels = padded.shape
    padded = covering(padded, grid)
    windows = sliding_window_view(padded, (4, 4), axis=(1, 2))[:, : 2 * th : 2, : 2 * tw : 2]
    gathered = workspace.empty("gathered", (4, 4, n, th, tw, channels), padded.dtype)
    np.copyto(gathered, windows.transpose(4, 5, 0, 1, 2, 3))  # (n, i, j, c, r, s) -> (r, s, …)
    rows = workspace.empty("rows", gathered.shape, padded.dtype)
    _input_lines(gathered, rows)  # rows[ρ] = (Bᵀ d)[ρ, s] for every s at once
    tiles = out.reshape(4, 4, n, th, tw, channels)
    for row in range(4):
        _input_lines(rows[row], tiles[row])  # (Bᵀ d B)[ρ, σ] = Σ_s (Bᵀ d)[ρ, s] Bᵀ[σ, s]


def covering(padded: Array, grid: Pair, workspace: Workspace | None = None) -> Array:
    """``padded`` itself when its th × tw tiles fit in it, else a copy with the zero rows
    below and columns to the right they reach (in ``workspace`` when given): done once per
    batch by :func:`forward`, not once per chunk (W2-BN's unpooled second convolution, 6 × 6
    tiles on 13 × 13 pixels: np.pad of 26 chunks took 5.5 ms a batch).

    Shape: (N, Hp, Wp, C) -> (N, max(Hp, 2·th + 2), max(Wp, 2·tw + 2), C)"""
    n, height, width, channels = padded.shape
    size = (max(height, 2 * grid[0] + 2), max(width, 2 * grid[1] + 2))
    if size == (height, width):
        return padded
    if workspace is None:
        covered = np.zeros((n, *size, channels), padded.dtype)
    else:
        covered = workspace.empty("covered", (n, *size, channels), padded.dtype)
        covered[:, height:] = 0
        covered[:, :height, width:] = 0
    covered[:, :height, :width] = padded
    return covered


def _input_lines(lines: Array, out: Array) -> None:
    """Bᵀ applied along the first axis of ``lines`` (4, …), into ``out`` (4, …):
    out₀ = l₀ − l₂, out₁ = l₁ + l₂, out₂ = l₂ − l₁, out₃ = l₁ − l₃."""
    np.subtract(lines[0], lines[2], out=out[0])
    np.add(lines[1], lines[2], out=out[1])
    np.subtract(lines[2], lines[1], out=out[2])
    np.subtract(lines[1], lines[3], out=out[3])


def transform_kernel(weights: Array) -> Array:
    """U = (G ⊗ G)·vec(g) for every (channel, filter) pair.

    Shape: weights (3, 3, C, F) -> (16, C, F)
    """
    _, _, channels, filters = weights.shape
    kernel_transform = transforms(weights.dtype)[1]
    return np.matmul(kernel_transform, weights.reshape(9, -1)).reshape(16, channels, filters)


def forward(
    padded: Array,
    weights: Array,
    biases: Array,
    grid: Pair,
    workspace: Workspace,
    *,
    training: bool,
) -> tuple[Array, WinogradCache | None]:
    """S + b for the th × tw tiles of ``grid``, as 4 blocks: block a·2 + b holds output
    pixel (2i + a, 2j + b) of tile (n, i, j) in row n·th·tw + i·tw + j; and, ``training``,
    the :class:`WinogradCache` for backward. The blocks and the cache's tiles live in
    ``workspace``: the next forward overwrites them.

    Done over :func:`image_chunks`, so that each chunk's tiles and products are still in
    cache when the next transform reads them (W2's second convolution, inference: 5.3–6.4
    ms in one pass over the batch, 4.0–4.1 ms in chunks of 32 images; see CHUNK_TILES; an
    inference forward uses INFERENCE_CHUNK_TILES).

    Shape: padded (N, Hp, Wp, C), weights (3, 3, C, F), biases (F,) -> (4, N·th·tw, F)
    """
    chunks = TiledPass(padded, weights, grid, workspace, training=training)
    outputs = workspace.empty("outputs", (4, chunks.count, chunks.filters), chunks.dtype)
    output_transform = transforms(chunks.dtype)[2]
    for rows, products in chunks.products(biases, INFERENCE_CHUNK_TILES):
        np.matmul(output_transform, products.reshape(16, -1), out=outputs[:, rows].reshape(4, -1))
    return outputs, chunks.cache


def max_pooled(
    padded: Array,
    weights: Array,
    biases: Array,
    grid: Pair,
    workspace: Workspace,
    *,
    training: bool,
) -> tuple[Array, list[Array] | None, WinogradCache | None]:
    """The 2×2 max pooling of :func:`forward`'s S + b, whose four blocks are a tile's four
    outputs: (P, one row per tile; ``training``: for blocks 1–3, where each took over the
    maximum, as ``lamina.layers.pooling.running_maximum`` records it; the cache). Each
    chunk's four outputs are folded into the maximum while still in cache: the four blocks
    are never written whole (W2's second convolution in inference, half a batch on one
    core, passes of 200 or 400 tiles: 5.1–5.6 against 6.0–6.8 ms for :func:`forward` then
    the pooling; see POOLED_CHUNK_TILES).

    Shape: padded (N, Hp, Wp, C), weights (3, 3, C, F), biases (F,) -> (N·th·tw, F)
    """
    chunks = TiledPass(padded, weights, grid, workspace, training=training)
    shape, dtype = (chunks.count, chunks.filters), chunks.dtype
    maximum = np.empty(shape, dtype)
    took_over = [np.empty(shape, np.bool_) for _ in range(3)] if training else None
    output_transform = transforms(dtype)[2]
    for rows, products in chunks.products(biases, POOLED_CHUNK_TILES):
        size = rows.stop - rows.start
        outputs = workspace.prefix("chunk_outputs", (4, size, chunks.filters), dtype, axis=1)
        np.matmul(output_transform, products.reshape(16, -1), out=outputs.reshape(4, -1))
        pooled = maximum[rows]
        np.copyto(pooled, outputs[0])
        for position in range(1, 4):
            took = None if took_over is None else took_over[position - 1][rows]
            fold_maximum(pooled, outputs[position], took)
    return maximum, took_over, chunks.cache


class TiledPass:
    """The tiles of one forward over a batch, chunk by chunk (:func:`image_chunks`): the
    input covered once (:func:`covering`), U once, and in training V kept whole for the
    backward (:class:`WinogradCache`)."""

    def __init__(
        self, padded: Array, weights: Array, grid: Pair, workspace: Workspace, *, training: bool
    ) -> None:
        # integer images: as im2col's product
        self.dtype = np.result_type(padded.dtype, weights.dtype)
        self.shape = padded.shape  # the backward's ∂L/∂I has it
        self.padded = covering(padded.astype(self.dtype, copy=False), grid, workspace)
        self.grid, self.workspace, self.training = grid, workspace, training
        self.count, self.filters = len(padded) * grid[0] * grid[1], weights.shape[-1]
        self.kernel = transform_kernel(weights)
        channels = padded.shape[-1]
        self.kept = (
            workspace.empty("tiles", (16, self.count, channels), self.dtype) if training else None
        )

    @property
    def cache(self) -> WinogradCache | None:
        if self.kept is None:
            return None
        return WinogradCache(self.kept, self.kernel, self.grid, self.shape)

    def products(self, biases: Array, inference_tiles: int) -> Iterator[tuple[slice, Array]]:
        """(rows, M + b) of each block of tiles, M_ξ = V_ξ · U_ξ (16, rows, F), the bias on
        M₅: the input transformed a pass at a time — CHUNK_TILES in training,
        ``inference_tiles`` else — and its products made in blocks of :func:`product_tiles`
        tiles (to be used before the next block overwrites them)."""
        workspace, channels = self.workspace, self.padded.shape[-1]
        tiles_per_chunk = None if self.training else inference_tiles
        block = product_tiles(L2_BYTES, self.filters, self.dtype.itemsize)
        for images in image_chunks(len(self.padded), self.grid, tiles_per_chunk):
            rows = tile_rows(images, self.grid)
            size = rows.stop - rows.start
            if self.kept is None:
                tiles = workspace.empty("chunk", (16, size, channels), self.dtype)
            else:
                tiles = self.kept[:, rows]
            transform_input(self.padded[images], self.grid, workspace, tiles)
            for start in range(0, size, block):
                stop = min(size, start + block)
                shape = (16, stop - start, self.filters)
                products = workspace.prefix("products", shape, self.dtype, axis=1)
                np.matmul(tiles[:, start:stop], self.kernel, out=products)  # M_ξ = V_ξ · U_ξ
                products[BIAS_ELEMENT] += biases
                yield slice(rows.start + start, rows.start + stop), products


def backward(
    cache: WinogradCache, delta: Array, workspace: Workspace, *, input_grad: bool
) -> tuple[Array, Array, Array | None]:
    """(∂L/∂K (3, 3, C, F), ∂L/∂b (F,), ∂L/∂I of the padded input or ``None``) from
    δ = ∂L/∂S in :func:`forward`'s blocks, shape (4, N·th·tw, F), over the same chunks of
    images (∂L/∂U summed over them). ∂L/∂I is a new array."""
    _, kernel_transform, output_transform = transforms(delta.dtype)
    filters, dtype = delta.shape[-1], delta.dtype
    n, height, width, channels = cache.padded_shape
    th, tw = cache.grid
    dkernel = np.zeros((16, channels, filters), dtype=dtype)
    dbiases = np.zeros(filters, dtype=dtype)
    dx = None
    if input_grad:
        dx = np.zeros((n, max(height, 2 * th + 2), max(width, 2 * tw + 2), channels), dtype)
    for images in image_chunks(n, cache.grid):
        rows = tile_rows(images, cache.grid)
        size = rows.stop - rows.start
        dproducts = workspace.empty("dproducts", (16, size, filters), dtype)
        block = delta[:, rows].reshape(4, -1)
        np.matmul(output_transform.T, block, out=dproducts.reshape(16, -1))
        dkernel += np.matmul(cache.tiles[:, rows].transpose(0, 2, 1), dproducts)
        dbiases += dproducts[BIAS_ELEMENT].sum(axis=0)
        if dx is not None:
            dtiles = workspace.empty("dtiles", (16, size, channels), dtype)
            np.matmul(dproducts, cache.kernel.transpose(0, 2, 1), out=dtiles)
            _add_tiles_to_input(dtiles, cache.grid, workspace, dx[images])
    dweights = np.matmul(kernel_transform.T, dkernel.reshape(16, -1))
    dweights = dweights.reshape(3, 3, channels, filters)
    return dweights, dbiases, None if dx is None else dx[:, :height, :width]


def _add_tiles_to_input(dtiles: Array, grid: Pair, workspace: Workspace, dx: Array) -> None:
    """Add each tile's (Bᵀ ⊗ Bᵀ)ᵀ ∂L/∂V onto the 4×4 pixels of ``dx`` it was read from.

    Bᵀ's columns have one or three entries ±1, so by :func:`_gradient_lines` along the
    tiles' columns, then along their rows, position (p, q) of every tile is a sign times a
    plane of (N, th, tw, C) values — four of the sixteen are ∂L/∂V planes themselves — and
    each plane is added onto the pixels (2i + p, 2j + q) of ``dx`` in one strided add
    (tiles overlap by 2, so the adds of neighbouring positions meet on the same pixels)."""
    th, tw = grid
    n, channels = len(dx), dx.shape[-1]
    planes = dtiles.reshape(4, 4, n, th, tw, channels)  # [ρ, σ]: ∂L/∂V at (ρ, σ)
    by_column = workspace.empty("by_column", (4, 2, n, th, tw, channels), dtiles.dtype)
    for row in range(4):
        _gradient_lines(planes[row], by_column[row])
    columns = [_unsigned_lines(planes[row], by_column[row]) for row in range(4)]
    by_row = workspace.empty("by_row", (4, 2, n, th, tw, channels), dtiles.dtype)
    for q in range(4):
        _gradient_lines([columns[row][q] for row in range(4)], by_row[q])
    for q in range(4):
        column = [columns[row][q] for row in range(4)]
        for p, plane in enumerate(_unsigned_lines(column, by_row[q])):
            window = dx[:, p : p + 2 * th : 2, q : q + 2 * tw : 2]
            if (p == 3) != (q == 3):  # position 3 of Bᵀ's columns has the entry −1
                window -= plane
            else:
                window += plane


def _gradient_lines(lines: Sequence[Array], out: Array) -> None:
    """(Bᵀ)ᵀ applied along the four ``lines``, its two sums of three into ``out`` (2, …):
    out₀ = l₁ − l₂ + l₃ (position 1), out₁ = l₁ + l₂ − l₀ (position 2). Positions 0 and 3
    are l₀ and −l₃ themselves (:func:`_unsigned_lines`)."""
    np.subtract(lines[1], lines[2], out=out[0])
    out[0] += lines[3]
    np.add(lines[1], lines[2], out=out[1])
    out[1] -= lines[0]


def _unsigned_lines(lines: Sequence[Array], sums: Array) -> list[Array]:
    """The four positions of :func:`_gradient_lines`, position 3 without its sign −1."""
    return [lines[0], sums[0], sums[1], lines[3]]


def blocks_to_image(blocks: Array, batch: int, grid: Pair, out: Pair) -> Array:
    """The 4 blocks of :func:`forward` as rows in image order (n, y, x) for the out_h × out_w
    outputs (a contiguous copy; the half-outside tiles' extra outputs are dropped).

    Shape: (4, N·th·tw, F) -> (N·out_h·out_w, F)
    """
    (th, tw), filters = grid, blocks.shape[-1]
    image = blocks.reshape(2, 2, batch, th, tw, filters).transpose(2, 3, 0, 4, 1, 5)
    image = image.reshape(batch, 2 * th, 2 * tw, filters)[:, : out[0], : out[1]]
    return np.ascontiguousarray(image).reshape(-1, filters)


def image_to_blocks(delta: Array, grid: Pair) -> Array:
    """The inverse of :func:`blocks_to_image` for gradients: δ (N, out_h, out_w, F) in the
    blocks' order, 0 for the outputs the image has not.

    Shape: (N, out_h, out_w, F) -> (4, N·th·tw, F)
    """
    (th, tw), (n, height, width, filters) = grid, delta.shape
    blocks = np.zeros((2, 2, n, th, tw, filters), dtype=delta.dtype)
    for a in range(2):
        for b in range(2):
            rows, columns = len(range(a, height, 2)), len(range(b, width, 2))
            blocks[a, b, :, :rows, :columns] = delta[:, a::2, b::2]
    return blocks.reshape(4, -1, filters)
