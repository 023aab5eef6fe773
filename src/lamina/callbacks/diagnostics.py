"""What the notes teach about failing networks, measured while one trains (notes §2.2
*Dead Neurons*, *Expoding* [sic] *Gradients*, *Sigmoid*): per layer and epoch, the ReLUs that were
dead all epoch, the saturated sigmoid/tanh units, the gradient norm and the
update-to-weight ratio — and a warning naming the layer and the remedy when one fails.

What each epoch measures (``docs/formulas.md`` §25):

- **dead ReLUs**: a unit (a Dense neuron, a convolution's channel) is dead when its output
  was 0 for every sample of every batch of the epoch: since aᵤ ≥ 0, the running sum
  sᵤ = Σ over the epoch's samples (and positions) of aᵤ stays 0. One matrix-vector product
  per ReLU step and batch, through the execution plan's observers.
- **saturation** of a hidden sigmoid or tanh: the fraction of its outputs with
  |a − c|/h > 0.98 (c, h: the centre and half-range, ½ and ½ for sigmoid, 0 and 1 for
  tanh), where σ′ is below 4 % of its peak (notes §2.2 *Sigmoid*: "gradients close to
  zero"); measured on the sampled batches.
- **gradient norm** ‖∇θ‖ of each layer's parameters (after clipping, as the optimizer
  used it) and the **relative gradient** ‖∇θ‖/‖θ‖;
- **update-to-weight ratio** ‖Δθ‖/‖θ‖ of one optimizer step (healthy runs: about 10⁻³).

The three last are sampled every ``every`` batches (20), at each epoch's first and at each
of the fit's first 10 (where a too-high learning rate blows up), so that they cost a copy
of θ every ``every`` steps, not every step: all of it, 2–3 % of a W1 epoch
(``benchmarks/diagnostics.py``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from lamina._params import Flag, Interval, checked
from lamina.callbacks.base import Callback, Logs
from lamina.engine.plan import InPlaceActivation
from lamina.layers.activations import Activation, ReLU, Sigmoid, Tanh
from lamina.layers.base import Layer

Array = np.ndarray

#: The first batches of a fit, all sampled: where a too-high learning rate blows up.
WARMUP = 10
#: Saturated: |a − c|/h above this, where σ′ < 4 % of its peak.
SATURATED = 0.98
#: (centre, half-range) of each saturating activation's outputs.
_RANGES: dict[type, tuple[float, float]] = {Sigmoid: (0.5, 0.5), Tanh: (0.0, 1.0)}

DEAD_FIX = (
    "Fix: initialise with He or Glorot (weight_init='he_normal' or 'glorot_uniform') and "
    "zero biases, lower the learning rate, or use LeakyReLU (notes §2.2 Dead Neurons)."
)
VANISHING_FIX = (
    "Fix: use ReLU instead of sigmoid/tanh in hidden layers, Glorot or He initialisation, "
    "fewer layers or BatchNormalization (notes §2.2 Dead Neurons, Glorot)."
)
EXPLODING_FIX = (
    "Fix: lower the learning rate, clip the gradients (optimizer clipnorm=1.0), or use "
    "Glorot or He initialisation (notes §2.2, exploding gradients)."
)
SATURATION_FIX = (
    "Fix: scale the inputs (standard_scaler), use Glorot initialisation or ReLU in hidden "
    "layers (notes §2.2 Activation Function, Sigmoid)."
)


class DiagnosticsWarning(UserWarning):
    """A layer failing the way notes §2.2 describes (dead, vanishing, exploding,
    saturated), seen by :class:`Diagnostics`."""


class Diagnostics(Callback):
    r"""Per-layer health of a training run (notes §2.2), on by default in ``fit`` at
    ``verbose ≥ 1``; pass your own instance to change its thresholds (the default one is
    then not added), ``warn=False`` to only measure.

    After each epoch, :attr:`report` (and ``history.diagnostics``) gets one entry
    ``{"epoch": e, "layers": {name: {...}}, "warnings": [...]}``: per ReLU step
    ``dead_fraction``, per sigmoid/tanh step ``saturated_fraction``, per layer with
    parameters ``gradient_norm`` (mean of the samples), ``max_gradient_norm``,
    ``weight_norm``, ``relative_gradient`` ‖∇θ‖/‖θ‖ and ``update_ratio`` ‖Δθ‖/‖θ‖ (means).

    A :class:`DiagnosticsWarning` (once per layer and kind in a fit) names the layer, what
    was seen and the remedy when, over an epoch:

    - **dead**: ≥ ``dead`` of a ReLU step's units were dead all epoch (healthy W1/W2: < 5 %);
    - **vanishing**: a layer's relative gradient is below ``vanishing`` × the last
      layer's (healthy W1/W2: ≥ 0.1 ×; a 10-layer sigmoid stack: 10⁻⁵ ×);
    - **exploding**: a gradient norm is NaN/inf, or the median of the epoch's sampled
      update ratios exceeds ``exploding`` (a typical step moves θ by that fraction of its
      norm; healthy Adam 1e-3: < 0.02; one large early step, as SGD's η = 1 takes on
      small initial weights, is not an explosion);
    - **saturated**: ≥ ``saturated`` of a hidden sigmoid/tanh step's outputs are
      saturated. The output layer's activation is not judged: a confident classifier
      saturates it on purpose.

    Args:
        every: sample the gradient and update norms every ``every`` batches.
        dead, saturated: fractions in (0, 1]; vanishing: a ratio; exploding: a ratio.
        warn: issue warnings (False: only the report).
    """

    @checked(
        every=Interval(int, 1),
        dead=Interval(float, 0, 1, closed="right"),
        vanishing=Interval(float, 0, closed="neither"),
        exploding=Interval(float, 0, closed="neither"),
        saturated=Interval(float, 0, 1, closed="right"),
        warn=Flag(),
    )
    def __init__(
        self,
        every: int = 20,
        dead: float = 0.5,
        vanishing: float = 1e-3,
        exploding: float = 0.5,
        saturated: float = 0.5,
        warn: bool = True,
    ) -> None:
        super().__init__()
        self.every, self.dead, self.vanishing = every, dead, vanishing
        self.exploding, self.saturated, self.warn = exploding, saturated, warn
        self.report: list[dict[str, Any]] = []
        self._warned: set[tuple[str, str]] = set()
        self._relu: dict[str, Array | None] = {}  # per ReLU step: Σ of each unit's outputs
        self._ones = np.ones(0)
        self._saturation: dict[str, tuple[float, float, str, list[int]]] = {}
        self._sampling = True
        self._previous: list[Array] | None = None
        self._buffers: list[Array] = []
        self._norms: dict[str, dict[str, list[float]]] = {}
        self._batches = 0
        self._fit_batches = 0

    # -- hooks -----------------------------------------------------------------------------
    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._warned = set()
        self._fit_batches = 0
        plan = self.model.plan
        last = len(plan.steps) - 1
        self._relu, self._saturation = {}, {}
        for index, (name, step) in enumerate(zip(plan.step_names, plan.steps, strict=True)):
            layer = _activation_of(step)
            if type(layer) is ReLU:
                self._relu[name] = None
            elif type(layer) in _RANGES and index < last:
                kind = type(layer).__name__.lower()
                self._saturation[name] = (*_RANGES[type(layer)], kind, [0, 0])
        if self._relu or self._saturation:
            plan.observers.append(self._observe)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._relu = dict.fromkeys(self._relu)
        for *_, counts in self._saturation.values():
            counts[:] = [0, 0]
        self._norms = {}
        self._batches = 0
        self._sampling = True
        self._previous = self._copy_parameters()

    def on_batch_end(self, step: int, logs: Logs) -> None:
        self._batches += 1
        if self._previous is not None:
            self._measure_step(self._previous)
            self._previous = None
        self._fit_batches += 1
        # every batch at the start of a fit, where a too-high learning rate blows up
        self._sampling = self._fit_batches < WARMUP or (step + 1) % self.every == 0
        if self._sampling:  # θ before the next step, whose update is measured
            self._previous = self._copy_parameters()

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._close_epoch(epoch)

    def on_train_end(self, logs: Logs | None = None) -> None:
        plan = self.model.plan
        if self._observe in plan.observers:
            plan.observers.remove(self._observe)
        history = self.model.history
        if history is not None and history.divergence and self._batches:
            self._close_epoch(self.model.epochs_done)  # the epoch that diverged

    # -- measuring -------------------------------------------------------------------------
    def _observe(self, name: str, layer: Layer, outputs: Array) -> None:
        """After each step of a training forward: the running sum of each ReLU unit,
        the saturated count of each sigmoid/tanh (on sampled batches)."""
        if name in self._relu:
            # ReLU outputs are ≥ 0, so a unit's sum over the batch is 0 exactly when every
            # output was 0: one matrix-vector product (BLAS), faster than a max or an any
            per_unit = outputs.reshape(-1, outputs.shape[-1])
            ones = self._ones
            if len(ones) != len(per_unit) or ones.dtype != per_unit.dtype:
                ones = self._ones = np.ones(len(per_unit), dtype=per_unit.dtype)
            total = ones @ per_unit
            running = self._relu[name]
            if running is None:
                self._relu[name] = total
            else:
                running += total
        elif self._sampling and name in self._saturation:
            centre, half, _, counts = self._saturation[name]
            counts[0] += int(np.count_nonzero(np.abs(outputs - centre) > SATURATED * half))
            counts[1] += outputs.size

    def _copy_parameters(self) -> list[Array]:
        """θ copied into buffers kept for the fit: a fresh 400 kB array would cost page
        faults every time (docs/conventions.md, "Performance choices")."""
        parameters = self.model.parameters()
        buffers = self._buffers
        if [b.shape for b in buffers] != [theta.shape for _, theta, _ in parameters]:
            buffers = self._buffers = [np.empty_like(theta) for _, theta, _ in parameters]
        for (_, theta, _), buffer in zip(parameters, buffers, strict=True):
            np.copyto(buffer, theta)
        return buffers

    def _measure_step(self, previous: list[Array]) -> None:
        """Per layer: ‖∇θ‖, ‖θ‖ and ‖Δθ‖ of the step just taken (θ before it: ``previous``)."""
        sums: dict[str, list[float]] = {}
        for (key, theta, grad), before in zip(self.model.parameters(), previous, strict=True):
            layer = key.rsplit("/", 1)[0]
            delta = np.subtract(theta, before, out=before)
            totals = sums.setdefault(layer, [0.0, 0.0, 0.0])
            totals[0] += float(np.vdot(grad, grad))
            totals[1] += float(np.vdot(theta, theta))
            totals[2] += float(np.vdot(delta, delta))
        for layer, (g2, w2, d2) in sums.items():
            norms = self._norms.setdefault(layer, {"gradient": [], "weight": [], "update": []})
            norms["gradient"].append(math.sqrt(g2))
            norms["weight"].append(math.sqrt(w2))
            norms["update"].append(math.sqrt(d2))

    # -- judging ---------------------------------------------------------------------------
    def _close_epoch(self, epoch: int) -> None:
        layers: dict[str, dict[str, float]] = {}
        found: list[tuple[str, str, str]] = []  # (layer, kind, message)
        for name, running in self._relu.items():
            if running is None:
                continue
            fraction = float(np.mean(running <= 0))
            layers.setdefault(name, {})["dead_fraction"] = fraction
            if fraction >= self.dead:
                found.append(
                    (
                        name,
                        "dead",
                        f"{fraction:.0%} of {_owner(name)}'s ReLUs were dead all epoch "
                        f"(output 0 for every sample). {DEAD_FIX}",
                    )
                )
        for name, (_, _, kind, (saturated, total)) in self._saturation.items():
            if total:
                fraction = saturated / total
                layers.setdefault(name, {})["saturated_fraction"] = fraction
                if fraction >= self.saturated:
                    found.append(
                        (
                            name,
                            "saturated",
                            f"{fraction:.0%} of {_owner(name)}'s {kind} outputs were "
                            f"saturated (σ′ < 4 % of its peak). {SATURATION_FIX}",
                        )
                    )
        dead = {_owner(name) for name, kind, _ in found if kind == "dead"}
        found += self._judge_gradients(layers, dead)
        messages = [message for _, _, message in found]
        entry = {"epoch": epoch, "layers": layers, "warnings": messages}
        self.report.append(entry)
        history = self.model.history
        if history is not None:
            history.diagnostics.append(entry)
        for layer, kind, message in found:
            if self.warn and (layer, kind) not in self._warned:
                self._warned.add((layer, kind))
                warnings.warn(f"epoch {epoch + 1}: {message}", DiagnosticsWarning, stacklevel=2)
        self._batches = 0

    def _judge_gradients(
        self, layers: dict[str, dict[str, float]], dead: set[str]
    ) -> list[tuple[str, str, str]]:
        """Exploding and vanishing gradients, each one warning listing the layers (a layer
        at or before a dead one is not said to vanish: the dead layer passes no gradient)."""
        relative: dict[str, float] = {}
        exploding: dict[str, str] = {}  # layer → what was seen
        for layer, norms in self._norms.items():
            gradient, weight, update = (
                np.array(norms[k]) for k in ("gradient", "weight", "update")
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = update / weight
                relative[layer] = float(np.mean(gradient / weight))
            stats = layers.setdefault(layer, {})
            stats.update(
                gradient_norm=float(gradient.mean()),
                max_gradient_norm=float(gradient.max()),
                weight_norm=float(weight[-1]),
                relative_gradient=relative[layer],
                update_ratio=float(np.mean(ratios)),
                max_update_ratio=float(np.max(ratios)),
            )
            if not (np.isfinite(gradient).all() and np.isfinite(ratios).all()):
                exploding[layer] = f"{layer} (NaN/inf gradients)"
            elif float(np.median(ratios)) > self.exploding:  # typical, not one early step
                exploding[layer] = (
                    f"{layer} (its steps moved θ by {float(np.median(ratios)):.3g} × ‖θ‖ "
                    f"(median; up to {float(ratios.max()):.3g}), ‖∇θ‖ up to "
                    f"{float(gradient.max()):.3g})"
                )
        found = []
        if exploding:
            seen = ", ".join(exploding.values())
            found.append(
                (",".join(exploding), "exploding", f"gradients exploded in {seen}. {EXPLODING_FIX}")
            )
        if len(relative) < 2:
            return found
        order = list(relative)
        last, reference = order[-1], relative[order[-1]]
        blocked = max((order.index(name) for name in dead if name in relative), default=-1)
        vanishing = {
            layer: f"{layer} (‖∇θ‖/‖θ‖ = {value:.2g}, {value / reference:.2g} × the last layer's)"
            for index, (layer, value) in enumerate(relative.items())
            if index > blocked
            and layer != last
            and math.isfinite(reference)
            and reference > 0
            and value < self.vanishing * reference
        }
        if vanishing:
            seen = ", ".join(vanishing.values())
            found.append(
                (
                    ",".join(vanishing),
                    "vanishing",
                    f"gradients vanished in {seen}; the last layer, {last}: "
                    f"‖∇θ‖/‖θ‖ = {reference:.2g}. {VANISHING_FIX}",
                )
            )
        return found

    def get_config(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "dead": self.dead,
            "vanishing": self.vanishing,
            "exploding": self.exploding,
            "saturated": self.saturated,
            "warn": self.warn,
        }


def _activation_of(step: Any) -> Activation | None:
    """The activation a plan step runs (an activation shortcut's, or the layer itself)."""
    if isinstance(step, InPlaceActivation):
        return step.activation
    return step if isinstance(step, Activation) else None


def _owner(step_name: str) -> str:
    """``"dense_1/relu"`` → ``"dense_1"``: the layer an activation shortcut belongs to."""
    return step_name.split("/", 1)[0]
