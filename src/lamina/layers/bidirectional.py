r"""Bidirectional wrapper: a recurrent layer run forward in time and a copy run backward,
their outputs merged (Schuster & Paliwal 1997; notes §2.2 *Recurrent Neural Network*)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lamina._params import Instance, Options, checked, rule
from lamina.errors import BackwardError, invalid
from lamina.layers.base import LAYERS, Array, Layer, Shape
from lamina.layers.recurrent_base import Recurrent, check_mask, check_sequences
from lamina.layers.serialization import deserialize, serialize

MERGE_MODES = ("concat", "sum", "mul", "ave")
DIRECTIONS = ("forward", "backward")


@LAYERS.register("bidirectional")
class Bidirectional(Layer):
    r"""Runs ``layer`` over the sequence forward and a copy of it over the reversed sequence:

        y→_t = layer→(x_1 … x_t)          y←_t = layer←(x_T … x_t)
        y = [y→, y←] (concat), y→ + y← (sum), y→ ⊙ y← (mul), ½(y→ + y←) (ave)

    Without ``return_sequences`` the outputs are the last states: y→ after x_T, y← after
    x_1. With a mask the backward copy runs over the reversed steps with the reversed mask;
    since masked steps carry the state (and take no input), that is the same as reversing
    each sequence within its real steps — post-padded sequences of different lengths
    included: the backward copy first crosses the padding with h0 unchanged, then reads the
    real steps from the last to the first.

    Backward: δ splits by the merge (concat: the two halves; sum: δ to both; ave: ½δ to
    both; mul: δ ⊙ y← and δ ⊙ y→), the backward copy's δ is reversed in time, and
    ∂L/∂X = ∂L/∂X→ + reverse(∂L/∂X←).

    Both copies are built from ``layer``'s config with fresh parameters (as Keras does);
    ``layer`` itself is a template. Their parameters appear here as ``"forward/<key>"`` and
    ``"backward/<key>"`` (a model file's ``"<name>/forward/input_weights"``).

    Args:
        layer: a SimpleRNN, GRU or LSTM.
        merge_mode: ``"concat"`` (the default), ``"sum"``, ``"mul"`` or ``"ave"``.
    Shape:
        inputs (batch, time, n_inputs), ``mask`` (batch, time) -> outputs (batch, units)
        (``concat``: 2·units), or (batch, time, …) with the layer's ``return_sequences``
    """

    uses_mask = True
    elementwise_bound = True  # predict spreads batches over threads (engine/spread.py)

    @checked(
        layer=rule(
            Instance(Recurrent, "a recurrent layer (SimpleRNN, GRU or LSTM)"),
            fix="wrap a recurrent layer, e.g. Bidirectional(GRU(8, 32))",
        ),
        merge_mode=rule(Options(*MERGE_MODES), fix="use merge_mode='concat'"),
    )
    def __init__(
        self, layer: Recurrent, merge_mode: str = "concat", *, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self.merge_mode = merge_mode
        config = layer.get_config()
        self.layers: dict[str, Recurrent] = {
            direction: type(layer).from_config(config) for direction in DIRECTIONS
        }
        self._outputs: tuple[Array, Array] | None = None  # (y→, y←) of a training forward
        self.reset_parameters()

    @property
    def forward_layer(self) -> Recurrent:
        return self.layers["forward"]

    @property
    def backward_layer(self) -> Recurrent:
        return self.layers["backward"]

    def reset_parameters(self) -> None:
        self.params = {}
        for direction, inner in self.layers.items():
            inner.rng = self.rng
            inner.reset_parameters()
            for key, array in inner.params.items():
                self.params[f"{direction}/{key}"] = array

    def _sync(self, *, with_grads: bool) -> None:
        """Point the copies at this layer's arrays: a model replaces ``params`` (and
        ``grads``) with views into its flat buffers, and a loader with the file's arrays."""
        grads = self.gradient_buffers() if with_grads else None
        for direction, inner in self.layers.items():
            for key in inner.params:
                inner.params[key] = self.params[f"{direction}/{key}"]
            if grads is not None:
                inner.grads = {key: grads[f"{direction}/{key}"] for key in inner.params}
            inner.input_grad = self.input_grad

    # -- shapes and masks ----------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.forward_layer.built

    def build(self, input_shape: Shape) -> None:
        """Give both copies the size of the inputs' last axis, then draw their parameters
        from this layer's Generator, as :meth:`reset_parameters` does for a given size."""
        if self.built:
            return
        size = self.forward_layer.inferred_from(input_shape)
        for inner in self.layers.values():
            inner.n_inputs = size
        self.reset_parameters()

    @property
    def input_shape(self) -> Shape:
        return self.forward_layer.input_shape

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self.forward_layer.output_shape(input_shape)
        if self.merge_mode != "concat":
            return shape
        return (*shape[:-1], 2 * self.forward_layer.units)

    def check_input_shape(self, input_shape: Shape, source: str) -> None:
        self.forward_layer.check_input_shape(input_shape, source)

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        return mask if self.forward_layer.return_sequences else None

    # -- forward and backward ------------------------------------------------------------
    def forward(self, inputs: Array, *, training: bool = False, mask: Array | None = None) -> Array:
        self.forward_layer.require_built()
        who = self.describe()
        x = check_sequences(who, inputs, self.forward_layer.n_inputs)
        m = check_mask(who, mask, x.shape)
        self._sync(with_grads=False)
        sequences = self.forward_layer.return_sequences
        ahead = self.forward_layer.forward(x, training=training, mask=m)
        behind = self.backward_layer.forward(
            x[:, ::-1], training=training, mask=None if m is None else m[:, ::-1]
        )
        if sequences:
            behind = behind[:, ::-1]  # step t of the reversed run is input step T − t
        self._outputs = (ahead, behind) if training else None
        if self.merge_mode == "concat":
            return np.concatenate([ahead, behind], axis=-1)
        if self.merge_mode == "sum":
            return ahead + behind
        if self.merge_mode == "mul":
            return ahead * behind
        merged = ahead + behind
        merged *= 0.5
        return merged

    def backward(self, dvalues: Array) -> Array | None:
        if self._outputs is None:
            raise BackwardError(
                invalid(
                    "training",
                    "a forward pass with training=True before Bidirectional.backward",
                    "a backward pass after forward(..., training=False), or before any forward",
                    "call forward(inputs, training=True), then backward",
                )
            )
        ahead, behind = self._outputs
        units = self.forward_layer.units
        if self.merge_mode == "concat":
            d_ahead, d_behind = dvalues[..., :units], dvalues[..., units:]
        elif self.merge_mode == "sum":
            d_ahead = d_behind = dvalues
        elif self.merge_mode == "mul":
            d_ahead, d_behind = dvalues * behind, dvalues * ahead
        else:
            d_ahead = d_behind = dvalues * 0.5
        if self.forward_layer.return_sequences:
            d_behind = d_behind[:, ::-1]
        self._sync(with_grads=True)
        dx = self.forward_layer.backward(np.ascontiguousarray(d_ahead))
        dx_behind = self.backward_layer.backward(np.ascontiguousarray(d_behind))
        if dx is None or dx_behind is None:
            return None
        dx += dx_behind[:, ::-1]
        return dx

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": serialize(self.forward_layer),
            "merge_mode": self.merge_mode,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        layer = config.get("layer")
        if isinstance(layer, dict):
            config = {**config, "layer": deserialize(layer)}
        return cls(**config)
