"""Training as TensorBoard event files: scalars, histograms, kernels, the summary
(notes §1.9, §2.2).

Written with tensorboardX (``pip install 'lamina[tensorboard]'``), read by the TensorBoard
server: ``tensorboard --logdir runs/…``.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from lamina._params import FilePath, Flag, Interval, Options, checked, rule
from lamina.callbacks.base import Callback, Logs
from lamina.errors import ConfigError, invalid
from lamina.layers.base import Layer
from lamina.layers.conv import Conv2D
from lamina.layers.stack import summary_table

if TYPE_CHECKING:
    from tensorboardX import SummaryWriter

Array = np.ndarray
TILE_PIXELS = 32  # kernel tiles are scaled up to about this size (3×3 pixels are too small)
GAP_PIXELS = 2


class TensorBoard(Callback):
    """Write what a fit does as TensorBoard event files under ``log_dir``, in Keras'
    layout: the run ``train`` and, with validation data, the run ``validation``, so that
    TensorBoard draws both curves of a value in one chart.

    - scalars: ``epoch_<name>`` after each epoch (step = the 0-based epoch; ``val_loss``
      is ``epoch_loss`` of ``validation``), ``epoch_learning_rate`` (the optimizer's
      current rate at the epoch's end) and, with ``update_freq``, ``batch_<name>`` of
      the batches (step = epoch · steps + batch, so a resumed fit continues the axis; for
      a stream of unknown length, the batches of this fit counted from 0);
    - histograms every ``histogram_freq`` epochs (epochs 0, f, 2f, …):
      ``weights/<layer>/<param>``, ``gradients/<layer>/<param>`` (those of the epoch's last
      batch) and ``activations/<step>`` — each step's outputs on the epoch's first batch,
      seen through ``model.plan.observers`` (step names as in ``plan.step_names``:
      ``dense_1/relu`` is the activation of ``dense_1``; TensorBoard shows a fused
      ``conv2d+max_pool2d`` as ``conv2d_max_pool2d``);
    - with ``write_images``, at the same epochs, ``kernels/<layer>``: the first Conv2D's
      kernels as a grid, one tile per filter (its input channels side by side), each
      filter scaled to its own min…max (black…white);
    - the model's summary table as the text ``model/summary`` (TensorBoard's tag
      ``model/summary/text_summary``), once per fit, at its first epoch.

    Nothing is written outside ``log_dir``; a fit without this callback pays nothing.

    Args:
        log_dir: the folder of the runs (created).
        histogram_freq: write histograms (and kernels) every this many epochs; 0 never.
        update_freq: ``"epoch"`` (epoch scalars only), ``"batch"`` (every batch too) or n
            (every n-th batch too).
        write_images: the first Conv2D's kernels as an image.
    """

    @checked(
        log_dir=FilePath(),
        histogram_freq=rule(Interval(int, 0), fix="use e.g. histogram_freq=1 (0: none)"),
        update_freq=rule(
            Options("epoch", "batch"), Interval(int, 1), fix="use 'epoch', 'batch' or e.g. 100"
        ),
        write_images=Flag(),
    )
    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        histogram_freq: int = 1,
        update_freq: str | int = "epoch",
        write_images: bool = True,
    ) -> None:
        super().__init__()
        _writer_class()  # a missing extra is an error now, not after the first epoch
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.update_freq = update_freq
        self.write_images = write_images
        #: batch scalars every this many batches (0: none)
        self._every = (
            0 if update_freq == "epoch" else 1 if update_freq == "batch" else int(update_freq)
        )
        self._writers: dict[str, SummaryWriter] = {}
        self._epoch = 0
        self._batches = 0  # of this fit: the step of a stream's batches (no steps per epoch)

    # -- the hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs: Logs | None = None) -> None:
        if os.path.lexists(self.log_dir) and not os.path.isdir(self.log_dir):
            raise ConfigError(
                invalid(
                    "TensorBoard.log_dir",
                    "a folder",
                    repr(self.log_dir),
                    "it is a file; name a new or existing folder, e.g. 'runs/tb'",
                ),
                argument="log_dir",
            )
        os.makedirs(self.log_dir, exist_ok=True)
        self._batches = 0
        first = int(self.params.get("initial_epoch", 0))
        summary = summary_table(self.model.layers)
        # indented: a Markdown code block, so TensorBoard keeps the table's columns
        self._writer("train").add_text(
            "model/summary", "\n".join("    " + line for line in summary.splitlines()), first
        )

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch
        if self._histograms_due(epoch):
            self.model.plan.observers.append(self._observe)

    def on_batch_end(self, step: int, logs: Logs) -> None:
        self._stop_observing()  # activations of one batch are enough
        steps = self.params.get("steps")
        global_step = self._epoch * steps + step if steps else self._batches
        self._batches += 1
        if self._every and global_step % self._every == 0:
            writer = self._writer("train")
            for name, value in logs.items():
                writer.add_scalar(f"batch_{name}", value, global_step)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._stop_observing()
        for name, value in logs.items():
            run, name = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(run).add_scalar(f"epoch_{name}", value, epoch)
        train = self._writer("train")
        optimizer = self.model.optimizer
        if optimizer is not None:
            train.add_scalar("epoch_learning_rate", optimizer.current_learning_rate, epoch)
        if self._histograms_due(epoch):
            for layer in self.model.layers:
                for key, values in layer.params.items():
                    self._histogram(f"weights/{layer.name}/{key}", values, epoch)
                    gradient = layer.grads.get(key)
                    if layer.trainable and gradient is not None:
                        self._histogram(f"gradients/{layer.name}/{key}", gradient, epoch)
            convolution = next((c for c in self.model.layers if isinstance(c, Conv2D)), None)
            if self.write_images and convolution is not None:
                grid = kernel_grid(convolution.params["weights"])
                train.add_image(f"kernels/{convolution.name}", grid, epoch, dataformats="HW")
        for writer in self._writers.values():
            writer.flush()  # each epoch visible while the run goes on

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._stop_observing()
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # -- helpers ---------------------------------------------------------------------------
    def _histograms_due(self, epoch: int) -> bool:
        return bool(self.histogram_freq) and epoch % self.histogram_freq == 0

    def _observe(self, name: str, layer: Layer, outputs: Array) -> None:
        # summarised now: the next step may overwrite ``outputs`` in place
        self._histogram(f"activations/{name}", outputs, self._epoch)

    def _histogram(self, tag: str, values: Array, step: int) -> None:
        if values.size:  # tensorboardX refuses an empty array
            self._writer("train").add_histogram(tag, values, step)

    def _stop_observing(self) -> None:
        observers = self.model.plan.observers
        while self._observe in observers:
            observers.remove(self._observe)

    def _writer(self, run: str) -> SummaryWriter:
        if run not in self._writers:
            # tensorboardX names a file by the second it was opened in, and truncates a
            # file of that name: the nanoseconds and the process keep a quick second fit
            # (a resumed one) from erasing the first one's file, in the order written
            suffix = f".{time.time_ns() % 10**9:09d}.{os.getpid()}"
            self._writers[run] = _writer_class()(
                os.path.join(self.log_dir, run), filename_suffix=suffix
            )
        return self._writers[run]


def kernel_grid(kernels: Array) -> Array:
    """The kernels (kh, kw, C, F) of a Conv2D as one uint8 image: a near-square grid of F
    tiles, each filter's C channels side by side, each filter scaled to its own
    min…max; tiles scaled up by whole pixels and separated by black gaps."""
    kh, kw, channels, filters = kernels.shape
    scale = max(1, TILE_PIXELS // max(kh, kw))
    columns = math.ceil(math.sqrt(filters))
    rows = math.ceil(filters / columns)
    tile_h, tile_w = kh * scale, channels * kw * scale + (channels - 1) * GAP_PIXELS
    grid = np.zeros(
        (rows * (tile_h + GAP_PIXELS) - GAP_PIXELS, columns * (tile_w + GAP_PIXELS) - GAP_PIXELS),
        np.uint8,
    )
    for f in range(filters):
        kernel = kernels[..., f].astype(np.float64)
        low, span = kernel.min(), np.ptp(kernel)
        unit = (kernel - low) / span if span > 0 else np.full_like(kernel, 0.5)
        pixels = np.repeat(np.repeat(np.rint(unit * 255).astype(np.uint8), scale, 0), scale, 1)
        top = (f // columns) * (tile_h + GAP_PIXELS)
        left = (f % columns) * (tile_w + GAP_PIXELS)
        for c in range(channels):
            x = left + c * (kw * scale + GAP_PIXELS)
            grid[top : top + tile_h, x : x + kw * scale] = pixels[:, :, c]
    return grid


def _writer_class() -> type[SummaryWriter]:
    try:
        import PIL  # noqa: F401  (tensorboardX encodes the kernel images with it)
        from tensorboardX import SummaryWriter
    except ImportError as error:
        raise ImportError(
            f"callbacks.TensorBoard needs tensorboardX and Pillow ({error}). "
            "Fix: pip install 'lamina[tensorboard]'"
        ) from error
    return SummaryWriter
