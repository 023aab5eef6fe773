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
from lamina.layers.bidirectional import Bidirectional
from lamina.layers.conv import Conv2D
from lamina.layers.conv1d import Conv1D
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.embedding import Embedding
from lamina.layers.global_pooling import (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
)
from lamina.layers.lstm import LSTM
from lamina.layers.masking import Masking
from lamina.layers.normalization import BatchNorm
from lamina.layers.pooling import AvgPool2D, MaxPool2D
from lamina.layers.pooling1d import AvgPool1D, MaxPool1D
from lamina.layers.recurrent import GRU, SimpleRNN
from lamina.layers.reshape import Flatten
from lamina.layers.serialization import deserialize, serialize

__all__ = [
    "GELU",
    "GRU",
    "LAYERS",
    "LSTM",
    "ActivatedLayer",
    "Activation",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Bidirectional",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Layer",
    "LeakyReLU",
    "Linear",
    "Masking",
    "MaxPool1D",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "SimpleRNN",
    "Softmax",
    "Tanh",
    "deserialize",
    "serialize",
]
