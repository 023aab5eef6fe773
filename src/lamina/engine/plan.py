"""How a model runs its layers: a flat list of steps, built once at compile time.

A layer with an ``activation=`` shortcut becomes two steps, its linear part and the
activation, so that the plan can

- apply an activation in place on an array nobody keeps (the pre-activations a layer has
  just computed, or the output of a ``fresh_output`` layer such as BatchNorm), and take its
  backward in place on a gradient the pass owns;
- pool before ReLU when a ReLU feeds a MaxPool2D: max and ReLU commute
  (both are monotone), so ``MaxPool(ReLU(z)) = ReLU(MaxPool(z))`` bit for bit, the
  gradients are the same too (the window's winner is the same element; a window whose
  maximum is ≤ 0 passes no gradient either way), and ReLU touches a quarter of the values;
- run a Conv2D straight into such a MaxPool2D as one step (``lamina.engine.fusion``): the
  convolution computes its outputs in the order the pooling reads them;
- in ``predict`` and ``evaluate``, fold each BatchNorm into the Dense or convolution
  beside it (``lamina.engine.folding``), which then fuses with its pooling as above;
- stop backward before a final Softmax whose gradient the loss gives directly,
  ∂L/∂z = (ŷ − y)/N (notes §1.3);
- carry a padding mask from the layer that makes it (``Embedding(mask_zero=True)``,
  ``Masking``) to the layers that use it (recurrent layers, global pooling over time) and,
  for a sequence output, to the loss (:attr:`ExecutionPlan.output_mask`). A model without
  a mask-making layer runs none of this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lamina.engine import forked_inference, spread
from lamina.engine.folding import fold_batch_norms, fold_sources, folds, same_sources
from lamina.engine.fusion import PooledConvolution, fusable
from lamina.engine.normalized_pooling import NormalizedPooledConvolution, normalized_fusable
from lamina.engine.tiled_normalized_pooling import TiledNormalizedPooling, tiled_normalized_fusable
from lamina.layers.activated import ActivatedLayer
from lamina.layers.activations import Activation, ReLU, Softmax
from lamina.layers.base import Layer
from lamina.layers.conv import Conv2D
from lamina.layers.normalization import BatchNorm
from lamina.layers.pooling import MaxPool2D
from lamina.validation import check_finite as check_finite_values

if TYPE_CHECKING:
    from lamina.engine.halves import TrainingHalves

Array = np.ndarray
Observer = Callable[[str, Layer, Array], None]


class Step(Protocol):
    def forward(self, inputs: Array, *, training: bool = False) -> Array: ...

    def backward(self, dvalues: Array) -> Array | None: ...


class LinearStep:
    """The parametric part of an :class:`ActivatedLayer` (``z = X·W + b``, a convolution)."""

    def __init__(self, layer: ActivatedLayer) -> None:
        self.layer = layer

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self.layer.linear_forward(inputs, training=training)

    def backward(self, dvalues: Array) -> Array | None:
        return self.layer.backward_linear(dvalues)


class InPlaceActivation:
    """An activation shortcut, run in place: its input is an array nobody else keeps."""

    def __init__(self, activation: Activation) -> None:
        self.activation = activation

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        return self.activation.forward_inplace(inputs, training=training)

    def backward(self, dvalues: Array) -> Array:
        return self.activation.backward_inplace(dvalues)


class ExecutionPlan:
    """The steps of a model's forward pass and the steps its backward pass goes through."""

    def __init__(self, layers: Sequence[Layer], *, loss_takes_softmax: bool) -> None:
        steps: list[Step] = []
        for layer in layers:
            if isinstance(layer, ActivatedLayer):
                steps.append(LinearStep(layer))
                if layer.activation is not None:
                    steps.append(InPlaceActivation(layer.activation))
            elif isinstance(layer, Activation) and steps and _gives_away_output(steps[-1]):
                steps.append(InPlaceActivation(layer))
            else:
                steps.append(layer)
        for index in range(len(steps) - 1):
            activation, pool = steps[index : index + 2]
            if (
                isinstance(activation, InPlaceActivation)
                and type(activation.activation) is ReLU
                and isinstance(pool, MaxPool2D)
            ):
                steps[index], steps[index + 1] = pool, activation
        self.steps = _fuse_convolution_pooling(steps)
        steps = self.steps
        self.fused_softmax = loss_takes_softmax and _is_softmax(steps[-1])
        self.backward_steps = steps[:-1] if self.fused_softmax else steps
        self.layers = list(layers)
        #: whether a layer makes a padding mask, so that forward follows it step by step
        self.masked = any(layer.makes_mask for layer in layers)
        #: the padding mask (N, T) of the last forward's outputs, or None
        self.output_mask: Array | None = None
        #: the worker process a training epoch splits its batches with, or None
        #: (``lamina.engine.halves``)
        self.halves: TrainingHalves | None = None
        #: what watches a training forward (callbacks.Diagnostics, callbacks.TensorBoard):
        #: each is called after every step as ``observer(name, layer, outputs)``
        self.observers: list[Observer] = []
        #: each step's name for observers: ``"dense_1"`` (a layer, or its linear part),
        #: ``"dense_1/relu"`` (its activation), ``"conv2d+max_pool2d"`` (a fused step)
        self.step_names = [_step_name(step, layers) for step in self.steps]
        #: the folded inference plan and copies of the arrays it was made from
        self._folded: tuple[list[Array], ExecutionPlan] | None = None

    @property
    def linear_first(self) -> bool:
        """Whether the first step is a layer's linear part (Dense, Conv2D; also pooled)."""
        return isinstance(
            self.steps[0], LinearStep | PooledConvolution | NormalizedPooledConvolution
        )

    def forward(self, inputs: Array, *, training: bool, first: int = 0) -> Array:
        """Run the steps from ``first`` on (0: all of them); :attr:`output_mask` is the
        outputs' padding mask afterwards."""
        if training and first == 0 and self.halves is not None:
            outputs = self.halves.forward(inputs)  # None: a batch too small to split
            if outputs is not None:
                self.output_mask = None
                return outputs
        outputs, self.output_mask = self.forward_with_mask(inputs, training=training, first=first)
        return outputs

    def forward_with_mask(
        self, inputs: Array, *, training: bool, first: int = 0
    ) -> tuple[Array, Array | None]:
        """:meth:`forward`'s outputs and their padding mask (None without a mask-making
        layer), returned instead of kept: what an inference thread uses."""
        if self.masked or (training and self.observers):
            return self._forward_step_by_step(inputs, training=training, first=first)
        for step in self.steps[first:]:
            inputs = step.forward(inputs, training=training)
        return inputs, None

    def _forward_step_by_step(
        self, inputs: Array, *, training: bool, first: int
    ) -> tuple[Array, Array | None]:
        """:meth:`forward` with the padding mask — each step's layer computes the mask of
        its outputs from its inputs and theirs, the layers that use it receive it — and,
        in training, the observers called after each step. An observer must not keep the
        outputs it is shown: the next step may overwrite them in place."""
        mask = None
        watching = self.observers if training else []
        for index in range(first, len(self.steps)):
            step = self.steps[index]
            layer = _layer_of(step)
            next_mask = layer.compute_mask(inputs, mask) if self.masked else None
            if layer.uses_mask:
                inputs = step.forward(inputs, training=training, mask=mask)  # type: ignore[call-arg]
            else:
                inputs = step.forward(inputs, training=training)
            for observer in watching:
                observer(self.step_names[index], layer, inputs)
            mask = next_mask
        return inputs, mask

    def batches(
        self, X: Array, size: int, *, check_finite: bool = False
    ) -> Iterator[tuple[int, Array]]:
        """Inference outputs batch by batch, with the index of each batch's first row; the
        layers' scratch arrays are released after the last one (or when it stops early).
        A convolutional or recurrent model computes them on several processes
        (``lamina.engine.forked_inference``) or threads (``lamina.engine.spread``), given
        back in order.

        ``check_finite`` refuses NaN/inf inputs where it is cheapest: a linear first layer
        turns a NaN/inf anywhere in a row into NaN/inf in its whole output row, so scanning
        that (smaller, cached) output finds them; only then is X scanned, to name the bad
        value."""
        starts = range(0, len(X), size)
        plan = self.inference_plan()
        workers = spread.inference_workers(plan.layers, batches=len(starts))

        def compute(start: int) -> tuple[Array, Array | None]:
            return plan._inference_batch(X[start : start + size], check_finite, X)

        try:
            if workers > 1 and forked_inference.forks(masked=plan.masked):
                computed = forked_inference.in_order(compute, starts, workers)
            elif workers > 1:
                computed = spread.in_order(compute, starts, workers)
            else:
                computed = ((start, compute(start)) for start in starts)
            for start, (outputs, self.output_mask) in computed:  # the mask read by evaluate
                yield start, outputs
        finally:  # scratch memory is reused across the batches, not kept after them
            plan.release_scratch()

    def inference_plan(self) -> ExecutionPlan:
        """The plan :meth:`batches` runs: one over the layers with their BatchNorms folded
        into the linear layers beside them (``lamina.engine.folding``), or this plan when
        none folds (or a padding mask is carried). The folded plan is made from the current
        weights, and kept while the arrays it was made from keep their values."""
        planned = [] if self.masked else folds(self.layers)
        if not planned:
            return self
        sources = fold_sources(self.layers, planned)
        if self._folded is not None and same_sources(self._folded[0], sources):
            return self._folded[1]
        plan = ExecutionPlan(
            fold_batch_norms(self.layers, planned), loss_takes_softmax=self.fused_softmax
        )
        self._folded = ([array.copy() for array in sources], plan)
        return plan

    def release_scratch(self) -> None:
        """Free the scratch arrays the layers and fused steps keep between batches."""
        for layer in self.layers:
            layer.release_scratch()
        for step in self.steps:
            if isinstance(step, PooledConvolution | NormalizedPooledConvolution):
                step.release_scratch()

    def _inference_batch(
        self, batch: Array, check_finite: bool, X: Array
    ) -> tuple[Array, Array | None]:
        skip = 1 if check_finite and self.linear_first else 0
        if check_finite:
            with np.errstate(invalid="ignore", over="ignore"):  # reported below
                if skip:
                    batch = self.steps[0].forward(batch, training=False)
                finite = np.isfinite(np.add.reduce(batch, axis=None))
            if not finite:
                check_finite_values(X, "X")  # raises, naming it, unless z overflowed
        return self.forward_with_mask(batch, training=False, first=skip)

    def backward(self, dvalues: Array) -> None:
        """Backpropagate ∂L/∂(output of the last backward step) through every step — the
        rows of a split forward where their forward ran (``lamina.engine.halves``)."""
        if self.halves is None or not self.halves.backward(dvalues):
            self.backpropagate(dvalues)

    def backpropagate(self, dvalues: Array) -> None:
        """:meth:`backward` in this process: every step's backward, in reverse order."""
        gradient: Array | None = dvalues
        for step in reversed(self.backward_steps):
            if gradient is None:  # the first layer computes no ∂L/∂inputs
                break
            gradient = step.backward(gradient)


