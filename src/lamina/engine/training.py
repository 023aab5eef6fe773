"""The training loop of ``Model.fit``, and only here (notes §1.9 "Batches"): per epoch, the
batches in their (shuffled) order, per batch one training step (forward → loss → backward →
optimizer), the sample-weighted epoch statistics, validation, the callbacks' hooks, and a
diverged epoch taken back to its last finite step (``engine/rewind.py``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina import callbacks as callbacks_module
from lamina._params import Flag, Interval, check
from lamina.callbacks import Callback, CallbackState, Diagnostics, History, Logs, ProgressBar
from lamina.engine import data
from lamina.engine.batches import BatchSource
from lamina.engine.halves import epoch_threads, split_training
from lamina.engine.rewind import Rewind, finite_state
from lamina.engine.statistics import Statistics
from lamina.errors import NumericalError
from lamina.threads import blas_threads, current_blas_threads

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray
SPLIT = Interval(float, 0, 1, closed="left")
Step = Callable[[Array, Array, Array | None], tuple[Array, Array, list[Array]]]


class TrainingLoop:
    """The epochs of one ``fit``.

    Args:
        model: the model trained (its public attributes: ``metrics``, ``layers``,
            ``epochs_done``, ``stop_training``, ``regularization_penalty()``).
        step: one training step on a batch (X, y, weights or None), augmentation included,
            returning (ŷ, per-sample losses, per-sample metric components) —
            ``Model.train_step`` after the model's augmentation.
        batches: the training batches; validation: the checked validation arrays or None.
        validate: the model's loss and metrics over checked arrays (X, y, weights).
        history: the History this fit extends; callbacks: the user's callbacks.
        verbose: 0 silent, 1 progress bar and a line per epoch, 2 a line per epoch.
        threads: the BLAS threads :meth:`run` pins (``lamina.blas_threads``), or None.
    """

    def __init__(
        self,
        model: Model,
        step: Step,
        batches: BatchSource,
        validation: tuple[Array, Array, Array | None] | None,
        validate: Callable[..., dict[str, float]],
        history: History,
        callbacks: Sequence[Callback],
        verbose: int,
        threads: int | None = None,
    ) -> None:
        self.model, self.step, self.batches = model, step, batches
        self.validation, self.validate, self.history = validation, validate, history
        self.callbacks = ordered([history, *callbacks], verbose)
        self.verbose, self.threads = verbose, threads
        self.running_wanted = any(callback.running_logs for callback in self.callbacks)

    @classmethod
    def for_fit(
        cls,
        model: Model,
        step: Step,
        rng: np.random.Generator,
        history: History,
        X: Any,
        y: Any,
        *,
        epochs: int,
        batch_size: int | None,
        validation_data: Any,
        validation_split: float,
        shuffle: bool,
        verbose: int,
        callbacks: Sequence[Callback],
        sample_weight: Any,
        class_weight: Any,
        threads: int | None = None,
    ) -> TrainingLoop:
        """The loop of one ``Model.fit``: its arguments checked, its batches (shuffled by
        ``rng``) and validation data prepared (``engine/data.py``) — the preprocessing
        fitted with ``threads`` BLAS threads already, as the epochs will be."""
        verbose = check("", "verbose", verbose, Interval(int, 0, 2), fix="0 silent, 1 or 2")
        with blas_threads(threads):  # checks threads first: a bad count trains nothing
            batches, validation = data.training_data(
                model,
                X,
                y,
                batch_size=check(
                    "", "batch_size", batch_size, None, Interval(int, 1), fix="use 32"
                ),
                validation_data=validation_data,
                validation_split=check(
                    "", "validation_split", validation_split, SPLIT, fix="use e.g. 0.1"
                ),
                shuffle=check("", "shuffle", shuffle, Flag()),
                rng=rng,
                epochs=epochs,
                sample_weight=sample_weight,
                class_weight=class_weight,
            )
        validate = model.evaluate_prepared
        return cls(model, step, batches, validation, validate, history, callbacks, verbose, threads)

    def log_names(self) -> list[str]:
        """The names every epoch's logs hold."""
        names = ["loss", *(metric.name for metric in self.model.metrics)]
        if self.validation is None:
            return names
        return names + [f"val_{name}" for name in names]

    def run(self, initial_epoch: int, epochs: int, saved: Sequence[CallbackState]) -> None:
        """Train epochs ``initial_epoch`` … ``epochs − 1``; ``saved``: the callback states of
        the run this fit continues (empty for a new run), handed back after
        ``on_train_begin``. With ``threads`` BLAS threads, which ``model.blas_threads``
        records (the count the BLAS library reports inside, None without one)."""
        with blas_threads(self.threads):
            self.model.blas_threads = current_blas_threads()
            self.epochs_of(initial_epoch, epochs, saved)

    def epochs_of(self, initial_epoch: int, epochs: int, saved: Sequence[CallbackState]) -> None:
        """:meth:`run`'s epochs, callbacks included, with the threads pinned."""
        model = self.model
        model.stop_training = False
        self.history.divergence = None  # of this fit
        params = {
            "epochs": epochs,
            "initial_epoch": initial_epoch,
            "steps": self.batches.steps,
            "logs": self.log_names(),
            "verbose": self.verbose,
        }
        for callback in self.callbacks:
            callback.set_params(params)
            callback.set_model(model)
            callback.on_train_begin()
        callbacks_module.resume(self.callbacks, saved)
        per_epoch = self.batches.steps
        steps = None if per_epoch is None else per_epoch * (epochs - initial_epoch)
        with split_training(model.plan, steps=steps):  # two processes where it pays
            self._epochs(initial_epoch, epochs)
        for callback in self.callbacks:
            callback.on_train_end()

    def _epochs(self, initial_epoch: int, epochs: int) -> None:
        """The epochs of :meth:`epochs_of`, each followed by its validation and callbacks."""
        model = self.model
        for epoch in range(initial_epoch, epochs):
            if model.stop_training:  # a resumed callback state says the run had stopped
                break
            for callback in self.callbacks:
                callback.on_epoch_begin(epoch)
            try:
                # a diverging run is caught by its loss (NumericalError), not by NumPy warnings
                # (one BLAS thread a process when the steps split over two: engine/halves.py)
                with np.errstate(over="ignore", invalid="ignore"), epoch_threads(model.plan):
                    logs = self.epoch()
            except NumericalError as error:
                self.history.divergence = f"epoch {epoch + 1}, {error}"
                warnings.warn(
                    f"Training stopped at epoch {epoch + 1}, {error}",
                    RuntimeWarning,
                    stacklevel=5,  # the user's fit(...) line
                )
                break
            if self.validation is not None:
                X_val, y_val, w_val = self.validation
                scores = self.validate(X_val, y_val, sample_weight=w_val)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            model.epochs_done = epoch + 1
            for callback in self.callbacks:
                callback.on_epoch_end(epoch, logs)
            if model.stop_training:
                break

    def epoch(self) -> Logs:
        """One pass over the batches; returns the (sample-)weighted epoch statistics."""
        model = self.model
        regularized = any(layer.regularizers for layer in model.layers)
        statistics = Statistics(model.metrics)
        steps = 0
        rewind = Rewind(model, self.batches, self.step)
        for step, (xb, yb, wb) in enumerate(self.batches):
            rewind.before_step()
            try:
                _, sample_losses, scores = self.step(xb, yb, wb)
            except NumericalError:
                reason = f"step {step + 1}: the loss is NaN or inf (training diverged)"
                raise NumericalError(rewound(rewind, step, reason)) from None
            if not rewind.after_step():
                reason = f"step {step + 1} left NaN/inf values (training diverged)"
                raise NumericalError(rewound(rewind, step, reason))
            steps += 1
            penalty = model.regularization_penalty() if regularized else 0.0
            logs = statistics.add(sample_losses, scores, wb, penalty)
            running = statistics.result() if self.running_wanted else logs
            for callback in self.callbacks:
                callback.on_batch_end(step, running if callback.running_logs else logs)
            if model.stop_training:  # a callback (TerminateOnNaN) asked to stop now
                break
        if not finite_state(model):
            reason = "the epoch left NaN/inf parameters or optimizer state (training diverged)"
            raise NumericalError(rewound(rewind, steps, reason))
        return statistics.result()


def ordered(callback_list: list[Callback], verbose: int) -> list[Callback]:
    """The callbacks of a fit in the order their hooks run: those that save the model after
    the others, so the file holds every callback's state for the epoch; the progress bar
    last, then (at ``verbose ≥ 1``, unless the user passed one) ``Diagnostics``, whose
    warnings follow the epoch's line."""
    result = [c for c in callback_list if not c.saves_model]
    result += [c for c in callback_list if c.saves_model]
    if verbose:
        result.append(ProgressBar(verbose))
        if not any(isinstance(c, Diagnostics) for c in callback_list):
            result.append(Diagnostics())
    return result


def rewound(rewind: Rewind, failed: int, reason: str) -> str:
    """Take the model back to its last finite step and say so."""
    kept = rewind.back_to_finite(failed)
    where = f"after step {kept} of this epoch" if kept else "at the start of this epoch"
    return (
        f"{reason}; the model was taken back to its state {where}, the last with finite "
        "parameters and optimizer state. Fix: lower the learning rate, or add decay or "
        "clipnorm to the optimizer."
    )
