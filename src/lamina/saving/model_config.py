"""``config.json`` of a model file: everything but the tensors, as plain JSON (notes §1.10
"State").

It holds the architecture (each layer's ``get_config``), the loss, the optimizer's
hyper-parameters and step count, the metrics, the preprocessing and augmentation, the
metadata, and the training progress (epochs done, the state of every random Generator, the
JSON part of each callback's state), so that a loaded model predicts as the saved one and
``fit(..., initial_epoch=model.epochs_done)`` continues exactly where training stopped.

Reading validates every field and raises :class:`ModelFileError` naming it. The JSON is
bounded before it is parsed (its inflated size by the archive, its number of arrays and
objects here), so parsing costs at most a few times :data:`~lamina.saving.archive.CONFIG_LIMIT`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.errors import LaminaError, ModelFileError

if TYPE_CHECKING:
    from lamina.model import Model

FORMAT = "lamina-model"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 kept the History in config.json
TENSOR_DTYPES = ("float32", "float64")
MAX_LAYERS = 4096
MAX_JSON_CONTAINERS = 200_000  # arrays and objects in config.json
MAX_CLASS_NAMES = 100_000
MAX_NAME_LENGTH = 1000
MAX_INPUT_VALUES = 1 << 24  # values per sample that metadata's input_shape may declare


# --------------------------------------------------------------------------- writing
def describe(model: Model, include_optimizer: bool) -> dict[str, Any]:
    """The config.json of ``model`` (JSON-able; its tensors are saved beside it)."""
    from lamina import losses, metrics, optimizers

    compiled = None
    if model.loss is not None and model.optimizer is not None:
        compiled = {
            "loss": _spec(losses.LOSSES, model.loss, "loss"),
            "optimizer": {
                **_spec(optimizers.OPTIMIZERS, model.optimizer, "optimizer"),
                "iterations": model.optimizer.iterations if include_optimizer else 0,
            },
            "metrics": [
                {
                    **_spec(metrics.METRICS, metric, "metric"),
                    "allowance": getattr(metric, "allowance", None),
                }
                for metric in model.metrics
            ],
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lamina_version": _lamina_version(),
        "model": {
            "layers": [_layer_spec(layer) for layer in model.layers],
            "trainable": [layer.trainable for layer in model.layers],
            "seed": model.seed,
            "dtype": model.dtype.name,
            "input_shape": None if model.input_shape is None else list(model.input_shape),
        },
        "compile": compiled,
        "metadata": model.metadata,
        "preprocessing": _transformer_spec(model.preprocessing, "preprocessing"),
        "target_preprocessing": _transformer_spec(
            model.target_preprocessing, "target preprocessing"
        ),
        "augmentation": [_augmentation_spec(step) for step in model.augmentation],
        "training": {
            "epochs_done": model.epochs_done,
            "rng": {
                "shuffle": model.random_state["shuffle"],
                "augment": model.random_state["augment"],
                "layers": [layer.rng.bit_generator.state for layer in model.layers],
            },
            "blas_threads": model.blas_threads,  # of the last fit, as the seed is of the first
        },
    }


def _spec(registry: Any, obj: Any, kind: str) -> dict[str, Any]:
    """``{"class": registered name, "config": ...}``; a class registered under no name
    (a subclass of a registered one included) is an error naming it and the decorator."""
    for name, cls in registry.items():
        if type(obj) is cls:
            return {"class": name, "config": obj.get_config()}
    cls = type(obj)
    raise ModelFileError(
        f"Cannot save the model: its {kind} {cls.__qualname__} (from {cls.__module__}) is "
        "not registered, and a model file names only registered classes (loading builds "
        "nothing else). Fix: decorate the class with @lamina.register (or "
        '@lamina.register("a_name")) where it is defined, and import that module before '
        "lamina.load_model; or save the weights alone with Model.save_weights."
    )


def _layer_spec(layer: Any) -> dict[str, Any]:
    from lamina.layers.base import LAYERS, Layer

    activation = getattr(layer, "activation", None)
    if isinstance(activation, Layer):  # a Dense(activation=...) saves its activation too
        _spec(LAYERS, activation, "activation")
    return _spec(LAYERS, layer, "layer")


def _transformer_spec(pre: Any, what: str) -> dict[str, Any] | None:
    if pre is None:
        return None
    from lamina import preprocessing

    try:
        return {"spec": preprocessing.serialize(pre), "fitted": bool(getattr(pre, "fitted", False))}
    except LaminaError as error:
        raise ModelFileError(f"Cannot save the model's {what}: {error}") from None


def _augmentation_spec(step: Any) -> dict[str, Any]:
    from lamina import augmentation

    try:
        return augmentation.serialize(step)
    except LaminaError as error:
        raise ModelFileError(f"Cannot save the model's augmentation: {error}") from None


def _lamina_version() -> str:
    from lamina._version import __version__

    return __version__


# --------------------------------------------------------------------------- reading
def parse(data: bytes) -> dict[str, Any]:
    """config.json as a dict, after bounding its structure and checking its format."""
    if data.count(b"[") + data.count(b"{") > MAX_JSON_CONTAINERS:
        raise ModelFileError(
            f"config.json holds more arrays and objects than any model needs "
            f"(> {MAX_JSON_CONTAINERS:,})."
        )

    def refuse(constant: str) -> Any:
        raise ValueError(f"non-finite number {constant}")

    try:
        config = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except RecursionError:
        raise ModelFileError("config.json is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(f"config.json is not valid JSON ({error}).") from None
    if not isinstance(config, dict):
        raise ModelFileError("config.json must hold an object.")
    if config.get("format") != FORMAT:
        raise ModelFileError("it is not a lamina model (config.json format field).")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"it has model format version {config.get('format_version')!r}; this "
            f"lamina ({_lamina_version()}) reads versions {READABLE_VERSIONS}. Fix: load it "
            "with the lamina version that wrote it."
        )
    return config


def build_layers(specs: Any) -> list[Any]:
    """The layers of a config, holding placeholders for their tensors (no memory spent:
    the shapes they imply are checked against the file before anything is allocated)."""
    from lamina.layers.base import placeholder_tensors
    from lamina.layers.serialization import deserialize

    specs = checked(specs, list, "model.layers")
    if not 1 <= len(specs) <= MAX_LAYERS:
        raise ModelFileError(f"the model has {len(specs)} layers (1 to {MAX_LAYERS}).")
    layers = []
    with placeholder_tensors():
        for index, spec in enumerate(specs):
            config = checked(spec, dict, f"model.layers[{index}]").get("config")
            name = config.get("name") if isinstance(config, dict) else None
            if not isinstance(name, str):
                raise ModelFileError(f"model.layers[{index}] has no name.")
            layers.append(deserialize(spec))
    return layers


def input_shape_of(spec: dict[str, Any]) -> tuple[int | None, ...] | None:
    """The ``input_shape`` of the ``model`` field (files before it have none)."""
    shape = spec.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list)
        and 1 <= len(shape) <= 4
        and all(n is None or (type(n) is int and 1 <= n <= MAX_INPUT_VALUES) for n in shape)
    ):
        raise ModelFileError(
            f"model input_shape must be 1 to 4 sizes (positive ints or null), not "
            f"{str(shape)[:80]}."
        )
    return None if shape is None else tuple(shape)


def model_arguments(spec: dict[str, Any]) -> tuple[int | None, str, list[bool]]:
    """(seed, dtype, trainable flags) of the ``model`` field."""
    seed = spec.get("seed")
    if seed is not None and not (type(seed) is int and 0 <= seed < 2**128):
        raise ModelFileError(f"seed must be an int in [0, 2**128) or null, not {seed!r}.")
    dtype = field(spec, "dtype", str)
    if dtype not in TENSOR_DTYPES:
        raise ModelFileError(f"dtype {dtype!r} is not float32 or float64.")
    trainable = field(spec, "trainable", list)
    if not all(isinstance(flag, bool) for flag in trainable):
        raise ModelFileError("'trainable' must be one bool per layer.")
    return seed, dtype, trainable


def compile_from(model: Model, compiled: Any) -> None:
    """Compile ``model`` with the loss, optimizer (step count included) and metrics saved."""
    from lamina import losses, metrics, optimizers

    compiled = checked(compiled, dict, "compile")
    loss = from_spec(losses.LOSSES, field(compiled, "loss", dict))
    optimizer_spec = field(compiled, "optimizer", dict)
    optimizer = from_spec(optimizers.OPTIMIZERS, optimizer_spec)
    metric_list = []
    for entry in field(compiled, "metrics", list):
        entry = checked(entry, dict, "metric")
        metric = from_spec(metrics.METRICS, entry)
        allowance = entry.get("allowance")
        if allowance is not None:
            if not (type(allowance) in (int, float) and math.isfinite(allowance)):
                raise ModelFileError(f"bad metric allowance {allowance!r}.")
            metric.allowance = float(allowance)
        metric_list.append(metric)
    model.compile(loss=loss, optimizer=optimizer, metrics=metric_list)
    iterations = optimizer_spec.get("iterations", 0)
    if not (type(iterations) is int and 0 <= iterations < 2**62):
        raise ModelFileError(f"optimizer iterations {iterations!r}.")
    optimizer.iterations = iterations


def preprocessing_from(entry: Any) -> tuple[Any, bool]:
    """(the transformer, whether it was fitted) of a ``preprocessing`` or
    ``target_preprocessing`` field."""
    if entry is None:
        return None, False
    from lamina import preprocessing

    entry = checked(entry, dict, "preprocessing")
    fitted = entry.get("fitted", False)
    if not isinstance(fitted, bool):
        raise ModelFileError("config.json: preprocessing.fitted must be true or false.")
    return preprocessing.deserialize(field(entry, "spec", dict)), fitted


def augmentation_from(entry: Any) -> list[Any]:
    if not entry:
        return []
    from lamina import augmentation

    return [
        augmentation.deserialize(checked(spec, dict, "augmentation"))
        for spec in checked(entry, list, "augmentation")
    ]


def restore_training(model: Model, training: dict[str, Any]) -> None:
    """Epochs done, the BLAS threads of the last fit and every Generator's state, as they
    were when the model was saved."""
    epochs_done = training.get("epochs_done", 0)
    if not (type(epochs_done) is int and 0 <= epochs_done < 2**62):
        raise ModelFileError(f"epochs_done {epochs_done!r}.")
    model.epochs_done = epochs_done
    threads = training.get("blas_threads")
    if threads is not None and not (type(threads) is int and 1 <= threads <= 1 << 16):
        raise ModelFileError(f"blas_threads {str(threads)[:40]} (a positive int or null).")
    model.blas_threads = threads
    rng = field(training, "rng", dict)
    states = field(rng, "layers", list)
    if len(states) != len(model.layers):
        raise ModelFileError("one Generator state per layer expected.")
    for layer, state in zip(model.layers, states, strict=True):
        _set_state(layer.rng, state)
    try:
        model.random_state = {"shuffle": rng.get("shuffle"), "augment": rng.get("augment")}
    except LaminaError as error:
        raise ModelFileError(str(error)) from None


def _set_state(generator: np.random.Generator, state: Any) -> None:
    state = checked(state, dict, "Generator state")
    if state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise ModelFileError(f"a Generator state is not {type(generator.bit_generator).__name__}.")
    generator.bit_generator.state = state


def check_metadata(metadata: Any, model: Model) -> dict[str, Any]:
    """The metadata dict, with the entries the CLI relies on checked: ``class_names`` (one
    per output), ``feature_names`` (strings), ``input_shape`` (positive ints, bounded),
    ``data`` (a dict naming a dataset) and ``config`` (a string)."""
    metadata = checked(metadata, dict, "metadata")
    for key in ("class_names", "feature_names"):
        names = metadata.get(key)
        if names is None:
            continue
        if not (
            isinstance(names, list)
            and len(names) <= MAX_CLASS_NAMES
            and all(isinstance(n, str) and len(n) <= MAX_NAME_LENGTH for n in names)
        ):
            raise ModelFileError(
                f"metadata {key} must be a list of at most {MAX_CLASS_NAMES:,} "
                f"strings of at most {MAX_NAME_LENGTH} characters."
            )
    outputs = _output_size(model)
    names = metadata.get("class_names")
    allowed = {outputs, 2} if outputs == 1 else {outputs}
    if names is not None and outputs is not None and len(names) not in allowed:
        raise ModelFileError(
            f"metadata class_names has {len(names)} names for the model's {outputs} outputs."
        )
    shape = metadata.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list)
        and 1 <= len(shape) <= 4
        and all(type(n) is int and n >= 1 for n in shape)
        and math.prod(shape) <= MAX_INPUT_VALUES
    ):
        raise ModelFileError(
            f"metadata input_shape must be 1 to 4 positive ints holding at most "
            f"{MAX_INPUT_VALUES:,} values, not {str(shape)[:80]}."
        )
    data = metadata.get("data")
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("dataset"), str)):
        raise ModelFileError("metadata data must be a dict naming its dataset.")
    if not isinstance(metadata.get("config", ""), str):
        raise ModelFileError("metadata config must be a string.")
    return metadata


def _output_size(model: Model) -> int | None:
    """The size of the last axis of the model's output, where the layers fix it."""
    from lamina.layers.stack import propagate_shape

    shape = propagate_shape(model.layers)
    return None if shape is None else shape[-1]


# --------------------------------------------------------------------------- fields
def from_spec(registry: Any, spec: dict[str, Any]) -> Any:
    cls = registry.lookup(field(spec, "class", str))
    config = field(spec, "config", dict)
    return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)


def field(container: Any, key: str, kind: type) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise ModelFileError(f"config.json lacks the field {key!r}.")
    return checked(container[key], kind, key)


def checked(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ModelFileError(
            f"config.json: {what} should be a {kind.__name__}, not {type(value).__name__}."
        )
    return value