def _fuse_convolution_pooling(steps: list[Step]) -> list[Step]:
    """Each Conv2D's linear step directly followed by a MaxPool2D with stride = pool size
    becomes one :class:`PooledConvolution`; with a BatchNorm between them, one
    :class:`NormalizedPooledConvolution` (a convolution by im2col) or
    :class:`TiledNormalizedPooling` (by F(2×2, 3×3))."""
    fused: list[Step] = []
    for step in steps:
        previous = fused[-1] if fused else None
        before = fused[-2] if len(fused) > 1 else None
        if isinstance(previous, LinearStep) and fusable(previous.layer, step):
            assert isinstance(previous.layer, Conv2D) and isinstance(step, MaxPool2D)
            fused[-1] = PooledConvolution(previous.layer, step)
        elif isinstance(before, LinearStep) and normalized_fusable(before.layer, previous, step):
            assert isinstance(before.layer, Conv2D) and isinstance(previous, BatchNorm)
            assert isinstance(step, MaxPool2D)
            fused[-2:] = [NormalizedPooledConvolution(before.layer, previous, step)]
        elif isinstance(before, LinearStep) and tiled_normalized_fusable(
            before.layer, previous, step
        ):
            assert isinstance(before.layer, Conv2D) and isinstance(previous, BatchNorm)
            assert isinstance(step, MaxPool2D)
            fused[-2:] = [TiledNormalizedPooling(before.layer, previous, step)]
        else:
            fused.append(step)
    return fused


