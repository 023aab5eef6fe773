"""Batch normalization (notes §1.11 "Batch Normalization")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lamina._params import Interval, checked, rule
from lamina.errors import ShapeError
from lamina.layers._lanes import lanes
from lamina.layers._workspace import Workspace
from lamina.layers.base import LAYERS, Array, Layer, Shape, format_shape, new_tensor
from lamina.layers.sizes import input_size

#: bytes of a block of rows in the training passes: a block of the inputs, of x − μ and of
#: the outputs (or of δ, x − μ and ∂L/∂x) stays in a core's L2 cache from one ufunc to the
#: next, where the whole arrays (W2-BN: 11 MB each) go to memory at every pass
BLOCK_BYTES = 1 << 18


def row_blocks(shape: tuple[int, ...], dtype: np.dtype, multiple: int = 1) -> list[slice]:
    """The rows of a (rows, features) array in blocks of about BLOCK_BYTES, each but the last
    a ``multiple`` of rows (a :class:`~lamina.layers._lanes.Lanes` width)."""
    rows, features = shape
    step = max(1, BLOCK_BYTES // max(1, features * np.dtype(dtype).itemsize))
    step = max(multiple, step // multiple * multiple)
    return [slice(start, min(start + step, rows)) for start in range(0, max(rows, 1), step)]


@LAYERS.register("batch_norm")
class BatchNorm(Layer):
    r"""Batch normalization over the last axis: features of (N, F) rows, or channels of NHWC.

    Training (notes §1.11, corrected: divide by √(σ² + ε), not by σ²; docs/formulas.md §21),
    over the m = N (or N·H·W) values of each feature:

        μ = (1/m) Σ x      σ² = (1/m) Σ (x − μ)²      x̂ = (x − μ)/√(σ² + ε)
        y = γ x̂ + β

    Backward, with δ = ∂L/∂y:

        ∂L/∂γ = Σ δ x̂      ∂L/∂β = Σ δ
        ∂L/∂x = γ/(m √(σ² + ε)) · (m δ − Σ δ − x̂ Σ (δ x̂))

    Inference uses the running statistics instead of the batch's, so a sample's output does
    not depend on the rest of its batch. They follow Keras's momentum convention:
    ``running = momentum · running + (1 − momentum) · batch`` (PyTorch's ``momentum=0.1``
    is Keras's 0.9); the running variance takes the unbiased batch variance m/(m − 1) · σ²,
    as PyTorch does. ``predict`` and ``evaluate`` fold this inference map into a Dense or
    convolution beside it (``lamina.engine.folding``).

    ``batch_sum``: while a training step computes part of a batch's rows in this process and
    the rest in another (``lamina.engine.halves``), a function that adds the other part's
    sums to this part's. Σ x, Σ (x − μ)², Σ δ and Σ δ (x − μ) — and m — then cover the
    whole batch, so each part normalizes with the statistics a one-process step computes.

    Args:
        n_features: F, the size of the last axis. ``None``: filled in from the shapes by a
            ``Model(..., input_shape=...)`` (``lamina.layers.sizes``): ``BatchNorm()``.
        momentum: weight of the old running statistics, in [0, 1).
        epsilon: ε > 0 added to the variance.
    Shape:
        inputs (batch, F) or (batch, H, W, F) -> outputs of the same shape
    """

    fresh_output = True
    inferred_size = "n_features"

    @checked(
        n_features=input_size("BatchNorm(64) for 64 features or channels"),
        momentum=rule(
            Interval(float, 0, 1, closed="left"),
            fix="use 0.9 (Keras) — PyTorch's 0.1 means the same",
        ),
        epsilon=Interval(float, 0, closed="neither"),
    )
    def __init__(
        self,
        n_features: int | None = None,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        # None until Layer.build fills it in; everything past it runs on a built layer
        self.n_features: int = n_features  # type: ignore[assignment]
        self.momentum = momentum
        self.epsilon = epsilon
        self.batch_sum: Callable[[Array], Array] | None = None  # set by a split step
        self._workspace = Workspace()  # x − μ of a training forward, reused batch to batch
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.n_features is None:  # no size yet: Layer.build allocates them
            return
        dtype = self.dtype or np.dtype(np.float32)
        shape = (self.n_features,)
        self.params["gamma"] = new_tensor(shape, dtype, 1.0)
        self.params["beta"] = new_tensor(shape, dtype, 0.0)
        self.state["running_mean"] = new_tensor(shape, dtype, 0.0)
        self.state["running_var"] = new_tensor(shape, dtype, 1.0)

    @property
    def dtype(self) -> np.dtype | None:
        return self.params["gamma"].dtype if "gamma" in self.params else None

    def output_shape(self, input_shape: Shape) -> Shape:
        if input_shape[-1] is not None and input_shape[-1] != self.n_features:
            raise ShapeError(self._mismatch(format_shape(input_shape)))
        return input_shape

    def _mismatch(self, received: str) -> str:
        return (
            f"{self.describe()} normalizes {self.n_features} features (the last axis), but "
            f"received inputs of shape {received}. Fix: set n_features to the size of the "
            "last axis of the layer before."
        )

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        self.require_built()
        if inputs.ndim < 2 or inputs.shape[-1] != self.n_features:
            raise ShapeError(self._mismatch(str(inputs.shape)))
        gamma, beta = self.params["gamma"], self.params["beta"]
        rows = inputs.reshape(-1, self.n_features)  # one row per value of each feature
        if not training:
            scale = gamma / np.sqrt(self.state["running_var"] + self.epsilon)
            self._scale, self._centered = scale, None
            out = rows * scale
            out += beta - self.state["running_mean"] * scale
            return out.reshape(inputs.shape)
        sums, m = self.whole_batch(self._column_sums(rows), len(rows))
        mean = sums / m
        dtype = np.result_type(rows.dtype, gamma.dtype)
        centered = self._workspace.empty("centered", rows.shape, dtype)
        wide = lanes(self.n_features, rows)  # per-feature vectors tiled over wide rows
        blocks = row_blocks(rows.shape, dtype, wide.width)
        squares = np.zeros(self.n_features, dtype)
        means = wide.tiles(mean)
        for block in blocks:  # x − μ, and its squares summed while the block is in cache
            k = wide.of(block.stop - block.start)
            part = wide.view(centered[block], k)
            np.subtract(wide.view(rows[block], k), means[k], out=part)
            squares += wide.fold(np.einsum("ij,ij->j", part, part), k)
        (squares,) = self.whole_batch(squares)
        variance = squares / m
        inverse_std = 1.0 / np.sqrt(variance + self.epsilon)
        self._centered, self._inverse_std, self._count = centered, inverse_std, m
        self.update_running(mean, variance * (m / max(m - 1, 1)))
        scales, betas = wide.tiles(gamma * inverse_std), wide.tiles(beta)
        out = np.empty(rows.shape, dtype)
        for block in blocks:  # y = (x − μ)·γ/√(σ² + ε) + β
            k = wide.of(block.stop - block.start)
            part = wide.view(out[block], k)
            np.multiply(wide.view(centered[block], k), scales[k], out=part)
            part += betas[k]
        return out.reshape(inputs.shape)

    def release_scratch(self) -> None:
        self._workspace.clear()

    def _column_sums(self, rows: Array) -> Array:
        """Σ over rows per feature, as ones·rows: one BLAS pass (4× faster than rows.sum(0))."""
        return self._ones_of(len(rows), rows.dtype) @ rows

    def _ones_of(self, length: int, dtype: np.dtype) -> Array:
        """A vector of ``length`` ones: the start of one kept from call to call."""
        ones = self.__dict__.get("_ones")
        if ones is None or len(ones) < length or ones.dtype != dtype:
            self._ones = ones = np.ones(length, dtype=dtype)
        return ones[:length]

    def whole_batch(self, *partials: Any) -> list[Any]:
        """Per-feature sums (arrays) and counts (ints) over this process's rows as sums over
        the whole batch: themselves, or with the other part's added by ``batch_sum`` (in
        float64, each cast back to its own type)."""
        if self.batch_sum is None:
            return list(partials)
        flat = [np.asarray(partial, dtype=np.float64).ravel() for partial in partials]
        total = self.batch_sum(np.concatenate(flat))
        pieces = np.split(total, np.cumsum([len(part) for part in flat])[:-1])
        return [
            int(piece[0]) if isinstance(part, int) else piece.astype(part.dtype)
            for part, piece in zip(partials, pieces, strict=True)
        ]

    def update_running(self, mean: Array, unbiased_variance: Array) -> None:
        """running = momentum · running + (1 − momentum) · batch, for the mean and the
        unbiased variance m/(m − 1) · σ² of a training batch."""
        momentum = self.momentum
        running_mean, running_var = self.state["running_mean"], self.state["running_var"]
        running_mean *= momentum
        running_mean += (1 - momentum) * mean.astype(running_mean.dtype, copy=False)
        running_var *= momentum
        running_var += (1 - momentum) * unbiased_variance.astype(running_var.dtype, copy=False)

    def backward(self, dvalues: Array) -> Array:
        gamma = self.params["gamma"]
        grads = self.gradient_buffers()
        delta = dvalues.reshape(-1, self.n_features)
        if self._centered is None:  # inference mode: y = x·scale + shift
            grads["gamma"][...] = 0
            grads["beta"][...] = 0
            return (delta * self._scale).reshape(dvalues.shape)
        centered, inverse_std, m = self._centered, self._inverse_std, self._count
        wide = lanes(self.n_features, delta)
        blocks = row_blocks(delta.shape, centered.dtype, wide.width)
        sum_delta = np.zeros(self.n_features, centered.dtype)
        sum_delta_centered = np.zeros(self.n_features, centered.dtype)  # Σ δ (x − μ)
        for block in blocks:
            k = wide.of(block.stop - block.start)
            part = wide.view(delta[block], k)
            sum_delta += wide.fold(self._column_sums(part), k)
            sum_delta_centered += wide.fold(
                np.einsum("ij,ij->j", part, wide.view(centered[block], k)), k
            )
        # the gradients of this process's rows (a split step adds the other part's) …
        grads["gamma"][...] = sum_delta_centered * inverse_std  # Σ δ x̂
        grads["beta"][...] = sum_delta
        # … and ∂L/∂x from the sums over the whole batch
        sum_delta, sum_delta_centered = self.whole_batch(sum_delta, sum_delta_centered)
        # ∂L/∂x = γ/√(σ²+ε) · (δ − Σδ/m − x̂ Σ(δ x̂)/m), with x̂ = (x − μ)/√(σ²+ε):
        # per feature, ((x − μ)·(−k) + δ − u)·a
        a = wide.tiles(gamma * inverse_std)
        minus_k = wide.tiles(-inverse_std * inverse_std * sum_delta_centered / m)
        u = wide.tiles(sum_delta / m)
        dx = np.empty(delta.shape, np.result_type(delta.dtype, centered.dtype))
        for block in blocks:
            k = wide.of(block.stop - block.start)
            part = wide.view(dx[block], k)
            np.multiply(wide.view(centered[block], k), minus_k[k], out=part)
            part += wide.view(delta[block], k)
            part -= u[k]
            part *= a[k]
        return dx.reshape(dvalues.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_features": self.n_features,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }
