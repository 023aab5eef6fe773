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
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from lamina import augmentation as augmentation_module
from lamina import callbacks as callbacks_module
from lamina import losses as losses_module
from lamina import metrics as metrics_module
from lamina import optimizers as optimizers_module
from lamina._params import Flag, FloatType, Interval, check
from lamina.callbacks import Callback, CallbackState, History
from lamina.engine import inputs, sampling, sequences
from lamina.engine import weights as weighting
from lamina.engine.arena import ParameterArena
from lamina.engine.plan import ExecutionPlan
from lamina.engine.randomness import Generators
from lamina.engine.sequences import rows
from lamina.engine.statistics import Statistics
from lamina.engine.training import TrainingLoop
from lamina.errors import NotCompiledError, NumericalError
from lamina.layers import serialization, stack
from lamina.layers.base import Layer, Shape
from lamina.losses import CategoricalCrossentropy, Loss
from lamina.metrics import Metric
from lamina.optimizers import Optimizer
from lamina.saving import model_file, weights

Array = np.ndarray

PREDICT_BATCH_SIZE = 1024

Augmentation = Callable[[Array, np.random.Generator], Array]


class Model:
    r"""A feed-forward stack of layers (notes §1.1, §3.2): ``ŷ = σ_L(…σ₁(X·W₁ + b₁)…)``.

    Args:
        layers: the layers in order, sizes explicit (``Dense(784, 128)``, the notes' form);
            a size that does not fit the layer before is an error naming both layers.
        input_shape: the per-sample input shape, e.g. ``(28, 28, 1)``: fills in input sizes
            left out (``Dense(units=128)``) from the shapes, drawn as explicit ones would be.
        seed: seeds every random draw — initial parameters, per-epoch shuffling, dropout —
            from ``numpy.random.SeedSequence(seed)``: the same seed, data and BLAS thread
            count give bit-identical weights. ``None`` keeps the layers' parameters as
            constructed and draws fresh entropy for shuffling and dropout.
        dtype: ``"float32"`` (fast, the default) or ``"float64"`` (gradient checks).
        preprocessing: a transformer (``lamina.preprocessing.Pipeline([...])``, or any
            object with ``fit``/``transform``) that ``fit`` fits on the training portion
            only — never on validation or test data — and that ``fit``, ``evaluate`` and
            ``predict`` apply to their inputs (notes §1.5, §1.9). Fitted once, on the first
            ``fit``; a pipeline fitted beforehand is used as it is.
        augmentation: a callable ``(images, rng) -> images`` (``lamina.augmentation``), or a
            list of them, applied to every training batch in ``fit`` with a Generator seeded
            from ``seed``; never at evaluation or prediction (notes §1.5).
        target_preprocessing: for a regression, an invertible transformer
            (``StandardScaler()``) fitted on the training targets: the model learns the
            scaled targets, ``predict`` returns them in the data's units, and the metrics
            compare them there (``engine/inputs.py``). Saved with the model.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        seed: int | None = None,
        dtype: DTypeLike = "float32",
        *,
        input_shape: Shape | None = None,
        preprocessing: Any = None,
        augmentation: Augmentation | Sequence[Augmentation] | None = None,
        target_preprocessing: Any = None,
    ) -> None:
        seed = check("", "seed", seed, None, Interval(int, 0), fix="use e.g. seed=0")
        self.dtype: np.dtype = check("", "dtype", dtype, FloatType(), fix="use dtype='float32'")
        self.layers = stack.check_layers(layers)
        self.input_shape = stack.check_input_shape(input_shape)
        self.seed = seed
        self.preprocessing = preprocessing
        inputs.check_target_preprocessing(target_preprocessing, None)
        self.target_preprocessing = target_preprocessing
        self.augmentation = augmentation_module.as_list(augmentation)
        stack.name_layers(self.layers)
        self._generators = Generators(seed, self.layers)  # before build: its draws are seeded
        stack.build_layers(self.layers, self.input_shape)  # a size mismatch names both layers
        for layer in self.layers:
            layer.astype(self.dtype)
        self.layers[0].input_grad = False  # nothing consumes ∂L/∂X of the data
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.metrics: list[Metric] = []
        self.history: History | None = None
        self.epochs_done = 0  # completed epochs, saved with the model for resuming
        self.blas_threads: int | None = None  # BLAS threads of the last fit, saved too
        # JSON-able facts saved with the model: class names, the raw input shape, the data
        self.metadata: dict[str, Any] = {}
        self.stop_training = False
        self._plan = ExecutionPlan(self.layers, loss_takes_softmax=False)
        self._arena: ParameterArena | None = None
        self._running: TrainingLoop | None = None  # the fit under way
        self._callback_states: list[CallbackState] = []  # of the last fit, or of the file

    @property
    def random_state(self) -> dict[str, Any]:
        """The model's Generators' states, ``"shuffle"`` (the epochs' order) and ``"augment"``,
        as JSON-able dicts; assigning puts them back (layers' ``rng`` hold the rest)."""
        return self._generators.state

    @random_state.setter
    def random_state(self, state: dict[str, Any]) -> None:
        self._generators.state = state

    def output_shape(self, input_shape: Shape) -> Shape:
        """The per-sample output shape for a per-sample ``input_shape``; a ShapeError names
        the first layer that does not fit."""
        return stack.propagate_shape(self.layers, input_shape) or ()

    # -- compile -----------------------------------------------------------------------
    def compile(
        self,
        loss: str | Loss,
        optimizer: str | Optimizer = "adam",
        metrics: Sequence[str | Metric] | str | None = "auto",
    ) -> Model:
        """Choose the loss, optimizer and metrics. ``metrics="auto"`` picks what fits the
        loss: accuracy for a classification loss, MAE for a regression loss (the notes'
        regression accuracy stays available as ``"accuracy"``). With a Softmax output and
        categorical cross-entropy, backward uses the fused ∂L/∂z = (ŷ − y)/N (notes §1.3)."""
        self.loss = losses_module.get(loss)
        inputs.check_target_preprocessing(self.target_preprocessing, self.loss)
        self.optimizer = optimizers_module.get(optimizer)
        if metrics == "auto":
            self.metrics = metrics_module.defaults_for(self.loss)
        else:
            chosen = [metrics] if isinstance(metrics, str) else list(metrics or ())
            self.metrics = [metrics_module.get(m, self.loss) for m in chosen]
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
        """Run a batch through every layer (notes §1.2), as the execution plan orders it.

        ``inputs`` go to the first layer as they are: no preprocessing, no dtype cast, no
        checks, and the outputs stay in the units the model learns in (no inverse target
        scaling). For raw data use :meth:`predict`, or :meth:`prepare_inputs` first."""
        return self._plan.forward(inputs, training=training)

    def backward(self, y_pred: Array, y_true: Array, sample_weight: Array | None = None) -> None:
        """Backpropagate the loss of (ŷ, y) through every layer, filling ``grads`` (§1.3).

        With a Softmax output and categorical cross-entropy the plan starts from the
        fused ∂L/∂z = (ŷ − y)/N instead of going through the Softmax (notes §1.3). With
        ``sample_weight`` the loss is the weighted mean Σ wᵢLᵢ / Σ wᵢ, so each row of
        ∂L/∂ŷ is scaled by wᵢ·N/Σ w (``engine/weights.py``)."""
        loss = self.loss
        assert loss is not None
        outputs, (y_pred, y_true, steps) = y_pred, rows(y_pred, y_true, self._plan.output_mask)
        if self._plan.fused_softmax:
            dvalues = loss.backward_through_softmax(y_pred, y_true)  # type: ignore[attr-defined]
        else:
            dvalues = loss.backward(y_pred, y_true)
        if steps is not None:  # a sequence output: every step a row (engine/sequences.py)
            sample_weight = sequences.row_weights(sample_weight, steps)
        if sample_weight is not None:
            scale = weighting.row_scale(sample_weight).astype(dvalues.dtype)
            dvalues = dvalues * scale.reshape(-1, *([1] * (dvalues.ndim - 1)))
        self._plan.backward(dvalues.reshape(outputs.shape))

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

    def train_step(
        self, x: Array, y: Array, sample_weight: Array | None = None
    ) -> tuple[Array, Array, list[Array]]:
        """One optimizer step on a batch; returns (ŷ, per-sample losses, per-sample metric
        components). ``sample_weight`` (one weight ≥ 0 per row) weighs the loss; a batch
        whose weights are all 0 changes nothing.

        Raises NumericalError, before touching any parameter, when the loss is not finite.
        """
        loss, optimizer = self._require_compiled("train_step")
        arena = self._parameter_arena()
        outputs = self.forward(x, training=True)
        y_pred, y_rows, steps = rows(outputs, y, self._plan.output_mask)
        sample_losses = sequences.reduce(loss.forward(y_pred, y_rows), steps)
        if not math.isfinite(float(sample_losses.sum())):
            raise NumericalError(
                "the loss is NaN/inf (training diverged); the parameters were left as they were "
                "before this batch. Fix: lower the learning rate or add decay."
            )
        scores = inputs.metric_scores(self, y_pred, y_rows, steps)
        if sample_weight is not None and not sample_weight.sum() > 0:
            return outputs, sample_losses, scores
        self.backward(outputs, y, sample_weight)
        arena.collect_gradients()
        optimizer.step(arena.groups, flat=(arena.values, arena.grads))
        return outputs, sample_losses, scores

    # -- fit -----------------------------------------------------------------------------
    def fit(
        self,
        X: ArrayLike | Any,
        y: ArrayLike | None = None,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_data: tuple[ArrayLike, ...] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        verbose: int = 1,
        callbacks: Sequence[Callback] = (),
        initial_epoch: int = 0,
        sample_weight: ArrayLike | None = None,
        class_weight: str | dict[Any, float] | None = None,
        threads: int | None = None,
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
            verbose: 0 silent, 1 a bar (stderr) and a line per epoch (stdout), 2 the lines.
            callbacks: extra :class:`~lamina.callbacks.Callback` objects.
            initial_epoch: the epoch to start counting from (when continuing training).
            sample_weight: a weight ≥ 0 per sample of X: the loss, its gradient and the
                statistics are weighted means Σ wᵢLᵢ / Σ wᵢ (an integer weight counts a
                sample that many times). Split with ``validation_split``; a stream passes
                ``(X_batch, y_batch, weights)`` instead, ``validation_data`` a triple.
            class_weight: ``"balanced"`` (class c weighs n / (k · n_c), as scikit-learn
                computes it) or ``{class: weight}``; multiplies ``sample_weight``, on the
                training samples only.
            threads: BLAS threads for the whole fit (``lamina.blas_threads``; None: as set
                now). Bits depend on the count; the model records it beside its seed.
        Returns:
            A :class:`~lamina.callbacks.History` with epoch-wise and step-wise statistics.
        """
        self._require_compiled("fit")
        epochs = check("", "epochs", epochs, Interval(int, 0), fix="use e.g. epochs=10")
        initial_epoch = check("", "initial_epoch", initial_epoch, Interval(int, 0))
        continuing = initial_epoch > 0 and initial_epoch == self.epochs_done
        if not (continuing and self.history is not None):  # a continued fit extends it
            self.history = History()
        history = self.history
        loop = TrainingLoop.for_fit(
            self,
            self._augmented_step,
            self._generators.shuffle,
            history,
            X,
            y,
            epochs=epochs - initial_epoch,
            batch_size=batch_size,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=shuffle,
            verbose=verbose,
            callbacks=callbacks,
            sample_weight=sample_weight,
            class_weight=class_weight,
            threads=threads,
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

    def _augmented_step(
        self, xb: Array, yb: Array, wb: Array | None
    ) -> tuple[Array, Array, list[Array]]:
        for augment in self.augmentation:
            xb = augment(xb, self._generators.augment)
        return self.train_step(xb, yb, wb)

    # -- evaluate / predict ------------------------------------------------------------------
    def evaluate(
        self,
        X: ArrayLike,
        y: ArrayLike,
        batch_size: int | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, float]:
        """Loss (data + L1/L2 penalty) and metrics over (X, y), in inference mode (§1.10);
        with ``sample_weight``, weighted means (``engine/weights.py``)."""
        self._require_compiled("evaluate")
        X_checked, y_checked = self.prepare_data(X, y)
        weights = weighting.check_sample_weight(sample_weight, len(X_checked))
        return self.evaluate_prepared(X_checked, y_checked, batch_size, weights)

    def evaluate_prepared(
        self,
        X: Array,
        y: Array,
        batch_size: int | None = None,
        sample_weight: Array | None = None,
    ) -> dict[str, float]:
        """:meth:`evaluate` of data :meth:`prepare_data` has already prepared (validation
        data, once per epoch: the checks and preprocessing are not repeated)."""
        loss = self.loss
        assert loss is not None
        statistics = Statistics(self.metrics)
        for start, outputs in self._plan.batches(X, self._batch_size(batch_size)):
            batch = slice(start, start + len(outputs))
            y_pred, yb, steps = rows(outputs, y[batch], self._plan.output_mask)
            scores = inputs.metric_scores(self, y_pred, yb, steps)
            weights = None if sample_weight is None else sample_weight[batch]
            losses = sequences.reduce(loss.forward(y_pred, yb), steps)
            statistics.add(losses, scores, weights)
        return statistics.result(penalty=self.regularization_penalty())

    @overload
    def predict(
        self,
        X: ArrayLike,
        batch_size: int | None = None,
        *,
        samples: int = 1,
        return_std: Literal[False] = False,
        seed: int | None = 0,
    ) -> Array: ...

    @overload
    def predict(
        self,
        X: ArrayLike,
        batch_size: int | None = None,
        *,
        samples: int = 1,
        return_std: Literal[True],
        seed: int | None = 0,
    ) -> tuple[Array, Array]: ...

    def predict(
        self,
        X: ArrayLike,
        batch_size: int | None = None,
        *,
        samples: int = 1,
        return_std: bool = False,
        seed: int | None = 0,
    ) -> Array | tuple[Array, Array]:
        """The network's outputs for X in inference mode: class confidences for a Softmax
        classifier, whose argmax is the predicted class (notes §1.10 "Prediction").

        ``samples=S`` > 1 runs Monte-Carlo dropout: S passes with the Dropout layers on
        (masks from ``seed``), averaged. ``return_std=True`` returns ``(mean, std)``: the
        spread of the S passes, and/or σ of a GaussianNLL model's head — the prediction's
        uncertainty (notes §2.2 *Confidence*; ``engine/sampling.py``). The preprocessing
        is applied as always; the outputs are in the targets' units."""
        samples = check("", "samples", samples, Interval(int, 1))
        check("", "return_std", return_std, Flag())
        check("", "seed", seed, None, Interval(int, 0), fix="use e.g. seed=0")
        X_checked = self.prepare_inputs(X, "X", finite=False)  # checked batch by batch below
        size = self._batch_size(batch_size)

        def run() -> Array:
            batches = self._plan.batches(X_checked, size, check_finite=True)
            return inputs.original_units(self, np.concatenate([y for _, y in batches]))

        if samples == 1 and not return_std:
            return run()
        mean, std = sampling.predictive(self.layers, run, samples, seed, self.loss)
        return (mean, std) if return_std else mean

    @staticmethod
    def _batch_size(batch_size: int | None) -> int:
        size = PREDICT_BATCH_SIZE if batch_size is None else batch_size
        return int(check("", "batch_size", size, Interval(int, 1), fix="use e.g. batch_size=256"))

    # -- input validation --------------------------------------------------------------------
    def prepare_inputs(self, X: ArrayLike, name: str = "X", *, finite: bool = True) -> Array:
        """Model inputs from raw X: checked (finite, unless ``finite=False``), preprocessed,
        cast to the model's dtype and shape-checked — what ``predict`` runs the layers on."""
        return inputs.model_inputs(self, X, name, finite=finite)

    def prepare_targets(self, y: ArrayLike, X: Array, names: tuple[str, str] = ("X", "y")) -> Array:
        """Targets for prepared inputs ``X``: checked, in the loss's form (labels or one-hot,
        the dtype), scaled by ``target_preprocessing`` once it is fitted."""
        return inputs.model_targets(self, y, X, names)

    def prepare_data(
        self, X: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("X", "y")
    ) -> tuple[Array, Array]:
        """(inputs, targets) as ``fit`` and ``evaluate`` use them: :meth:`prepare_inputs`,
        then :meth:`prepare_targets`."""
        X_checked = self.prepare_inputs(X, names[0])
        return X_checked, self.prepare_targets(y, X_checked, names)

    def require_fitted_preprocessing(self, action: str) -> None:
        """A NotCompiledError unless the preprocessing (if any) is fitted."""
        if self.preprocessing is not None:
            inputs.require_fitted(self.preprocessing, action)

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
    def trace(self, X: ArrayLike, y: ArrayLike) -> Any:
        """One training step on (X, y) shown layer by layer, each value with its formula
        (a ``lamina.trace.Trace``: a dict of full arrays; ``print`` shows the table). The
        step is undone: the model is left bit for bit as it was."""
        from lamina.trace import trace

        return trace(self, X, y)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, input_shape: Shape | None = None) -> str:
        """A table of layers, output shapes and parameter counts (returned and printed)."""
        text = stack.summary_table(self.layers, input_shape or self.input_shape)
        print(text)
        return text

    def get_config(self) -> dict[str, Any]:
        layers = [serialization.serialize(layer) for layer in self.layers]
        shape = None if self.input_shape is None else list(self.input_shape)
        return {"layers": layers, "seed": self.seed, "dtype": self.dtype.name, "input_shape": shape}

    def __repr__(self) -> str:
        return f"Model({len(self.layers)} layers, {self.count_params():,} params)"