def _step_name(step: Step, layers: Sequence[Layer]) -> str:
    if isinstance(step, LinearStep):
        return str(step.layer.name)
    if isinstance(step, PooledConvolution):
        return f"{step.conv.name}+{step.pool.name}"
    if isinstance(step, NormalizedPooledConvolution):
        return f"{step.conv.name}+{step.norm.name}+{step.pool.name}"
    if isinstance(step, InPlaceActivation):
        for layer in layers:  # an activation= shortcut: named after its layer
            if isinstance(layer, ActivatedLayer) and layer.activation is step.activation:
                return f"{layer.name}/{type(step.activation).__name__.lower()}"
        return str(step.activation.name)
    assert isinstance(step, Layer)
    return str(step.name)


def _layer_of(step: Step) -> Layer:
    """The layer whose masking rules a step follows (a Conv2D + MaxPool2D step: the pool's,
    which refuses a mask as the convolution does)."""
    if isinstance(step, LinearStep):
        return step.layer
    if isinstance(step, InPlaceActivation):
        return step.activation
    if isinstance(step, PooledConvolution | NormalizedPooledConvolution):
        return step.pool
    assert isinstance(step, Layer)
    return step


def _gives_away_output(step: Step) -> bool:
    """Whether a step's output is a new array nobody keeps (safe to overwrite in place)."""
    fused = (LinearStep, PooledConvolution, NormalizedPooledConvolution)
    return isinstance(step, fused) or getattr(step, "fresh_output", False)


def _is_softmax(step: Step) -> bool:
    inner = step.activation if isinstance(step, InPlaceActivation) else step
    return type(inner) is Softmax
