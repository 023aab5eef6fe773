"""Run configurations in TOML, with the Python API's vocabulary.

A config names the data, the preprocessing, the layers, the loss, the optimizer, the
training settings and the callbacks::

    [data]
    dataset = "fashion_mnist"          # spiral, vertical, sine, mnist, image_folder, csv

    [[preprocessing]]
    type = "flatten"
    [[preprocessing]]
    type = "min_max_scaler"
    feature_range = [-1, 1]

    [model]
    seed = 0

    [[layers]]
    type = "dense"
    n_inputs = 784
    n_neurons = 128
    activation = "relu"

    [compile]
    loss = "categorical_crossentropy"  # or {type = "...", label_smoothing = 0.1}

    [optimizer]
    type = "adam"
    learning_rate = 0.001

    [train]
    epochs = 10
    batch_size = 128

Every table, key and value is checked when the file is loaded: an unknown key, a value of
the wrong type or out of range, or an unknown class raises :class:`ConfigFileError` naming
the file, the line, the key and the nearest valid name or the fix. Only a regular file of at
most :data:`CONFIG_LIMIT` bytes is read.

The modules: :mod:`~lamina.config.schema` (the tables, their keys, the registry behind each),
:mod:`~lamina.config.data` (the datasets), :mod:`~lamina.config.run` (reading and checking),
:mod:`~lamina.config.build` (the model and callbacks), :mod:`~lamina.config.fit` (does the
model fit its data and loss?), :mod:`~lamina.config.keys` (the
dotted keys of a search), :mod:`~lamina.config.source` (``file:line`` of errors) and
:mod:`~lamina.config.values` (the values' checks).
"""

from lamina.config.build import build_callbacks, build_model
from lamina.config.data import (
    DATA_KEYS,
    DATA_REQUIRED,
    DATASETS,
    Data,
    check_data,
    load_data,
    read_data,
)
from lamina.config.fit import check_fit
from lamina.config.keys import apply_params, set_config_value
from lamina.config.run import RunConfig, data_config, from_dict, load_config
from lamina.config.schema import COMPILE_KEYS, MODEL_KEYS, SECTIONS, TABLES, TRAIN_KEYS
from lamina.config.source import CONFIG_LIMIT, ConfigFileError, Source

__all__ = [
    "COMPILE_KEYS",
    "CONFIG_LIMIT",
    "DATASETS",
    "DATA_KEYS",
    "DATA_REQUIRED",
    "MODEL_KEYS",
    "SECTIONS",
    "TABLES",
    "TRAIN_KEYS",
    "ConfigFileError",
    "Data",
    "RunConfig",
    "Source",
    "apply_params",
    "build_callbacks",
    "build_model",
    "check_data",
    "check_fit",
    "data_config",
    "from_dict",
    "load_config",
    "load_data",
    "read_data",
    "set_config_value",
]
