"""Plots of training (matplotlib, the ``plot`` extra), each returning the figure.

Figures are drawn with the non-interactive Agg canvas, so they work without a screen.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lamina.errors import ConfigError, InputError, ShapeError, invalid

if TYPE_CHECKING:
    from lamina.callbacks import History
    from lamina.lr_finder import LRFinderResult


def history(history: History, path: str | os.PathLike[str] | None = None) -> Any:
    """Loss and accuracy per epoch, training against validation (notes §1.5: overfitting
    shows as the two curves drifting apart). Saves a PNG when ``path`` is given."""
    from matplotlib.figure import Figure

    metrics = [key for key in history.history if not key.startswith("val_")]
    figure = Figure(figsize=(5 * len(metrics), 3.6), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    epochs = [epoch + 1 for epoch in history.epoch]
    for axis, key in zip(axes, metrics, strict=True):
        axis.plot(epochs, history.history[key], marker="o", label="training")
        if f"val_{key}" in history.history:
            axis.plot(epochs, history.history[f"val_{key}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.set_title(key)
        axis.grid(alpha=0.3)
        axis.legend()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def images_grid(
    images: np.ndarray,
    labels: Sequence[int | str] | np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    columns: int = 8,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """A grid of images, one axes each, captioned with its label: the way to look at samples
    and check that preprocessing and augmentation keep "all the required features" (notes
    §1.5, §1.9). Saves a PNG when ``path`` is given.

    Display values are ``(x − min) / (max − min)`` with min and max over all the images, so
    relative brightness stays visible; grayscale when C = 1, RGB when C = 3.

    Args:
        images: (N, H, W, C) with C ∈ {1, 3}, or (N, H, W) grayscale; any real dtype.
        labels: N class indices, names, or one-hot rows; captions when given.
        class_names: names for integer labels (e.g. ``lamina.datasets.FASHION_MNIST_CLASSES``).
        columns: images per row (fewer when there are fewer images).
        title: the figure's title.
    Returns:
        The matplotlib ``Figure``, with one axes per image.
    """
    from matplotlib.figure import Figure

    pixels = np.asarray(images)
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4 or pixels.shape[-1] not in (1, 3) or pixels.shape[0] == 0:
        raise ShapeError(
            invalid(
                "images",
                "a non-empty batch (N, H, W, C) with C = 1 or 3, or (N, H, W)",
                f"shape {pixels.shape}",
                "reshape, e.g. images.reshape(-1, 28, 28, 1)",
            )
        )
    if pixels.dtype.kind not in "iuf":
        raise InputError(invalid("images", "real pixel values", f"dtype {pixels.dtype}"))
    if not np.isfinite(pixels).all():
        raise InputError(invalid("images", "finite pixel values", "NaN or inf values"))
    if not (isinstance(columns, int) and not isinstance(columns, bool) and columns >= 1):
        raise ConfigError(invalid("columns", "an int ≥ 1", repr(columns)))
    captions: list[str] = []
    if labels is not None:
        values = np.asarray(labels)
        if values.ndim == 2:  # one-hot rows
            values = values.argmax(axis=1)
        if values.shape != (len(pixels),):
            raise ShapeError(
                invalid("labels", f"{len(pixels)} labels, one per image", f"shape {values.shape}")
            )
        names = class_names if np.issubdtype(values.dtype, np.integer) else None
        if names is not None and (values.min() < 0 or values.max() >= len(names)):
            raise InputError(
                invalid(
                    "labels",
                    f"class indices in [0, {len(names)}) to look up in class_names",
                    f"labels from {values.min()} to {values.max()}",
                )
            )
        captions = [str(v if names is None else names[v]) for v in values.tolist()]

    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels.astype(np.float64) - low) / (high - low if high > low else 1.0)
    n = len(scaled)
    n_columns = min(columns, n)
    n_rows = math.ceil(n / n_columns)
    caption_height = 0.25 if captions else 0.0
    figure = Figure(
        figsize=(1.3 * n_columns, (1.3 + caption_height) * n_rows + (0.4 if title else 0.0)),
        layout="constrained",
    )
    for i, image in enumerate(scaled):
        axis = figure.add_subplot(n_rows, n_columns, i + 1)
        if image.shape[-1] == 1:
            axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            axis.imshow(image, interpolation="nearest")
        axis.set_axis_off()
        if captions:
            axis.set_title(captions[i], fontsize=8)
    if title:
        figure.suptitle(title)
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def confusion_matrix(
    matrix: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """A heat map of a confusion matrix (rows: true class, columns: predicted class), from
    :func:`lamina.metrics.confusion_matrix`; each row is shown as fractions of that class
    when ``normalize``, with the counts written in the cells."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ShapeError(
            invalid("matrix", "a square (classes, classes) array", f"shape {counts.shape}")
        )
    k = len(counts)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    figure = Figure(figsize=(1.0 + 0.6 * k, 0.8 + 0.55 * k), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(shown, cmap="Blues", vmin=0)
    figure.colorbar(
        image,
        ax=axis,
        fraction=0.046,
        label="fraction of the true class" if normalize else "samples",
    )
    axis.set_xticks(range(k), names, rotation=45, ha="right")
    axis.set_yticks(range(k), names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    threshold = shown.max() / 2 if shown.size else 0
    for row in range(k):
        for column in range(k):
            axis.text(
                column,
                row,
                f"{int(counts[row, column])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shown[row, column] > threshold else "black",
            )
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def decision_boundary(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    resolution: int = 200,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The class a model predicts over the plane of 2-D data (the notes' spiral, §1.2), with
    the samples on top: each grid point is coloured by its argmax (or by ŷ > 0.5 for one
    sigmoid output)."""
    from matplotlib.figure import Figure

    points = np.asarray(X)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ShapeError(invalid("X", "2-D samples of shape (n, 2)", f"shape {points.shape}"))
    margin = 0.1 * (points.max(axis=0) - points.min(axis=0))
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    xs, ys = np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    outputs = model.predict(grid)
    classes = outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0.5)
    labels = np.asarray(y).reshape(len(points), -1)
    labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]
    figure = Figure(figsize=(5, 4.5), layout="constrained")
    axis = figure.subplots()
    axis.contourf(
        xs,
        ys,
        classes.reshape(resolution, resolution).astype(float),
        alpha=0.3,
        cmap="brg",
        levels=np.arange(-0.5, max(int(classes.max()), 1) + 1.5),
    )
    axis.scatter(
        points[:, 0], points[:, 1], c=labels, cmap="brg", s=10, edgecolors="k", linewidths=0.3
    )
    axis.set_title("decision boundary")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def predictions_grid(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    columns: int = 8,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Images captioned with the predicted class and its confidence (notes §1.10), and the
    true class when ``labels`` are given (red when the prediction is wrong)."""
    from matplotlib.figure import Figure

    pictures = np.asarray(images)
    outputs = model.predict(pictures)
    predicted, confidence = outputs.argmax(axis=1), outputs.max(axis=1)
    names = list(class_names) if class_names is not None else None
    n = len(pictures)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(1.6 * min(columns, n), 1.9 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, min(columns, n), squeeze=False)).ravel()
    shown = (
        pictures.reshape(n, *pictures.shape[1:3])
        if pictures.ndim == 4 and pictures.shape[-1] == 1
        else pictures
    )
    for index, axis in enumerate(axes):
        axis.axis("off")
        if index >= n:
            continue
        axis.imshow(shown[index], cmap="gray" if shown[index].ndim == 2 else None)
        guess = names[predicted[index]] if names else str(predicted[index])
        caption = f"{guess} {confidence[index]:.2f}"
        wrong = False
        if labels is not None:
            truth = int(np.asarray(labels)[index])
            caption += f"\n(true: {names[truth] if names else truth})"
            wrong = truth != predicted[index]
        axis.set_title(caption, fontsize=7, color="red" if wrong else "black")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def lr_finder(result: LRFinderResult, path: str | os.PathLike[str] | None = None) -> Any:
    """The learning-rate range test's curve (``lamina.lr_finder``): each step's loss and
    the smoothed loss against the learning rate on a log axis, the suggested rate marked
    with its rule. Saves a PNG when ``path`` is given."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    axis.plot(result.learning_rates, result.losses, alpha=0.3, label="loss of each step")
    axis.plot(result.learning_rates, result.smoothed, label="smoothed loss")
    axis.axvline(result.suggestion, color="C2", linestyle="--", label="suggested rate")
    axis.set_xscale("log")
    finite = np.concatenate([result.losses, result.smoothed])
    finite = finite[np.isfinite(finite)]
    low, high = float(finite.min()), float(result.smoothed[0])
    axis.set_ylim(low - 0.05 * abs(high - low), max(high, low) * 1.5)  # the explosion cut
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss")
    axis.set_title(f"suggested {result.suggestion:.2g} ({result.rule.split(':')[0]})")
    axis.grid(alpha=0.3)
    axis.legend()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
