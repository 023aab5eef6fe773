"""The Layer protocol every layer follows.

A layer maps a batch (axis 0) forward and maps ∂L/∂outputs back to ∂L/∂inputs, filling
``grads`` for its ``params``. Parameters exist after ``__init__``; the constructor's
arguments (``get_config``) fix every shape — but for an input size left None
(``Dense(units=128)``), which a model fills in from the shapes before the parameters are
drawn (:meth:`Layer.build`, ``lamina.layers.sizes``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import DTypeLike

from lamina._params import Constraint, Interval, Pair, Rule, check, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, ShapeError
from lamina.regularizers import L1L2

Array = np.ndarray
Shape = tuple[int | None, ...]

LAYERS: Registry[type[Layer]] = Registry("layer")

_PLACEHOLDERS: ContextVar[bool] = ContextVar("lamina_placeholder_tensors", default=False)


@contextlib.contextmanager
def placeholder_tensors() -> Iterator[None]:
    """Layers built inside this block get read-only placeholders of their tensors' shapes
    instead of allocated, initialised arrays (as PyTorch's ``meta`` device does): a loader
    reads the shapes a config implies and checks them against a file before any memory is
    spent, then puts the file's arrays in their place."""
    token = _PLACEHOLDERS.set(True)
    try:
        yield
    finally:
        _PLACEHOLDERS.reset(token)


#: the most values one parameter or state tensor may hold (8 GiB in float32): a size beyond
#: it is a mistake to report, not an allocation to attempt
MAX_TENSOR_VALUES = 2**31


def new_tensor(
    shape: tuple[int, ...], dtype: DTypeLike, fill: float | Callable[[], Array]
) -> Array:
    """A parameter or state array of ``shape``: ``fill()`` (an initializer) or the constant
    ``fill``; inside :func:`placeholder_tensors` a zero-stride view that costs no memory.
    Layers allocate every tensor through this function."""
    if _PLACEHOLDERS.get():
        return np.broadcast_to(np.zeros((), dtype), shape)
    values = math.prod(shape)
    if values > MAX_TENSOR_VALUES:
        gib = values * np.dtype(dtype).itemsize / 2**30
        raise ConfigError(
            f"A layer asked for a tensor of shape {shape}: {values:,} values ({gib:,.0f} GiB), "
            f"more than the {MAX_TENSOR_VALUES:,} lamina allocates for one tensor. Fix: check "
            "the layer's sizes (and the model's input_shape) — they are probably a typo."
        )
    if callable(fill):
        return fill()
    return np.full(shape, fill, dtype=dtype)


MAX_NAME_LENGTH = 100


class LayerName(Constraint):
    """A layer name: 1 to 100 printable characters without ``/`` (which separates the layer
    from the tensor in ``"dense_1/weights"``)."""

    def convert(self, value: Any) -> Any:
        if not (
            isinstance(value, str)
            and 0 < len(value) <= MAX_NAME_LENGTH
            and value.isprintable()
            and "/" not in value
        ):
            raise ValueError
        return value

    def describe(self) -> str:
        return f"a layer name of 1 to {MAX_NAME_LENGTH} printable characters without '/'"

    def refused(self) -> list[Any]:
        return [3, True, "", "a/b", "x" * (MAX_NAME_LENGTH + 1), "\x1b[31mred"]


NAME_FIX = "use a name like 'dense_1'"


class Layer:
    r"""Base class of every layer and activation: ``params``/``grads`` (same keys), ``state``
    (saved, not trained).

    A custom layer derives from it (an element-wise activation from
    ``lamina.layers.Activation``), keeps the contract below, and is registered with
    ``@lamina.register`` so that models using it save and load; ``lamina.gradcheck(layer,
    x)`` then compares its ``backward`` with numerical derivatives (notes §1.3, §3.3)::

        from lamina._params import Interval, checked

        @lamina.register
        class Scale(Layer):  # outputs = X ⊙ w;  ∂L/∂w = Σₙ δₙ ⊙ Xₙ,  ∂L/∂X = δ ⊙ w
            @checked(n_features=Interval(int, 1))
            def __init__(self, n_features: int, *, name: str | None = None) -> None:
                super().__init__(name=name)
                self.n_features = n_features
                self.params["w"] = new_tensor((n_features,), np.float32, 1.0)

            def forward(self, inputs, *, training=False):
                self._inputs = inputs
                return inputs * self.params["w"]

            def backward(self, dvalues):
                np.sum(dvalues * self._inputs, axis=0, out=self.gradient_buffers()["w"])
                return dvalues * self.params["w"]

            def get_config(self):
                return {**super().get_config(), "n_features": self.n_features}

    The contract:

    - ``forward(inputs, *, training=False) -> outputs``: a batch in (axis 0 = the N
      samples, images NHWC), a batch of N out, in the dtype of ``inputs`` (float32 or
      float64: no float64 constants that upcast). Never modify ``inputs``: the layer before
      may keep it. Returning ``inputs`` itself or a view of it is fine (Dropout at
      inference, Flatten); set the class attribute ``fresh_output = True`` only if the
      output is always a new array the layer does not keep (a following activation then
      runs in place on it). ``training=True`` means ``backward`` follows: keep what it
      needs in private attributes (``self._inputs``, ``self._mask``); randomness (dropout)
      only then, drawn from ``self.rng``. ``training=False`` (evaluate, predict) is
      deterministic.
    - ``backward(dvalues) -> dinputs``: ``dvalues`` is δ = ∂L/∂outputs of the last training
      forward, shaped like its outputs; treat it as read-only. Return ∂L/∂inputs shaped
      like the inputs (``None`` is allowed when ``self.input_grad`` is False), and write
      ∂L/∂θ of every parameter into ``self.gradient_buffers()[key]`` (``out=`` or
      ``[...] =``). A model makes ``params`` and ``grads`` views into two flat buffers that
      its optimizer updates in one pass. Assigning a new array to ``self.grads[key]`` works
      too (the model copies it into the buffer after ``backward``, one copy per step), but
      **assigning a new array to ``self.params[key]`` is not seen by the optimizer** (the
      parameter stops training) — update parameters in place, and read them from the dicts
      on every call rather than keeping them in other attributes.
    - The 1/N: L is the *mean* loss of the batch and δ already carries its 1/N
      (``Loss.backward``), so a parameter gradient *sums* over the batch (∂L/∂W = Xᵀ·δ, not
      a mean) and ∂L/∂inputs is per sample.
    - ``params``: trainable tensors; ``grads``: their gradients, same keys and shapes;
      ``state``: tensors saved with the model but not trained (BatchNorm's running mean).
      Allocate each through :func:`new_tensor` in ``__init__`` (and redraw random ones in
      :meth:`reset_parameters` from ``self.rng``): a loader then builds the layer with
      placeholders and checks the file's shapes before any memory is spent.
    - ``get_config()`` returns the constructor's arguments, JSON-able, ``name`` included
      (``{**super().get_config(), ...}``): a model file stores it, and ``from_config``
      (``cls(**config)``) rebuilds an equal layer before the saved tensors are put in.
      Declare the arguments' constraints with ``lamina._params.checked``: a file's values
      reach the constructor, and a refused one is a clear error, not a broken layer.
    - ``input_shape`` / ``output_shape``: the per-sample shapes, for the size checks
      between layers (``None``: any input shape; the output shape is the input's).
    - A layer whose input size a model may infer names that argument in
      :attr:`inferred_size` (default None), lets it default to None, and skips allocating
      in ``reset_parameters`` while it is None; :meth:`build` then fills it in and draws.
    - An activation used as ``Dense(activation="name")`` is built without arguments, so its
      arguments need defaults.

    Attributes:
        name: unique within a model; given by the model when left ``None``.
        trainable: ``False`` freezes ``params`` (optimizers skip them; transfer learning).
        input_grad: ``False`` lets ``backward`` skip ∂L/∂inputs (a model's first layer:
            nothing consumes it) and return ``None``.
        rng: the Generator behind every random draw of this layer (initial parameters,
            dropout masks). A model seeds it from its own ``seed``.
    """

    # forward returns a new array this layer does not keep, so the next step may overwrite it
    fresh_output: ClassVar[bool] = False
    #: ``forward`` takes ``mask=``: an (N, T) bool array, True at the real (not padded) time
    #: steps of (N, T, …) inputs, or None (recurrent layers, global pooling over time)
    uses_mask: ClassVar[bool] = False
    #: the outputs keep the inputs' time steps, so a mask passes through unchanged
    #: (activations, Dropout, Dense applied to every step)
    supports_masking: ClassVar[bool] = False
    #: the inputs are integer ids (Embedding): ``backward`` returns None, there is no ∂L/∂ids
    integer_inputs: ClassVar[bool] = False
    #: the constructor argument holding the size of the inputs' last axis, which a model
    #: built with ``input_shape=`` fills in when it is left None (``lamina.layers.sizes``):
    #: ``"n_inputs"`` for Dense, ``"in_channels"`` for Conv2D; None: nothing to infer
    inferred_size: ClassVar[str | None] = None
    #: the axes of one sample this layer takes, as words ("height, width, channels"), when
    #: their number is fixed; an input size is inferred only from inputs of that many axes
    sample_axes: ClassVar[str | None] = None
    #: inference is mostly NumPy element-wise work on one core (im2col, pooling, gates), so
    #: a model with such a layer predicts on several threads (``lamina.engine.spread``)
    elementwise_bound: ClassVar[bool] = False
    #: two threads may run ``forward(training=False)`` at once (it keeps nothing it reads
    #: back in the same call). None: True for lamina's own layers, False for a user's layer
    #: (a subclass included) unless it sets it — so a custom layer never spreads unasked
    thread_safe_inference: ClassVar[bool | None] = None
    #: a training step may run this layer on a batch's rows in two parts, one per process,
    #: and add their parameter gradients (each sample computed on its own, no state
    #: tensors: ``lamina.engine.halves``). None: True for lamina's own layers, False for a
    #: user's layer unless it sets it
    splits_over_batch: ClassVar[bool | None] = None

    @checked(name=rule(LayerName(), None, fix=NAME_FIX))
    def __init__(self, *, name: str | None = None) -> None:
        self.name = name
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.state: dict[str, Array] = {}
        self.regularizers: dict[str, L1L2] = {}
        self.trainable = True
        self.input_grad = True
        self.rng = np.random.default_rng()

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, dvalues: Array) -> Array | None:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def __call__(self, inputs: Array, *, training: bool = False) -> Array:
        return self.forward(inputs, training=training)

    @property
    def random_in_inference(self) -> bool:
        """Whether an inference forward draws random numbers (Monte-Carlo dropout): its
        batches then run one after another, in the order the draws are made."""
        return False

    # -- masks ---------------------------------------------------------------------------
    @property
    def makes_mask(self) -> bool:
        """Whether :meth:`compute_mask` may give a mask to inputs that have none (True for
        ``Embedding(mask_zero=True)`` and ``Masking``): a model follows masks only then."""
        return False

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        """The padding mask of this layer's outputs, from its ``inputs`` and their ``mask``.

        The default: no mask stays no mask; a layer that ``supports_masking`` passes it on;
        any other layer refuses it, since it would mix padded steps into real ones. Mask
        producers (``Embedding(mask_zero=True)``, ``Masking``) compute it from ``inputs``; a
        layer that removes the time axis (a recurrent layer without ``return_sequences``)
        returns None.
        """
        if mask is None or self.supports_masking or self.uses_mask:
            return mask
        raise ShapeError(
            f"{self.describe()} does not accept a padding mask, and the layer before it "
            "gives one (Embedding(mask_zero=True) or Masking). Fix: put the masked steps "
            "through a layer that consumes the mask first (a recurrent layer, or global "
            "pooling over time), or drop mask_zero/Masking."
        )

    def check_data(self, inputs: Array, name: str) -> None:
        """Check a whole data set ``name`` (X) given to a model whose first layer this is,
        once, before any batch: values only this layer can judge (Embedding: ids inside
        its vocabulary). Nothing by default."""

    # -- shapes --------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape | None:
        """The per-sample input shape this layer requires, or ``None`` if any shape works."""
        return None

    def output_shape(self, input_shape: Shape) -> Shape:
        """The per-sample output shape for a per-sample ``input_shape``."""
        return input_shape

    def check_input_shape(self, input_shape: Shape, source: str) -> None:
        """Raise a ShapeError naming this layer, ``source``, and the shape to use.

        ``None`` entries in :attr:`input_shape` accept any size along that axis.
        """
        expected = self.input_shape
        if expected is None:
            return
        fits = len(input_shape) == len(expected) and all(
            e is None or r is None or e == r for e, r in zip(expected, input_shape, strict=True)
        )
        if not fits:
            raise ShapeError(
                f"{self.describe()} expects inputs of shape {format_shape(expected)}, but "
                f"{source} gives {format_shape(input_shape)}. Fix: make the sizes agree, e.g. "
                f"give {self.describe()} the input size {format_shape(input_shape)}."
            )

    # -- sizes inferred from the inputs (lamina.layers.sizes) -----------------------------
    @property
    def built(self) -> bool:
        """Whether every size is known; a layer whose :attr:`inferred_size` was left None
        has no parameters until :meth:`build`."""
        return self.inferred_size is None or getattr(self, self.inferred_size) is not None

    def build(self, input_shape: Shape) -> None:
        """Fill in the :attr:`inferred_size` left None from the per-sample ``input_shape``
        of this layer's inputs (its last axis), then draw the parameters from ``self.rng``:
        the draws of a layer given the size, so ``Dense(units=128)`` built on rows of 784
        starts equal to ``Dense(784, 128)``. A built layer is left as it is."""
        if self.built:
            return
        setattr(self, str(self.inferred_size), self.inferred_from(input_shape))
        self.reset_parameters()

    def inferred_from(self, input_shape: Shape) -> int:
        """The size of the last axis of ``input_shape``, or a ShapeError saying it is not
        known there."""
        axes = self.sample_axes
        if axes is not None and len(input_shape) != axes.count(",") + 1:
            raise ShapeError(
                f"{self.describe()} takes samples of {axes.count(',') + 1} axes ({axes}), but "
                f"its inputs are of shape {format_shape(input_shape)}, so it cannot take "
                f"{self.inferred_size} from them. Fix: give the model the per-sample shape of "
                f"the data with every axis, e.g. "
                + (
                    "input_shape=(28, 28, 1) for 28×28 images of one channel."
                    if axes.count(",") == 2
                    else "input_shape=(40, 8) for sequences of 40 steps of 8 features."
                )
            )
        size = input_shape[-1] if input_shape else None
        if size is None:
            raise ShapeError(
                f"{self.describe()} cannot take {self.inferred_size} from inputs of shape "
                f"{format_shape(input_shape)}: the size of their last axis is not known. Fix: "
                f"pass {self.inferred_size} to it, or build the model with input_shape=..."
            )
        return size

    def require_built(self) -> None:
        """A ShapeError unless the layer is built: it runs only once its sizes are known."""
        if not self.built:
            raise ShapeError(
                f"{self.describe()} has no {self.inferred_size} yet, so no parameters. Fix: "
                f"pass {self.inferred_size} to it, or put it in a Model built with "
                "input_shape=(...), which fills it in from the shapes."
            )

    # -- parameters ----------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Redraw initial parameters from ``self.rng`` (parameter-free layers: nothing)."""

    def release_scratch(self) -> None:
        """Let go of the scratch arrays kept from one batch to the next (a Conv2D's
        ``lamina.layers._workspace``; most layers keep none). ``predict`` and ``evaluate``
        call it when their last batch is done, so a model holds no batch-sized memory after
        them."""

    def regularization_penalty(self) -> float:
        """Σ over this layer's regularized parameters of λ₁Σ|θ| + λ₂Σθ² (notes §1.6)."""
        return sum(
            (reg.penalty(self.params[key]) for key, reg in self.regularizers.items()),
            0.0,
        )

    def gradient_buffers(self) -> dict[str, Array]:
        """``grads`` as arrays shaped like ``params``, allocated once and then reused:
        backward writes into them with ``out=`` (fresh ones cost page faults every step)."""
        grads = self.grads
        if any(grads.get(k) is None or grads[k].dtype != v.dtype for k, v in self.params.items()):
            self.grads = grads = {key: np.empty_like(value) for key, value in self.params.items()}
        return grads

    def add_regularization_gradients(self) -> None:
        for key, reg in self.regularizers.items():
            reg.add_gradient(self.params[key], self.grads[key])

    @property
    def dtype(self) -> np.dtype | None:
        for array in self.params.values():
            return array.dtype
        return None

    def astype(self, dtype: DTypeLike) -> Self:
        """Cast parameters and state to ``dtype`` in place of the old arrays; returns self."""
        for store in (self.params, self.state):
            for key, array in store.items():
                store[key] = array.astype(dtype, copy=False)
        self.grads = {}
        return self

    def count_params(self) -> int:
        return sum(int(array.size) for array in self.params.values())

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able: ``from_config(get_config())`` rebuilds it."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def describe(self) -> str:
        label = f"'{self.name}' " if self.name else ""
        return f"Layer {label}({type(self).__name__})"

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({arguments})"


