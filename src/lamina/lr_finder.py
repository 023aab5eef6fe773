"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", §3.3; the form fastai popularised): train for a few steps while the learning
rate grows exponentially, watch the smoothed loss, and suggest a rate (notes §1.4
"Learning Rate").

Step i of n uses ηᵢ = η_start·(η_stop/η_start)^(i/(n − 1)). The loss of each batch is
smoothed by an exponential moving average with bias correction,
s̄ᵢ = βs̄ᵢ₋₁ + (1 − β)Lᵢ, sᵢ = s̄ᵢ/(1 − βⁱ⁺¹), and the sweep stops once sᵢ > 4·minⱼ sⱼ
(or the loss is NaN/inf): past there the rate is too high to train at all.

The suggested rate is the *minimum / 10* rule: a tenth of the rate at which the smoothed
loss is lowest — the last rate at which the loss still fell fast, backed off by the
margin Smith and fastai use. The steepest descent of sᵢ against log η (``steepest``) is
reported too; on W1 it points at the very start of the fall and is noisier.

The sweep runs inside ``engine.rewind.unchanged``: the model's weights, layer state,
gradients, Generators and optimizer (slots, step count, learning rate) are left bit for
bit as they were.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Interval, check
from lamina.engine import data
from lamina.engine.rewind import unchanged
from lamina.errors import ConfigError, NotCompiledError, NumericalError, invalid

if TYPE_CHECKING:
    from lamina.model import Model

RULE = "minimum/10: a tenth of the rate where the smoothed loss is lowest"


@dataclass
class LRFinderResult:
    """A range test's curve and suggestion.

    Attributes:
        learning_rates, losses, smoothed: per step, the rate, the batch loss and the
            smoothed loss (the steps run; fewer than asked when the loss exploded).
        suggestion: the suggested learning rate, by ``rule``.
        minimum: the rate at the smoothed loss's minimum; steepest: the rate where the
            smoothed loss falls fastest against log η.
        stopped: why the sweep ended before its last step, or None.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    minimum: float
    steepest: float
    rule: str
    stopped: str | None

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The curve (``lamina.plot.lr_finder``); saves a PNG when ``path`` is given."""
        from lamina import plot

        return plot.lr_finder(self, path)

    def __str__(self) -> str:
        return (
            f"suggested learning rate {self.suggestion:.3g} ({self.rule}); smoothed loss "
            f"lowest at {self.minimum:.3g}, steepest at {self.steepest:.3g}; "
            f"{len(self.learning_rates)} steps"
            + (f", stopped: {self.stopped}" if self.stopped else "")
        )


def lr_finder(
    model: Model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    start: float = 1e-7,
    stop: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    seed: int = 0,
) -> LRFinderResult:
    """Run the learning-rate range test of ``model`` on (X, y) and suggest a rate.

    Args:
        model: a compiled model; left exactly as it was (weights and optimizer).
        X, y: training data, raw as ``fit`` takes it; a preprocessing not fitted yet is
            fitted on it, as ``fit`` would (the one change to the model).
        start, stop: the first and last learning rates of the exponential sweep.
        steps: optimizer steps of the sweep (batches, reshuffled after each pass).
        batch_size: samples per step: use the batch size you will train with.
        smoothing: β of the loss's moving average: 0.9 averages over about 10 steps.
            fastai's 0.98 averages over about 50 of 100 and moves the minimum to higher
            rates (W1: 3·10⁻² against 1.5·10⁻²).
        diverge: stop once the smoothed loss exceeds ``diverge`` × its minimum.
        seed: seeds the batch order (the model's own Generators are not drawn from).
    Returns:
        An :class:`LRFinderResult`; ``result.plot(path)`` draws its curve.
    """
    if model.loss is None or model.optimizer is None:
        raise NotCompiledError(
            "lr_finder() needs a compiled model. Fix: call model.compile(loss=..., "
            "optimizer=...) first."
        )
    start = check("lr_finder", "start", start, Interval(float, 0, closed="neither"))
    stop = check("lr_finder", "stop", stop, Interval(float, 0, closed="neither"))
    if not stop > start:
        raise ConfigError(invalid("lr_finder.stop", f"a rate above start={start}", repr(stop)))
    steps = check("lr_finder", "steps", steps, Interval(int, 2), fix="use e.g. steps=100")
    batch_size = check("lr_finder", "batch_size", batch_size, Interval(int, 1))
    smoothing = check("lr_finder", "smoothing", smoothing, Interval(float, 0, 1, closed="left"))
    diverge = check("lr_finder", "diverge", diverge, Interval(float, 1, closed="neither"))
    seed = check("lr_finder", "seed", seed, Interval(int, 0))
    batches, _ = data.array_batches(
        model,
        X,
        y,
        batch_size=batch_size,
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        rng=np.random.default_rng(seed),
    )
    rates = start * (stop / start) ** (np.arange(steps) / (steps - 1))
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = None
    with unchanged(model):
        optimizer = model.optimizer
        assert optimizer is not None  # the copy unchanged() swapped in
        optimizer.decay = 0.0  # the sweep sets the rate itself
        average, best = 0.0, math.inf
        while len(losses) < steps and stopped is None:
            for xb, yb, wb in batches:
                if len(losses) == steps:
                    break
                optimizer.learning_rate = float(rates[len(losses)])
                try:
                    _, sample_losses, _ = model.train_step(xb, yb, wb)
                except NumericalError:
                    stopped = f"the loss became NaN/inf at η = {optimizer.learning_rate:.3g}"
                    break
                loss = _mean(sample_losses, wb)
                average = smoothing * average + (1 - smoothing) * loss
                value = average / (1 - smoothing ** (len(losses) + 1))
                losses.append(loss)
                smoothed.append(value)
                best = min(best, value)
                if not math.isfinite(value) or value > diverge * best:
                    stopped = (
                        f"the smoothed loss exceeded {diverge:g} × its minimum at "
                        f"η = {optimizer.learning_rate:.3g}"
                    )
                    break
    return _result(rates[: len(losses)], np.array(losses), np.array(smoothed), stopped)


def _mean(sample_losses: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(sample_losses.mean())
    return float((sample_losses * weights).sum() / weights.sum())


def _result(
    rates: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, stopped: str | None
) -> LRFinderResult:
    if len(smoothed) < 2:
        raise NumericalError(
            "lr_finder: the loss was NaN/inf from the first steps on, so there is no curve. "
            "Fix: lower start, or check the data and the model (lamina trace)."
        )
    lowest = int(np.argmin(smoothed))
    minimum = float(rates[lowest])
    # up to the minimum: a loss falling back after it exploded is not a descent
    slope = np.gradient(smoothed, np.log(rates))[: lowest + 1]
    steepest = float(rates[int(np.argmin(slope))])
    return LRFinderResult(
        learning_rates=rates,
        losses=losses,
        smoothed=smoothed,
        suggestion=minimum / 10,
        minimum=minimum,
        steepest=steepest,
        rule=RULE,
        stopped=stopped,
    )
