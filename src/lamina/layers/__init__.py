"""Layers: the Layer protocol, dense and dropout layers, and activations (DESIGN §3)."""

from lamina.layers.activations import (
    Activation,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from lamina.layers.base import LAYERS, Layer
from lamina.layers.dense import ActivatedLayer, Dense
from lamina.layers.dropout import Dropout
from lamina.layers.serialization import deserialize, serialize

__all__ = [
    "LAYERS",
    "ActivatedLayer",
    "Activation",
    "Dense",
    "Dropout",
    "Layer",
    "LeakyReLU",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "deserialize",
    "serialize",
]
