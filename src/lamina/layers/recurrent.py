r"""Recurrent layers: SimpleRNN and GRU (PyTorch's variant) on (batch, time, features)
sequences (notes §2.2 *Recurrent Neural Network*); LSTM is in :mod:`lamina.layers.lstm`.

What the three share — the weight layout and initialisation, masks, initial states, the
input projections of all steps in one matmul, the parameter gradients in one matmul each —
is in :mod:`lamina.layers.recurrent_base`; each class here is its cell: the recurrence of
one step and its derivative, which BPTT applies from the last step to the first. Below,
δh_t = ∂L/∂h_t in total (from the output at t with ``return_sequences``, and from step
t + 1), σ the logistic function, ⊙ the element-wise product, and a step's pre-activations
``a = x_t·W + b + h_{t−1}·U``; δa is what the step contributes to ∂W, ∂U, ∂b (stacked).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina import initializers
from lamina._params import Options, checked, rule
from lamina.layers.base import LAYERS, Array, new_tensor
from lamina.layers.recurrent_base import (
    N_INPUTS,
    RECURRENT_INIT,
    RETURN_SEQUENCES,
    TRAINABLE_STATE,
    UNITS,
    Recurrent,
    RecurrentCache,
    at_step,
    carried,
    hold,
    sigmoid_,
)

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _activate(name: str, z: Array) -> None:
    """φ(z) in place."""
    if name == "tanh":
        np.tanh(z, out=z)
    elif name == "relu":
        np.maximum(z, 0, out=z)
    elif name == "sigmoid":
        sigmoid_(z)


def _derivative(name: str, y: Array, out: Array) -> None:
    """φ'(z) from the output y = φ(z), into ``out``."""
    if name == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    elif name == "relu":
        np.greater(y, 0, out=out)
    elif name == "sigmoid":
        np.subtract(1, y, out=out)
        out *= y
    else:
        out[...] = 1


@LAYERS.register("simple_rnn")
class SimpleRNN(Recurrent):
    r"""Elman recurrent layer: ``h_t = φ(x_t·W + b + h_{t−1}·U)`` (notes §2.2 *Recurrent
    Neural Network*), φ = ``activation``.

    BPTT, for t = T … 1 (with δh_T the gradient of the last output):

        δa_t = δh_t ⊙ φ'(a_t)          φ'(a) from h_t: tanh 1 − h², sigmoid h(1 − h), relu [h > 0]
        δh_{t−1} += δa_t·Uᵀ
        ∂L/∂W = Σ_t x_tᵀ·δa_t    ∂L/∂U = Σ_t h_{t−1}ᵀ·δa_t    ∂L/∂b = Σ_t Σₙ δa_t
        ∂L/∂x_t = δa_t·Wᵀ

    Args:
        n_inputs: F, features per step. ``None``: filled in from the shapes by a
            ``Model(..., input_shape=...)`` (``lamina.layers.sizes``).
        units: size of the hidden state h; required (``SimpleRNN(units=32)``).
        activation: φ, one of ``"tanh"`` (the default, as Keras and PyTorch), ``"relu"``,
            ``"sigmoid"``, ``"linear"``.
        return_sequences: output every step's h_t (batch, time, units), not only h_T.
        trainable_initial_state: learn h0 (see the module docstring of recurrent_base).
        weight_init, recurrent_init: initializer names for W (whole, glorot_uniform) and
            each gate block of U (orthogonal).
    Shape:
        inputs (batch, time, n_inputs), ``mask`` (batch, time) -> outputs (batch, units), or
        (batch, time, units) with ``return_sequences``
    """

    gates = 1

    @checked(
        n_inputs=N_INPUTS,
        units=UNITS,
        activation=rule(Options(*ACTIVATIONS), fix="use activation='tanh'"),
        return_sequences=RETURN_SEQUENCES,
        trainable_initial_state=TRAINABLE_STATE,
        weight_init=initializers.WEIGHT_INIT,
        recurrent_init=RECURRENT_INIT,
    )
    def __init__(
        self,
        n_inputs: int | None = None,
        units: int | None = None,
        activation: str = "tanh",
        return_sequences: bool = False,
        *,
        trainable_initial_state: bool = False,
        weight_init: str = "glorot_uniform",
        recurrent_init: str = "orthogonal",
        name: str | None = None,
    ) -> None:
        self.activation = activation
        super().__init__(
            n_inputs,
            units,
            return_sequences,
            trainable_initial_state=trainable_initial_state,
            weight_init=weight_init,
            recurrent_init=recurrent_init,
            name=name,
        )

    def _steps(
        self,
        inputs: Array,
        a: Array,
        states: Array,
        extra_states: tuple[Array, ...],
        padding: Array | None,
        training: bool,
    ) -> tuple[Array, ...]:
        u = self.params["recurrent_weights"]
        for t in range(a.shape[0]):
            h = states[t + 1]
            np.matmul(states[t], u, out=h)
            h += a[t]
            _activate(self.activation, h)
            hold(h, states[t], at_step(padding, t))
        return ()

    def _backward_steps(
        self, cache: RecurrentCache, dh: Array, dy_steps: Array | None
    ) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
        u_t = self.params["recurrent_weights"].T
        dg = np.empty_like(cache.gates)
        buffer = np.empty_like(dh)
        for t in reversed(range(dg.shape[0])):
            if dy_steps is not None:
                dh += dy_steps[t]
            keep = at_step(cache.mask, t)
            dnew = carried(dh, keep, buffer)
            da = dg[t]
            _derivative(self.activation, cache.states[t + 1], da)
            da *= dnew
            if keep is None:
                np.matmul(da, u_t, out=dh)
            else:
                np.matmul(da, u_t, out=buffer)
                dh += buffer
        return dg, (dh,), ()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


