"""Whole models as one ``.lamina`` file (notes §1.10 "State").

A file holds ``config.json`` (:mod:`lamina.saving.model_config`) and safetensors members:
``weights`` (every layer's parameters and state, ``"<layer>/<name>"``), ``optimizer``
(``"<layer>/<param>/<slot>"``), ``preprocessing`` (``"<step>/<attribute>"``),
``history`` (``"epoch"``, ``"history/<key>"``, ``"steps/<key>"``) and ``callbacks``
(``"<index>/<name>"``: the arrays of a callback's state, e.g. EarlyStopping's best weights).

Saving and loading keep two promises:

- **What saves, loads.** :func:`save_model` refuses a model with NaN/inf in its weights or
  optimizer state, then reads the bytes it is about to write back through the loader, and
  writes nothing (the old file stays) unless they load.
- **A file costs what it holds.** The layers a config describes are first built with
  placeholder tensors (no memory); the shapes they imply must equal the tensors the file
  holds, whose headers are checked against the bytes present, before anything is
  allocated. Members are read one at a time. Loading any file costs at most about twice
  its size, whatever it declares.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina._files import atomic_write
from lamina._registry import UnknownNameError
from lamina.errors import LaminaError, ModelFileError
from lamina.layers.stack import named_tensors
from lamina.saving import model_config
from lamina.saving.archive import ArchiveReader, write_archive
from lamina.saving.tensors import decode, encode, read_header

if TYPE_CHECKING:
    from lamina.callbacks import History
    from lamina.layers.base import Layer
    from lamina.model import Model

Array = np.ndarray
PathLike = str | os.PathLike[str]

MAX_HISTORY_VALUES = 1 << 21  # epoch-wise and step-wise values together (16 MiB as float64)
MAX_CALLBACK_STATES = 64
MAX_KEY_LENGTH = 100


# --------------------------------------------------------------------------- saving
def save_model(model: Model, path: PathLike, *, include_optimizer: bool = True) -> None:
    """Write the whole model as one .lamina file, atomically, after checking that the file
    loads; see the module docstring."""
    where = repr(os.fspath(path))
    _check_finite(model, include_optimizer, where)
    data = encode_model(model, include_optimizer)
    try:
        _build(ArchiveReader(data, where), type(model))
    except LOAD_ERRORS as error:
        raise ModelFileError(
            f"Cannot save the model to {where}: the file would not load back: {_reason(error)} "
            "Nothing was written. Fix: correct what the message names and save again."
        ) from None
    atomic_write(path, data, what="model file")


def encode_model(model: Model, include_optimizer: bool = True) -> bytes:
    """The bytes of a .lamina file for ``model``."""
    config = model_config.describe(model, include_optimizer)
    members: dict[str, bytes] = {"weights.safetensors": encode(dict(named_tensors(model.layers)))}
    if include_optimizer and model.optimizer is not None:
        slots = optimizer_tensors(model)
        if slots:
            members["optimizer.safetensors"] = encode(slots)
    for name, pre in (
        ("preprocessing", model.preprocessing),
        ("target_preprocessing", model.target_preprocessing),
    ):
        if pre is not None and getattr(pre, "fitted", False):
            members[f"{name}.safetensors"] = encode(pre.get_state())
    if model.history is not None:
        members["history.safetensors"] = encode(history_tensors(model.history))
    states, tensors = [], {}
    for index, (name, state, arrays) in enumerate(model.callback_states()):
        states.append({"class": name, "state": state})
        tensors.update({f"{index}/{key}": array for key, array in arrays.items()})
    config["training"]["callbacks"] = states
    if tensors:
        members["callbacks.safetensors"] = encode(tensors)
    try:
        text = json.dumps(config, indent=1, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ModelFileError(
            f"Cannot save the model: its config is not JSON ({error}). Fix: keep "
            "model.metadata to JSON values (str, int, finite float, bool, None, list, dict)."
        ) from None
    return write_archive({"config.json": text.encode(), **members})


def optimizer_tensors(model: Model) -> dict[str, Array]:
    """The optimizer slots of the trainable parameters, as ``"<layer>/<param>/<slot>"``."""
    optimizer = model.optimizer
    if optimizer is None:
        return {}
    trainable = {key for key, _, _ in model.parameters()}
    return {
        f"{key}/{slot}": array
        for key, slots in optimizer.slots.items()
        if key in trainable
        for slot, array in slots.items()
    }


def history_tensors(history: History) -> dict[str, Array]:
    """A History as float64 arrays; the oldest step-wise values beyond
    :data:`MAX_HISTORY_VALUES` are left out, with a warning."""
    epoch_values = len(history.epoch) * (1 + len(history.history))
    steps = history.steps
    room = max(0, MAX_HISTORY_VALUES - epoch_values) // max(1, len(steps))
    if any(len(values) > room for values in steps.values()):
        warnings.warn(
            f"The History holds more step-wise values than a model file keeps; only the last "
            f"{room:,} steps of each are saved.",
            RuntimeWarning,
            stacklevel=3,
        )
    tensors = {"epoch": np.asarray(history.epoch, dtype=np.int64)}
    tensors.update(
        {f"history/{key}": np.asarray(v, dtype=np.float64) for key, v in history.history.items()}
    )
    tensors.update(
        {
            f"steps/{key}": np.asarray(v[-room:] if room else [], dtype=np.float64)
            for key, v in steps.items()
        }
    )
    return tensors


def _check_finite(model: Model, include_optimizer: bool, where: str) -> None:
    tensors = dict(named_tensors(model.layers))
    if include_optimizer:
        tensors.update({f"optimizer state {k}": v for k, v in optimizer_tensors(model).items()})
    for name, array in tensors.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelFileError(
                f"Cannot save the model to {where}: {name} holds NaN or inf values (training "
                "diverged?). Nothing was written. Fix: load an earlier checkpoint, or train "
                "again with a lower learning rate."
            )


# --------------------------------------------------------------------------- loading
def load_model(path: PathLike, model_class: type[Model]) -> Model:
    """Read a .lamina file written by :func:`save_model` as a ``model_class``
    (``lamina.load_model`` passes ``Model``); any problem with the file raises
    :class:`ModelFileError` naming it. Never unpickles or imports anything from the file."""
    with ArchiveReader(path, repr(os.fspath(path))) as archive:
        return load_from(archive, model_class)


def load_from(archive: ArchiveReader, model_class: type[Model]) -> Model:
    """The model an open archive describes; every problem is a ModelFileError that starts
    with the file's name."""
    try:
        return _build(archive, model_class)
    except LOAD_ERRORS as error:
        raise ModelFileError(f"{archive.where}: {_reason(error)}") from None


