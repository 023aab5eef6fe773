r"""Data augmentation: random flips, rotations, shifts, crops and brightness (notes §1.5, §1.9).

Notes §1.5 "Preprocessing": copy a training sample and "make a slight modification to it that
still retains all the required features", e.g. rotate, crop or scale a photo; §1.9 lists
augmentation as the second preprocessing step of a training set. Here an augmentation maps a
batch of NHWC images X (N, H, W, C), float, to a new batch X̃ of the same shape and dtype, and
is applied afresh to every training batch, so each epoch sees different variants.

Shifts, crops and rotations are *inverse maps*: for each output pixel (y, x) of image n they
compute the source pixel (y', x') in the input and gather X[n, y', x'] with fancy indexing,
for the whole batch at once (no Python loop over images or pixels; a rotation reads the four
pixels around a real (y', x') and blends them). Sources outside the image are read per
``fill_mode`` (a, b, c, d are one row of the input)::

    constant   k k k k | a b c d | k k k k     (k = fill_value)
    nearest    a a a a | a b c d | d d d d
    reflect    d c b a | a b c d | d c b a     (about the edge of the last pixel)

Randomness: every draw comes from the ``rng`` passed to ``__call__`` (a model passes one
seeded from its ``seed``), and each call draws a fixed number of values for a given batch
size, so the same seed gives bit-identical augmented batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np

from lamina._params import Bounds, Instance, Interval, Options, Pair, checked, rule
from lamina._registry import Registry
from lamina.errors import ConfigError, InputError, ShapeError, invalid

Array = np.ndarray
OneOrTwo = float | tuple[float, float]  # one value for both axes (or ends), or two

AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")

FILL_MODES = ("constant", "nearest", "reflect")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")

# the arguments every augmentation that reads pixels from outside the image shares
FILL = {"fill_mode": Options(*FILL_MODES), "fill_value": Interval(float)}


class Augmentation:
    """Base class: ``augmentation(images, rng)`` returns a new, randomly transformed batch.

    A subclass implements ``transform`` (called with a checked, non-empty batch) and
    ``get_config``, and registers itself in ``AUGMENTATIONS`` under a snake_case name.

    Shape:
        images (N, H, W, C), float -> (N, H, W, C), same dtype; the input is never modified.
    """

    def __call__(self, images: Array, rng: np.random.Generator) -> Array:
        images = _check_images(type(self).__name__, images)
        if not isinstance(rng, np.random.Generator):
            raise InputError(
                invalid(
                    f"{type(self).__name__} rng",
                    "a numpy.random.Generator",
                    type(rng).__name__,
                    "pass np.random.default_rng(seed)",
                )
            )
        if images.shape[0] == 0:
            return images.copy()
        return self.transform(images, rng)

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        """The augmentation itself, on a checked non-empty batch; returns a new array."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able: ``from_config(get_config())`` rebuilds it."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@AUGMENTATIONS.register("random_flip")
class RandomFlip(Augmentation):
    r"""Mirror each image with probability p: X̃[n, y, x] = X[n, y, W−1−x] (horizontal) or
    X[n, H−1−y, x] (vertical), one independent draw u ~ U[0, 1) per image, flipped if u < p.

    Args:
        mode: ``"horizontal"`` (left ↔ right), ``"vertical"`` (top ↔ bottom) or
            ``"horizontal_and_vertical"`` (each axis drawn independently).
        probability: p, the chance that an image is flipped (per axis), in [0, 1].
    """

    @checked(mode=Options(*FLIP_MODES), probability=Interval(float, 0, 1))
    def __init__(self, mode: str = "horizontal", probability: float = 0.5) -> None:
        self.mode = mode
        self.probability = probability

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        out = images.copy()
        n = images.shape[0]
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (2, 1)}
        for axis in axes[self.mode]:
            flip = rng.random(n) < self.probability
            out[flip] = np.flip(out[flip], axis=axis)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"mode": self.mode, "probability": self.probability}


