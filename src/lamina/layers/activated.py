"""Layers with parameters followed by an optional activation: the ``activation="relu"``
shortcut of Dense and Conv2D (notes §1.2), and how a model runs them (``engine/plan.py``)."""

from __future__ import annotations

from typing import Any

from lamina._params import checked
from lamina.layers import activations
from lamina.layers.base import Array, Layer


class ActivatedLayer(Layer):
    """A layer with parameters followed by an optional activation (``activation="relu"``).

    ``forward`` = activation(``linear_forward``); ``backward`` runs the activation's
    backward, then ``backward_linear``. A model whose loss fuses with the activation
    (Softmax + categorical cross-entropy, notes §1.3) calls ``backward_linear`` directly.
    """

    @checked(activation=activations.ACTIVATION)
    def __init__(self, activation: str | Layer | None, *, name: str | None) -> None:
        super().__init__(name=name)
        self.activation = activations.get(activation)  # type: ignore[arg-type]

    def forward(self, inputs: Array, *, training: bool = False) -> Array:
        z = self.linear_forward(inputs, training=training)
        if self.activation is None:
            return z
        return self.activation.forward_inplace(z, training=training)

    def backward(self, dvalues: Array) -> Array | None:
        if self.activation is not None:
            dvalues = self.activation.backward(dvalues)
        return self.backward_linear(dvalues)

    def linear_forward(self, inputs: Array, *, training: bool = False) -> Array:
        """z, the pre-activations; ``training`` says whether backward will follow (a layer
        may keep what backward needs only then)."""
        raise NotImplementedError(f"{type(self).__name__} must define linear_forward")

    def backward_linear(self, dz: Array) -> Array | None:
        """∂L/∂inputs from ∂L/∂z (z before the activation); fills ``grads`` incl. L1/L2."""
        raise NotImplementedError(f"{type(self).__name__} must define backward_linear")

    def regularization_config(self) -> dict[str, float]:
        """The constructor's ``weight_l1 … bias_l2``, read back from ``regularizers``."""
        config = {}
        for key, prefix in (("weights", "weight"), ("biases", "bias")):
            reg = self.regularizers.get(key)
            config[f"{prefix}_l1"] = reg.l1 if reg else 0.0
            config[f"{prefix}_l2"] = reg.l2 if reg else 0.0
        return config

    def activation_config(self) -> str | dict[str, Any] | None:
        """The activation's registered name, or its full spec when it has non-default args."""
        act = self.activation
        if act is None:
            return None
        name = activations.name_of(act)
        if act.get_config() == type(act)().get_config():
            return name
        return {"class": name, "config": act.get_config()}


def with_activation_built(config: dict[str, Any]) -> dict[str, Any]:
    """A config whose ``activation`` spec dict (non-default arguments) is built into a layer."""
    spec = config.get("activation")
    if isinstance(spec, dict):
        from lamina.layers.serialization import deserialize

        return {**config, "activation": deserialize(spec)}
    return config
