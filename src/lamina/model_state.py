"""A model's state as plain data and back: the config.json and tensors of a .lamina file
(DESIGN §6; notes §1.10 "State").

``model_config`` describes everything but the tensors: the architecture (each layer's
``get_config``), the loss, the optimizer's hyper-parameters and step count, the metrics,
the preprocessing and augmentation, and the training progress (epochs done, History, the
state of every random Generator) so that ``fit(..., initial_epoch=k)`` after loading
continues exactly where training stopped. ``build_model`` is its inverse; it validates
every field it reads and turns any problem into :class:`ModelFileError`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.errors import LaminaError, ModelFileError

if TYPE_CHECKING:
    from lamina.model import Model

Array = np.ndarray
TENSOR_DTYPES = {"float32", "float64"}


# --------------------------------------------------------------------------- writing
def model_config(model: Model, include_optimizer: bool) -> dict[str, Any]:
    from lamina import losses, metrics, optimizers
    from lamina.layers.serialization import serialize

    compiled = None
    if model.loss is not None and model.optimizer is not None:
        optimizer = model.optimizer
        compiled = {
            "loss": _spec(losses.LOSSES, model.loss, "loss"),
            "optimizer": {
                **_spec(optimizers.OPTIMIZERS, optimizer, "optimizer"),
                "iterations": optimizer.iterations if include_optimizer else 0,
            },
            "metrics": [
                {
                    **_spec(metrics.METRICS, metric, "metric"),
                    "allowance": getattr(metric, "allowance", None),
                }
                for metric in model.metrics
            ],
        }
    history = model.history
    return {
        "format": "lamina-model",
        "format_version": 1,
        "lamina_version": _lamina_version(),
        "model": {
            "layers": [serialize(layer) for layer in model.layers],
            "trainable": [layer.trainable for layer in model.layers],
            "seed": model.seed,
            "dtype": model.dtype.name,
        },
        "compile": compiled,
        "metadata": model.metadata,
        "preprocessing": _preprocessing_spec(model),
        "augmentation": [_augmentation_spec(step) for step in model.augmentation],
        "training": {
            "epochs_done": model.epochs_done,
            "history": None
            if history is None
            else {
                "epoch": history.epoch,
                "history": history.history,
                "steps": history.steps,
            },
            "rng": {
                "shuffle": model._rng.bit_generator.state,
                "augment": model._augment_rng.bit_generator.state,
                "layers": [layer.rng.bit_generator.state for layer in model.layers],
            },
            "blas_threads": _blas_threads(),
        },
    }


def optimizer_tensors(model: Model) -> dict[str, Array]:
    """Every optimizer slot as ``"<layer>/<param>/<slot>"``."""
    if model.optimizer is None:
        return {}
    return {
        f"{key}/{slot}": np.ascontiguousarray(array)
        for key, slots in model.optimizer.slots.items()
        for slot, array in slots.items()
    }


def preprocessing_tensors(model: Model) -> dict[str, Array]:
    pre: Any = model.preprocessing
    if pre is None or not getattr(pre, "fitted", False):
        return {}
    return {key: np.ascontiguousarray(value) for key, value in pre.get_state().items()}


def _spec(registry: Any, obj: Any, kind: str) -> dict[str, Any]:
    for name, cls in registry.items():
        if type(obj) is cls:
            return {"class": name, "config": obj.get_config()}
    raise ModelFileError(
        f"Cannot save the {kind} {type(obj).__name__}: it is not one of lamina's registered "
        f"{kind}s, so a model file could not rebuild it. Fix: use a registered {kind}, or "
        "save the weights alone with Model.save_weights."
    )


def _preprocessing_spec(model: Model) -> dict[str, Any] | None:
    pre: Any = model.preprocessing
    if pre is None:
        return None
    from lamina import preprocessing

    try:
        return {"spec": preprocessing.serialize(pre), "fitted": bool(getattr(pre, "fitted", False))}
    except LaminaError as error:
        raise ModelFileError(f"Cannot save the model's preprocessing: {error}") from None


def _augmentation_spec(step: Any) -> dict[str, Any]:
    from lamina import augmentation

    try:
        return augmentation.serialize(step)
    except LaminaError as error:
        raise ModelFileError(f"Cannot save the model's augmentation: {error}") from None


def _blas_threads() -> int | None:
    from threadpoolctl import threadpool_info

    threads = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return threads[0] if threads else None


def _lamina_version() -> str:
    import lamina

    return str(getattr(lamina, "__version__", "unknown"))


# --------------------------------------------------------------------------- reading
def build_model(members: dict[str, bytes], where: str) -> Model:
    """The model a .lamina file describes; ModelFileError naming the problem otherwise."""
    config = _parse_json(members["config.json"], where)
    try:
        return _build(config, members, where)
    except ModelFileError:
        raise
    except (
        LaminaError,
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        OverflowError,
        AttributeError,
        RecursionError,
        MemoryError,
    ) as error:
        raise ModelFileError(f"{where!r} does not describe a valid lamina model: {error}") from None


def _parse_json(data: bytes, where: str) -> dict[str, Any]:
    def refuse(constant: str) -> Any:
        raise ValueError(f"non-finite number {constant}")

    try:
        config = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except RecursionError:
        raise ModelFileError(f"{where!r}: config.json is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(f"{where!r}: config.json is not valid JSON ({error}).") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{where!r}: config.json must hold an object.")
    if config.get("format") != "lamina-model":
        raise ModelFileError(f"{where!r} is not a lamina model (config.json format field).")
    if config.get("format_version") != 1:
        raise ModelFileError(
            f"{where!r} has model format version {config.get('format_version')!r}; this "
            f"lamina ({_lamina_version()}) reads version 1. Fix: load it with the lamina "
            "version that wrote it."
        )
    return config


def _build(config: dict[str, Any], members: dict[str, bytes], where: str) -> Model:
    from lamina.layers.serialization import deserialize
    from lamina.model import Model

    spec = _field(config, "model", dict)
    layer_specs = _field(spec, "layers", list)
    if not layer_specs or len(layer_specs) > 10_000:
        raise ModelFileError(f"{where!r}: the model has {len(layer_specs)} layers.")
    _check_sizes(layer_specs, _tensor_elements(members["weights.safetensors"], where), where)
    layers = [deserialize(_checked(layer, dict, "layer")) for layer in layer_specs]
    seed = spec.get("seed")
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise ModelFileError(f"{where!r}: seed must be an int or null, not {seed!r}.")
    dtype = _field(spec, "dtype", str)
    if dtype not in TENSOR_DTYPES:
        raise ModelFileError(f"{where!r}: dtype {dtype!r} is not float32 or float64.")
    model = Model(
        layers,
        seed=None,  # the saved weights and Generator states replace what a seed would draw
        dtype=dtype,
        preprocessing=_preprocessing(config.get("preprocessing"), members, where),
        augmentation=_augmentation(config.get("augmentation")),
    )
    model.seed = seed
    trainable = _field(spec, "trainable", list)
    if len(trainable) != len(layers) or not all(isinstance(t, bool) for t in trainable):
        raise ModelFileError(f"{where!r}: 'trainable' must be one bool per layer.")
    for layer, flag in zip(model.layers, trainable, strict=True):
        layer.trainable = flag
    _load_tensors(model, members["weights.safetensors"], where)
    compiled = config.get("compile")
    if compiled is not None:
        _compile(model, _checked(compiled, dict, "compile"), members, where)
    _restore_training(model, _field(config, "training", dict), where)
    model.metadata = _checked(config.get("metadata", {}), dict, "metadata")
    return model


def _compile(model: Model, compiled: dict[str, Any], members: dict[str, bytes], where: str) -> None:
    from lamina import losses, metrics, optimizers

    loss = _from_spec(losses.LOSSES, _field(compiled, "loss", dict))
    optimizer_spec = _field(compiled, "optimizer", dict)
    optimizer = _from_spec(optimizers.OPTIMIZERS, optimizer_spec)
    metric_list = []
    for entry in _field(compiled, "metrics", list):
        entry = _checked(entry, dict, "metric")
        metric = _from_spec(metrics.METRICS, entry)
        allowance = entry.get("allowance")
        if allowance is not None:
            if not (isinstance(allowance, int | float) and math.isfinite(allowance)):
                raise ModelFileError(f"{where!r}: bad metric allowance {allowance!r}.")
            metric.allowance = float(allowance)
        metric_list.append(metric)
    model.compile(loss=loss, optimizer=optimizer, metrics=metric_list)
    iterations = optimizer_spec.get("iterations", 0)
    if not (isinstance(iterations, int) and not isinstance(iterations, bool) and iterations >= 0):
        raise ModelFileError(f"{where!r}: optimizer iterations {iterations!r}.")
    optimizer.iterations = iterations
    if "optimizer.safetensors" in members:
        expected = {
            f"{key}/{slot}": (theta.shape, theta.dtype)
            for key, theta, _ in model.parameters()
            for slot in optimizer.slot_names
        }
        tensors = _safetensors(members["optimizer.safetensors"], where, "optimizer.safetensors")
        _match(tensors, expected, where, "optimizer.safetensors")
        for name, array in tensors.items():
            key, slot = name.rsplit("/", 1)
            optimizer.slots.setdefault(key, {})[slot] = array.copy()


def _restore_training(model: Model, training: dict[str, Any], where: str) -> None:
    from lamina.callbacks import History

    epochs_done = training.get("epochs_done", 0)
    if not (
        isinstance(epochs_done, int) and not isinstance(epochs_done, bool) and epochs_done >= 0
    ):
        raise ModelFileError(f"{where!r}: epochs_done {epochs_done!r}.")
    model.epochs_done = epochs_done
    saved = training.get("history")
    if saved is not None:
        saved = _checked(saved, dict, "history")
        history = History()
        history.epoch = [int(e) for e in _field(saved, "epoch", list)]
        history.history = _series(_field(saved, "history", dict), where)
        history.steps = _series(_field(saved, "steps", dict), where)
        model.history = history
    rng = _field(training, "rng", dict)
    _set_state(model._rng, rng.get("shuffle"), where)
    _set_state(model._augment_rng, rng.get("augment"), where)
    states = _field(rng, "layers", list)
    if len(states) != len(model.layers):
        raise ModelFileError(f"{where!r}: one Generator state per layer expected.")
    for layer, state in zip(model.layers, states, strict=True):
        _set_state(layer.rng, state, where)


def _series(values: dict[str, Any], where: str) -> dict[str, list[float]]:
    series = {}
    for key, items in values.items():
        if not isinstance(key, str) or not isinstance(items, list):
            raise ModelFileError(f"{where!r}: malformed history entry {key!r}.")
        series[key] = [float(item) for item in items]
    return series


def _set_state(generator: np.random.Generator, state: Any, where: str) -> None:
    state = _checked(state, dict, "Generator state")
    if state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise ModelFileError(
            f"{where!r}: a Generator state is not {type(generator.bit_generator).__name__}."
        )
    generator.bit_generator.state = state


def _preprocessing(entry: Any, members: dict[str, bytes], where: str) -> Any:
    if entry is None:
        return None
    from lamina import preprocessing

    entry = _checked(entry, dict, "preprocessing")
    transformer = preprocessing.deserialize(_field(entry, "spec", dict))
    if entry.get("fitted"):
        if "preprocessing.safetensors" not in members:
            raise ModelFileError(f"{where!r}: the fitted preprocessing's state is missing.")
        state = _safetensors(
            members["preprocessing.safetensors"], where, "preprocessing.safetensors"
        )
        transformer.set_state(state)
    return transformer


def _augmentation(entry: Any) -> list[Any]:
    if not entry:
        return []
    from lamina import augmentation

    return [
        augmentation.deserialize(_checked(spec, dict, "augmentation"))
        for spec in _checked(entry, list, "augmentation")
    ]


def _load_tensors(model: Model, data: bytes, where: str) -> None:
    from lamina.io import _model_arrays

    tensors = _safetensors(data, where, "weights.safetensors")
    targets = dict(_model_arrays(model))
    _match(
        tensors,
        {name: (a.shape, a.dtype) for name, a in targets.items()},
        where,
        "weights.safetensors",
    )
    for name, array in tensors.items():
        if not np.isfinite(array).all():
            raise ModelFileError(f"{where!r}: tensor {name!r} holds NaN or inf values.")
        targets[name][...] = array


def _tensor_elements(data: bytes, where: str) -> int:
    """How many values the weights file holds, from its header alone (8-byte length, JSON)."""
    if len(data) < 8:
        raise ModelFileError(f"{where!r}: weights.safetensors is truncated.")
    length = int.from_bytes(data[:8], "little")
    if length > len(data) - 8:
        raise ModelFileError(f"{where!r}: weights.safetensors has a corrupt header.")
    try:
        header = json.loads(data[8 : 8 + length])
        return sum(
            math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__"
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise ModelFileError(f"{where!r}: weights.safetensors has a corrupt header.") from None


def _check_sizes(layer_specs: list[Any], elements: int, where: str) -> None:
    """Refuse a config whose sizes would allocate more than the file can fill: every int in
    a layer's config (neurons, channels, features...) is at most the number of values in the
    weights file (or 4096 for small models), so a hostile file cannot make lamina allocate
    gigabytes before its tensors are checked."""
    limit = max(elements, 4096)

    def walk(value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int) and value > limit:
            raise ModelFileError(
                f"{where!r}: a layer size of {value} cannot match the {elements} values stored "
                "in weights.safetensors."
            )
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(layer_specs)


def _safetensors(data: bytes, where: str, member: str) -> dict[str, Array]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError, MemoryError) as error:
        raise ModelFileError(f"{where!r}: {member} is not valid safetensors ({error}).") from None


def _match(
    tensors: dict[str, Array],
    expected: dict[str, tuple[tuple[int, ...], Any]],
    where: str,
    member: str,
) -> None:
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{name}: {tensors[name].dtype}{tensors[name].shape}, expected "
        f"{np.dtype(expected[name][1])}{expected[name][0]}"
        for name in set(tensors) & set(expected)
        if tensors[name].shape != expected[name][0] or tensors[name].dtype != expected[name][1]
    )
    if missing or unexpected or wrong:
        details = "; ".join(
            text
            for text in (
                f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                f"mis-shaped {wrong[:5]}" if wrong else "",
            )
            if text
        )
        raise ModelFileError(f"{where!r}: {member} does not fit the architecture — {details}.")


def _from_spec(registry: Any, spec: dict[str, Any]) -> Any:
    cls = registry.lookup(_field(spec, "class", str))
    return (
        cls.from_config(_field(spec, "config", dict))
        if hasattr(cls, "from_config")
        else cls(**_field(spec, "config", dict))
    )


def _field(container: dict[str, Any], key: str, kind: type) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise ModelFileError(f"config.json lacks the field {key!r}.")
    return _checked(container[key], kind, key)


def _checked(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ModelFileError(
            f"config.json: {what} should be a {kind.__name__}, not {type(value).__name__}."
        )
    return value