@AUGMENTATIONS.register("random_rotation")
class RandomRotation(Augmentation):
    r"""Rotate each image about its centre by θ ~ U[θ_min, θ_max] degrees, counter-clockwise
    as displayed (row 0 at the top), with bilinear interpolation.

    Inverse map, with (c_y, c_x) = ((H−1)/2, (W−1)/2), dy = y − c_y, dx = x − c_x:
        y' = c_y + dy·cos θ + dx·sin θ        x' = c_x − dy·sin θ + dx·cos θ
    X̃[n, y, x] is the bilinear blend of the four pixels around (y', x'). For exact multiples
    of 90°, cos θ and sin θ are taken exactly (0, ±1), so on square images a rotation by
    90° equals ``np.rot90(images, 1, axes=(1, 2))`` bit for bit.

    Args:
        max_degrees: δ ≥ 0 for θ ~ U[−δ, δ], or a range ``(θ_min, θ_max)`` with
            θ_min ≤ θ_max; ``(90, 90)`` always rotates by 90°.
        fill_mode: how pixels rotated in from outside are read (module docstring).
        fill_value: the value of those pixels for ``fill_mode="constant"``.
    """

    @checked(max_degrees=rule(Interval(float, 0), Bounds(strict=False)), **FILL)
    def __init__(
        self, max_degrees: OneOrTwo = 15.0, fill_mode: str = "constant", fill_value: float = 0.0
    ) -> None:
        self.max_degrees = max_degrees
        self.fill_mode = fill_mode
        self.fill_value = fill_value

    @property
    def degree_range(self) -> tuple[float, float]:
        """(θ_min, θ_max) in degrees."""
        if isinstance(self.max_degrees, tuple):
            return self.max_degrees
        return (-self.max_degrees, self.max_degrees)

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        n, h, w, _ = images.shape
        low, high = self.degree_range
        theta = np.asarray(rng.uniform(low, high, size=n))
        # coordinates in the images' precision (at least float32): half the memory of float64
        # for float32 images, and exact for whole coordinates either way
        dtype = np.result_type(images.dtype, np.float32)
        cos, sin = (v.astype(dtype)[:, None, None] for v in _exact_cos_sin(theta))
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        dy = (np.arange(h, dtype=dtype) - dtype.type(cy))[None, :, None]
        dx = (np.arange(w, dtype=dtype) - dtype.type(cx))[None, None, :]
        rows = dy * cos + dx * sin  # y', (N, H, W)
        rows += dtype.type(cy)
        cols = dx * cos - dy * sin  # x'
        cols += dtype.type(cx)
        return _bilinear(images, rows, cols, self.fill_mode, self.fill_value)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_degrees": _jsonable(self.max_degrees),
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
        }


@AUGMENTATIONS.register("random_shift")
class RandomShift(Augmentation):
    r"""Translate each image by whole pixels: X̃[n, y, x] = X[n, y − t_y, x − t_x], with
    t_y ~ U{−⌊f_h·H⌋, …, ⌊f_h·H⌋} and t_x ~ U{−⌊f_w·W⌋, …, ⌊f_w·W⌋} drawn per image
    (positive t_y moves the content down, positive t_x to the right).

    Args:
        max_fraction: f in [0, 1] for both axes, or ``(f_h, f_w)``.
        fill_mode: how pixels shifted in from outside are read (module docstring).
        fill_value: the value of those pixels for ``fill_mode="constant"``.
    """

    @checked(max_fraction=rule(Interval(float, 0, 1), Pair(Interval(float, 0, 1))), **FILL)
    def __init__(
        self, max_fraction: OneOrTwo = 0.1, fill_mode: str = "constant", fill_value: float = 0.0
    ) -> None:
        self.max_fraction = max_fraction
        self.fill_mode = fill_mode
        self.fill_value = fill_value

    def max_offsets(self, height: int, width: int) -> tuple[int, int]:
        """(⌊f_h·H⌋, ⌊f_w·W⌋), the largest shift in pixels along each axis."""
        f_h, f_w = _as_pair(self.max_fraction)
        return math.floor(f_h * height), math.floor(f_w * width)

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        n, h, w, _ = images.shape
        max_y, max_x = self.max_offsets(h, w)
        t_y = np.asarray(rng.integers(-max_y, max_y, size=n, endpoint=True))
        t_x = np.asarray(rng.integers(-max_x, max_x, size=n, endpoint=True))
        # X[y − t_y] = pad(X)[y − t_y + max_y]: the window of the padded batch at max − t
        padded = _pad(images, max_y, max_x, self.fill_mode, self.fill_value)
        return _windows(padded, max_y - t_y, max_x - t_x, h, w)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_fraction": _jsonable(self.max_fraction),
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
        }


