"""Pipelines of transformers and their (de)serialization (notes §1.5, §1.9)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Instance, checked
from lamina.errors import ConfigError, InputError, invalid
from lamina.preprocessing.base import (
    TRANSFORMERS,
    Transformer,
)

Array = np.ndarray


@TRANSFORMERS.register("pipeline")
class Pipeline(Transformer):
    """Transformers applied in order; ``fit`` fits each on the previous one's output.

    ``get_state`` prefixes each step's arrays with its index (``"0/mean_"``, ``"2/classes_"``;
    nested pipelines nest: ``"1/0/data_min_"``); ``get_config`` holds the steps' specs.

    Args:
        steps: transformers, or their specs ``{"class": name, "config": {...}}``.
    """

    @checked(steps=Instance((list, tuple), "a list of transformers"))
    def __init__(self, steps: Sequence[Transformer | dict[str, Any]]) -> None:
        self.steps: list[Transformer] = []
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                step = deserialize(step)
            if not isinstance(step, Transformer):
                raise ConfigError(
                    invalid(
                        f"Pipeline.steps[{index}]",
                        "a Transformer or its spec",
                        f"{type(step).__name__} {step!r}"[:200],
                    )
                )
            self.steps.append(step)

    @property
    def fitted(self) -> bool:
        return all(step.fitted for step in self.steps)

    def _check_fitted(self) -> None:
        for index, step in enumerate(self.steps):
            if not step.fitted:
                raise InputError(
                    f"Pipeline is not fitted yet (step {index}, {type(step).__name__}, is not). "
                    "Fix: call fit(X_train) first (fit on training data only, notes §1.9)"
                )

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        self._fit(X, y, transform_last=False)
        return self

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> Array:
        return self._fit(X, y, transform_last=True)

    def _fit(self, X: ArrayLike, y: ArrayLike | None, transform_last: bool) -> Array:
        out = np.asarray(X)
        for index, step in enumerate(self.steps):
            if index < len(self.steps) - 1 or transform_last:
                out = step.fit_transform(out, y)
            else:
                step.fit(out, y)
        return out

    def transform(self, X: ArrayLike) -> Array:
        self._check_fitted()
        out = np.asarray(X)
        for step in self.steps:
            out = step.transform(out)
        return out

    def inverse_transform(self, X: ArrayLike) -> Array:
        """Each step's ``inverse_transform``, last step first; a ConfigError if a step has
        none (Flatten, Grayscale, Resize cannot be undone)."""
        self._check_fitted()
        out = np.asarray(X)
        for index, step in reversed(list(enumerate(self.steps))):
            undo = getattr(step, "inverse_transform", None)
            if undo is None:
                raise ConfigError(
                    invalid(
                        f"Pipeline.steps[{index}]",
                        "a transformer with inverse_transform",
                        type(step).__name__,
                    )
                )
            out = undo(out)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"steps": [serialize(step) for step in self.steps]}

    def get_state(self) -> dict[str, Array]:
        return {
            f"{index}/{key}": array
            for index, step in enumerate(self.steps)
            for key, array in step.get_state().items()
        }

    def _validate_state(self, state: Mapping[str, Array]) -> dict[str, Array]:
        if not isinstance(state, Mapping):
            raise ConfigError(invalid("Pipeline state", "a dict of arrays", type(state).__name__))
        checked: dict[str, Array] = {}
        for index, (step, part) in enumerate(zip(self.steps, self._split(state), strict=True)):
            try:
                step_state = step._validate_state(part)
            except ConfigError as error:
                raise ConfigError(f"Pipeline step {index}: {error}") from None
            checked.update({f"{index}/{key}": array for key, array in step_state.items()})
        return checked

    def _load_state(self, state: dict[str, Array]) -> None:
        for step, part in zip(self.steps, self._split(state), strict=True):
            step._load_state(dict(part))

    def _split(self, state: Mapping[str, Array]) -> list[dict[str, Array]]:
        """The state's arrays per step, by their ``"<index>/"`` prefix."""
        parts: list[dict[str, Array]] = [{} for _ in self.steps]
        for key, array in state.items():
            index, _, rest = str(key).partition("/")
            if not (index.isdigit() and int(index) < len(self.steps) and rest):
                raise ConfigError(
                    invalid(
                        "Pipeline state",
                        f"names '<step>/<name>' with a step in 0…{len(self.steps) - 1}",
                        repr(key),
                        "pass the dict that Pipeline.get_state() returned",
                    )
                )
            parts[int(index)][rest] = array
        return parts


def serialize(transformer: Transformer) -> dict[str, Any]:
    """``{"class": registered name, "config": get_config()}``, JSON-able."""
    return TRANSFORMERS.spec(transformer)


def deserialize(spec: dict[str, Any]) -> Transformer:
    """Build a transformer from :func:`serialize`'s spec; only registered classes, by name."""
    transformer: Transformer = TRANSFORMERS.build(spec)
    return transformer


# -- balancing (notes §1.9 "Balancing") ---------------------------------------------------
