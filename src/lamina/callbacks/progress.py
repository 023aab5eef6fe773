"""The progress display of ``Model.fit``, in the form the place it is shown in can render:
a live widget bar in a Jupyter notebook, a tqdm bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Literal

from lamina._params import Interval, Stream, checked, rule
from lamina.callbacks.base import Callback, Logs

Mode = Literal["notebook", "terminal", "lines", "silent"]


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel whose output a notebook shows.

    Decided as ``tqdm.autonotebook`` does, without importing anything: IPython's shell is
    ipykernel's (it has a ``kernel``, or the kernel application configured it), and not
    the Qt console's or Spyder's, which show no widgets.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    if shell is None:  # IPython imported as a library, no shell running
        return False
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False
    if "qt" in type(shell).__name__.lower() or "spyder" in type(shell).__name__.lower():
        return False
    return getattr(shell, "kernel", None) is not None or "IPKernelApp" in getattr(
        shell, "config", {}
    )


def widgets_available() -> bool:
    """Whether ipywidgets (the ``notebook`` extra) is there for tqdm's notebook bar."""
    try:
        from tqdm.notebook import IProgress
    except ImportError:
        return False
    return IProgress is not None


def display_mode(verbose: int, file: Any) -> Mode:
    """How a fit's progress is shown on ``file``: one of

    - ``"notebook"``: verbose 1, ``file`` is this process's stdout or stderr, in a Jupyter
      kernel with ipywidgets — one tqdm widget bar per epoch, kept, ending with the
      epoch's statistics (and no separate line: the bar is the record);
    - ``"terminal"``: verbose 1 on a terminal — a tqdm bar during the epoch, erased and
      replaced by the epoch's line;
    - ``"lines"``: verbose 2, or output that is not interactive (a log file, CI, a pipe, a
      notebook without ipywidgets) — one line per epoch, no carriage returns;
    - ``"silent"``: verbose 0.
    """
    if verbose == 0:
        return "silent"
    if verbose == 2:
        return "lines"
    if (file is sys.stderr or file is sys.stdout) and in_jupyter_kernel() and widgets_available():
        return "notebook"
    isatty = getattr(file, "isatty", None)
    try:
        interactive = bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed or detached stream
        interactive = False
    return "terminal" if interactive else "lines"


class ProgressBar(Callback):
    """The progress of a fit: a live bar in a notebook, a tqdm bar and a Keras-like line per
    epoch on a terminal, only the lines elsewhere (:func:`display_mode` decides, at every
    epoch, from where the bar would go).

    The bar's postfix shows the running means of the epoch so far (as Keras' does: the
    loss and metrics over every batch since the epoch began, sample-weighted), not the last
    batch's values; the epoch line, the epoch's. When a callback put back an earlier
    epoch's weights at the end (``EarlyStopping(restore_best_weights=True)``), a last line
    says which: the last epoch line is then not what the model holds.

    Args:
        verbose: 0 silent, 1 a bar where one can be shown (and epoch lines), 2 epoch
            lines only.
        file: where to write everything. By default the lines go to stdout (as Keras'
            do: ``python train.py > log`` keeps them) and the live bar to stderr (as
            tqdm's), which is then also the stream whose being a terminal decides the mode.
    """

    running_logs = True

    @checked(verbose=Interval(int, 0, 2), file=rule(Stream(), None))
    def __init__(self, verbose: int = 1, file: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.file = file
        self._bar: Any = None
        self._mode: Mode = "silent"

    @property
    def bar_file(self) -> Any:
        """Where the live bar goes: ``file``, else this process's stderr (read at each use,
        so a redirected ``sys.stderr`` counts)."""
        return self.file if self.file is not None else sys.stderr

    @property
    def line_file(self) -> Any:
        """Where the epoch lines go: ``file``, else this process's stdout."""
        return self.file if self.file is not None else sys.stdout

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = time.perf_counter()
        self._mode = display_mode(self.verbose, self.bar_file)
        options: dict[str, Any] = {
            "total": self.params.get("steps"),
            "desc": f"Epoch {epoch + 1}/{self.params.get('epochs')}",
            "unit": "step",
            "dynamic_ncols": True,
        }
        if self._mode == "notebook":
            from tqdm.notebook import tqdm as notebook_tqdm

            self._bar = notebook_tqdm(**options, leave=True)
        elif self._mode == "terminal":
            from tqdm.std import tqdm

            self._bar = tqdm(**options, file=self.bar_file, leave=False)

    def on_batch_end(self, step: int, logs: Logs) -> None:
        """``logs``: the running means of the epoch so far (:attr:`running_logs`)."""
        if self._bar is not None:
            self._bar.update(1)
            if step % 20 == 0:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        rate = f"{self.model.optimizer.current_learning_rate:.3g}"  # type: ignore[union-attr]
        if self._bar is not None:
            if self._mode == "notebook":  # the kept bar shows the epoch's statistics
                stats = {key: f"{value:.4f}" for key, value in logs.items()}
                self._bar.set_postfix({**stats, "lr": rate}, refresh=False)
            self._bar.close()
            self._bar = None
        if self._mode in ("terminal", "lines"):
            seconds = time.perf_counter() - self._start
            stats_line = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
            epochs = self.params.get("epochs")
            print(
                f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {stats_line} - lr: {rate}",
                file=self.line_file,
                flush=True,
            )

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._bar is not None:  # an epoch ended early (TerminateOnNaN, divergence)
            self._bar.close()
            self._bar = None
        restored = getattr(self.model.history, "restored", None)
        if restored is not None and self.verbose:
            print(restored, file=self.line_file, flush=True)
