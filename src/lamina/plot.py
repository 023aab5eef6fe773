"""Plots of training (matplotlib, the ``plot`` extra), each returning the figure.

Figures are drawn with the non-interactive Agg canvas, so they work without a screen.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamina.callbacks import History


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
