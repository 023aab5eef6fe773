r"""The LSTM layer (notes §2.2 *Recurrent Neural Network*): its cell on the shared
machinery of :mod:`lamina.layers.recurrent_base` (weights, masks, initial states), with the
input and recurrent products of a step fused into one matmul and contiguous gate blocks.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.base import LAYERS, Array
from lamina.layers.recurrent_base import (
    Recurrent,
    RecurrentCache,
    at_step,
    carried,
    hold,
)

#: the gate blocks i, f, g, o (saved order) as computed: i, f, o, g, the σ blocks side by side
ORDER = [0, 1, 3, 2]


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

    How it is computed: a step's pre-activations are ONE matmul ``z_t·[W; b; U]`` over
    z_t = [x_t, 1, h_{t−1}] (h_t is written straight into z_{t+1}), and after BPTT
    ∂L/∂[W; b; U] = Zᵀ·δa is one matmul per gate block. Internally the blocks are in the
    order i, f, o, g (the saved parameters keep i, f, g, o) and the columns of i, f, o are
    halved, so one tanh over all four blocks gives tanh(a_g) and tanh(a/2) for the others,
    and σ(a) = ½ + ½·tanh(a/2) is two passes over the σ blocks as one slab (halving is
    exact in floating point). NumPy runs a pass over a column block of rows ~3× slower than
    over a contiguous array, so inference runs transposed (gates (4·units, N), every pass
    contiguous) and training keeps the gates block-major (4, T, N, units).

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

    def _initial_biases(self, dtype: np.dtype) -> Array:
        biases = np.zeros(4 * self.units, dtype)
        biases[self.units : 2 * self.units] = 1
        return biases

    def _project(self, x: Array, dtype: np.dtype, training: bool) -> tuple[Array, Array, Array]:
        """Training: Z = [x_t, 1, h_{t−1}] of every step (T + 1, N, F + 1 + units), the
        gates' buffer (4, T, N, units), block-major in the internal order i, f, o, g, and
        the states, a view into Z. Inference: x time-major (T, N, F), an empty gates'
        buffer and the states (T + 1, N, units)."""
        n, t, f = x.shape
        if not training:  # the inference loop builds its own transposed Z from x
            states = np.empty((t + 1, n, self.units), dtype)
            return x.transpose(1, 0, 2), np.empty((4, 0, n, self.units), dtype), states
        z = np.empty((t + 1, n, f + 1 + self.units), dtype)
        z[:t, :, :f] = x.transpose(1, 0, 2)
        z[t, :, :f] = 0  # z_T holds h_T only; its input part is never read
        z[:, :, f] = 1
        return z, np.empty((4, t, n, self.units), dtype), z[:, :, f + 1 :]

    def _stacked_weights(self, dtype: np.dtype) -> Array:
        """[W; b; U] (F + 1 + units, 4·units), gate blocks in the internal order i, f, o, g,
        the σ blocks i, f, o halved."""
        f, units = self.n_inputs, self.units
        stacked = np.empty((f + 1 + units, 4 * units), dtype)
        stacked[:f] = self.params["input_weights"]
        stacked[f] = self.params["biases"]
        stacked[f + 1 :] = self.params["recurrent_weights"]
        stacked = stacked.reshape(-1, 4, units)[:, ORDER].reshape(-1, 4 * units)
        stacked[:, : 3 * units] *= 0.5
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
        weights = self._stacked_weights(a.dtype)
        (cells,) = extra_states
        if not training:
            weights_t = np.ascontiguousarray(weights.T)
            self._inference_loop(inputs, weights_t, states, cells[0], padding)
            return ()
        tanh_cells = np.empty((inputs.shape[0] - 1, inputs.shape[1], self.units), a.dtype)
        self._step_loop(inputs, weights, a, states, cells, tanh_cells, padding)
        return (cells, tanh_cells)

    def _inference_loop(
        self, x: Array, weights_t: Array, states: Array, c0: Array, padding: Array | None
    ) -> None:
        """The inference loop, transposed: z_t = [x_t; 1; h_{t−1}] (F + 1 +
        units, N) from x (T, N, F) and gates [i; f; o; g] (4·units, N) =
        weights_t·z_t, so every pass is contiguous and the σ blocks are one slab;
        ``states[0]`` holds h0 (N, units), c0 the cell state; writes the last state
        (every state with ``return_sequences``) into ``states``."""
        f, units, (steps, batch) = self.n_inputs, self.units, x.shape[:2]
        z = np.empty((steps + 1, f + 1 + units, batch), states.dtype)
        z[:steps, :f] = x.transpose(0, 2, 1)  # z_T holds h_T only
        z[:, f] = 1
        z[0, f + 1 :] = states[0].T
        c = np.ascontiguousarray(c0.T)
        gates = np.empty((4 * units, batch), z.dtype)
        sigmoids, tc, product = gates[: 3 * units], np.empty_like(c), np.empty_like(c)
        i, fg, o, g = (gates[k * units : (k + 1) * units] for k in range(4))
        pad = None if padding is None else padding.transpose(0, 2, 1)  # (T, 1, N)
        c_old = None if pad is None else np.empty_like(c)
        for t in range(steps):
            np.matmul(weights_t, z[t], out=gates)
            np.tanh(gates, out=gates)  # tanh(a_g) and tanh(a/2) of i, f, o
            sigmoids *= 0.5  # σ(a) = ½ + ½·tanh(a/2)
            sigmoids += 0.5
            if c_old is not None:
                np.copyto(c_old, c)
            c *= fg
            np.multiply(i, g, out=product)
            c += product
            np.tanh(c, out=tc)
            h = z[t + 1, f + 1 :]
            np.multiply(o, tc, out=h)
            if pad is not None and c_old is not None:
                hold(c, c_old, pad[t])
                hold(h, z[t, f + 1 :], pad[t])
        if self.return_sequences:
            states[1:] = z[1:, f + 1 :].transpose(0, 2, 1)
        else:
            states[steps] = z[steps, f + 1 :].T

    def _step_loop(
        self,
        inputs: Array,
        weights: Array,
        gates: Array,
        states: Array,
        cells: Array,
        tanh_cells: Array,
        padding: Array | None,
    ) -> None:
        """The training loop: each step's gates go block-major into ``gates`` (4, T, N,
        units), so every pass but the first (tanh out of the matmul's (N, 4·units)) is over
        whole blocks."""
        units, steps, batch = self.units, inputs.shape[0] - 1, inputs.shape[1]
        product = np.empty((batch, units), inputs.dtype)
        scratch = np.empty((batch, 4 * units), inputs.dtype)
        for t in range(steps):
            np.matmul(inputs[t], weights, out=scratch)
            step = gates[:, t]
            np.tanh(scratch.reshape(batch, 4, units), out=step.transpose(1, 0, 2))
            sigmoids = step[:3]
            sigmoids *= 0.5  # σ(a) = ½ + ½·tanh(a/2)
            sigmoids += 0.5
            i, f, o, g = step
            c_prev, c, tc = cells[t], cells[t + 1], tanh_cells[t]
            np.multiply(f, c_prev, out=c)
            np.multiply(i, g, out=product)
            c += product
            np.tanh(c, out=tc)
            h = states[t + 1]
            np.multiply(o, tc, out=h)
            pad = at_step(padding, t)
            hold(c, c_prev, pad)
            hold(h, states[t], pad)

    def _backward_steps(
        self, cache: RecurrentCache, dh: Array, dy_steps: Array | None
    ) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
        units = self.units
        u = self.params["recurrent_weights"].reshape(units, 4, units)[:, ORDER]
        u_t = u.reshape(units, 4 * units).T
        dg = np.empty_like(cache.gates)
        dc = np.zeros_like(dh)

        cells, tanh_cells = cache.extra
        self._backward_loop(
            u_t, cache.gates, cells, tanh_cells, cache.mask, dy_steps, dg, dh, dc
        )  # fmt: skip
        return dg, (dh, dc), ()

    def _backward_loop(
        self,
        u_t: Array,
        all_gates: Array,
        cells: Array,
        tanh_cells: Array,
        mask: Array | None,
        dy_steps: Array | None,
        dg: Array,
        dh: Array,
        dc_out: Array,
    ) -> None:
        """BPTT: fills ``dg`` (block-major like the gates), ``dh`` and ``dc_out``."""
        units, dc, batch = self.units, dc_out, dh.shape[0]
        buffer_h, buffer_c, dct = np.empty_like(dh), np.empty_like(dh), np.empty_like(dh)
        rows = np.empty((batch, 4 * units), dh.dtype)  # δa of a step, (N, 4·units)
        for t in reversed(range(dg.shape[1])):
            if dy_steps is not None:
                dh += dy_steps[t]
            keep = at_step(mask, t)
            dh_new, dc_new = carried(dh, keep, buffer_h), carried(dc, keep, buffer_c)
            (i, f, o, g), (di, df, do, dgg) = all_gates[:, t], dg[:, t]
            tc, c_prev = tanh_cells[t], cells[t]
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
            np.copyto(rows.reshape(batch, 4, units), dg[:, t].transpose(1, 0, 2))
            if keep is None:
                dc, dct = dct, dc  # δc_{t−1} = δc f (swap buffers, no copy)
                np.matmul(rows, u_t, out=dh)
            else:
                dc += dct
                np.matmul(rows, u_t, out=buffer_h)
                dh += buffer_h
        if dc is not dc_out:
            np.copyto(dc_out, dc)

    def _parameter_gradients(
        self, cache: RecurrentCache, dg: Array, extra: tuple[Array, ...], grads: dict[str, Array]
    ) -> Array:
        """∂L/∂[W; b; U] = Zᵀ·δa, one matmul per gate block, over the z_t = [x_t, 1,
        h_{t−1}] of the forward; returns δa (4, T, N, units), block-major."""
        f, units, t, n = self.n_inputs, self.units, dg.shape[1], dg.shape[2]
        z = cache.inputs[:t]
        z = z.reshape(t * n, z.shape[2]).T
        block = np.empty((z.shape[0], units), dg.dtype)
        for k, saved in enumerate(ORDER):
            np.matmul(z, dg[k].reshape(t * n, units), out=block)
            columns = slice(saved * units, (saved + 1) * units)
            grads["input_weights"][:, columns] = block[:f]
            grads["biases"][columns] = block[f]
            grads["recurrent_weights"][:, columns] = block[f + 1 :]
        return dg

    def _input_gradient(self, dg: Array) -> Array:
        """∂L/∂X (T·N, F) = Σ over the gate blocks of δa_k·W_kᵀ."""
        units, w = self.units, self.params["input_weights"]
        dx = None
        for k, saved in enumerate(ORDER):
            part = np.matmul(dg[k].reshape(-1, units), w[:, saved * units : (saved + 1) * units].T)
            dx = part if dx is None else np.add(dx, part, out=dx)
        assert dx is not None
        return dx
