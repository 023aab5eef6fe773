"""Input sizes a model fills in (Keras' deferred build): a layer built without its input
size — ``Dense(units=128)``, ``Conv2D(filters=32, kernel_size=3)`` — gets it from the shape
of its inputs when it is put in ``Model([...], input_shape=(28, 28, 1))``
(``lamina.layers.stack.build_layers``). The explicit form ``Dense(784, 128)`` stays the
notes' form and the default; what the two build is the same layer, drawn from the same
Generator (``Layer.build``).

Only input sizes are inferred — the size of the last axis of the inputs (Dense's
``n_inputs``, Conv2D's and Conv1D's ``in_channels``, a recurrent layer's ``n_inputs``,
BatchNorm's ``n_features``). What a layer makes (``units``, ``filters``, ``kernel_size``)
is always given.
"""

from __future__ import annotations

from typing import TypeVar

from lamina._params import Interval, Rule, rule
from lamina.errors import ConfigError

T = TypeVar("T")


def input_size(example: str) -> Rule:
    """The rule of an input size a model may infer: an int ≥ 1, or None (not known yet)."""
    inferred = "or leave it out and build the Model with input_shape=(...)"
    return rule(Interval(int, 1), None, fix=f"pass the layer sizes, e.g. {example}, {inferred}")


def size_rule(fix: str) -> Rule:
    """The rule of a size that is never inferred but may be passed under either of two
    names (``n_neurons`` or Keras' ``units``): an int ≥ 1, or None when the other is given."""
    return rule(Interval(int, 1), None, fix=fix)


def required(owner: str, argument: str, value: T | None, fix: str) -> T:
    """``value``, or a ConfigError naming ``owner.argument`` when it was not given (an
    argument that defaults to None only because an inferred one comes before it)."""
    if value is None:
        raise ConfigError(
            f"Missing value for `{owner}.{argument}`, which has no default. Fix: {fix}.",
            argument=argument,
        )
    return value


def one_of(
    owner: str, names: tuple[str, str], values: tuple[int | None, int | None], fix: str
) -> int:
    """The one size given under either of two ``names`` (``("n_neurons", "units")``): a
    ConfigError when neither or both are given."""
    first, second = values
    if first is not None and second is not None:
        raise ConfigError(
            f"`{owner}` received both {names[0]}={first} and {names[1]}={second}, two names "
            f"for one size. Fix: pass one of them.",
            argument=names[1],
        )
    return required(owner, names[0], first if first is not None else second, fix)