# What building objects from hostile values can raise; each becomes a ModelFileError.
LOAD_ERRORS = (
    LaminaError,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    AttributeError,
    RecursionError,
    MemoryError,
)


def _reason(error: BaseException) -> str:
    if isinstance(error, UnknownNameError):  # a class of the user's, not imported yet?
        return (
            f"it uses a class lamina does not know: {error} Fix: if it is a class of your "
            "own, import the module that registers it (@lamina.register) before loading."
        )
    reason = (
        str(error)
        if isinstance(error, ModelFileError)
        else (f"it does not describe a valid lamina model: {error}")
    )
    if "Fix:" not in reason:
        reason += " Fix: use an intact copy of a file written by Model.save."
    return reason


def _build(archive: ArchiveReader, model_class: type[Model]) -> Model:
    config = model_config.parse(archive.read("config.json"))
    spec = model_config.field(config, "model", dict)
    layers = model_config.build_layers(model_config.field(spec, "layers", list))
    seed, dtype, trainable = model_config.model_arguments(spec)
    if len(trainable) != len(layers):
        raise ModelFileError("'trainable' must be one bool per layer.")
    _fill_layers(layers, archive.read("weights.safetensors"), np.dtype(dtype))
    preprocessing = _transformer(config, archive, "preprocessing")
    target_preprocessing = _transformer(config, archive, "target_preprocessing")
    model = model_class(
        layers,
        seed=None,  # the saved tensors and Generator states replace what a seed would draw
        dtype=dtype,
        input_shape=model_config.input_shape_of(spec),
        preprocessing=preprocessing,
        target_preprocessing=target_preprocessing,
        augmentation=model_config.augmentation_from(config.get("augmentation")),
    )
    model.seed = seed
    for layer, flag in zip(model.layers, trainable, strict=True):
        layer.trainable = flag
    if config.get("compile") is not None:
        model_config.compile_from(model, config["compile"])
        if "optimizer.safetensors" in archive:
            _load_slots(model, archive.read("optimizer.safetensors"))
    training = model_config.field(config, "training", dict)
    model_config.restore_training(model, training)
    if config["format_version"] == 1:
        saved = training.get("history")
        model.history = None if saved is None else _history(_json_history(saved), model)
    elif "history.safetensors" in archive:
        history = decode(archive.read("history.safetensors"), "history.safetensors")
        model.history = _history(history, model)
    tensors = {}
    if "callbacks.safetensors" in archive:
        tensors = decode(archive.read("callbacks.safetensors"), "callbacks.safetensors")
    model.resume_from(_callback_states(training.get("callbacks", []), tensors))
    model.metadata = model_config.check_metadata(config.get("metadata", {}), model)
    return model


