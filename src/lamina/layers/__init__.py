"""Layers: the Layer protocol, dense, convolutional, pooling, normalization, dropout and
reshaping layers, and activations."""

from lamina.layers.activated import ActivatedLayer
from lamina.layers.activations import (
    GELU,
    Activation,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from lamina.layers.base import LAYERS, Layer
from lamina.layers.conv import Conv2D
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.normalization import BatchNorm
from lamina.layers.pooling import AvgPool2D, MaxPool2D
from lamina.layers.reshape import Flatten
from lamina.layers.serialization import deserialize, serialize

__all__ = [
    "GELU",
    "LAYERS",
    "ActivatedLayer",
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "LeakyReLU",
    "Linear",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "deserialize",
    "serialize",
]
