"""``@lamina.register``: custom layers, activations, losses, metrics, optimizers, transformers
and augmentations that models save and load (like Keras' ``register_keras_serializable``).

A model file names each part by its registered name and holds its ``get_config()``;
loading looks the name up in the registry of its kind and calls ``from_config`` — only
registered classes are ever built, and nothing is imported or evaluated by a name read
from a file. Registering a class adds it to that registry, so::

    @lamina.register                       # saved as "scaled_tanh"
    class ScaledTanh(lamina.layers.Activation): ...

    @lamina.register("my_huber")           # or under a name of your choice
    class Huber(lamina.losses.Loss): ...

A model using them saves as any other, and ``lamina.load_model`` rebuilds it in any process
that has imported the module defining them (the decorator runs at import). The contracts
a class must keep are in the docstrings of its base class (``help(lamina.layers.Layer)``,
``help(lamina.losses.Loss)``); ``lamina.gradcheck(layer, x)`` checks a layer's backward.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, overload

from lamina._registry import Registry
from lamina.augmentation import AUGMENTATIONS, Augmentation
from lamina.errors import ConfigError, invalid
from lamina.layers.base import LAYERS, Layer
from lamina.losses import LOSSES, Loss
from lamina.metrics import METRICS, Metric
from lamina.optimizers import OPTIMIZERS, Optimizer
from lamina.preprocessing.base import TRANSFORMERS, Transformer

C = TypeVar("C", bound=type)

#: (base class, its registry) for every kind of part a model file can hold.
KINDS: tuple[tuple[type, Registry[Any]], ...] = (
    (Layer, LAYERS),  # activations are layers
    (Loss, LOSSES),
    (Metric, METRICS),
    (Optimizer, OPTIMIZERS),
    (Transformer, TRANSFORMERS),
    (Augmentation, AUGMENTATIONS),
)

NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
FIX_NAME = 'pass a snake_case name, e.g. @lamina.register("my_layer")'


@overload
def register(name: C, /) -> C: ...


@overload
def register(name: str | None = None, /) -> Callable[[C], C]: ...


def register(name: Any = None, /) -> Any:
    """Register a custom class under ``name`` (default: its class name in snake_case,
    ``ScaledTanh`` → ``"scaled_tanh"``) in the registry its base class implies: ``Layer``
    (activations included), ``Loss``, ``Metric``, ``Optimizer``, ``Transformer`` or
    ``Augmentation``. Use it bare (``@lamina.register``) or with a name
    (``@lamina.register("my_layer")``); it returns the class unchanged.

    Raises ConfigError for a class of none of those kinds, a name that is not snake_case,
    a name that a built-in part already has, or a name another class already has
    (registering the same class under the same name again, as re-importing its module does,
    is allowed). :func:`unregister` takes a class back out (tests, notebooks).
    """
    if isinstance(name, type):
        return _register(name, None)
    if name is not None and not isinstance(name, str):
        raise ConfigError(
            invalid("register name", "a str, or None for the class name", repr(name), FIX_NAME)
        )

    def decorate(cls: C) -> C:
        return _register(cls, name)

    return decorate


def _register(cls: C, name: str | None) -> C:
    registry = registry_for(cls)
    name = snake_case(cls.__name__) if name is None else name
    if not NAME.fullmatch(name):
        raise ConfigError(
            invalid(
                f"the registered name of {cls.__name__}",
                "a snake_case name of 1 to 100 characters (a-z, 0-9, _; a letter first)",
                repr(name),
                FIX_NAME,
            )
        )
    if name in registry:  # a registered name or an alias of one ("mse")
        taken = registry.lookup(name)
        if taken is cls:
            return cls
        if _same_definition(taken, cls) and not is_builtin(taken):
            unregister(taken)  # its module run again: a notebook cell, importlib.reload
        else:
            raise ConfigError(_taken_message(cls, name, taken, registry.kind))
    for other, entry in registry.items():
        if entry is cls:
            raise ConfigError(
                f"Cannot register {cls.__qualname__} as the {registry.kind} {name!r}: it is "
                f"registered as {other!r} already, and a class saves under one name. Fix: "
                f"keep {other!r}, or unregister it first."
            )
    registry.register(name)(cls)
    return cls


def _same_definition(old: type, new: type) -> bool:
    return (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def _taken_message(cls: type, name: str, taken: type, kind: str) -> str:
    where = f"{taken.__module__}.{taken.__qualname__}"
    owner = f"lamina's built-in {kind} {where}" if is_builtin(taken) else f"the {kind} {where}"
    fix = f'pass another name, e.g. @lamina.register("my_{name}")'
    if not is_builtin(taken):
        fix += f", or take {taken.__qualname__} out first with lamina.registration.unregister"
    return (
        f"Cannot register {cls.__module__}.{cls.__qualname__} as the {kind} {name!r}: that "
        f"name belongs to {owner}, and a model file names each part by its registered name "
        f"alone. Fix: {fix}."
    )


def registry_for(cls: object) -> Registry[Any]:
    """The registry of the kind ``cls`` derives from, or a ConfigError naming the kinds."""
    if isinstance(cls, type):
        for base, registry in KINDS:
            if issubclass(cls, base):
                return registry
    kinds = ", ".join(base.__name__ for base, _ in KINDS)
    shown = cls.__qualname__ if isinstance(cls, type) else repr(cls)[:80]
    raise ConfigError(
        invalid(
            "@lamina.register",
            f"a class deriving from one of {kinds}",
            shown,
            "derive the class from one of them (a layer from lamina.layers.Layer, a loss from "
            "lamina.losses.Loss, ...) — functions and other classes cannot be saved",
        )
    )


def unregister(cls: type) -> None:
    """Take a class registered with :func:`register` out of its registry again: a test
    that registers a class removes it afterwards, so that the registry-driven contract
    tests see lamina's own classes only. Built-in classes cannot be unregistered."""
    registry = registry_for(cls)
    if is_builtin(cls):
        raise ConfigError(f"{cls.__qualname__} is a built-in {registry.kind}; it stays registered.")
    names = [name for name, entry in registry.items() if entry is cls]
    if not names:
        raise ConfigError(f"{cls.__qualname__} is not a registered {registry.kind}.")
    for name in names:
        registry.unregister(name)


@contextmanager
def registered(cls: C, name: str | None = None) -> Iterator[C]:
    """``cls`` registered for the duration of a ``with`` block (tests)::

    with lamina.registration.registered(MyLayer):
        model.save(path)
    """
    register(name)(cls)
    try:
        yield cls
    finally:
        unregister(cls)


def is_builtin(cls: type) -> bool:
    """Whether a class is one of lamina's own (defined in the lamina package)."""
    return cls.__module__.split(".")[0] == "lamina"


def snake_case(name: str) -> str:
    """``ScaledTanh`` → ``scaled_tanh``, ``GaussianNLL`` → ``gaussian_nll``,
    ``MaxPool2D`` → ``max_pool2d`` (a digit does not start a word)."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return words.lower()
