"""1-D convolution on (batch, time, channels) sequences (notes §1.11 "Convolutional Layer",
along one axis; §2.2 "Recurrent Neural Network" for the sequential data it serves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina import initializers
from lamina._params import Interval, Options, checked, rule
from lamina.errors import ShapeError
from lamina.layers._products import transposed_product
from lamina.layers.activated import ActivatedLayer, with_activation_built
from lamina.layers.base import (
    LAYERS,
    Array,
    Layer,
    Shape,
    format_shape,
    new_tensor,
    regularizers_for,
)
from lamina.layers.conv import backward_needs_training, keras_order
from lamina.layers.sizes import input_size, required, size_rule
from lamina.regularizers import STRENGTH

FIX = "pass e.g. Conv1D(8, 32, 3), or Conv1D(filters=32, kernel_size=3) with in_channels inferred"
PADDINGS_1D = ("valid", "same", "causal")


def padding_1d(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int, int]:
    """(T', steps added before, steps added after) of a 1-D window of ``kernel`` taps
    ``dilation`` apart, moved by ``stride``, over ``size`` steps.

    The window spans d·(k − 1) + 1 steps, so with p steps of padding in all

        T' = ⌊(T + p − d·(k − 1) − 1) / s⌋ + 1

    ``"valid"``: p = 0. ``"same"``: T' = ⌈T/s⌉, the padding split evenly with the odd step
    after (as Keras and Conv2D). ``"causal"``: p = d·(k − 1), all before, so output t reads
    inputs ≤ t·s only (WaveNet; Keras' ``padding="causal"``).
    """
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        before = after = 0
    elif padding == "causal":
        before, after = span - 1, 0
    else:
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
        before, after = total // 2, total - total // 2
    return (size + before + after - span) // stride + 1, before, after


def channel_mistake(shape: Shape, channels: int) -> str | None:
    """What is wrong with the per-sample ``shape`` of a sequence given to a layer expecting
    (T, ``channels``), and the fix; ``None`` for any other shape, a fitting one included."""
    if len(shape) == 1:
        steps = "?" if shape[0] is None else shape[0]
        fix = f"Fix: add the axis with X[..., None], which gives (batch, {steps}, 1)"
        if channels != 1:
            fix += f"; that is 1 channel, and this layer expects {channels}"
        return f"the channel axis is missing (one value per time step?). {fix}."
    if len(shape) == 2 and shape[-1] is not None and shape[-1] != channels:
        found = shape[-1]
        text = (
            f"{found} channel(s) on the last axis, and this layer expects {channels}. Fix: "
            f"build it with in_channels={found}, or give it {channels}-channel sequences"
        )
        if shape[0] == channels:
            text += "; if the channels come first (N, C, T), X.transpose(0, 2, 1) puts them last"
        return text + "."
    return None


@dataclass(frozen=True)
class Conv1DCache:
    """What Conv1D's backward needs from a training forward.

    Attributes:
        cols: one window per row (N·T', k·C): ∂L/∂K = colsᵀ·δ.
        padded_shape: (N, T + before + after, C), the shape ∂L/∂X is built in.
        before: the steps of padding before the sequence, cropped from ∂L/∂X.
        steps: T, the input's length.
        out: T', the output's length.
    """

    cols: Array
    padded_shape: tuple[int, int, int]
    before: int
    steps: int
    out: int


@LAYERS.register("conv1d")
class Conv1D(ActivatedLayer):
    r"""1-D convolution (cross-correlation) over the time axis of (batch, time, channels).

    Forward, for each filter f and output step t, with stride s and dilation d (notes
    §1.11's S(i, j) along one axis, the kernel taps d steps apart):

        S(t, f) = Σⱼ Σ_c X(t·s + j·d, c) · K(j, c, f) + b(f)      j = 0 … k − 1

    on X padded as ``padding`` says; T' = ⌊(T + pads − d·(k − 1) − 1)/s⌋ + 1 outputs. The k·C
    values of every window are read through one strided view of X (no loop over samples
    or steps) into a row of ``cols``, so S = cols · K is one (N·T', k·C) @ (k·C, F) matmul.

    Backward, with δ = ∂L/∂S:

        ∂L/∂K(j, c, f) = Σₙ Σₜ δ(n, t, f) · X(n, t·s + j·d, c) = colsᵀ · δ   (one matmul)
        ∂L/∂b(f)       = Σₙ Σₜ δ(n, t, f)
        ∂L/∂X(n, t·s + j·d, c) += Σ_f δ(n, t, f) · K(j, c, f)

    the last as one matmul per kernel tap j, added into the strided slice of ∂L/∂X that tap
    read (k vectorised adds; the taps of one window never overlap, windows may).

    Args:
        in_channels: C, channels of the input (its last axis). ``None``: filled in from the
            shapes by a ``Model(..., input_shape=...)`` (``lamina.layers.sizes``).
        filters: F, number of kernels (output channels); required.
        kernel_size: k, taps per kernel; required.
        stride: s, steps between windows.
        padding: ``"valid"`` (none), ``"same"`` (T' = ⌈T/s⌉) or ``"causal"`` (d·(k − 1)
            steps before: output t sees no input after t·s); see :func:`padding_1d`.
        dilation: d, steps between a kernel's taps (1: adjacent).
        activation, weight_init, bias_init, weight_l1, weight_l2, bias_l1, bias_l2: as for
            ``Conv2D``, with fan-in k·C and fan-out k·F; ``weight_init``'s default is
            Conv2D's.
    Shape:
        inputs (batch, T, in_channels) -> outputs (batch, T', filters)
    """

    inferred_size = "in_channels"
    sample_axes = "steps, channels"
    elementwise_bound = True  # predict spreads batches over threads (engine/spread.py)

    @checked(
        in_channels=input_size("Conv1D(8, 32, 3)"),
        filters=size_rule(FIX),
        kernel_size=rule(Interval(int, 1), None, fix="use e.g. kernel_size=3"),
        stride=rule(Interval(int, 1), fix="use e.g. stride=2"),
        padding=Options(*PADDINGS_1D),
        dilation=rule(Interval(int, 1), fix="use e.g. dilation=2"),
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
        kernel_size: int | None = None,
        stride: int = 1,
        padding: str = "valid",
        dilation: int = 1,
        activation: str | Layer | None = None,
        *,
        weight_init: str = "glorot_uniform",  # as Conv2D (benchmarks/accuracy.py)
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
            "Conv1D", "filters", filters, keras_order("Conv1D", in_channels, None)
        )
        self.kernel_size = required(
            "Conv1D", "kernel_size", kernel_size, keras_order("Conv1D", in_channels, filters)
        )
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.weight_init = weight_init
        self._initializer = initializers.get(weight_init)
        self.bias_init = bias_init
        self._bias_initializer = initializers.get_bias(bias_init)
        self.regularizers = regularizers_for(weight_l1, weight_l2, bias_l1, bias_l2)
        self._cache: Conv1DCache | None = None  # made by a training forward
        self.reset_parameters()

    def reset_parameters(self) -> None:
        channels = self.in_channels
        if channels is None:  # no size yet: Layer.build draws them
            return
        dtype = self.dtype or np.dtype(np.float32)
        shape = (self.kernel_size, channels, self.filters)
        fan_in, fan_out = self.kernel_size * channels, self.kernel_size * self.filters
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
        return (None, self.in_channels)

    def _geometry(self, steps: int) -> tuple[int, int, int]:
        """(T', before, after) for T = ``steps``; a ShapeError if the dilated kernel is
        longer than the padded input."""
        out, before, after = padding_1d(
            steps, self.kernel_size, self.stride, self.dilation, self.padding
        )
        if out < 1:
            span = self.dilation * (self.kernel_size - 1) + 1
            raise ShapeError(
                f"{self.describe()}: the kernel spans {span} steps (kernel_size="
                f"{self.kernel_size}, dilation={self.dilation}), more than the "
                f"{steps + before + after} steps of the padded input (inputs of shape "
                f"{format_shape((steps, self.in_channels))}). Fix: use a smaller kernel_size "
                "or dilation, padding='same' or 'causal', or longer sequences."
            )
        return out, before, after

    def output_shape(self, input_shape: Shape) -> Shape:
        steps = input_shape[0]
        if steps is None:
            return (None, self.filters)
        return (self._geometry(steps)[0], self.filters)

    def check_input_shape(self, input_shape: Shape, source: str) -> None:
        """As :meth:`Layer.check_input_shape`, and the error says what is wrong with the
        sequence's layout when it can: no channel axis, or another channel count."""
        mistake = channel_mistake(input_shape, self.in_channels)
        if mistake is None:
            super().check_input_shape(input_shape, source)
            return
        raise ShapeError(
            f"{self.describe()} expects sequences of shape {format_shape(self.input_shape)}, "
            f"but {source} gives {format_shape(input_shape)}: {mistake}"
        )

    def _check(self, inputs: Array) -> None:
        if inputs.ndim == 3 and inputs.shape[-1] == self.in_channels:
            return
        mistake = channel_mistake(inputs.shape[1:], self.in_channels) if inputs.ndim else None
        raise ShapeError(
            f"{self.describe()} expects sequences of shape {format_shape(self.input_shape)}, "
            f"but received an array of shape {inputs.shape}"
            + (
                f": {mistake}"
                if mistake
                else f". Fix: pass a 3-D batch (batch, time, {self.in_channels})."
            )
        )

    # -- forward / backward ------------------------------------------------------------------
    def linear_forward(self, inputs: Array, *, training: bool = False) -> Array:
        """S = cols · K + b; ``training`` keeps the :class:`Conv1DCache` for backward."""
        self.require_built()
        self._cache = None  # the last pass's cols go first: the new ones reuse their memory
        self._check(inputs)
        batch, steps, channels = inputs.shape
        out, before, after = self._geometry(steps)
        padded = np.pad(inputs, ((0, 0), (before, after), (0, 0))) if before or after else inputs
        k, s, d = self.kernel_size, self.stride, self.dilation
        sn, st, sc = padded.strides
        # window t, tap j, channel c at padded[n, t·s + j·d, c]: a view, nothing copied
        windows = as_strided(
            padded, (batch, out, k, channels), (sn, s * st, d * st, sc), writeable=False
        )
        cols = np.empty((batch * out, k * channels), dtype=inputs.dtype)
        np.copyto(cols.reshape(batch, out, k, channels), windows)
        z = np.matmul(cols, self.params["weights"].reshape(-1, self.filters))
        z += self.params["biases"]
        if training:
            self._cache = Conv1DCache(cols, padded.shape, before, steps, out)
        return z.reshape(batch, out, self.filters)

    def backward_linear(self, dz: Array) -> Array | None:
        """Fill ``grads`` (L1/L2 included) and return ∂L/∂X from ∂L/∂S (N, T', F)."""
        cache = self._cache
        if cache is None:
            raise backward_needs_training(self.describe())
        weights = self.params["weights"]
        grads = self.gradient_buffers()
        delta = dz.reshape(-1, self.filters)
        grads["weights"].reshape(-1, self.filters)[...] = transposed_product(cache.cols, delta)
        np.sum(delta, axis=0, out=grads["biases"])
        self.add_regularization_gradients()
        if not self.input_grad:
            return None
        batch, _, channels = cache.padded_shape
        s, d, out = self.stride, self.dilation, cache.out
        dx = np.zeros(cache.padded_shape, dtype=dz.dtype)
        block = np.empty((len(delta), channels), dtype=dz.dtype)
        for j in range(self.kernel_size):  # tap j of every window: one matmul, one strided add
            np.matmul(delta, weights[j].T, out=block)
            dx[:, j * d : j * d + (out - 1) * s + 1 : s] += block.reshape(batch, out, channels)
        return dx[:, cache.before : cache.before + cache.steps]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "activation": self.activation_config(),
            "weight_init": self.weight_init,
            "bias_init": self.bias_init,
            **self.regularization_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Conv1D:
        return cls(**with_activation_built(config))