@AUGMENTATIONS.register("random_crop")
class RandomCrop(Augmentation):
    r"""Pad each image by P pixels on every side, then cut an H×W window back out at a random
    offset (o_y, o_x) ~ U{0, …, 2P_h} × U{0, …, 2P_w} per image: the pad-and-crop of CIFAR
    training. X̃[n, y, x] = pad(X)[n, y + o_y, x + o_x].

    Args:
        padding: P ≥ 0 pixels on each side, or ``(P_h, P_w)``.
        fill_mode: how the padding is filled (module docstring); ``"constant"`` pads with
            ``fill_value`` (zeros by default), ``"nearest"`` repeats the edge pixel,
            ``"reflect"`` mirrors the image (``np.pad`` modes constant/edge/symmetric).
        fill_value: the padding value for ``fill_mode="constant"``.
    """

    @checked(
        padding=rule(Interval(int, 0), Pair(Interval(int, 0)), fix="pass e.g. padding=4"),
        **FILL,
    )
    def __init__(
        self,
        padding: int | tuple[int, int] = 4,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
    ) -> None:
        self.padding = padding
        self.fill_mode = fill_mode
        self.fill_value = fill_value

    def pad(self, images: Array) -> Array:
        """The padded batch (N, H + 2P_h, W + 2P_w, C) the windows are cut from."""
        p_h, p_w = _as_pair(self.padding)
        return _pad(images, int(p_h), int(p_w), self.fill_mode, self.fill_value)

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        n, h, w, _ = images.shape
        p_h, p_w = (int(p) for p in _as_pair(self.padding))
        o_y = np.asarray(rng.integers(0, 2 * p_h, size=n, endpoint=True))
        o_x = np.asarray(rng.integers(0, 2 * p_w, size=n, endpoint=True))
        return _windows(self.pad(images), o_y, o_x, h, w)

    def get_config(self) -> dict[str, Any]:
        return {
            "padding": _jsonable(self.padding),
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
        }


@AUGMENTATIONS.register("random_brightness")
class RandomBrightness(Augmentation):
    r"""Add one constant per image: X̃[n] = X[n] + Δₙ, Δₙ ~ U[−δ, δ], then optionally clip
    to [low, high] (e.g. ``clip=(0, 1)`` for images scaled to [0, 1], notes §1.5).

    Args:
        max_delta: δ ≥ 0, in the images' units (0.1 is 10% of a [0, 1] range).
        clip: ``(low, high)`` with low < high, or ``None`` for no clipping.
    """

    @checked(
        max_delta=Interval(float, 0),
        clip=rule(Bounds(), None, fix="pass e.g. clip=(0.0, 1.0)"),
    )
    def __init__(self, max_delta: float = 0.1, clip: tuple[float, float] | None = None) -> None:
        self.max_delta = max_delta
        self.clip = clip

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        delta = np.asarray(rng.uniform(-self.max_delta, self.max_delta, size=images.shape[0]))
        out = images + delta.astype(images.dtype)[:, None, None, None]
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"max_delta": self.max_delta, "clip": _jsonable(self.clip)}


