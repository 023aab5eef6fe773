"""The notes' synthetic data sets: spiral, vertical and sine (the nnfs book's generators)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lamina.errors import (
    InputError,
    invalid,
)


def _check_count(argument: str, value: Any, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        fix = f"pass an integer such as {argument}={example}"
        raise InputError(invalid(argument, f"an integer >= {minimum}", repr(value), fix))
    return int(value)


def spiral(
    samples: int = 100, classes: int = 3, *, noise: float = 0.2, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Interleaved spirals, one arm per class: the notes' classification data (notes §1.2–§1.7).

    For class k: r = linspace(0, 1, samples), t = linspace(4k, 4(k+1), samples) + noise·N(0, 1),
    points (r·sin(2.5t), r·cos(2.5t)). All classes are drawn at once, by broadcasting.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, class k in rows
        k*samples..(k+1)*samples-1.
    """
    samples = _check_count("samples", samples, 1, 100)
    classes = _check_count("classes", classes, 1, 3)
    if (
        isinstance(noise, bool)
        or not isinstance(noise, int | float | np.floating)
        or not (0 <= noise < np.inf)
    ):
        raise InputError(invalid("noise", "a finite float >= 0", repr(noise), "pass noise=0.2"))
    rng = np.random.default_rng(seed)
    k = np.arange(classes, dtype=np.float64)
    r = np.linspace(0.0, 1.0, samples)  # (samples,)
    t = np.linspace(4 * k, 4 * (k + 1), samples, axis=1)  # (classes, samples)
    t = t + noise * rng.standard_normal((classes, samples))
    X = np.stack([r * np.sin(2.5 * t), r * np.cos(2.5 * t)], axis=-1)  # (classes, samples, 2)
    y = np.repeat(np.arange(classes, dtype=np.int64), samples)
    return X.reshape(-1, 2).astype(np.float32), y


def vertical(
    samples: int = 100, classes: int = 3, *, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Vertical Gaussian blobs, one per class: the notes' first optimizer example (notes §1.4).

    For class k: x = 0.1·N(0, 1) + k/3, y-coordinate = 0.1·N(0, 1) + 0.5.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, grouped by class.
    """
    samples = _check_count("samples", samples, 1, 100)
    classes = _check_count("classes", classes, 1, 3)
    rng = np.random.default_rng(seed)
    centres = np.stack([np.arange(classes) / 3, np.full(classes, 0.5)], axis=-1)  # (classes, 2)
    X = 0.1 * rng.standard_normal((classes, samples, 2)) + centres[:, None, :]
    y = np.repeat(np.arange(classes, dtype=np.int64), samples)
    return X.reshape(-1, 2).astype(np.float32), y


def sine(samples: int = 1000) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One period of a sine: the notes' regression data (notes §1.8). Deterministic.

    X = i/samples for i = 0..samples-1, y = sin(2πX).

    Shape:
        X (samples, 1) float32, y (samples, 1) float32.
    """
    samples = _check_count("samples", samples, 1, 1000)
    X = (np.arange(samples, dtype=np.float64) / samples).reshape(-1, 1)
    return X.astype(np.float32), np.sin(2 * np.pi * X).astype(np.float32)
