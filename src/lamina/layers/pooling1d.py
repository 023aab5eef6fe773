"""Max and average pooling over the time axis of (batch, time, channels) sequences (notes
§1.11 "Pooling Layer", along one axis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lamina._params import Interval, Options, checked, rule
from lamina.errors import ShapeError
from lamina.layers.base import LAYERS, Array, Layer, Shape, format_shape
from lamina.layers.conv import backward_needs_training
from lamina.layers.pooling import route_to_maxima, running_maximum

POOL = rule(Interval(int, 1), fix="use e.g. pool_size=2")


@dataclass(frozen=True)
class Pooling1DGeometry:
    """How a pooling reads a sequence of ``steps``: ``before``/``after`` steps of padding,
    ``out`` windows."""

    steps: int
    before: int
    after: int
    out: int


class Pooling1D(Layer):
    """Shared geometry of the 1-D poolings: windows of ``pool_size`` steps moved by ``stride``
    (default: ``pool_size``). A window is read as ``pool_size`` strided views, one per
    offset m inside it: loops run over those offsets, never over samples or steps.

    ``padding="valid"``: T' = ⌊(T − p)/s⌋ + 1. ``"same"``: T' = ⌈T/s⌉, the padding split as
    Conv1D splits it (the odd step after); padded steps never win a max and are not counted
    in an average (as Keras and ONNX's ``count_include_pad=0``). Every window holds at least
    one real step.
    """

    fresh_output = True

    @checked(
        pool_size=POOL,
        stride=rule(Interval(int, 1), None, fix="use e.g. stride=2, or None for pool_size"),
        padding=Options("valid", "same"),
    )
    def __init__(
        self,
        pool_size: int = 2,
        stride: int | None = None,
        padding: str = "valid",
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.pool_size = pool_size
        self.stride = pool_size if stride is None else stride
        self.padding = padding

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 2:
            raise ShapeError(self._shape_message(f"per-sample shape {input_shape}"))
        steps, channels = input_shape
        return (None if steps is None else self.geometry(steps).out, channels)

    def geometry(self, steps: int) -> Pooling1DGeometry:
        """The padding and output length for a sequence of ``steps``; a ShapeError if a
        "valid" pool is longer than the sequence."""
        p, s = self.pool_size, self.stride
        if self.padding == "same":
            out = -(-steps // s)
            total = max((out - 1) * s + p - steps, 0)
            return Pooling1DGeometry(steps, total // 2, total - total // 2, out)
        if p > steps:
            raise ShapeError(
                f"{self.describe()}: the pool of {p} steps is longer than the {steps}-step "
                "input. Fix: use a smaller pool_size, or padding='same'."
            )
        return Pooling1DGeometry(steps, 0, 0, (steps - p) // s + 1)

    def _shape_message(self, received: str) -> str:
        return (
            f"{self.describe()} expects sequences {format_shape((None, None))} (time, "
            f"channels), but received {received}. Fix: pool after a Conv1D; a 2-D batch of "
            "one value per step needs a channel axis, X[..., None]."
        )

    def _geometry(self, inputs: Array) -> Pooling1DGeometry:
        if inputs.ndim != 3:
            raise ShapeError(self._shape_message(f"an array of shape {inputs.shape}"))
        return self.geometry(inputs.shape[1])

    def _taps(self, x: Array, out: int) -> list[Array]:
        """The ``pool_size`` strided views of the (padded) ``x``, one per offset m in the
        window, each (N, T', C): view m holds step t·s + m of every window t."""
        s = self.stride
        return [x[:, m : m + (out - 1) * s + 1 : s] for m in range(self.pool_size)]

    def _padded(self, inputs: Array, geometry: Pooling1DGeometry, fill: float) -> Array:
        if not (geometry.before or geometry.after):
            return inputs
        widths = ((0, 0), (geometry.before, geometry.after), (0, 0))
        return np.pad(inputs, widths, constant_values=fill)

    def _gradient(self, geometry: Pooling1DGeometry, batch: int, dvalues: Array) -> Array:
        """A zero ∂L/∂(padded inputs) to add the windows' gradients into."""
        padded = geometry.steps + geometry.before + geometry.after
        return np.zeros((batch, padded, dvalues.shape[-1]), dtype=dvalues.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "stride": self.stride,
            "padding": self.padding,
        }


@dataclass(frozen=True)
class MaxPool1DCache:
    """What MaxPool1D's backward needs: the geometry, the batch size, and per tap after the
    first where it took over the maximum (``lamina.layers.pooling.running_maximum``)."""

    geometry: Pooling1DGeometry
    batch: int
    took_over: list[Array]


@LAYERS.register("max_pool1d")
class MaxPool1D(Pooling1D):
    r"""Max pooling over time: ``P(t, c) = max_m X(t·s + m, c)``, m < p (notes §1.11).

    Backward: the gradient goes to the step that held the maximum, only; when several tie,
    to the first of them (MaxPool2D's running maximum, over the p taps).

    Args:
        pool_size: p, steps per window.
        stride: s, steps between windows; default ``pool_size`` (non-overlapping).
        padding: ``"valid"`` or ``"same"`` (see :class:`Pooling1D`).
    Shape:
        inputs (batch, T, C) -> outputs (batch, T', C)
    """

    _cache: MaxPool1DCache | None = None  # made by a training forward, read by backward

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        geometry = self._geometry(inputs)
        padded = self._padded(inputs, geometry, -np.inf)
        maximum, took_over = running_maximum(self._taps(padded, geometry.out), training)
        self._cache = (
            None if took_over is None else MaxPool1DCache(geometry, len(inputs), took_over)
        )
        return maximum

    def backward(self, dvalues: Array) -> Array:
        cache = self._cache
        if cache is None:
            raise backward_needs_training(self.describe())
        dx = self._gradient(cache.geometry, cache.batch, dvalues)
        route_to_maxima(dvalues, cache.took_over, self._taps(dx, dvalues.shape[1]), accumulate=True)
        return dx[:, cache.geometry.before : cache.geometry.before + cache.geometry.steps]


@LAYERS.register("avg_pool1d")
class AvgPool1D(Pooling1D):
    r"""Average pooling over time: ``P(t, c) = (1/nₜ) Σ_m X(t·s + m, c)`` (notes §1.11),
    nₜ the real (not padded) steps of window t: p with ``"valid"``.

    Backward: each window's gradient is shared equally, δ/nₜ to each of its real steps.

    Args:
        pool_size: p, steps per window.
        stride: s, steps between windows; default ``pool_size`` (non-overlapping).
        padding: ``"valid"`` or ``"same"`` (see :class:`Pooling1D`).
    Shape:
        inputs (batch, T, C) -> outputs (batch, T', C)
    """

    _seen: tuple[Pooling1DGeometry, int] | None = None  # the last forward's geometry, batch

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        geometry = self._geometry(inputs)
        self._seen = geometry, len(inputs)  # all backward needs, as small in both modes
        taps = self._taps(self._padded(inputs, geometry, 0.0), geometry.out)
        total = taps[0].copy()
        for tap in taps[1:]:
            total += tap
        total *= self._inverse_counts(geometry, inputs.dtype)
        return total

    def backward(self, dvalues: Array) -> Array:
        if self._seen is None:
            raise backward_needs_training(self.describe())
        geometry, batch = self._seen
        share = dvalues * self._inverse_counts(geometry, dvalues.dtype)
        dx = self._gradient(geometry, batch, dvalues)
        for tap in self._taps(dx, dvalues.shape[1]):
            tap += share  # padded steps get gradients too, and are cropped off
        return dx[:, geometry.before : geometry.before + geometry.steps]

    def _inverse_counts(self, geometry: Pooling1DGeometry, dtype: np.dtype) -> Array:
        """1/nₜ per window, shaped (T', 1) to broadcast over (N, T', C)."""
        starts = np.arange(geometry.out) * self.stride - geometry.before
        ends = np.minimum(starts + self.pool_size, geometry.steps)
        counts = ends - np.maximum(starts, 0)
        return (1.0 / counts).astype(dtype)[:, None]