@AUGMENTATIONS.register("augment")
class Augment(Augmentation):
    """A pipeline: the augmentations in ``steps`` applied in order, all drawing from one rng.

    Args:
        steps: augmentations, or their ``serialize`` specs (as ``get_config`` returns them).
    """

    @checked(
        steps=rule(
            Instance((list, tuple), "a list of augmentations"),
            fix="wrap them in a list, e.g. Augment([RandomFlip(), RandomShift()])",
        )
    )
    def __init__(self, steps: Sequence[Augmentation | dict[str, Any]] = ()) -> None:
        self.steps: list[Augmentation] = []
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                step = deserialize(step)
            if not isinstance(step, Augmentation):
                raise ConfigError(
                    invalid(f"Augment.steps[{index}]", "an Augmentation", repr(step)[:200])
                )
            self.steps.append(step)

    def transform(self, images: Array, rng: np.random.Generator) -> Array:
        out = images.copy() if not self.steps else images
        for step in self.steps:
            out = step(out, rng)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"steps": [serialize(step) for step in self.steps]}


def serialize(augmentation: Augmentation) -> dict[str, Any]:
    """``{"class": "random_flip", "config": {...}}``, JSON-able."""
    return AUGMENTATIONS.spec(augmentation)


def deserialize(spec: dict[str, Any]) -> Augmentation:
    """The augmentation a :func:`serialize` spec describes; only registered classes are built."""
    augmentation: Augmentation = AUGMENTATIONS.build(spec)
    return augmentation


def as_list(augmentation: Any) -> list[Callable[[Array, np.random.Generator], Array]]:
    """A model's ``augmentation=``: None, one callable ``(images, rng) -> images`` or a list
    of them, as a list; anything not callable is a ConfigError naming its index."""
    if augmentation is None:
        return []
    steps = list(augmentation) if isinstance(augmentation, list | tuple) else [augmentation]
    for index, step in enumerate(steps):
        if not callable(step):
            raise ConfigError(
                invalid(f"augmentation[{index}]", "a callable (images, rng)", type(step).__name__)
            )
    return steps


def get(
    augmentation: str | Augmentation | dict[str, Any] | Sequence[str | Augmentation],
) -> Augmentation:
    """An augmentation from a registered name (with its defaults), an instance, a
    :func:`serialize` spec, or a list of those (an :class:`Augment` pipeline)."""
    if isinstance(augmentation, Augmentation):
        return augmentation
    if isinstance(augmentation, dict):
        return deserialize(augmentation)
    if isinstance(augmentation, str):
        return AUGMENTATIONS.lookup(augmentation)()
    if isinstance(augmentation, Sequence):
        return Augment([get(step) for step in augmentation])
    raise ConfigError(
        invalid(
            "augmentation",
            f"an Augmentation, a spec, one of {sorted(AUGMENTATIONS)}, or a list of them",
            repr(augmentation)[:200],
        )
    )


# --- sampling ------------------------------------------------------------------------------


