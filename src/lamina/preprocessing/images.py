"""Image transformers: flatten, grayscale, resize (notes §1.9 "Data sets")."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina._params import Interval, Pair, checked, rule
from lamina.errors import ShapeError, invalid
from lamina.preprocessing.base import (
    TRANSFORMERS,
    Transformer,
    check_array,
    float_dtype,
)

Array = np.ndarray


@TRANSFORMERS.register("flatten")
class Flatten(Transformer):
    """Each sample to one row (notes §1.9 "Flattening"): (N, d₁, d₂, …) → (N, d₁·d₂·…).

    Stateless; keeps the dtype and returns a view of ``X`` when ``X`` is contiguous.
    """

    def transform(self, X: ArrayLike) -> Array:
        X = check_array(X, self, "transform")
        return X.reshape(len(X), -1)


@TRANSFORMERS.register("grayscale")
class Grayscale(Transformer):
    """RGB(A) images to one luma channel with ITU-R BT.601 weights (notes §1.9 "Grayscale"):

        Y = 0.299·R + 0.587·G + 0.114·B

    (Pillow's ``convert("L")`` uses the same weights but rounds to uint8.) Alpha is ignored,
    not composited. One-channel images pass through. Stateless.

    Shape:
        X (N, H, W, C) with C in {1, 3, 4} -> (N, H, W, 1), float (X's float dtype, else
        float32; uint8 pixels stay in [0, 255])
    """

    weights = np.array([0.299, 0.587, 0.114])

    def transform(self, X: ArrayLike) -> Array:
        X = check_array(X, self, "transform")
        if X.ndim != 4 or X.shape[3] not in (1, 3, 4):
            raise ShapeError(
                "Grayscale.transform: "
                + invalid(
                    "X",
                    "NHWC images of shape (N, H, W, C) with C = 1, 3 (RGB) or 4 (RGBA)",
                    f"shape {X.shape}",
                    "add a channel axis to one-channel images (X[..., np.newaxis])"
                    if X.ndim == 3
                    else "pass channels-last images",
                )
            )
        dtype = float_dtype(X)
        if X.shape[3] == 1:
            return X.astype(dtype, copy=False)
        luma = X[..., :3].astype(dtype, copy=False) @ self.weights.astype(dtype)
        return luma[..., np.newaxis]


@TRANSFORMERS.register("resize")
class Resize(Transformer):
    r"""Resize every image to ``size`` with bilinear interpolation, as Pillow does it.

    The resampling is separable: along each axis, output pixel o (centre at (o + ½)·s in
    input pixels, s = n_in/n_out) is the weighted mean of input pixels i with weights

        w(i, o) = max(0, 1 − |(i + ½) − (o + ½)·s| / max(s, 1)),  normalised to sum 1

    i.e. the triangle filter of Pillow's ``Image.resize(size, Image.BILINEAR)`` (equal to
    it within float rounding for mode "F"; Pillow's uint8 path also rounds each pass).
    Enlarging is plain bilinear interpolation with half-pixel centres (edge pixels
    repeat). Shrinking widens the triangle to ±s input pixels, so every input pixel
    contributes (antialiasing): halving is a (1, 3, 3, 1)/8-style blur and subsample, not
    a 2×2 block mean. Weights falling outside the image are dropped and the rest
    renormalised. Each axis is one matrix product over the whole batch. Stateless.

    Args:
        size: (height, width) of the output, or one int for squares.
    Shape:
        X (N, H, W, C) or (N, H, W) -> (N, height, width, C) or (N, height, width), float
        (X's float dtype, else float32; uint8 pixels stay in [0, 255], unrounded). When
        the size already matches, X is returned as is (cast if needed).
    """

    @checked(size=rule(Pair(Interval(int, 1)), fix="pass positive ints, e.g. size=(28, 28)"))
    def __init__(self, size: int | tuple[int, int] = (28, 28)) -> None:
        self.size: tuple[int, int] = size  # type: ignore[assignment]  # a pair by now

    def transform(self, X: ArrayLike) -> Array:
        X = check_array(X, self, "transform")
        if X.ndim not in (3, 4):
            raise ShapeError(
                "Resize.transform: "
                + invalid("X", "images of shape (N, H, W, C) or (N, H, W)", f"shape {X.shape}")
            )
        dtype = float_dtype(X)
        out = X.astype(dtype, copy=False)
        n, height, width = X.shape[:3]
        channels = X.shape[3:]
        if height != self.size[0]:
            rows = _bilinear_weights(height, self.size[0]).astype(dtype)
            out = rows @ out.reshape(n, height, -1)
        if width != self.size[1]:
            columns = _bilinear_weights(width, self.size[1]).astype(dtype)
            out = columns @ out.reshape(n * self.size[0], width, -1)
        return out.reshape(n, *self.size, *channels)

    def get_config(self) -> dict[str, Any]:
        return {"size": list(self.size)}


def _bilinear_weights(n_in: int, n_out: int) -> Array:
    """The (n_out, n_in) matrix of Pillow's bilinear (triangle) filter, rows summing to 1."""
    s = n_in / n_out
    centre = (np.arange(n_out) + 0.5) * s
    distance = np.abs((np.arange(n_in) + 0.5)[np.newaxis, :] - centre[:, np.newaxis])
    weights = np.maximum(0.0, 1.0 - distance / max(s, 1.0))
    # every row has a positive weight: the nearest input centre is ≤ ½ pixel from the output's
    return weights / weights.sum(axis=1, keepdims=True)


# -- pipeline -----------------------------------------------------------------------------
