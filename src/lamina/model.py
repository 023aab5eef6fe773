"""The Model: a stack of layers with compile / fit / evaluate / predict (notes §1.9, §1.10).

A model owns its layers, loss, optimizer, metrics, preprocessing and random Generators, and
says how to run them: ``forward``/``backward`` through the execution plan
(``engine/plan.py``), one ``train_step``, ``fit``'s epochs (the loop is
``engine/training.py``), ``evaluate`` and ``predict``; saving is ``lamina.saving``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from lamina import augmentation as augmentation_module
from lamina import callbacks as callbacks_module
from lamina import losses as losses_module
from lamina import metrics as metrics_module
from lamina import optimizers as optimizers_module
from lamina._params import Flag, FloatType, Interval, check
from lamina.callbacks import Callback, CallbackState, History
from lamina.engine import data
from lamina.engine.arena import ParameterArena
from lamina.engine.batches import BatchSource, is_batch_stream
from lamina.engine.plan import ExecutionPlan
from lamina.engine.training import TrainingLoop
from lamina.errors import ConfigError, NotCompiledError, NumericalError, invalid
from lamina.layers.base import Layer, Shape
from lamina.layers.stack import name_layers, propagate_shape, summary_table
from lamina.losses import CategoricalCrossentropy, Loss
from lamina.metrics import Metric
from lamina.optimizers import Optimizer
from lamina.saving import model_file, weights
from lamina.validation import cast_samples, numeric_samples, targets_for
from lamina.validation import check_finite as check_inputs_finite

Array = np.ndarray

PREDICT_BATCH_SIZE = 1024
SPLIT = Interval(float, 0, 1, closed="left")

Augmentation = Callable[[Array, np.random.Generator], Array]


class Preprocessing(Protocol):
    """What a model needs of its preprocessing (``lamina.preprocessing.Pipeline`` has it)."""

    def fit(self, X: Array, y: Array | None = None) -> Any: ...

    def transform(self, X: Array) -> Array: ...


class Model:
    r"""A feed-forward stack of layers (notes §1.1, §3.2): ``ŷ = σ_L(…σ₁(X·W₁ + b₁)…)``.

    Args:
        layers: the layers in order. Sizes are explicit (``Dense(784, 128)``); a size that
            does not match the layer before raises an error naming both layers.
        seed: seeds every random draw — initial parameters, per-epoch shuffling, dropout —
            from ``numpy.random.SeedSequence(seed)``: the same seed, data and BLAS thread
            count give bit-identical weights. ``None`` keeps the layers' parameters as
            constructed and draws fresh entropy for shuffling and dropout.
        dtype: ``"float32"`` (fast, the default) or ``"float64"`` (gradient checks).
        preprocessing: a transformer (``lamina.preprocessing.Pipeline([...])`` or anything
            with ``fit``/``transform``) that ``fit`` fits on the training portion only —
            never on validation or test data — and that ``fit``, ``evaluate`` and
            ``predict`` apply to their inputs (notes §1.5, §1.9). Fitted once, on the first
            ``fit``; a pipeline fitted beforehand is used as it is.
        augmentation: a callable ``(images, rng) -> images`` (``lamina.augmentation``), or a
            list of them, applied to every training batch in ``fit`` with a Generator seeded
            from ``seed``; never at evaluation or prediction (notes §1.5).
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        seed: int | None = None,
        dtype: DTypeLike = "float32",
        *,
        preprocessing: Preprocessing | None = None,
        augmentation: Augmentation | Sequence[Augmentation] | None = None,
    ) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
            raise ConfigError(
                invalid(
                    "layers",
                    "a non-empty list of Layer objects",
                    repr(layers)[:100],
                    "pass e.g. [Dense(784, 10)]",
                )
            )
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(
                    invalid(f"layers[{index}]", "a lamina Layer", type(layer).__name__)
                )
        seed = check("", "seed", seed, None, Interval(int, 0), fix="use e.g. seed=0")
        self.dtype: np.dtype = check("", "dtype", dtype, FloatType(), fix="use dtype='float32'")
        self.layers = list(layers)
        self.seed = seed
        self.preprocessing = preprocessing
        self.augmentation = augmentation_module.as_list(augmentation)
        name_layers(self.layers)
        self._seed_layers()
        for layer in self.layers:
            layer.astype(self.dtype)
        propagate_shape(self.layers)  # a size mismatch names both layers
        self.layers[0].input_grad = False  # nothing consumes ∂L/∂X of the data

        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.metrics: list[Metric] = []
        self.history: History | None = None
        self.epochs_done = 0  # completed epochs, saved with the model for resuming
        # JSON-able facts saved with the model: class names, the raw input shape, the data
        self.metadata: dict[str, Any] = {}
        self.stop_training = False
        self._plan = ExecutionPlan(self.layers, loss_takes_softmax=False)
        self._arena: ParameterArena | None = None
        self._running: TrainingLoop | None = None  # the fit under way
        self._callback_states: list[CallbackState] = []  # of the last fit, or of the file

    # -- construction ------------------------------------------------------------------
    def _seed_layers(self) -> None:
        sequence = np.random.SeedSequence(self.seed)
        children = sequence.spawn(len(self.layers) + 2)
        self._rng = np.random.default_rng(children[0])  # shuffling
        self._augment_rng = np.random.default_rng(children[-1])
        for layer, child in zip(self.layers, children[1:-1], strict=True):
            layer.rng = np.random.default_rng(child)
            if self.seed is not None:
                layer.reset_parameters()

    @property
    def random_state(self) -> dict[str, Any]:
        """The state of the model's own Generators — ``"shuffle"`` (the per-epoch order)
        and ``"augment"`` (augmentation draws) — as JSON-able dicts; assigning one puts
        them back (each layer's ``rng`` holds the rest: initial parameters, dropout)."""
        return {
            "shuffle": self._rng.bit_generator.state,
            "augment": self._augment_rng.bit_generator.state,
        }

    @random_state.setter
    def random_state(self, state: dict[str, Any]) -> None:
        for key, generator in (("shuffle", self._rng), ("augment", self._augment_rng)):
            value = state.get(key) if isinstance(state, dict) else None
            kind = type(generator.bit_generator).__name__
            if not (isinstance(value, dict) and value.get("bit_generator") == kind):
                raise ConfigError(
                    invalid(f"random_state[{key!r}]", f"a {kind} state dict", repr(value)[:80])
                )
        self._rng.bit_generator.state = state["shuffle"]
        self._augment_rng.bit_generator.state = state["augment"]

    def output_shape(self, input_shape: Shape) -> Shape:
        """The per-sample output shape for a per-sample ``input_shape``; a ShapeError names
        the first layer that does not fit."""
        shape = propagate_shape(self.layers, input_shape)
        assert shape is not None
        return shape

    # -- compile -----------------------------------------------------------------------
    def compile(
        self,
        loss: str | Loss,
        optimizer: str | Optimizer = "adam",
        metrics: Sequence[str | Metric] | None = ("accuracy",),
    ) -> Model:
        """Choose the loss, optimizer and metrics. With a Softmax output and categorical
        cross-entropy, backward uses the fused ∂L/∂z = (ŷ − y)/N (notes §1.3)."""
        self.loss = losses_module.get(loss)
        self.optimizer = optimizers_module.get(optimizer)
        loss_name = losses_module.kind_of(self.loss)
        self.metrics = [metrics_module.get(m, loss_name) for m in (metrics or ())]
        self._plan = ExecutionPlan(
            self.layers, loss_takes_softmax=isinstance(self.loss, CategoricalCrossentropy)
        )
        return self

    def _require_compiled(self, action: str) -> tuple[Loss, Optimizer]:
        if self.loss is None or self.optimizer is None:
            raise NotCompiledError(
                f"Model.{action}() needs a loss and an optimizer, but the model is not compiled."
                " Fix: call model.compile(loss=..., optimizer=...) first."
            )
        return self.loss, self.optimizer

    @property
    def plan(self) -> ExecutionPlan:
        """How the model runs its layers, for inspection: ``plan.steps`` (a layer with an
        activation is two steps, a Conv2D into a MaxPool2D one fused step) and
        ``plan.fused_softmax`` (backward starts from (ŷ − y)/N). Set by ``compile``."""
        return self._plan

    # -- the training step ---------------------------------------------------------------
    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        """Run a batch through every layer (notes §1.2), as the execution plan orders it."""
        return self._plan.forward(inputs, training=training)

    def backward(self, y_pred: Array, y_true: Array) -> None:
        """Backpropagate the loss of (ŷ, y) through every layer, filling ``grads`` (§1.3).

        With a Softmax output and categorical cross-entropy the plan starts from the
        fused ∂L/∂z = (ŷ − y)/N instead of going through the Softmax (notes §1.3).
        """
        loss = self.loss
        assert loss is not None
        if self._plan.fused_softmax:
            dvalues = loss.backward_through_softmax(y_pred, y_true)  # type: ignore[attr-defined]
        else:
            dvalues = loss.backward(y_pred, y_true)
        self._plan.backward(dvalues)

    def regularization_penalty(self) -> float:
        """Σ of every layer's L1/L2 penalty (notes §1.6), added to the reported loss."""
        return sum(
            (layer.regularization_penalty() for layer in self.layers if layer.regularizers), 0.0
        )

    def parameters(self) -> list[tuple[str, Array, Array]]:
        """(``"layer/param"``, θ, ∂L/∂θ) for every trainable parameter."""
        return list(self._parameter_arena().groups)

    def _parameter_arena(self) -> ParameterArena:
        arena = self._arena
        if arena is None or not arena.is_current(self.layers):
            arena = self._arena = ParameterArena(self.layers, self.dtype)
        return arena

    def train_step(self, x: Array, y: Array) -> tuple[Array, Array, list[Array]]:
        """One optimizer step on a batch; returns (ŷ, per-sample losses, per-sample metrics).

        Raises NumericalError, before touching any parameter, when the loss is not finite.
        """
        loss, optimizer = self._require_compiled("train_step")
        arena = self._parameter_arena()
        y_pred = self.forward(x, training=True)
        sample_losses = loss.forward(y_pred, y)
        if not math.isfinite(float(sample_losses.sum())):
            raise NumericalError(
                "the loss is NaN/inf (training diverged); the parameters were left as they were "
                "before this batch. Fix: lower the learning rate or add decay."
            )
        scores = [metric.per_sample(y_pred, y) for metric in self.metrics]
        self.backward(y_pred, y)
        optimizer.step(arena.groups, flat=(arena.values, arena.grads))
        return y_pred, sample_losses, scores

    # -- fit -----------------------------------------------------------------------------
    def fit(
        self,
        X: ArrayLike | Any,
        y: ArrayLike | None = None,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        verbose: int = 1,
        callbacks: Sequence[Callback] = (),
        initial_epoch: int = 0,
    ) -> History:
        """Train for ``epochs`` epochs of shuffled batches (notes §1.4, §1.9).

        Args:
            X, y: training samples (batch axis first) and targets: integer labels or one-hot
                rows for categorical cross-entropy, 0/1 for binary, values for regression.
                For data that does not fit in memory, X can instead be a stream of
                ``(X_batch, y_batch)`` pairs and y None: a Sequence (``len`` and ``[i]``, like
                ``keras.utils.Sequence``) or a generator function (see ``lamina.engine.batches``).
            batch_size: samples per optimizer step; ``None`` = the whole set at once.
            validation_data: ``(X_val, y_val)`` evaluated after each epoch (notes §1.5).
            validation_split: fraction of (X, y), taken from the end before shuffling, held
                out as validation data instead.
            shuffle: permute the sample order every epoch (notes §1.9 "Shuffling").
            verbose: 0 silent, 1 progress bar and a line per epoch, 2 a line per epoch.
            callbacks: extra :class:`~lamina.callbacks.Callback` objects.
            initial_epoch: the epoch to start counting from (when continuing training).
        Returns:
            A :class:`~lamina.callbacks.History` with epoch-wise and step-wise statistics.
        """
        self._require_compiled("fit")
        epochs = check("", "epochs", epochs, Interval(int, 0), fix="use e.g. epochs=10")
        initial_epoch = check("", "initial_epoch", initial_epoch, Interval(int, 0))
        verbose = check("", "verbose", verbose, Interval(int, 0, 2), fix="0 silent, 1 or 2")
        validation_split = check(
            "", "validation_split", validation_split, SPLIT, fix="use e.g. validation_split=0.1"
        )
        shuffle = check("", "shuffle", shuffle, Flag())
        batch_size = check("", "batch_size", batch_size, None, Interval(int, 1), fix="use e.g. 32")
        batches: BatchSource
        if is_batch_stream(X):
            batches, validation = data.stream_batches(
                self,
                X,
                y,
                validation_data=validation_data,
                validation_split=validation_split,
                shuffle=shuffle,
                rng=self._rng,
                epochs=epochs - initial_epoch,
            )
        else:
            batches, validation = data.array_batches(
                self,
                X,
                y,
                batch_size=batch_size,
                validation_data=validation_data,
                validation_split=validation_split,
                shuffle=shuffle,
                rng=self._rng,
            )

        continuing = initial_epoch > 0 and initial_epoch == self.epochs_done
        history = self._history_for(initial_epoch)
        loop = TrainingLoop(
            self,
            self._augmented_step,
            batches,
            validation,
            self.evaluate_prepared,
            history,
            callbacks,
            verbose,
        )
        self._running = loop
        try:
            loop.run(initial_epoch, epochs, self._callback_states if continuing else [])
        finally:
            self._running = None
        self._callback_states = callbacks_module.states_of(loop.callbacks)
        return history

    def callback_states(self) -> list[CallbackState]:
        """The state of each stateful callback of the fit under way, else of the last fit
        (or of the file the model was loaded from): what ``save`` stores for resuming."""
        if self._running is not None:
            return callbacks_module.states_of(self._running.callbacks)
        return list(self._callback_states)

    def resume_from(self, states: list[CallbackState]) -> None:
        """Callback states for the next fit that continues this model (``load_model``
        calls it with the states of the file)."""
        self._callback_states = list(states)

    def _history_for(self, initial_epoch: int) -> History:
        """A new History, or — when ``initial_epoch`` continues the epochs this model has
        done (after ``load_model``, say) — the model's History, to be extended."""
        history = self.history
        if initial_epoch and history is not None and initial_epoch == self.epochs_done:
            return history
        self.history = History()
        return self.history

    def _augmented_step(self, xb: Array, yb: Array) -> tuple[Array, Array, list[Array]]:
        for augment in self.augmentation:
            xb = augment(xb, self._augment_rng)
        return self.train_step(xb, yb)

    # -- evaluate / predict ------------------------------------------------------------------
    def evaluate(
        self, X: ArrayLike, y: ArrayLike, batch_size: int | None = None
    ) -> dict[str, float]:
        """Loss (data + L1/L2 penalty) and metrics over (X, y), in inference mode (§1.10)."""
        self._require_compiled("evaluate")
        X_checked, y_checked = self.prepare_data(X, y)
        return self.evaluate_prepared(X_checked, y_checked, batch_size)

    def evaluate_prepared(
        self, X: Array, y: Array, batch_size: int | None = None
    ) -> dict[str, float]:
        """:meth:`evaluate` of data :meth:`prepare_data` has already prepared (validation
        data, once per epoch: the checks and preprocessing are not repeated)."""
        loss = self.loss
        assert loss is not None
        totals = np.zeros(1 + len(self.metrics))
        for start, y_pred in self._plan.batches(X, self._batch_size(batch_size)):
            yb = y[start : start + len(y_pred)]
            totals[0] += float(loss.forward(y_pred, yb).sum())
            for index, metric in enumerate(self.metrics, start=1):
                totals[index] += float(np.sum(metric.per_sample(y_pred, yb)))
        totals /= len(X)
        totals[0] += self.regularization_penalty()
        names = ["loss", *(metric.name for metric in self.metrics)]
        return dict(zip(names, totals.tolist(), strict=True))

    def predict(self, X: ArrayLike, batch_size: int | None = None) -> Array:
        """The network's outputs for X in inference mode: class confidences for a Softmax
        classifier, whose argmax is the predicted class (notes §1.10 "Prediction")."""
        X_checked = self.prepare_inputs(X, "X", finite=False)  # checked batch by batch below
        outputs: Array | None = None
        size = self._batch_size(batch_size)
        for start, y_pred in self._plan.batches(X_checked, size, check_finite=True):
            if outputs is None:
                outputs = np.empty((len(X_checked), *y_pred.shape[1:]), dtype=y_pred.dtype)
            outputs[start : start + len(y_pred)] = y_pred
        assert outputs is not None
        return outputs

    @staticmethod
    def _batch_size(batch_size: int | None) -> int:
        size = PREDICT_BATCH_SIZE if batch_size is None else batch_size
        return int(check("", "batch_size", size, Interval(int, 1), fix="use e.g. batch_size=256"))

    # -- input validation --------------------------------------------------------------------
    def prepare_inputs(self, X: ArrayLike, name: str = "X", *, finite: bool = True) -> Array:
        """Model inputs from raw X: checked (finite, unless ``finite=False``), preprocessed,
        cast to the model's dtype and shape-checked — what ``predict`` runs the layers on."""
        array = numeric_samples(X, name, finite=finite)
        if self.preprocessing is not None:
            self.require_fitted_preprocessing("evaluate or predict")
            array = np.asarray(self.preprocessing.transform(array))
        array = cast_samples(array, self.dtype, name)
        if self.preprocessing is not None and finite:
            check_inputs_finite(array, f"{name} after preprocessing")
        self.output_shape(array.shape[1:])
        return array

    def prepare_data(
        self, X: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("X", "y")
    ) -> tuple[Array, Array]:
        """(inputs, targets) as ``fit`` and ``evaluate`` use them: :meth:`prepare_inputs`,
        and targets checked and put in the loss's form (one-hot or labels, the dtype)."""
        X_checked = self.prepare_inputs(X, names[0])
        targets = targets_for(y, len(X_checked), names)
        n_outputs = self.output_shape(X_checked.shape[1:])[-1]
        assert self.loss is not None and n_outputs is not None
        targets = self.loss.prepare_targets(targets, n_outputs)
        if targets.ndim > 1 or not isinstance(self.loss, CategoricalCrossentropy):
            targets = targets.astype(self.dtype, copy=False)  # no float64 upcasts in the loss
        return X_checked, targets

    def require_fitted_preprocessing(self, action: str) -> None:
        """A NotCompiledError unless the preprocessing (if any) is fitted."""
        pre = self.preprocessing
        if pre is not None and not getattr(pre, "fitted", True):
            raise NotCompiledError(
                f"The model's preprocessing is not fitted yet, so it cannot {action}. Fix: "
                "call model.fit(X_train, y_train) first, or fit the pipeline on training "
                "data: model.preprocessing.fit(X_train)."
            )

    # -- saving ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, include_optimizer: bool = True) -> None:
        """Save the whole model as one ``.lamina`` file (notes §1.10 "State"):
        architecture, weights, loss, optimizer hyper-parameters and state, preprocessing,
        augmentation and training progress, written atomically. ``lamina.load_model``
        reads it back; ``fit(..., initial_epoch=model.epochs_done)`` then continues
        exactly where training stopped."""
        model_file.save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path: str | os.PathLike[str]) -> None:
        """Save parameters only, as safetensors, atomically (notes §1.10 "State")."""
        weights.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike[str], *, strict: bool = True) -> list[str]:
        """Load parameters saved by :meth:`save_weights`; see :func:`lamina.io.load_weights`."""
        return weights.load_weights(self, path, strict=strict)

    # -- description -----------------------------------------------------------------------
    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, input_shape: Shape | None = None) -> str:
        """A table of layers, output shapes and parameter counts (returned and printed)."""
        text = summary_table(self.layers, input_shape)
        print(text)
        return text

    def get_config(self) -> dict[str, Any]:
        from lamina.layers.serialization import serialize

        return {
            "layers": [serialize(layer) for layer in self.layers],
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        return f"Model({len(self.layers)} layers, {self.count_params():,} params)"


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a ``.lamina`` file written by :meth:`Model.save`: the model predicts
    bit-identically and ``fit(..., initial_epoch=model.epochs_done)`` continues exactly. Any
    problem with the file raises :class:`~lamina.errors.ModelFileError` naming it; nothing
    is unpickled or imported from it, and it costs at most about twice its size to read."""
    return model_file.load_model(path, Model)