def _exact_cos_sin(degrees: Array) -> tuple[Array, Array]:
    """cos θ and sin θ, exactly 0 or ±1 where θ is a whole multiple of 90°."""
    radians = np.deg2rad(degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    right = np.mod(degrees, 90.0) == 0
    if right.any():
        quarter = np.rint(degrees[right] / 90.0).astype(np.int64) % 4
        cos[right] = np.array([1.0, 0.0, -1.0, 0.0])[quarter]
        sin[right] = np.array([0.0, 1.0, 0.0, -1.0])[quarter]
    return cos, sin


def _bilinear(images: Array, rows: Array, cols: Array, fill_mode: str, fill_value: float) -> Array:
    """Bilinear sample of each image n at real coordinates (rows[n], cols[n]), each (N, H, W).

    With y₀ = ⌊y'⌋, f_y = y' − y₀ (likewise x₀, f_x) and P the four pixels around (y', x'):
        top = P[y₀, x₀] + f_x·(P[y₀, x₀+1] − P[y₀, x₀])      (bottom likewise at y₀ + 1)
        X̃ = top + f_y·(bottom − top)
    A whole coordinate (f = 0) gives P[y₀, x₀] exactly, which makes right angles bit-exact.
    The batch is first padded per ``fill_mode`` far enough that every 2×2 neighbourhood lies
    inside, so the four reads are plain ``np.take`` calls on one flat table.
    """
    n, h, w, c = images.shape
    y0, x0 = np.floor(rows), np.floor(cols)
    # rows from y₀.min() to y₀.max() + 1 are read: pad that far (likewise columns)
    pad_y = int(max(0.0, -y0.min(), y0.max() + 2 - h))
    pad_x = int(max(0.0, -x0.min(), x0.max() + 2 - w))
    padded = _pad(images, pad_y, pad_x, fill_mode, fill_value)
    padded_w = w + 2 * pad_x
    rows -= y0  # f_y, in place (fresh memory costs page faults on every call)
    cols -= x0  # f_x
    fy = rows.astype(images.dtype, copy=False)[..., None]
    fx = cols.astype(images.dtype, copy=False)[..., None]
    if (h + 2 * pad_y) * padded_w >= 2.0 ** (np.finfo(y0.dtype).nmant + 1):
        y0, x0 = y0.astype(np.float64), x0.astype(np.float64)  # keep the flat index exact
    y0 += pad_y  # y₀ becomes the flat index of P[y₀, x₀] within its padded image
    y0 *= padded_w
    y0 += x0
    y0 += pad_x
    index = y0.astype(np.intp)
    index += (np.arange(n) * ((h + 2 * pad_y) * padded_w))[:, None, None]
    # the right and lower neighbours are the same index into the table shifted by 1 and by
    # one padded row, so no further index arrays are built
    table = padded.reshape(-1, c)
    top = np.take(table, index, axis=0)
    right = np.take(table[1:], index, axis=0)
    right -= top
    right *= fx
    top += right  # top row blended in x
    bottom = np.take(table[padded_w:], index, axis=0, out=right)
    right = np.take(table[padded_w + 1 :], index, axis=0)
    right -= bottom
    right *= fx
    bottom += right  # bottom row blended in x
    bottom -= top
    bottom *= fy
    top += bottom
    return top


def _pad(images: Array, pad_y: int, pad_x: int, fill_mode: str, fill_value: float) -> Array:
    """The batch padded by pad_y rows above and below and pad_x columns left and right, filled
    per ``fill_mode`` (module docstring; ``np.pad`` modes constant, edge and symmetric)."""
    widths = ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0))
    if fill_mode == "constant":
        return np.pad(images, widths, mode="constant", constant_values=fill_value)
    return np.pad(images, widths, mode="edge" if fill_mode == "nearest" else "symmetric")


def _windows(padded: Array, top: Array, left: Array, height: int, width: int) -> Array:
    """padded[n, top[n] : top[n] + height, left[n] : left[n] + width] for every n, as one
    fancy-index gather (the index arrays broadcast, so no (N, H, W) index is built)."""
    rows = top[:, None, None] + np.arange(height)[None, :, None]
    cols = left[:, None, None] + np.arange(width)[None, None, :]
    return padded[np.arange(padded.shape[0])[:, None, None], rows, cols]


# --- validation ----------------------------------------------------------------------------


def _check_images(owner: str, images: Array) -> Array:
    if not isinstance(images, np.ndarray):
        raise InputError(
            invalid(
                f"{owner} images",
                "a numpy array (batch, H, W, C)",
                type(images).__name__,
                "pass np.asarray(images, dtype=np.float32)",
            )
        )
    if images.ndim != 4 or min(images.shape[1:], default=0) < 1:
        raise ShapeError(
            invalid(
                f"{owner} images",
                "a 4-D NHWC batch of shape (batch, H, W, C) with H, W, C ≥ 1",
                f"shape {images.shape}",
                "reshape, e.g. images.reshape(-1, 28, 28, 1) for 28×28 grayscale images",
            )
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise InputError(
            invalid(
                f"{owner} images",
                "a float array",
                f"dtype {images.dtype}",
                "scale first, e.g. images.astype(np.float32) / 255 (notes §1.5)",
            )
        )
    return images


def _as_pair(value: float | tuple[float, float]) -> tuple[float, float]:
    return value if isinstance(value, tuple) else (value, value)


def _jsonable(value: Any) -> object:
    return list(value) if isinstance(value, tuple) else value
