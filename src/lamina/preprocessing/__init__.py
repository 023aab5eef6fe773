"""Preprocessing fitted on training data only (notes §1.5 "Preprocessing", §1.9 "Data sets").

Notes §1.9's order for a training set: balance, augment, grayscale, scale, flatten,
shuffle. :func:`balance` is a function (it drops samples, so it runs on the training set
alone); grayscale, resize, scaling, flattening and one-hot encoding are transformers with
``fit``/``transform`` that a :class:`Pipeline` chains. Shuffling belongs to ``Model.fit``
and augmentation to ``lamina.augmentation``.

Every transformer is rebuilt from ``get_config()`` (its constructor's arguments, JSON-able)
plus ``get_state()`` (its learned arrays, named by attribute, for a safetensors file), so
the exact transformation fitted on the training data is saved with the model and applied to
validation, test and prediction data (notes §1.5).

Dtypes: transformers that compute return floats — float input keeps its dtype, any other
input (uint8 pixels, int) becomes float32. Statistics are computed and stored in float64.
"""

from lamina.preprocessing.balance import BALANCE_STRATEGIES, BalanceReport, balance
from lamina.preprocessing.base import TRANSFORMERS, Transformer
from lamina.preprocessing.encoding import OneHotEncoder
from lamina.preprocessing.images import Flatten, Grayscale, Resize
from lamina.preprocessing.pipeline import Pipeline, deserialize, serialize
from lamina.preprocessing.scalers import MinMaxScaler, StandardScaler

__all__ = [
    "BALANCE_STRATEGIES",
    "TRANSFORMERS",
    "BalanceReport",
    "Flatten",
    "Grayscale",
    "MinMaxScaler",
    "OneHotEncoder",
    "Pipeline",
    "Resize",
    "StandardScaler",
    "Transformer",
    "balance",
    "deserialize",
    "serialize",
]