def _transformer(config: dict[str, Any], archive: ArchiveReader, name: str) -> Any:
    """The (target) preprocessing a file describes, with its fitted state."""
    transformer, fitted = model_config.preprocessing_from(config.get(name))
    if fitted:
        member = f"{name}.safetensors"
        if member not in archive:
            raise ModelFileError(f"the fitted {name.replace('_', ' ')}'s state is missing.")
        transformer.set_state(decode(archive.read(member), member))
    return transformer


def _fill_layers(layers: list[Layer], data: bytes, dtype: np.dtype) -> None:
    """Put the file's tensors in place of the layers' placeholders, after checking from the
    header alone that they are exactly the tensors the layers describe."""
    member = "weights.safetensors"
    header = read_header(data, member)
    expected = {name: array.shape for name, array in named_tensors(layers)}
    _match(
        {name: (info.shape, info.dtype) for name, info in header.items()},
        {name: (shape, dtype) for name, shape in expected.items()},
        member,
    )
    tensors = decode(data, member)
    for layer in layers:
        for store in (layer.params, layer.state):
            for key in store:
                array = tensors[f"{layer.name}/{key}"]
                if not np.isfinite(array).all():
                    raise ModelFileError(f"{member}: tensor {layer.name}/{key} holds NaN or inf.")
                store[key] = array.copy()


def _load_slots(model: Model, data: bytes) -> None:
    """The optimizer's slots: one per trainable parameter and slot name (missing ones start
    at zero), finite, and ≥ 0 where they accumulate squares."""
    optimizer = model.optimizer
    assert optimizer is not None
    member = "optimizer.safetensors"
    header = read_header(data, member)
    expected = {
        f"{key}/{slot}": (theta.shape, theta.dtype)
        for key, theta, _ in model.parameters()
        for slot in optimizer.slot_names
    }
    found = {name: (info.shape, info.dtype) for name, info in header.items()}
    _match(found, {name: expected[name] for name in found if name in expected}, member)
    for name, array in decode(data, member).items():
        key, slot = name.rsplit("/", 1)
        if not np.isfinite(array).all():
            raise ModelFileError(f"{member}: optimizer slot {name!r} holds NaN or inf.")
        if slot in optimizer.nonnegative_slots and (array < 0).any():
            raise ModelFileError(
                f"{member}: optimizer slot {name!r} holds negative values; it accumulates "
                "squared gradients, which are ≥ 0."
            )
        optimizer.slots.setdefault(key, {})[slot] = array.copy()