def check_name(name: object) -> str:
    """``name`` if it is a valid layer name (:class:`LayerName`), else a ConfigError."""
    checked_name: str = check("", "layer name", name, LayerName(), fix=NAME_FIX)
    return checked_name


def format_shape(shape: Shape) -> str:
    """``(batch, 28, 28, 1)``-style text for a per-sample shape."""
    return "(" + ", ".join(["batch", *("?" if d is None else str(d) for d in shape)]) + ")"


def regularizers_for(
    weight_l1: float, weight_l2: float, bias_l1: float, bias_l2: float
) -> dict[str, L1L2]:
    """The non-zero L1/L2 regularizers of a layer with "weights" and "biases"."""
    pairs = {"weights": L1L2(weight_l1, weight_l2), "biases": L1L2(bias_l1, bias_l2)}
    return {key: reg for key, reg in pairs.items() if reg.active}


def size_pair(argument: str, *, optional: bool = False) -> Rule:
    """The rule of a window size or stride (Conv2D, pooling): a positive int or a
    ``(height, width)`` pair of them, passed on as a pair; ``optional`` allows None too."""
    fix = f"use e.g. {argument}=2 or {argument}=(2, 1)"
    return rule(Pair(Interval(int, 1)), *([None] if optional else []), fix=fix)
