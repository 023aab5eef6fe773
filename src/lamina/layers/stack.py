"""A stack of layers as a whole: naming its layers, following a shape through it, its
tensors by name, and its summary table — what a model, a file and a snapshot share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from lamina.errors import ConfigError, invalid
from lamina.layers.base import LAYERS, Layer, Shape, check_name, format_shape

Array = np.ndarray


def check_layers(layers: object) -> list[Layer]:
    """``layers`` as a list, or a ConfigError unless it is a non-empty sequence of Layers."""
    if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
        raise ConfigError(
            invalid(
                "layers",
                "a non-empty list of Layer objects",
                repr(layers)[:100],
                "pass e.g. [Dense(784, 10)]",
            )
        )
    for index, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ConfigError(invalid(f"layers[{index}]", "a lamina Layer", type(layer).__name__))
    return list(layers)


def name_layers(layers: Sequence[Layer]) -> None:
    """Name the unnamed layers Keras-style from their registered names (``dense``,
    ``dense_1``, …), avoiding the names already taken; a ConfigError if two names clash."""
    taken = {layer.name for layer in layers if layer.name}
    counts: dict[str, int] = {}
    for layer in layers:
        if layer.name:
            continue
        base = LAYERS.name_of(layer)
        while True:
            count = counts.get(base, 0)
            counts[base] = count + 1
            candidate = base if count == 0 else f"{base}_{count}"
            if candidate not in taken:
                break
        layer.name = candidate
        taken.add(candidate)
    names = [check_name(layer.name) for layer in layers]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(invalid("layer names", "unique names", f"duplicates {duplicates}"))


def propagate_shape(layers: Sequence[Layer], input_shape: Shape | None = None) -> Shape | None:
    """The per-sample shape after ``layers`` for ``input_shape`` — or, with None, from the
    first layer that requires a shape (a size mismatch between two layers is then found
    without data). A ShapeError names the first layer that does not fit and its source."""
    shape, source = input_shape, "the data"
    for layer in layers:
        if shape is None:
            shape = layer.input_shape
        else:
            layer.check_input_shape(shape, source)
        if shape is not None:
            shape = layer.output_shape(shape)
        source = layer.describe()
    return shape


def check_input_shape(input_shape: object) -> Shape | None:
    """A model's ``input_shape`` as a tuple — the per-sample shape of the inputs its first
    layer sees, ints ≥ 1 or None for a size that varies (a sequence's length) — or a
    ConfigError."""
    if input_shape is None:
        return None
    sizes = tuple(input_shape) if isinstance(input_shape, list | tuple) else ()
    if not sizes or not all(size is None or _is_size(size) for size in sizes):
        raise ConfigError(
            invalid(
                "input_shape",
                "the per-sample shape of the inputs: a tuple of sizes ≥ 1 (None for one that "
                "varies, such as a sequence's length)",
                repr(input_shape)[:100],
                "use e.g. input_shape=(28, 28, 1) for 28×28 grayscale images, or (784,) for rows",
            ),
            argument="input_shape",
        )
    return tuple(None if size is None else int(size) for size in sizes)


def _is_size(size: object) -> bool:
    return isinstance(size, int | np.integer) and not isinstance(size, bool) and bool(size >= 1)


def build_layers(layers: Sequence[Layer], input_shape: Shape | None = None) -> Shape | None:
    """Build the layers whose input size was left None (``Dense(units=128)``) from the
    shape their inputs have — ``input_shape`` followed through the layers before
    (``lamina.layers.sizes``) — and check every size as :func:`propagate_shape` does;
    returns the per-sample output shape. A layer whose input size cannot be known is a
    ConfigError naming it and the fix."""
    shape = input_shape
    source = "the data" if input_shape is None else f"input_shape={input_shape}"
    for index, layer in enumerate(layers):
        if shape is None and layer.built:
            shape = layer.input_shape
        elif shape is not None:
            if not layer.built and shape and shape[-1] is not None:
                layer.build(shape)
            layer.check_input_shape(shape, source)
        if not layer.built:
            raise ConfigError(missing_size(layer, index, shape), argument=layer.inferred_size)
        if shape is not None:
            shape = layer.output_shape(shape)
        source = layer.describe()
    return shape


def missing_size(layer: Layer, index: int, shape: Shape | None) -> str:
    """Why ``layer`` (``layers[index]``) has no input size, and the two fixes."""
    argument = layer.inferred_size
    if shape is None:
        why = "and nothing before it fixes the shape of its inputs (the model has no input_shape)"
    else:
        why = f"and its inputs, of shape {format_shape(shape)}, do not fix their last axis"
    return (
        f"{layer.describe()} (layers[{index}]) was built without {argument}, {why}. Fix: "
        f"build the model with input_shape=..., the per-sample shape of the data (e.g. "
        f"Model([...], input_shape=(28, 28, 1))), or pass {argument} to the layer."
    )


def declared(layer: Layer, flag: str) -> bool:
    """A layer class's ``flag`` (``thread_safe_inference``, ``splits_over_batch``): what
    the class sets, or when it leaves None, True for lamina's own layers and False for a
    user's (a subclass of a built-in included) — for the layers inside a wrapper
    (Bidirectional) too, all of which must say True."""
    value = getattr(type(layer), flag)
    own = type(layer).__module__.startswith("lamina.")
    inner = getattr(layer, "layers", {})
    inside = inner.values() if isinstance(inner, dict) else ()
    return (value if value is not None else own) and all(declared(sub, flag) for sub in inside)


def named_tensors(layers: Sequence[Layer]) -> Iterator[tuple[str, Array]]:
    """Every parameter and state array of ``layers`` as ``("<layer>/<name>", array)``: the
    names of weight files, model files and snapshots."""
    for layer in layers:
        for store in (layer.params, layer.state):
            for key, array in store.items():
                yield f"{layer.name}/{key}", array


def summary_table(layers: Sequence[Layer], input_shape: Shape | None = None) -> str:
    """Layers, their output shapes (where the input shape is known) and parameter counts,
    with the totals, as a text table."""
    shape = input_shape or layers[0].input_shape
    rows = [("Layer (type)", "Output shape", "Params")]
    for layer in layers:
        if shape is not None:  # None inside: a size any input may have (a sequence's T)
            shape = layer.output_shape(shape)
            shown = format_shape(shape)
        else:
            shown = "?"
        rows.append((f"{layer.name} ({type(layer).__name__})", shown, f"{layer.count_params():,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "-" * (sum(widths) + 4)
    lines = [
        rule,
        *(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows),
        rule,
    ]
    total = sum(layer.count_params() for layer in layers)
    trainable = sum(layer.count_params() for layer in layers if layer.trainable)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}"]
    return "\n".join(lines)
