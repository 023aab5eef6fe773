"""2-D convolution on NHWC batches (notes §1.11 "Convolutional Layer")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from lamina import initializers
from lamina._params import Options, checked
from lamina.errors import BackwardError, ShapeError, invalid
from lamina.layers import _winograd as winograd
from lamina.layers._im2col import (
    PADDINGS,
    Allocate,
    PaddedGeometry,
    col2im,
    crop,
    im2col,
    im2col_pool_order,
    kernel_matrix,
    pad,
    padded_geometry,
    pool_to_image_order,
)
from lamina.layers._im2col import output_size as output_size  # lamina.interop.onnx reads it here
from lamina.layers._products import transposed_product
from lamina.layers._workspace import Workspace
from lamina.layers.activated import ActivatedLayer, with_activation_built
from lamina.layers.base import (
    LAYERS,
    Array,
    Layer,
    Shape,
    format_shape,
    new_tensor,
    regularizers_for,
    size_pair,
)
from lamina.layers.sizes import input_size, required, size_rule
from lamina.regularizers import STRENGTH

FIX = "pass e.g. Conv2D(1, 32, 3), or Conv2D(filters=32, kernel_size=3) with in_channels inferred"


def keras_order(who: str, in_channels: int | None, filters: int | None) -> str:
    """The fix for a convolution missing filters or kernel_size: with positional sizes, what
    they were read as (Keras' ``Conv2D(32, 3)`` is ``filters=32, kernel_size=3``)."""
    if in_channels is None:
        return f"pass e.g. {who}(filters=32, kernel_size=3), or {who}(1, 32, 3)"
    read = f"in_channels={in_channels}" + ("" if filters is None else f", filters={filters}")
    keras = f"filters={in_channels}" + ("" if filters is None else f", kernel_size={filters}")
    return (
        f"the sizes are read in the order (in_channels, filters, kernel_size), here {read}; "
        f"for Keras' order write {who}({keras}, ...) and let the model infer in_channels"
    )


@dataclass(frozen=True)
class ConvolutionCache:
    """What a convolution's backward needs from its forward, made by :meth:`Conv2D.unfold`.

    A training forward keeps it until the next forward (``Conv2D``, and the fused step of
    ``lamina.engine.fusion``); an inference forward drops it after its matmul, since
    ``cols`` is the largest array of a training step.

    Attributes:
        cols: one window per row, then a 1 (``lamina.layers._im2col``): ∂L/∂K = colsᵀ·δ;
            ``None`` when the convolution ran by Winograd's F(2×2, 3×3).
        geometry: how the inputs were padded; ∂L/∂I is built padded, then cropped.
        batch: N, the number of images.
        out: the output pixels the rows hold: (out_h, out_w) in image order;
            (ph·⌊out_h/ph⌋, pw·⌊out_w/pw⌋) in pool order, whose pooling drops the rest.
        pool: ``None`` for rows in image order, (ph, pw) for rows in pool order.
        tiles: the transformed tiles and kernel of F(2×2, 3×3)
            (``lamina.layers._winograd``), or ``None`` for im2col.
    """

    cols: Array | None
    geometry: PaddedGeometry
    batch: int
    out: tuple[int, int]
    pool: tuple[int, int] | None
    tiles: winograd.WinogradCache | None = None


def backward_needs_training(who: str) -> BackwardError:
    """The error of a backward pass with no training forward before it: an inference
    forward keeps nothing for backward (and backward does not run forward again)."""
    return BackwardError(
        invalid(
            "training",
            f"a forward pass with training=True before {who}.backward",
            "a backward pass after forward(..., training=False), or before any forward",
            "call forward(inputs, training=True), then backward",
        )
    )


def layout_mistake(shape: Shape, channels: int) -> str | None:
    """What is wrong with the per-sample ``shape`` of images given to a layer that expects
    ``channels`` channels last, and the fix: the channel axis missing ((H, W): grayscale
    images as loaded), first ((C, H, W): NCHW, PyTorch's layout), or of another size.
    ``None`` for any other shape, a fitting one included."""
    if len(shape) == 2:
        height, width = ("?" if d is None else d for d in shape)
        fix = f"Fix: add the axis with X[..., None], which gives (batch, {height}, {width}, 1)"
        if channels != 1:
            fix += f"; that is 1 channel, and this layer expects {channels}"
        return f"the channel axis is missing (images of {height}×{width}?). {fix}."
    if len(shape) == 3 and shape[0] == channels and shape[-1] != channels:
        _, height, width = ("?" if d is None else d for d in shape)
        return (
            f"the channels come first (NCHW: {channels} channel(s) of {height}×{width}?), "
            "and lamina's images are channels last (NHWC). Fix: X.transpose(0, 2, 3, 1), "
            f"which gives (batch, {height}, {width}, {channels})."
        )
    if len(shape) == 3 and shape[-1] is not None and shape[-1] != channels:
        found = shape[-1]
        text = (
            f"{found} channel(s) on the last axis, and this layer expects {channels}. Fix: "
            f"build it with in_channels={found}, or give it {channels}-channel images"
        )
        if shape[0] is not None and shape[0] <= 4 < found:  # (3, 32, 32) looks like NCHW
            text += "; if the channels come first (NCHW), X.transpose(0, 2, 3, 1) puts them last"
        return text + "."
    return None


@LAYERS.register("conv2d")
class Conv2D(ActivatedLayer):
    r"""2-D convolution (cross-correlation, as in the notes and every framework), NHWC.

    Forward (notes §1.11), for each filter f and output pixel (i, j), with stride s:

        S(i, j, f) = Σₘ Σₙ Σ_c I(i·s + m, j·s + n, c) · K(m, n, c, f) + b(f)

    computed as one matmul: the kh·kw·C values of every window are copied into a row of
    ``cols`` (im2col, ``lamina.layers._im2col``), then ``Z = cols · K`` with K reshaped
    to (kh·kw·C, F). Each row of ``cols`` ends with a 1 and K with the bias row, so the bias
    is added by the same matmul (and ∂L/∂b = Σ δ comes out of the ∂L/∂K one). A 3×3 kernel
    with stride 1 on at least 16 channels runs instead by Winograd's F(2×2, 3×3)
    (``lamina.layers._winograd``): the same S, by 16 matmuls of transformed 4×4 tiles that
    need 4/9 of the multiplications (equal to im2col's up to rounding, tested).

    Backward, with δ = ∂L/∂S:

        ∂L/∂K(m, n, c, f) = Σᵢ Σⱼ δ(i, j, f) · I(i·s + m, j·s + n, c)   (notes §1.11)
                          = colsᵀ · δ          (one matmul; over slabs of rows when thin)
        ∂L/∂b(f)          = Σᵢ Σⱼ δ(i, j, f)
        ∂L/∂I             = col2im(δ · Kᵀ): each window's gradient row is added back onto
                            the pixels it came from, one matmul and one strided add per
                            kernel offset (m, n) — never a loop over pixels, no np.add.at.

    A training forward keeps ``cols`` and the padding for backward (a
    :class:`ConvolutionCache`); an inference forward keeps nothing, and a backward after it
    raises.

    Args:
        in_channels: C, channels of the input (its last axis). ``None``: filled in from the
            shapes by a ``Model(..., input_shape=...)`` (``lamina.layers.sizes``), so
            ``Conv2D(filters=32, kernel_size=3)`` reads as in Keras.
        filters: F, number of kernels (output channels); required.
        kernel_size: kh×kw, an int or a (height, width) pair; required.
        stride: an int or a (height, width) pair.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size ⌈input/stride⌉).
        activation, weight_init, bias_init, weight_l1, weight_l2, bias_l1, bias_l2: as for
            ``Dense``; the weights (and ``bias_init="torch_uniform"`` biases) are initialised
            with fan-in kh·kw·C and fan-out kh·kw·F. The default ``"glorot_uniform"`` (Keras'
            too) was chosen from ``benchmarks/accuracy.py``: with ``"he_normal"``, the
            earlier default, a 1-D CNN learned less than PyTorch on the same recipe.
    Shape:
        inputs (batch, H, W, in_channels) -> outputs (batch, H', W', filters)
    """

    inferred_size = "in_channels"
    sample_axes = "height, width, channels"
    elementwise_bound = True  # predict spreads batches over threads (engine/spread.py)

    @checked(
        in_channels=input_size("Conv2D(1, 32, 3)"),
        filters=size_rule(FIX),
        kernel_size=size_pair("kernel_size", optional=True),
        stride=size_pair("stride"),
        padding=Options(*PADDINGS),
        weight_init=initializers.WEIGHT_INIT,
        bias_init=initializers.BIAS_INIT,
        weight_l1=STRENGTH,
        weight_l2=STRENGTH,
        bias_l1=STRENGTH,
        bias_l2=STRENGTH,
    )
    def __init__(
        self,
        in_channels: int | None = None,
        filters: int | None = None,
        kernel_size: int | tuple[int, int] | None = None,
        stride: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | Layer | None = None,
        *,
        weight_init: str = "glorot_uniform",
        bias_init: str = "zeros",
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        bias_l1: float = 0.0,
        bias_l2: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(activation, name=name)
        # None until Layer.build fills it in; everything past it runs on a built layer
        self.in_channels: int = in_channels  # type: ignore[assignment]
        self.filters = required(
            "Conv2D", "filters", filters, keras_order("Conv2D", in_channels, None)
        )
        kernel = required(
            "Conv2D", "kernel_size", kernel_size, keras_order("Conv2D", in_channels, filters)
        )
        self.kernel_size: tuple[int, int] = kernel  # type: ignore[assignment]
        self.stride: tuple[int, int] = stride  # type: ignore[assignment]
        self.padding = padding
        self.weight_init = weight_init
        self._initializer = initializers.get(weight_init)
        self.bias_init = bias_init
        self._bias_initializer = initializers.get_bias(bias_init)
        self.regularizers = regularizers_for(weight_l1, weight_l2, bias_l1, bias_l2)
        self._cache: ConvolutionCache | None = None  # made by a training forward
        self._workspace = Workspace()  # scratch arrays reused from batch to batch
        self.reset_parameters()

    def reset_parameters(self) -> None:
        channels = self.in_channels
        if channels is None:  # no size yet: Layer.build draws them
            return
        dtype = self.dtype or np.dtype(np.float32)
        kh, kw = self.kernel_size
        shape = (kh, kw, channels, self.filters)
        fan_in, fan_out = kh * kw * channels, kh * kw * self.filters
        self.params["weights"] = new_tensor(
            shape, dtype, lambda: self._initializer(shape, fan_in, fan_out, self.rng, dtype)
        )
        self.params["biases"] = new_tensor(
            (self.filters,),
            dtype,
            lambda: self._bias_initializer((self.filters,), fan_in, fan_out, self.rng, dtype),
        )

    # -- shapes ----------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape:
        return (None, None, self.in_channels)

    def _geometry(self, height: int, width: int) -> PaddedGeometry:
        """How an H×W input is padded and the output size; a ShapeError if the kernel is
        larger than the padded input."""
        geometry = padded_geometry((height, width), self.kernel_size, self.stride, self.padding)
        if min(geometry.output) < 1:
            padded = geometry.padded_size
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
        return (*self._geometry(height, width).output, self.filters)

    def check_input_shape(self, input_shape: Shape, source: str) -> None:
        """As :meth:`Layer.check_input_shape`, and the error says how image data is laid out
        wrong when it is: no channel axis, or the channels first (NCHW)."""
        mistake = layout_mistake(input_shape, self.in_channels)
        if mistake is None:
            super().check_input_shape(input_shape, source)
            return
        raise ShapeError(
            f"{self.describe()} expects NHWC images of shape "
            f"{format_shape(self.input_shape)}, but {source} gives "
            f"{format_shape(input_shape)}: {mistake}"
        )

    def check_batch(self, inputs: Array) -> None:
        """A ShapeError unless ``inputs`` is an NHWC batch with this layer's channels."""
        if inputs.ndim == 4 and inputs.shape[-1] == self.in_channels:
            return
        mistake = layout_mistake(inputs.shape[1:], self.in_channels) if inputs.ndim else None
        raise ShapeError(
            f"{self.describe()} expects NHWC images of shape "
            f"{format_shape(self.input_shape)}, but received an array of shape "
            f"{inputs.shape}"
            + (
                f": {mistake}"
                if mistake
                else f". Fix: pass a 4-D batch (batch, height, width, {self.in_channels}), "
                f"e.g. images.reshape(-1, 28, 28, {self.in_channels})."
            )
        )

    # -- forward / backward ------------------------------------------------------------------
    def linear_forward(self, inputs: Array, *, training: bool = False) -> Array:
        """S = cols · K + b in NHWC; ``training`` keeps the :class:`ConvolutionCache` for
        backward (inference keeps nothing: cols is the step's largest array)."""
        self.require_built()
        self._cache = None  # the last pass's cols go first: the new ones reuse their memory
        (z,), cache = self.products(inputs, training=training)
        if training:
            self._cache = cache
        return z.reshape(cache.batch, *cache.out, self.filters)

    def products(
        self, inputs: Array, *, pool: tuple[int, int] | None = None, training: bool = False
    ) -> tuple[Iterator[Array], ConvolutionCache]:
        """S = I ⋆ K + b of an NHWC batch, in blocks of rows, and what backward needs.

        In image order (``pool`` None): one block (N·out_h·out_w, F), a new array. In pool
        order for a max pooling with stride = pool size (``pool`` = (ph, pw)): ph·pw blocks
        (N·pooled_h·pooled_w, F), block a·pw + b holding the output pixels (ph·i + a,
        pw·j + b) — only those the pooling reads; they may be scratch memory the next
        forward overwrites. Blocks are made as they are read (each while in cache). By
        Winograd's F(2×2, 3×3) where :func:`winograd.applicable`, else im2col; the cache is
        complete only when ``training``."""
        self.check_batch(inputs)
        batch, height, width, _ = inputs.shape
        geometry = self._geometry(height, width)
        by_tiles = self.runs_by_tiles(pool)
        if (
            pool is not None
            and min(geometry.output[0] // pool[0], geometry.output[1] // pool[1]) < 1
        ):
            by_tiles = False  # nothing to pool: the caller's pooling raises its ShapeError
        padded = pad(inputs, geometry)
        if not by_tiles:
            scratch = partial(self._workspace.empty, "cols")
            cols, out = self._windows(padded, geometry, pool, scratch)
            cache = ConvolutionCache(cols, geometry, batch, out, pool)
            return self._pooled_blocks(cols, pool), cache
        grid = winograd.tile_grid(geometry.output, pool)
        out = geometry.output if pool is None else (2 * grid[0], 2 * grid[1])
        weights, biases = self.params["weights"], self.params["biases"]
        outputs, tiles = winograd.forward(
            padded, weights, biases, grid, self._workspace, training=training
        )
        cache = ConvolutionCache(None, geometry, batch, out, pool, tiles)
        if pool is None:
            return iter([winograd.blocks_to_image(outputs, batch, grid, out)]), cache
        return iter(outputs), cache

    def max_pooled_by_tiles(
        self, inputs: Array, *, training: bool = False
    ) -> tuple[Array, list[Array] | None, ConvolutionCache]:
        """A 2×2 max pooling (stride 2) of S = I ⋆ K + b by F(2×2, 3×3), where
        :meth:`runs_by_tiles` with that pool: (P, one row per pooled pixel (N·P_h·P_w, F);
        ``training``: the running maximum's records, shaped like P; the cache), each chunk
        of tiles pooled while in cache (``lamina.layers._winograd.max_pooled``)."""
        self.check_batch(inputs)
        geometry = self._geometry(*inputs.shape[1:3])
        grid = winograd.tile_grid(geometry.output, winograd.POOL)
        weights, biases = self.params["weights"], self.params["biases"]
        maximum, took_over, tiles = winograd.max_pooled(
            pad(inputs, geometry), weights, biases, grid, self._workspace, training=training
        )
        out, batch = (2 * grid[0], 2 * grid[1]), len(inputs)
        cache = ConvolutionCache(None, geometry, batch, out, winograd.POOL, tiles)
        return maximum, took_over, cache

    def runs_by_tiles(self, pool: tuple[int, int] | None) -> bool:
        """Whether :meth:`products` computes S by F(2×2, 3×3) (into a 2×2 ``pool`` or none)."""
        return winograd.applicable(self.kernel_size, self.stride, self.in_channels, pool)

    def _pooled_blocks(self, cols: Array, pool: tuple[int, int] | None) -> Iterator[Array]:
        """cols · K block by block: one new block in image order; in pool order ph·pw
        blocks computed one at a time into the same scratch array (each is read before the
        next is made)."""
        kernel = self.kernel_matrix()
        if pool is None:
            yield np.matmul(cols, kernel)
            return
        blocks = np.split(cols, pool[0] * pool[1])
        shape = (len(blocks[0]), self.filters)
        block = self._workspace.empty("block", shape, np.result_type(cols, kernel))
        for rows in blocks:
            yield np.matmul(rows, kernel, out=block)

    def unfold(
        self, inputs: Array, *, pool: tuple[int, int] | None = None, scratch: bool = False
    ) -> ConvolutionCache:
        """Check an NHWC batch, pad it and copy its windows into a new ``cols``: in image
        order, or (``pool`` = (ph, pw)) in pool order for a max pooling with stride = pool
        size, only the output pixels it reads (``lamina.layers._im2col``). Keeps nothing;
        ``scratch``: cols in the layer's scratch memory, which its next forward overwrites."""
        self.check_batch(inputs)
        batch, height, width, _ = inputs.shape
        geometry = self._geometry(height, width)
        allocate = partial(self._workspace.empty, "cols") if scratch else np.empty
        cols, out = self._windows(pad(inputs, geometry), geometry, pool, allocate)
        return ConvolutionCache(cols, geometry, batch, out, pool)

    def _windows(
        self,
        padded: Array,
        geometry: PaddedGeometry,
        pool: tuple[int, int] | None,
        allocate: Allocate,
    ) -> tuple[Array, tuple[int, int]]:
        """(cols made by ``allocate``, the output pixels its rows hold) for ``unfold``."""
        if pool is None:
            out = geometry.output
            return im2col(padded, self.kernel_size, self.stride, out, allocate), out
        pooled = (geometry.output[0] // pool[0], geometry.output[1] // pool[1])
        out = (pooled[0] * pool[0], pooled[1] * pool[1])
        cols = im2col_pool_order(padded, self.kernel_size, self.stride, pooled, pool, allocate)
        return cols, out

    def release_scratch(self) -> None:
        self._workspace.clear()

    def kernel_matrix(self) -> Array:
        """K reshaped to (kh·kw·C, F) with the biases as a last row (S = cols · K)."""
        return kernel_matrix(self.params["weights"], self.params["biases"])

    def backward_linear(self, dz: Array) -> Array | None:
        """From ∂L/∂S in the order ``linear_forward`` produced it (any shape ending in F)."""
        if self._cache is None:
            raise backward_needs_training(self.describe())
        return self.backward_from(self._cache, dz)

    def backward_from(self, cache: ConvolutionCache, dz: Array) -> Array | None:
        """Fill ``grads`` (L1/L2 included) and return ∂L/∂I, from ∂L/∂S in the row order of
        ``cache`` (any shape ending in F), the forward's :class:`ConvolutionCache`."""
        if cache.tiles is not None:
            return self._backward_by_tiles(cache, cache.tiles, dz)
        delta = dz.reshape(-1, self.filters)
        assert cache.cols is not None
        self.store_kernel_gradient(transposed_product(cache.cols, delta))
        if not self.input_grad:
            return None
        if cache.pool is not None:  # col2im's adds move longer runs in image order
            pooled = (cache.out[0] // cache.pool[0], cache.out[1] // cache.pool[1])
            delta = pool_to_image_order(delta, cache.batch, pooled, cache.pool)
        padded_shape = (cache.batch, *cache.geometry.padded_size, self.in_channels)
        dx = col2im(delta, self.params["weights"], self.stride, cache.out, padded_shape)
        return crop(dx, cache.geometry)

    def store_kernel_gradient(self, kernel_grad: Array) -> None:
        """``grads`` from colsᵀ·δ, shape (kh·kw·C + 1, F): ∂L/∂K and, last row, ∂L/∂b; then
        the L1/L2 penalties' gradients added."""
        grads = self.gradient_buffers()
        grads["weights"].reshape(-1, self.filters)[...] = kernel_grad[:-1]
        grads["biases"][...] = kernel_grad[-1]
        self.add_regularization_gradients()

    def _backward_by_tiles(
        self, cache: ConvolutionCache, tiles: winograd.WinogradCache, dz: Array
    ) -> Array | None:
        """:meth:`backward_from` for a forward by F(2×2, 3×3): δ into the tiles' 4 blocks
        (from pool order as it is, from image order rearranged), then
        ``lamina.layers._winograd.backward``."""
        if cache.pool is None:
            image = dz.reshape(cache.batch, *cache.out, self.filters)
            delta = winograd.image_to_blocks(image, tiles.grid)
        else:
            delta = dz.reshape(4, -1, self.filters)
        grads = self.gradient_buffers()
        dweights, dbiases, dx = winograd.backward(
            tiles, delta, self._workspace, input_grad=self.input_grad
        )
        grads["weights"][...] = dweights
        grads["biases"][...] = dbiases
        self.add_regularization_gradients()
        return None if dx is None else crop(dx, cache.geometry)

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
            "bias_init": self.bias_init,
            **self.regularization_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Conv2D:
        return cls(**with_activation_built(config))
