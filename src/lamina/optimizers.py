"""Optimizers (notes §1.4, §3.4), each updating parameters in place.

Every optimizer applies the 1/t learning-rate decay of notes §1.4,
``ηₜ = η₀ / (1 + decay · t)``, with t the number of optimizer steps already taken, and keeps
its per-parameter state in named slots (``optimizer.slots["dense/weights"]["momentum"]``).
Every 16 steps the slots' subnormal values are set to 0 (``lamina.subnormals``: x86 CPUs
compute on them tens of times slower; no parameter changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from lamina import subnormals
from lamina._params import Interval, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, invalid

Array = np.ndarray
ParameterGroup = tuple[str, Array, Array]  # (key, θ, ∂L/∂θ)

OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")


RATE = Interval(float, 0)  # η₀ and the decay: finite, ≥ 0
FRACTION = Interval(float, 0, 1, closed="left")  # γ, d, ρ, β₁, β₂, ε
CLIP = rule(Interval(float, 0, closed="neither"), None)


class Optimizer:
    """Base class: the decay schedule, the step counter, the per-parameter slots, and
    gradient clipping (notes §2.2) shared by every optimizer.

    Args:
        learning_rate: η₀.
        decay: the 1/t decay rate (notes §1.4).
        clipnorm: if set, all gradients are scaled by c/‖g‖ when their global norm exceeds c.
        clipvalue: if set, every gradient element is clipped to [−c, c].
    """

    slot_names: tuple[str, ...] = ()  # the per-parameter state an update keeps
    nonnegative_slots: tuple[str, ...] = ()  # slots that accumulate squares: never < 0

    @checked(learning_rate=RATE, decay=RATE, clipnorm=CLIP, clipvalue=CLIP)
    def __init__(
        self,
        learning_rate: float,
        decay: float = 0.0,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.decay = decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.iterations = 0
        self.slots: dict[str, dict[str, Array]] = {}
        self._scratch: Array | None = None
        self._flat_keys: tuple[str, ...] = ()
        self._flat_slot_arrays: dict[str, Array] = {}

    @property
    def current_learning_rate(self) -> float:
        """ηₜ = η₀ / (1 + decay · t) (notes §1.4 "Learning Rate Decay")."""
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def step(
        self, parameters: Sequence[ParameterGroup], flat: tuple[Array, Array] | None = None
    ) -> None:
        """One optimizer step over every (key, θ, ∂L/∂θ); θ changes in place.

        ``flat`` is the same parameters as one contiguous (θ, ∂L/∂θ) pair, in the same
        order (each θ a view into it): then one update runs over all of them at once,
        and each parameter's slots are views into flat slot arrays.
        """
        learning_rate = self.current_learning_rate
        self.iterations += 1
        if not parameters:  # a model without trainable parameters: nothing to update
            return
        self._clip([grad for _, _, grad in parameters] if flat is None else [flat[1]])
        flush = self.iterations % subnormals.EVERY == 0  # lamina/subnormals.py
        if flat is not None:
            theta, grad = flat
            slots = self._flat_slots(parameters, theta)
            self.update(theta, grad, slots, learning_rate, self._scratch_like(theta))
            if flush:
                self._flush(slots, theta)
            return
        for key, theta, grad in parameters:
            if key not in self.slots:
                self.slots[key] = {name: np.zeros_like(theta) for name in self.slot_names}
            self.update(theta, grad, self.slots[key], learning_rate, self._scratch_like(theta))
            if flush:
                self._flush(self.slots[key], theta)

    def _flush(self, slots: dict[str, Array], theta: Array) -> None:
        """Subnormal slot values to 0 (``lamina.subnormals``: slow on x86, no effect on θ)."""
        scratch = self._scratch_like(theta)
        for array in slots.values():
            subnormals.flush(array, scratch)

    def _flat_slots(self, parameters: Sequence[ParameterGroup], theta: Array) -> dict[str, Array]:
        keys = tuple(key for key, _, _ in parameters)
        if self._flat_keys == keys:
            return self._flat_slot_arrays
        flat = {name: np.zeros_like(theta) for name in self.slot_names}
        offset = 0
        for key, view, _ in parameters:
            size = view.size
            existing = self.slots.get(key, {})
            slots = {}
            for name, array in flat.items():
                slots[name] = array[offset : offset + size].reshape(view.shape)
                if name in existing:
                    slots[name][...] = existing[name]  # keep state from per-parameter steps
            self.slots[key] = slots
            offset += size
        if offset != theta.size:
            raise ValueError(f"flat parameters hold {theta.size} values, the groups {offset}")
        self._flat_keys, self._flat_slot_arrays = keys, flat
        return flat

    def _clip(self, grads: list[Array]) -> None:
        """Gradient clipping (notes §2.2), in place, before the update:
        ``clipvalue`` limits each element to [−c, c]; ``clipnorm`` rescales all gradients
        together by c/‖g‖ when their global norm ‖g‖ = √(Σ g²) exceeds c."""
        if self.clipvalue is not None:
            for grad in grads:
                np.clip(grad, -self.clipvalue, self.clipvalue, out=grad)
        if self.clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(grad, grad)) for grad in grads))
            if norm > self.clipnorm:
                for grad in grads:
                    grad *= self.clipnorm / norm

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        """θ -= the step for gradient ``grad``; ``scratch`` is a work array shaped like θ."""
        raise NotImplementedError(f"{type(self).__name__} must define update")

    def _scratch_like(self, theta: Array) -> Array:
        # Updates write their temporaries into one reused buffer: a fresh 400 kB temporary
        # costs page faults on every step and made Adam 4× slower (benchmarks/README.md).
        buffer = self._scratch
        if buffer is None or buffer.size < theta.size or buffer.dtype != theta.dtype:
            buffer = np.empty(theta.size, dtype=theta.dtype)
            self._scratch = buffer
        return buffer[: theta.size].reshape(theta.shape)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the training state — step count, rate and slots — for :meth:`restore`."""
        return {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "slots": {
                key: {name: array.copy() for name, array in slots.items()}
                for key, slots in self.slots.items()
            },
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put a :meth:`snapshot` back, in place; a slot created since starts at zero again,
        as it was before it existed."""
        self.iterations = snapshot["iterations"]
        self.learning_rate = snapshot["learning_rate"]
        for key, slots in self.slots.items():
            saved = snapshot["slots"].get(key, {})
            for name, array in slots.items():
                array[...] = saved[name] if name in saved else 0

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "decay": self.decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        return cls(**config)


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (notes §1.4, §3.4.1, §3.4.2).

    Without momentum (γ = 0): ``θₜ = θₜ₋₁ − ηₜ ∇θ``.

    With momentum γ (``momentum``) and dampening d (``dampening``), velocity v in
    parameter units:

        vₜ = γ vₜ₋₁ + (1 − d) ηₜ ∇θ
        θₜ = θₜ₋₁ − vₜ

    d = 0 is notes §1.4's form ``vₜ = γvₜ₋₁ + η∇θ``; d = γ is §3.4.2's moving average
    ``vₜ = γvₜ₋₁ + (1 − γ)∇θ, θ −= η vₜ`` (equal for a constant η).
    """

    slot_names: tuple[str, ...] = ("momentum",)

    @checked(momentum=FRACTION, dampening=FRACTION)
    def __init__(
        self,
        learning_rate: float = 1.0,
        decay: float = 0.0,
        momentum: float = 0.0,
        dampening: float = 0.0,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(learning_rate, decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.momentum = momentum
        self.dampening = dampening
        if not self.momentum:
            self.slot_names = ()

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        if not self.momentum:
            theta -= np.multiply(grad, lr, out=scratch)
            return
        velocity = slots["momentum"]
        velocity *= self.momentum
        velocity += np.multiply(grad, (1.0 - self.dampening) * lr, out=scratch)
        theta -= velocity

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "dampening": self.dampening}


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    r"""AdaGrad (notes §1.4, §3.4.3): a per-parameter rate from the sum of squared gradients.

    vₜ = vₜ₋₁ + ∇θ²
    θₜ = θₜ₋₁ − ηₜ ∇θ / (√vₜ + ε)
    """

    slot_names = ("cache",)
    nonnegative_slots = ("cache",)

    @checked(epsilon=FRACTION)
    def __init__(
        self,
        learning_rate: float = 1.0,
        decay: float = 0.0,
        epsilon: float = 1e-7,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(learning_rate, decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.epsilon = epsilon

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        cache = slots["cache"]
        cache += np.multiply(grad, grad, out=scratch)
        _apply_scaled_step(theta, grad, cache, lr, self.epsilon, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    r"""RMSProp (notes §1.4, §3.4.5): a moving average of squared gradients.

        vₜ = ρ vₜ₋₁ + (1 − ρ) ∇θ²
        θₜ = θₜ₋₁ − ηₜ ∇θ / (√vₜ + ε)

    Defaults η = 0.001, ρ = 0.9 (notes §3.4.5; §1.4's "ρ = 0.001" is the learning rate,
    docs/formulas.md §21), ε = 1e−7.
    """

    slot_names = ("cache",)
    nonnegative_slots = ("cache",)

    @checked(rho=FRACTION, epsilon=FRACTION)
    def __init__(
        self,
        learning_rate: float = 0.001,
        decay: float = 0.0,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(learning_rate, decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.rho = rho
        self.epsilon = epsilon

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        cache = slots["cache"]
        cache *= self.rho
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - self.rho
        cache += scratch
        _apply_scaled_step(theta, grad, cache, lr, self.epsilon, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


@OPTIMIZERS.register("adadelta")
class Adadelta(Optimizer):
    r"""AdaDelta, Zeiler's rule (notes §3.4.4 with docs/formulas.md §21's correction):

        E[g²]ₜ  = ρ E[g²]ₜ₋₁ + (1 − ρ) ∇θ²
        Δθₜ     = −(√(E[Δθ²]ₜ₋₁ + ε) / √(E[g²]ₜ + ε)) ∇θ
        E[Δθ²]ₜ = ρ E[Δθ²]ₜ₋₁ + (1 − ρ) Δθₜ²
        θₜ      = θₜ₋₁ + ηₜ Δθₜ

    Zeiler's method has no learning rate: η = 1.0 (the default) is the paper's rule.
    Defaults ρ = 0.95, ε = 1e−6 (Zeiler 2012).
    """

    slot_names = ("grad_average", "delta_average")
    nonnegative_slots = ("grad_average", "delta_average")

    @checked(rho=FRACTION, epsilon=FRACTION)
    def __init__(
        self,
        learning_rate: float = 1.0,
        decay: float = 0.0,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(learning_rate, decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.rho = rho
        self.epsilon = epsilon

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        grad_average, delta_average = slots["grad_average"], slots["delta_average"]
        grad_average *= self.rho
        grad_average += (1.0 - self.rho) * (grad * grad)
        delta = -np.sqrt(delta_average + self.epsilon) / np.sqrt(grad_average + self.epsilon)
        delta *= grad
        delta_average *= self.rho
        delta_average += (1.0 - self.rho) * (delta * delta)
        theta += np.multiply(delta, lr, out=scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    r"""Adam (notes §1.4, §3.4.6): momentum plus RMSProp, with bias correction.

        mₜ = β₁ mₜ₋₁ + (1 − β₁) ∇θ
        vₜ = β₂ vₜ₋₁ + (1 − β₂) ∇θ²          (squared, as §3.4.6 says; §1.4 has a typo)
        m̂ₜ = mₜ / (1 − β₁ᵗ)      v̂ₜ = vₜ / (1 − β₂ᵗ)
        θₜ = θₜ₋₁ − ηₜ m̂ₜ / (√v̂ₜ + ε)

    t counts steps from 1. The last line is computed as the algebraically identical
    ``θ −= αₜ mₜ / (√vₜ + ε̂ₜ)`` with ``αₜ = ηₜ √(1 − β₂ᵗ)/(1 − β₁ᵗ)`` and
    ``ε̂ₜ = ε √(1 − β₂ᵗ)``: two scalars instead of two full-size divisions per step.
    Defaults η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e−7.
    """

    slot_names = ("momentum", "cache")
    nonnegative_slots = ("cache",)

    @checked(beta_1=FRACTION, beta_2=FRACTION, epsilon=FRACTION)
    def __init__(
        self,
        learning_rate: float = 0.001,
        decay: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(learning_rate, decay, clipnorm=clipnorm, clipvalue=clipvalue)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        t = self.iterations
        m, v = slots["momentum"], slots["cache"]
        m *= self.beta_1
        m += np.multiply(grad, 1.0 - self.beta_1, out=scratch)
        v *= self.beta_2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - self.beta_2
        v += scratch
        correction_2 = math.sqrt(1.0 - self.beta_2**t)
        alpha = lr * correction_2 / (1.0 - self.beta_1**t)
        denominator = np.sqrt(v, out=scratch)
        denominator += self.epsilon * correction_2
        step = np.divide(m, denominator, out=scratch)
        step *= alpha
        theta -= step

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019).

    With λ = ``weight_decay`` and the symbols of :class:`Adam`:

        mₜ = β₁ mₜ₋₁ + (1 − β₁) ∇θ
        vₜ = β₂ vₜ₋₁ + (1 − β₂) ∇θ²
        m̂ₜ = mₜ / (1 − β₁ᵗ)      v̂ₜ = vₜ / (1 − β₂ᵗ)
        θₜ = θₜ₋₁ − ηₜ (m̂ₜ / (√v̂ₜ + ε) + λ θₜ₋₁)

    computed as ``θ ← (1 − ηₜλ) θ``, then Adam's step (the same update: Adam's term does
    not depend on θ). The decay acts on θ directly instead of being added to ∇θ, so it is
    not rescaled by √v̂ₜ: an L2 penalty (``weight_l2`` on a layer) is the coupled form,
    which Adam's per-parameter scaling weakens where gradients are large.

    Warning: as in PyTorch, Keras and optax, the decay is multiplied by the learning rate
    ηₜ (1/t decay included); the paper multiplies it by a schedule factor instead and keeps
    α apart. It applies to every parameter the optimizer updates, biases too.
    Defaults η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e−7, λ = 0.01 (PyTorch's λ).
    """

    @checked(weight_decay=RATE)
    def __init__(
        self,
        learning_rate: float = 0.001,
        decay: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float = 0.01,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
    ) -> None:
        super().__init__(
            learning_rate, decay, beta_1, beta_2, epsilon, clipnorm=clipnorm, clipvalue=clipvalue
        )
        self.weight_decay = weight_decay

    def update(
        self, theta: Array, grad: Array, slots: dict[str, Array], lr: float, scratch: Array
    ) -> None:
        theta *= 1.0 - lr * self.weight_decay
        super().update(theta, grad, slots, lr, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self.weight_decay}


def _apply_scaled_step(
    theta: Array, grad: Array, cache: Array, lr: float, epsilon: float, scratch: Array
) -> None:
    """θ −= η ∇θ / (√cache + ε), the shared last line of AdaGrad and RMSProp."""
    np.sqrt(cache, out=scratch)
    scratch += epsilon
    np.divide(grad, scratch, out=scratch)
    scratch *= lr
    theta -= scratch


def get(optimizer: str | Optimizer) -> Optimizer:
    """An optimizer from a registered name (with its defaults) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise ConfigError(
            invalid("optimizer", f"an Optimizer or one of {sorted(OPTIMIZERS)}", repr(optimizer))
        )
    return cast("Callable[[], Optimizer]", OPTIMIZERS.lookup(optimizer))()
