"""The notes' synthetic data sets: spiral, vertical and sine (the nnfs book's generators).

Each generator checks its arguments before drawing anything, with the rules of
:mod:`lamina.datasets.checks` that ``lamina.config`` applies to a ``[data]`` table too, so a
bad value gives the same message from Python and from a config file.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lamina.datasets.checks import MAX_SAMPLES, check_count, check_noise, check_rows, check_seed

__all__ = [
    "MAX_SAMPLES",
    "check_count",
    "check_noise",
    "check_rows",
    "check_seed",
    "sine",
    "spiral",
    "vertical",
]


def spiral(
    samples: int = 100, classes: int = 3, *, noise: float = 0.2, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Interleaved spirals, one arm per class: the classification data of the notes' examples
    (§1.2–§1.7 train on it; the notes do not define it: this is the nnfs book's generator).

    For class k: r = linspace(0, 1, samples), t = linspace(4k, 4(k+1), samples) + noise·N(0, 1),
    points (r·sin(2.5t), r·cos(2.5t)). All classes are drawn at once, by broadcasting.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, class k in rows
        k*samples..(k+1)*samples-1.
    Raises:
        ConfigError: a count that is not an int ≥ 1, more than :data:`MAX_SAMPLES` rows,
            a negative or non-finite ``noise``, a ``seed`` that is not an int ≥ 0 or None.
    """
    samples = check_count("samples", samples, 1, 100)
    classes = check_count("classes", classes, 1, 3)
    check_rows(samples, classes)
    noise = check_noise(noise)
    rng = np.random.default_rng(check_seed(seed))
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
    """Vertical Gaussian blobs, one per class: the data of the notes' optimizer examples
    (§1.4; defined by the nnfs book, not by the notes).

    For class k: x = 0.1·N(0, 1) + k/3, y-coordinate = 0.1·N(0, 1) + 0.5.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, grouped by class.
    Raises:
        ConfigError: as for :func:`spiral`.
    """
    samples = check_count("samples", samples, 1, 100)
    classes = check_count("classes", classes, 1, 3)
    check_rows(samples, classes)
    rng = np.random.default_rng(check_seed(seed))
    centres = np.stack([np.arange(classes) / 3, np.full(classes, 0.5)], axis=-1)  # (classes, 2)
    X = 0.1 * rng.standard_normal((classes, samples, 2)) + centres[:, None, :]
    y = np.repeat(np.arange(classes, dtype=np.int64), samples)
    return X.reshape(-1, 2).astype(np.float32), y


def sine(samples: int = 1000) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One period of a sine: the regression data of the notes' §1.8 examples (the nnfs
    book's generator). Deterministic.

    X = i/samples for i = 0..samples-1, y = sin(2πX).

    Shape:
        X (samples, 1) float32, y (samples, 1) float32.
    Raises:
        ConfigError: ``samples`` is not an int in [1, :data:`MAX_SAMPLES`].
    """
    samples = check_count("samples", samples, 1, 1000)
    check_rows(samples)
    X = (np.arange(samples, dtype=np.float64) / samples).reshape(-1, 1)
    return X.astype(np.float32), np.sin(2 * np.pi * X).astype(np.float32)
