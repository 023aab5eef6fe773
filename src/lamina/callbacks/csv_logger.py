"""Epoch statistics as a CSV file (notes §1.9)."""

from __future__ import annotations

import csv
import io
import os

from lamina._files import atomic_write, read_regular
from lamina._params import FilePath, Flag, checked
from lamina.callbacks.base import Callback, Logs
from lamina.errors import ConfigError

CSV_LIMIT = 256 * 1024 * 1024


class CSVLogger(Callback):
    """Write the epoch statistics to a CSV file, one row per epoch; the whole file is
    rewritten atomically after each epoch, so it is never half-written.

    Args:
        path: the CSV file.
        append: keep the rows of an earlier run (resuming). Rows of epochs after the one
            a resumed fit starts from (written by a run that went on past the checkpoint
            it is resumed from) are dropped, so each epoch has one row.
    """

    @checked(path=FilePath(), append=Flag())
    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.append = append

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._rows: list[dict[str, str]] = []
        if self.append and os.path.lexists(self.path):
            text = read_regular(
                self.path, what="CSV log", limit=CSV_LIMIT, error=ConfigError
            ).decode("utf-8", "replace")
            self._rows = list(csv.DictReader(io.StringIO(text)))
            first = self.params.get("initial_epoch", 0)
            if first:  # resuming: drop the rows of epochs this fit trains again
                self._rows = [row for row in self._rows if _epoch(row) <= first]

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._rows.append({"epoch": str(epoch + 1), **{k: repr(v) for k, v in logs.items()}})
        columns = list(dict.fromkeys(key for row in self._rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write(self.path, text.getvalue().encode(), what="CSV log")


def _epoch(row: dict[str, str]) -> int:
    text = row.get("epoch") or ""
    return int(text) if text.isdigit() else 0
