r"""The LSTM layer (notes §2.2 *Recurrent Neural Network*): its cell on the shared
machinery of :mod:`lamina.layers.recurrent_base` (weights, masks, initial states), with the
input and recurrent products of a step fused into one matmul.
"""

from __future__ import annotations

import numpy as np

from lamina import initializers
from lamina._params import checked
from lamina.layers.base import LAYERS, Array
from lamina.layers.recurrent_base import (
    RECURRENT_INIT,
    RETURN_SEQUENCES,
    SIZE,
    TRAINABLE_STATE,
    Recurrent,
    RecurrentCache,
    at_step,
    carried,
    hold,
)


@LAYERS.register("lstm")
class LSTM(Recurrent):
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers
    et al. 2000), notes §2.2; gate blocks i, f, g, o in PyTorch's order:

        [i, f, g, o] = [σ, σ, tanh, σ](x_t·W + b + h_{t−1}·U)
        c_t = f ⊙ c_{t−1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    One bias vector (PyTorch's b_ih + b_hh); the forget block starts at 1 (Keras'
    ``unit_forget_bias``), so the cell remembers from the start.

    BPTT, for t = T … 1, with δc_T = 0:

        δo = δh_t ⊙ tanh(c_t)                        δa_o = δo ⊙ o(1 − o)
        δc = δc_t + δh_t ⊙ o ⊙ (1 − tanh²(c_t))
        δa_i = δc ⊙ g ⊙ i(1 − i)     δa_f = δc ⊙ c_{t−1} ⊙ f(1 − f)     δa_g = δc ⊙ i ⊙ (1 − g²)
        δc_{t−1} = δc ⊙ f            δh_{t−1} += δa·Uᵀ
        ∂L/∂W = Σ_t x_tᵀ·δa_t    ∂L/∂U = Σ_t h_{t−1}ᵀ·δa_t    ∂L/∂b = Σ δa_t    ∂L/∂x_t = δa_t·Wᵀ

    How it is computed: one array Z (T + 1, N, F + 1 + units) holds z_t = [x_t, 1, h_{t−1}]
    for every step (h_t is written straight into z_{t+1}), so a step's pre-activations are
    ONE matmul ``z_t·[W; b; U]`` — no (T, N, 4·units) projection written before the loop and
    read back — and after BPTT ∂L/∂[W; b; U] = Zᵀ·δa is one matmul too. The columns of i, f
    and o in that stacked matrix are halved, so one tanh over all four blocks gives tanh(a_g)
    and tanh(a/2) for the others; g is copied out, and σ(a) = ½ + ½·tanh(a/2) is two passes
    over the whole contiguous block (halving is exact in floating point: the same values as
    σ computed directly, and NumPy runs a pass over a column block of rows ~3× slower).

    Args:
        n_inputs, units, return_sequences, trainable_initial_state (h0 and c0: parameters
        ``initial_state`` and ``initial_cell``), weight_init, recurrent_init: as for
        ``SimpleRNN``; ``forward(..., initial_state=(h0, c0))``.
    Shape:
        inputs (batch, time, n_inputs), ``mask`` (batch, time) -> outputs (batch, units), or
        (batch, time, units) with ``return_sequences``
    """

    gates = 4
    cell_state = True

    @checked(
        n_inputs=SIZE,
        units=SIZE,
        return_sequences=RETURN_SEQUENCES,
        trainable_initial_state=TRAINABLE_STATE,
        weight_init=initializers.WEIGHT_INIT,
        recurrent_init=RECURRENT_INIT,
    )
    def __init__(
        self,
        n_inputs: int,
        units: int,
        return_sequences: bool = False,
        *,
        trainable_initial_state: bool = False,
        weight_init: str = "glorot_uniform",
        recurrent_init: str = "orthogonal",
        name: str | None = None,
    ) -> None:
        super().__init__(
            n_inputs,
            units,
            return_sequences,
            trainable_initial_state=trainable_initial_state,
            weight_init=weight_init,
            recurrent_init=recurrent_init,
            name=name,
        )

    def _initial_biases(self, dtype: np.dtype) -> Array:
        biases = np.zeros(4 * self.units, dtype)
        biases[self.units : 2 * self.units] = 1
        return biases

    def _project(self, x: Array, dtype: np.dtype, training: bool) -> tuple[Array, Array, Array]:
        """Z = [x_t, 1, h_{t−1}] of every step (T + 1, N, F + 1 + units), the gates' buffer
        (every step's for BPTT, one step's for inference) and the states, a view into Z."""
        n, t, f = x.shape
        z = np.empty((t + 1, n, f + 1 + self.units), dtype)
        z[:t, :, :f] = x.transpose(1, 0, 2)
        z[t, :, :f] = 0  # z_T holds h_T only; its input part is never read
        z[:, :, f] = 1
        gates = np.empty((t if training else 1, n, 4 * self.units), dtype)
        return z, gates, z[:, :, f + 1 :]

    def _stacked_weights(self, dtype: np.dtype) -> Array:
        """[W; b; U] (F + 1 + units, 4·units) with the σ blocks i, f, o halved."""
        f, units = self.n_inputs, self.units
        stacked = np.empty((f + 1 + units, 4 * units), dtype)
        stacked[:f] = self.params["input_weights"]
        stacked[f] = self.params["biases"]
        stacked[f + 1 :] = self.params["recurrent_weights"]
        stacked[:, : 2 * units] *= 0.5
        stacked[:, 3 * units :] *= 0.5
        return stacked

    def _steps(
        self,
        inputs: Array,
        a: Array,
        states: Array,
        extra_states: tuple[Array, ...],
        padding: Array | None,
        training: bool,
    ) -> tuple[Array, ...]:
        units = self.units
        weights = self._stacked_weights(a.dtype)
        (cells,) = extra_states
        steps, batch = inputs.shape[0] - 1, a.shape[1]
        tanh_cells = np.empty((steps if training else 1, batch, units), a.dtype)
        product, g = np.empty((batch, units), a.dtype), np.empty((batch, units), a.dtype)
        c_old = np.empty_like(product) if padding is not None and not training else None
        for t in range(steps):
            gates = a[t] if training else a[0]
            np.matmul(inputs[t], weights, out=gates)
            np.tanh(gates, out=gates)  # tanh(a_g) and tanh(a/2) of i, f, o
            np.copyto(g, gates[:, 2 * units : 3 * units])
            gates *= 0.5  # σ(a) = ½ + ½·tanh(a/2): two passes over the contiguous whole
            gates += 0.5
            if training:
                gates[:, 2 * units : 3 * units] = g
            i, f, o = gates[:, :units], gates[:, units : 2 * units], gates[:, 3 * units :]
            pad = at_step(padding, t)
            if training:
                c_prev, c, tc = cells[t], cells[t + 1], tanh_cells[t]
                np.multiply(f, c_prev, out=c)
            else:  # one cell state, updated in place
                c_prev = c = cells[0]
                tc = tanh_cells[0]
                if c_old is not None:
                    c_prev = c_old
                    np.copyto(c_old, c)
                c *= f
            np.multiply(i, g, out=product)
            c += product
            np.tanh(c, out=tc)
            h = states[t + 1]
            np.multiply(o, tc, out=h)
            hold(c, c_prev, pad)
            hold(h, states[t], pad)
        return (cells, tanh_cells) if training else ()

    def _backward_steps(
        self, cache: RecurrentCache, dh: Array, dy_steps: Array | None
    ) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
        units, u_t = self.units, self.params["recurrent_weights"].T
        cells, tanh_cells = cache.extra
        dg = np.empty_like(cache.gates)
        dc = np.zeros_like(dh)
        buffer_h, buffer_c, dct = np.empty_like(dh), np.empty_like(dh), np.empty_like(dh)
        for t in reversed(range(dg.shape[0])):
            if dy_steps is not None:
                dh += dy_steps[t]
            keep = at_step(cache.mask, t)
            dh_new, dc_new = carried(dh, keep, buffer_h), carried(dc, keep, buffer_c)
            gates, tc, c_prev, d = cache.gates[t], tanh_cells[t], cells[t], dg[t]
            i, f = gates[:, :units], gates[:, units : 2 * units]
            g, o = gates[:, 2 * units : 3 * units], gates[:, 3 * units :]
            di, df = d[:, :units], d[:, units : 2 * units]
            dgg, do = d[:, 2 * units : 3 * units], d[:, 3 * units :]
            np.multiply(tc, tc, out=dct)
            np.subtract(1, dct, out=dct)
            dct *= o
            dct *= dh_new
            dct += dc_new  # δc = δc_t + δh o (1 − tanh² c)
            np.subtract(1, o, out=do)
            do *= o
            do *= tc
            do *= dh_new  # δa_o = δh tanh(c) o(1 − o)
            np.subtract(1, i, out=di)
            di *= i
            di *= g
            di *= dct  # δa_i = δc g i(1 − i)
            np.subtract(1, f, out=df)
            df *= f
            df *= c_prev
            df *= dct  # δa_f = δc c_prev f(1 − f)
            np.multiply(g, g, out=dgg)
            np.subtract(1, dgg, out=dgg)
            dgg *= i
            dgg *= dct  # δa_g = δc i (1 − g²)
            dct *= f
            if keep is None:
                dc, dct = dct, dc  # δc_{t−1} = δc f (swap buffers, no copy)
                np.matmul(d, u_t, out=dh)
            else:
                dc += dct
                np.matmul(d, u_t, out=buffer_h)
                dh += buffer_h
        return dg, (dh, dc), ()

    def _parameter_gradients(
        self, cache: RecurrentCache, dg: Array, extra: tuple[Array, ...], grads: dict[str, Array]
    ) -> Array:
        """∂L/∂[W; b; U] = Zᵀ·δa in one matmul, over the z_t = [x_t, 1, h_{t−1}] of the
        forward; returns δa stacked (T·N, 4·units)."""
        f, t, n = self.n_inputs, dg.shape[0], dg.shape[1]
        z = cache.inputs[:t]
        stacked = dg.reshape(t * n, -1)
        full = np.matmul(z.reshape(t * n, z.shape[2]).T, stacked)
        grads["input_weights"][...] = full[:f]
        grads["biases"][...] = full[f]
        grads["recurrent_weights"][...] = full[f + 1 :]
        return stacked
