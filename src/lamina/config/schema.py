"""The tables of a run config, the keys each one takes and the registry behind each typed
one, written once: loading a config (:mod:`lamina.config.run`) checks against it, and the
keys of a search (:mod:`lamina.config.keys`) are read from it.

Three kinds of table:

- plain tables, ``[train]``, ``[model]``, ``[compile]``: fixed keys, each value checked by a
  :mod:`lamina._params` rule;
- typed tables, ``[optimizer]`` and the arrays ``[[layers]]``, ``[[preprocessing]]``,
  ``[[augmentation]]``, ``[[callbacks]]`` (and an inline ``loss = {type = ...}``): ``type``
  names a registry entry and every other key is an argument of its constructor;
- ``[data]``: ``dataset`` names an entry of :data:`lamina.config.data.DATASETS`, which gives
  the other keys.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lamina import augmentation, callbacks, losses, optimizers, preprocessing
from lamina._params import Flag, Interval, Options, Rule
from lamina._registry import Registry
from lamina.config.data import DATASETS
from lamina.config.values import ClassWeights, Names, Sizes, written
from lamina.datasets.checks import Worded
from lamina.layers import LAYERS

_AT_LEAST_ONE = Worded(Interval(int, 1), "an integer >= 1")
_TRUE_OR_FALSE = Worded(Flag(), "true or false")

TRAIN_RULES: dict[str, Rule] = {
    "epochs": written("epochs", _AT_LEAST_ONE, "10"),
    "batch_size": written("batch_size", _AT_LEAST_ONE, "32"),
    "shuffle": written("shuffle", _TRUE_OR_FALSE, "true"),
    "validation_split": written("validation_split", Interval(float, 0, 1, closed="left"), "0.1"),
    "verbose": written("verbose", Worded(Interval(int, 0, 2), "0, 1 or 2"), "2"),
    "class_weight": written("class_weight", ClassWeights(), '"balanced"'),
}
MODEL_RULES: dict[str, Rule] = {
    "seed": written("seed", Worded(Interval(int, 0), "an integer >= 0"), "0"),
    "dtype": written(
        "dtype", Worded(Options("float32", "float64"), '"float32" or "float64"'), '"float32"'
    ),
    # fills in the input sizes the [[layers]] leave out (n_inputs, in_channels)
    "input_shape": written("input_shape", Sizes(), "[28, 28, 1]"),
}
COMPILE_RULES: dict[str, Rule] = {"metrics": written("metrics", Names(), '["accuracy"]')}


@dataclass(frozen=True)
class Table:
    """One table of a config.

    Attributes:
        name: as the file writes it, ``[name]`` or ``[[name]]``.
        array: ``[[name]]``, a list of tables.
        required: a config must have it.
        registry: a typed table's classes, by ``type`` name.
        keys: a plain table's keys; ``rules`` checks their values.
        creatable: a search key may create it when the config leaves it out (every key has
            a default).
    """

    name: str
    array: bool = False
    required: bool = False
    registry: Registry[Any] | Mapping[str, Any] | None = None
    keys: tuple[str, ...] = ()
    rules: Mapping[str, Rule] = field(default_factory=dict)
    creatable: bool = False

    def entry(self, kind: Any) -> Any:
        """The class ``type = kind`` names in this typed table, or None."""
        assert self.registry is not None
        if not isinstance(kind, str) or kind not in self.registry:
            return None
        if isinstance(self.registry, Registry):
            return self.registry.lookup(kind)  # aliases ("mse") name their class too
        return self.registry[kind]


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table("data", required=True),
        Table("preprocessing", array=True, registry=preprocessing.TRANSFORMERS),
        Table("augmentation", array=True, registry=augmentation.AUGMENTATIONS),
        Table("model", keys=tuple(MODEL_RULES), rules=MODEL_RULES, creatable=True),
        Table("layers", array=True, registry=LAYERS),
        Table("compile", required=True, keys=("loss", *COMPILE_RULES), rules=COMPILE_RULES),
        Table("optimizer", registry=optimizers.OPTIMIZERS),
        Table("train", keys=tuple(TRAIN_RULES), rules=TRAIN_RULES, creatable=True),
        Table("callbacks", array=True, registry=callbacks.CALLBACKS),
    )
}
LOSS = Table("loss", registry=losses.LOSSES)  # [compile] loss = {type = "...", ...}
SECTIONS = tuple(TABLES)
TRAIN_KEYS = TABLES["train"].keys
MODEL_KEYS = TABLES["model"].keys
COMPILE_KEYS = TABLES["compile"].keys


@functools.cache
def parameters(cls: type) -> Mapping[str, inspect.Parameter]:
    """The named arguments of ``cls``'s constructor: the keys of a typed table besides
    ``type`` (``*args``/``**kwargs`` are not keys)."""
    signature = inspect.signature(cls.__init__)  # type: ignore[misc]
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        name: parameter
        for name, parameter in list(signature.parameters.items())[1:]  # after self
        if parameter.kind not in variadic
    }


def keys_of(table: Table, item: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The keys ``item``, one [table] or one [[table]] entry, may hold, whether or not it
    sets them; None when it names no known ``type`` (or ``dataset``)."""
    if table.name == "data":
        name = None if item is None else item.get("dataset")
        dataset = DATASETS.get(name) if isinstance(name, str) else None
        return None if dataset is None else ("dataset", *dataset.keys)
    if table.registry is None:
        return table.keys
    cls = None if item is None else table.entry(item.get("type"))
    return None if cls is None else ("type", *parameters(cls))