@LAYERS.register("gru")
class GRU(Recurrent):
    r"""Gated recurrent unit, the PyTorch/cuDNN variant (reset gate applied *after* the
    recurrent product, two bias vectors; Cho et al. 2014), notes §2.2:

        r_t = σ(x_t·W_r + b_r + h_{t−1}·U_r + c_r)                  reset gate
        z_t = σ(x_t·W_z + b_z + h_{t−1}·U_z + c_z)                  update gate
        q_t = h_{t−1}·U_n + c_n                                      (kept for BPTT)
        n_t = tanh(x_t·W_n + b_n + r_t ⊙ q_t)                        candidate
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

    b = ``biases`` (PyTorch's b_ih), c = ``recurrent_biases`` (b_hh); blocks r, z, n in that
    order (PyTorch's). Keras' default ``reset_after=True`` GRU is the same function.
    Inference runs transposed (gates (3·units, N)), so every element-wise pass is contiguous.

    BPTT, for t = T … 1, with δa the δ of the pre-activations of r, z, n:

        δn = δh_t ⊙ (1 − z)            δa_n = δn ⊙ (1 − n²)
        δa_z = δh_t ⊙ (h_{t−1} − n) ⊙ z(1 − z)
        δa_r = δa_n ⊙ q ⊙ r(1 − r)
        δq = δa_n ⊙ r
        δh_{t−1} += δh_t ⊙ z + [δa_r, δa_z, δq]·Uᵀ
        ∂L/∂U = Σ_t h_{t−1}ᵀ·[δa_r, δa_z, δq]      ∂L/∂c = Σ [δa_r, δa_z, δq]
        ∂L/∂W = Σ_t x_tᵀ·[δa_r, δa_z, δa_n]        ∂L/∂b = Σ [δa_r, δa_z, δa_n]
        ∂L/∂x_t = [δa_r, δa_z, δa_n]·Wᵀ

    Args:
        n_inputs, units, return_sequences, trainable_initial_state, weight_init,
        recurrent_init: as for ``SimpleRNN``.
    Shape:
        inputs (batch, time, n_inputs), ``mask`` (batch, time) -> outputs (batch, units), or
        (batch, time, units) with ``return_sequences``
    """

    gates = 3

    def _extra_parameters(self, dtype: np.dtype) -> None:
        self.params["recurrent_biases"] = new_tensor((3 * self.units,), dtype, 0.0)

    def _input_biases(self) -> Array:
        # c_r, c_z add to the same sums as b_r, b_z: add them once, before the loop
        bias = self.params["biases"].copy()
        bias[: 2 * self.units] += self.params["recurrent_biases"][: 2 * self.units]
        return bias

    def _project(self, x: Array, dtype: np.dtype, training: bool) -> tuple[Array, Array, Array]:
        """Training: as for every cell. Inference: x time-major (T, N, F), no projections
        (the transposed loop makes its own) and the states (T + 1, N, units)."""
        if training:
            return super()._project(x, dtype, training)
        n, t, _ = x.shape
        states = np.empty((t + 1, n, self.units), dtype)
        return x.transpose(1, 0, 2), np.empty((0, n, 3 * self.units), dtype), states

    def _inference_loop(self, x: Array, states: Array, padding: Array | None) -> None:
        """The inference loop, transposed: gates (3·units, N), so every pass is contiguous
        and r, z are one slab; their weights and biases halved (exact), so σ(a) = ½ +
        ½·tanh(a/2) is one tanh and two passes. ``states[0]`` holds h0 (N, units); writes
        the last state (every state with ``return_sequences``) into ``states``."""
        f, units, (steps, batch) = self.n_inputs, self.units, x.shape[:2]
        dtype = states.dtype
        xt = np.empty((steps, f + 1, batch), dtype)  # [x_t; 1]
        xt[:, :f] = x.transpose(0, 2, 1)
        xt[:, f] = 1
        w = np.empty((3 * units, f + 1), dtype)  # [W; b]ᵀ, b with c_r, c_z added
        w[:, :f] = self.params["input_weights"].T
        w[:, f] = self._input_biases()
        u_t = np.array(self.params["recurrent_weights"].T, dtype)
        w[: 2 * units] *= 0.5
        u_t[: 2 * units] *= 0.5
        projections = np.matmul(w, xt)  # (T, 3·units, N)
        c_n = self.params["recurrent_biases"][2 * units :, None]
        hs = np.empty((steps + 1 if self.return_sequences else 2, units, batch), dtype)
        hs[0] = states[0].T
        recurrent = np.empty((3 * units, batch), dtype)
        rz, q = recurrent[: 2 * units], recurrent[2 * units :]
        r, z = rz[:units], rz[units:]
        pad = None if padding is None else padding.transpose(0, 2, 1)  # (T, 1, N)
        for t in range(steps):
            h_prev, h = (hs[t], hs[t + 1]) if self.return_sequences else (hs[t % 2], hs[1 - t % 2])
            np.matmul(u_t, h_prev, out=recurrent)
            rz += projections[t, : 2 * units]
            np.tanh(rz, out=rz)
            rz *= 0.5  # σ(a) = ½ + ½·tanh(a/2)
            rz += 0.5
            q += c_n
            q *= r
            n = projections[t, 2 * units :]
            n += q
            np.tanh(n, out=n)
            np.subtract(h_prev, n, out=h)  # h = n + z ⊙ (h_prev − n)
            h *= z
            h += n
            if pad is not None:
                hold(h, h_prev, pad[t])
        if self.return_sequences:
            states[1:] = hs[1:].transpose(0, 2, 1)
        else:
            states[steps] = hs[steps % 2].T

    def _steps(
        self,
        inputs: Array,
        a: Array,
        states: Array,
        extra_states: tuple[Array, ...],
        padding: Array | None,
        training: bool,
    ) -> tuple[Array, ...]:
        if not training:
            self._inference_loop(inputs, states, padding)
            return ()
        units, u = self.units, self.params["recurrent_weights"]
        c_n = self.params["recurrent_biases"][2 * units :]
        steps, batch = a.shape[0], a.shape[1]
        recurrent = np.empty((batch, 3 * units), a.dtype)
        q_all = np.empty((steps if training else 1, batch, units), a.dtype)  # BPTT's q
        product = np.empty((batch, units), a.dtype)
        rz = np.empty((batch, 2 * units), a.dtype)  # contiguous: NumPy's passes over a
        for t in range(steps):  # column block of rows run ~3× slower
            h_prev, gates, h = states[t], a[t], states[t + 1]
            np.matmul(h_prev, u, out=recurrent)
            np.add(gates[:, : 2 * units], recurrent[:, : 2 * units], out=rz)
            sigmoid_(rz)
            if training:
                gates[:, : 2 * units] = rz  # BPTT reads r, z from the gates
            r, z, n = rz[:, :units], rz[:, units:], gates[:, 2 * units :]
            q = q_all[t if training else 0]
            np.add(recurrent[:, 2 * units :], c_n, out=q)
            np.multiply(r, q, out=product)
            n += product
            np.tanh(n, out=n)
            np.subtract(h_prev, n, out=h)  # h = n + z ⊙ (h_prev − n)
            h *= z
            h += n
            hold(h, h_prev, at_step(padding, t))
        return (q_all,) if training else ()

    def _backward_steps(
        self, cache: RecurrentCache, dh: Array, dy_steps: Array | None
    ) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
        units, u_t = self.units, self.params["recurrent_weights"].T
        (q_all,) = cache.extra
        dg = np.empty_like(cache.gates)  # [δa_r, δa_z, δq] per step
        dan_all = np.empty_like(q_all)  # δa_n per step
        buffer, tmp = np.empty_like(dh), np.empty_like(dh)
        for t in reversed(range(dg.shape[0])):
            if dy_steps is not None:
                dh += dy_steps[t]
            keep = at_step(cache.mask, t)
            dnew = carried(dh, keep, buffer)
            gates, h_prev, q, dan = cache.gates[t], cache.states[t], q_all[t], dan_all[t]
            r, z, n = gates[:, :units], gates[:, units : 2 * units], gates[:, 2 * units :]
            dar, daz, dq = dg[t][:, :units], dg[t][:, units : 2 * units], dg[t][:, 2 * units :]
            np.multiply(n, n, out=dan)
            np.subtract(1, dan, out=dan)
            np.subtract(1, z, out=tmp)
            tmp *= dnew
            dan *= tmp  # δa_n = δh (1 − z)(1 − n²)
            np.subtract(h_prev, n, out=daz)
            daz *= dnew
            np.subtract(1, z, out=tmp)
            tmp *= z
            daz *= tmp  # δa_z = δh (h_prev − n) z(1 − z)
            np.multiply(dan, q, out=dar)
            np.subtract(1, r, out=tmp)
            tmp *= r
            dar *= tmp  # δa_r = δa_n q r(1 − r)
            np.multiply(dan, r, out=dq)
            np.multiply(dnew, z, out=tmp)
            if keep is None:
                np.matmul(dg[t], u_t, out=dh)
            else:
                np.matmul(dg[t], u_t, out=buffer)
                dh += buffer
            dh += tmp
        return dg, (dh,), (dan_all,)

    def _input_side(self, dg: Array, extra: tuple[Array, ...], grads: dict[str, Array]) -> Array:
        units = self.units
        np.sum(dg.reshape(-1, 3 * units), axis=0, out=grads["recurrent_biases"])
        dg[:, :, 2 * units :] = extra[0]  # δa_n replaces δq: the input side of n
        return dg
