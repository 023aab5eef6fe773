"""The progress display of ``Model.fit``: a tqdm bar per epoch and a line after each."""

from __future__ import annotations

import sys
import time
from typing import Any

from lamina._params import Interval, Stream, checked, rule
from lamina.callbacks.base import Callback, Logs


class ProgressBar(Callback):
    """A tqdm bar per epoch (only on a terminal) and a Keras-like line after each epoch.

    Args:
        verbose: 0 silent, 1 bar + epoch lines, 2 epoch lines only.
        file: where to write (stderr by default, like tqdm).
    """

    @checked(verbose=Interval(int, 0, 2), file=rule(Stream(), None))
    def __init__(self, verbose: int = 1, file: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.file = file if file is not None else sys.stderr
        self._bar: Any = None

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = time.perf_counter()
        interactive = getattr(self.file, "isatty", lambda: False)()
        if self.verbose == 1 and interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.params.get("steps"),
                desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                unit="step",
                file=self.file,
                leave=False,
                dynamic_ncols=True,
            )

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if step % 20 == 0:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose:
            seconds = time.perf_counter() - self._start
            stats = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
            rate = f"lr: {self.model.optimizer.current_learning_rate:.3g}"  # type: ignore[union-attr]
            epochs = self.params.get("epochs")
            print(
                f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {stats} - {rate}",
                file=self.file,
                flush=True,
            )