def _match(
    found: dict[str, tuple[tuple[int, ...], np.dtype]],
    expected: dict[str, tuple[tuple[int, ...], np.dtype]],
    member: str,
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{name}: {np.dtype(found[name][1])}{found[name][0]}, expected "
        f"{np.dtype(expected[name][1])}{expected[name][0]}"
        for name in set(found) & set(expected)
        if found[name][0] != expected[name][0] or found[name][1] != expected[name][1]
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
        raise ModelFileError(f"{member} does not fit the architecture — {details}.")


def _json_history(saved: Any) -> dict[str, Array]:
    """A version-1 History (lists in config.json) as the arrays of a version-2 file."""
    saved = model_config.checked(saved, dict, "history")
    tensors = {"epoch": _array(model_config.field(saved, "epoch", list), np.int64)}
    for group in ("history", "steps"):
        for key, values in model_config.field(saved, group, dict).items():
            tensors[f"{group}/{key}"] = _array(values, np.float64)
    return tensors


def _array(values: Any, dtype: type) -> Array:
    if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
        raise ModelFileError("a History entry is not a list of numbers.")
    return np.asarray(values, dtype=dtype)


def _history(tensors: dict[str, Array], model: Model) -> History:
    """A History from its arrays: at most one entry per epoch done, keys that are short
    printable names, and at most :data:`MAX_HISTORY_VALUES` values in all."""
    from lamina.callbacks import History

    epoch = tensors.pop("epoch", None)
    if epoch is None or epoch.ndim != 1 or epoch.dtype != np.int64:
        raise ModelFileError("the History has no epoch list.")
    if len(epoch) > model.epochs_done or (
        len(epoch) and not 0 <= epoch.min() <= epoch.max() < model.epochs_done
    ):
        raise ModelFileError(f"the History records epochs beyond the {model.epochs_done} done.")
    total = len(epoch)
    history = History()
    history.epoch = epoch.tolist()
    for name, values in tensors.items():
        group, _, key = name.partition("/")
        if group not in ("history", "steps") or not _is_key(key) or values.ndim != 1:
            raise ModelFileError(f"malformed History entry {name[:80]!r}.")
        if group == "history" and len(values) > len(epoch):
            raise ModelFileError(f"History {key!r} has more values than epochs.")
        total += len(values)
        if total > MAX_HISTORY_VALUES:
            raise ModelFileError(f"the History holds more than {MAX_HISTORY_VALUES:,} values.")
        getattr(history, group)[key] = values.astype(np.float64).tolist()
    return history


def _callback_states(
    entries: Any, tensors: dict[str, Array]
) -> list[tuple[str, dict[str, Any], dict[str, Array]]]:
    """The saved callback states, each ``(registered name, JSON state, arrays)``."""
    from lamina.callbacks import CALLBACKS

    entries = model_config.checked(entries, list, "training.callbacks")
    if len(entries) > MAX_CALLBACK_STATES:
        raise ModelFileError(f"more than {MAX_CALLBACK_STATES} callback states.")
    states = []
    for index, entry in enumerate(entries):
        entry = model_config.checked(entry, dict, "callback state")
        name = model_config.field(entry, "class", str)
        if name not in CALLBACKS:
            raise ModelFileError(f"unknown callback {name[:80]!r} in the training state.")
        prefix = f"{index}/"
        arrays = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        states.append((name, model_config.field(entry, "state", dict), arrays))
    if sum(len(arrays) for _, _, arrays in states) != len(tensors):
        raise ModelFileError("callbacks.safetensors holds tensors of no callback.")
    return states


def _is_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()
