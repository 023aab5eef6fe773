"""CSV tables with a header row and a named target column (notes §1.9)."""

from __future__ import annotations

import csv
import difflib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from lamina._files import open_regular
from lamina.datasets.checks import DELIMITER
from lamina.errors import (
    ConfigError,
    DataNotFoundError,
    InputError,
    invalid,
)

# A CSV file larger than this is refused from its size, before it is read: the table is
# held in memory as Python strings (several times its size), so this is already generous.
MAX_CSV_BYTES = 2 * 1024**3


@dataclass(frozen=True, eq=False)
class CsvData:
    """What :func:`load_csv` read; unpacks as ``X, y = load_csv(path, "target")``.

    Attributes:
        X: (N, F) features, one row per data row, columns in file order without the target.
        y: (N,) targets: floats of ``X``'s dtype for a numeric target column, int64 class
            indices into ``class_names`` for a text one.
        feature_names: the header name of each column of ``X``.
        class_names: the target's classes, sorted (``y == i`` means ``class_names[i]``);
            None for a numeric target.
    """

    X: NDArray[np.floating[Any]]
    y: NDArray[Any]
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return iter((self.X, self.y))


def load_csv(
    path: str | os.PathLike[str],
    target: str,
    *,
    delimiter: str = ",",
    dtype: DTypeLike = np.float32,
) -> CsvData:
    """Read a table with a header row: every column but ``target`` is a feature (notes §1.9).

    The file is UTF-8 text (a byte-order mark is allowed) read with the stdlib ``csv`` module;
    names and cells are stripped of surrounding whitespace. Every feature cell must be a finite
    number (``float`` syntax). The target column is either all numbers (``y`` is float, for
    regression or numeric labels: ``y.astype(np.int64)`` turns the latter into class indices) or
    all text (class names, encoded as int64 indices into the sorted ``class_names``). Rows whose
    cells are all empty are skipped, like blank lines; any other empty cell is an error, since
    lamina does not guess missing values. Errors name the file, the row as a spreadsheet numbers
    it (the header is row 1) and the column.

    Args:
        path: the CSV file.
        target: the header name of the column to predict.
        delimiter: the one character between cells, e.g. ``";"`` or ``"\\t"``.
        dtype: the float type of ``X`` (and of a numeric ``y``).
    Returns:
        A :class:`CsvData` ``(X, y, feature_names, class_names)``, unpackable as ``X, y``.
    Raises:
        DataNotFoundError: the file does not exist.
        InputError: a path that is not a regular file (a folder, a FIFO, a device) or is
            larger than :data:`MAX_CSV_BYTES`, an empty file, no such target column (the
            message lists the columns and suggests the nearest), a row with the wrong number
            of cells, an empty or non-numeric or non-finite cell, or a target column mixing
            numbers and text.
        ConfigError: a bad ``delimiter`` or ``dtype``.
    """
    if not isinstance(target, str) or not target.strip():
        raise InputError(invalid("target", "the name of a column", repr(target)))
    DELIMITER.check("", "delimiter", delimiter)
    float_dtype = _float_dtype(dtype)
    file = Path(os.fspath(path)).expanduser()
    rows = _read_rows(file, delimiter)
    columns = _header(file, rows, target.strip(), delimiter)
    data: list[list[str]] = []
    numbers: list[int] = []  # the spreadsheet row number of each data row
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise InputError(
                f"{file}, row {number}: {len(row)} cells, but the header has {len(columns)} "
                f"columns ({', '.join(columns)}). Fix: give every row one cell per column (quote "
                f"cells that contain the delimiter {delimiter!r})."
            )
        data.append(row)
        numbers.append(number)
    if not data:
        raise InputError(f"{file} has a header row but no data rows. Fix: add one row per sample.")

    cells = np.char.strip(np.array(data, dtype=str))
    empty = np.argwhere(np.char.str_len(cells) == 0)
    if len(empty):
        i, j = (int(index) for index in empty[0])
        raise InputError(
            f"{file}, row {numbers[i]}, column {columns[j]!r}: the cell is empty. Fix: fill "
            "it in or remove the row (lamina does not guess missing values)."
        )
    t = columns.index(target.strip())
    features = [j for j in range(len(columns)) if j != t]
    feature_names = tuple(columns[j] for j in features)
    X = _parse_numbers(file, cells[:, features], numbers, feature_names, float_dtype, delimiter)
    column = cells[:, t]
    try:
        column.astype(np.float64)
    except ValueError:
        is_number = [_is_number(cell) for cell in column.tolist()]
        if any(is_number):
            number_at, text_at = is_number.index(True), is_number.index(False)
            raise InputError(
                f"{file}, column {target!r} mixes numbers (row {numbers[number_at]}: "
                f"{str(column[number_at])!r}) and text (row {numbers[text_at]}: "
                f"{str(column[text_at])!r}). "
                "Fix: correct the cells so that the column holds only numbers (a value to "
                "predict) or only class names."
            ) from None
        names, y = np.unique(column, return_inverse=True)
        return CsvData(
            X, y.reshape(-1).astype(np.int64), feature_names, tuple(str(n) for n in names)
        )
    y_values = _parse_numbers(file, column[:, None], numbers, (target,), float_dtype, delimiter)
    return CsvData(X, y_values[:, 0], feature_names, None)


def load_csv_features(
    path: str | os.PathLike[str],
    feature_names: Sequence[str],
    *,
    delimiter: str = ",",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """The named feature columns of a CSV file with a header row, in the given order — the
    inputs of a model trained on :func:`load_csv` data (other columns, such as the target,
    are ignored). Errors name the file, the row and the column, as for :func:`load_csv`."""
    float_dtype = _float_dtype(dtype)
    file = Path(os.fspath(path)).expanduser()
    rows = _read_rows(file, delimiter)
    if not rows:
        raise InputError(f"{file} is empty. Fix: give it a header row and one row per sample.")
    columns = [name.strip() for name in rows[0]]
    missing = [name for name in feature_names if name not in columns]
    if missing:
        raise InputError(
            f"{file} lacks the feature column(s) {missing}; its columns are {columns}. Fix: "
            "give it the columns the model was trained on."
        )
    data = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    numbers = [n for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    for number, row in zip(numbers, data, strict=True):
        if len(row) != len(columns):
            raise InputError(
                f"{file}, row {number}: {len(row)} cells, but the header has "
                f"{len(columns)} columns. Fix: give every row one cell per column."
            )
    if not data:
        raise InputError(f"{file} has a header row but no data rows. Fix: add one row per sample.")
    cells = np.char.strip(np.array(data, dtype=str))
    chosen = [columns.index(name) for name in feature_names]
    return _parse_numbers(
        file, cells[:, chosen], numbers, tuple(feature_names), float_dtype, delimiter
    )


def _float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        result = np.dtype(dtype)
    except TypeError as error:
        raise ConfigError(invalid("dtype", "a float type", repr(dtype))) from error
    if result.kind != "f":
        raise ConfigError(invalid("dtype", "a float type", repr(dtype), "pass dtype=np.float32"))
    return result


def _read_rows(file: Path, delimiter: str) -> list[list[str]]:
    if not file.exists():
        raise DataNotFoundError(f"CSV file {file} does not exist. Fix: check the path.")
    binary = open_regular(file, what="CSV file", limit=MAX_CSV_BYTES, error=InputError)
    try:
        with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, delimiter=delimiter)
            try:
                return list(reader)
            except csv.Error as error:
                raise InputError(
                    f"{file}, line {reader.line_num}: not valid CSV ({error}). Fix: correct that "
                    "line (e.g. close its quotes)."
                ) from error
    except UnicodeDecodeError as error:
        raise InputError(
            f'{file} is not UTF-8 text ({error}). Fix: save it as UTF-8 ("CSV UTF-8" in a '
            "spreadsheet)."
        ) from error


def _header(file: Path, rows: list[list[str]], target: str, delimiter: str) -> list[str]:
    """The stripped column names of row 1, checked, with ``target`` among them."""
    expected = "expected a header row naming the columns, then one row per sample"
    if not rows:
        raise InputError(f"{file} is empty; {expected}. Fix: write the header and the data.")
    columns = [cell.strip() for cell in rows[0]]
    if not any(columns):
        raise InputError(f"{file}, row 1 is empty; {expected}. Fix: put the header in row 1.")
    for number, name in enumerate(columns, start=1):
        if not name:
            raise InputError(
                f"{file}, row 1: column {number} has no name (header: {columns}). Fix: name "
                "every column (a delimiter at the end of the header makes an empty one)."
            )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise InputError(
            f"{file}, row 1: the column names {repeated} occur more than once. Fix: give every "
            "column a distinct name."
        )
    if target not in columns:
        by_case = [name for name in columns if name.lower() == target.lower()]
        nearest = by_case or difflib.get_close_matches(target, columns, n=1, cutoff=0.5)
        other = [sep for sep in (",", ";", "\t", "|") if sep != delimiter and sep in columns[0]]
        if len(columns) == 1 and other:  # the whole header read as one name
            fix = f"the header is one column; pass delimiter={other[0]!r}"
        elif nearest:
            fix = f"did you mean {nearest[0]!r}? Pass target={nearest[0]!r}"
        else:
            fix = "pass target= one of those names"
        raise InputError(f"{file} has no column {target!r}; its columns are {columns}. Fix: {fix}.")
    if len(columns) < 2:
        raise InputError(
            f"{file} has only the target column {target!r}; expected at least one feature "
            "column besides it. Fix: add the features, or choose another target."
        )
    return columns


def _is_number(cell: str) -> bool:
    try:
        float(cell)  # the syntax NumPy's str -> float conversion accepts too
    except ValueError:
        return False
    return True


def _parse_numbers(
    file: Path,
    cells: NDArray[np.str_],
    numbers: list[int],
    names: tuple[str, ...],
    dtype: np.dtype[Any],
    delimiter: str,
) -> NDArray[Any]:
    """Convert a block of stripped cells to finite floats, or name the first bad cell."""
    try:
        values = cells.astype(np.float64)
    except ValueError:
        for i, j in np.ndindex(cells.shape):  # only to find the culprit
            cell = str(cells[i, j])
            if not _is_number(cell):
                decimal_comma = "," in cell and delimiter != ","
                hint = " (a decimal comma? write 1.5, not 1,5)" if decimal_comma else ""
                raise InputError(
                    f"{file}, row {numbers[i]}, column {names[j]!r}: {cell!r} is not a "
                    f"number{hint}. Fix: correct the cell; features must be numbers, so encode "
                    "text columns as numbers (e.g. one-hot) or drop them."
                ) from None
        raise
    with np.errstate(over="ignore"):  # overflow is reported below, naming the cell
        converted = values.astype(dtype)
    bad = np.argwhere(~np.isfinite(converted))
    if len(bad):
        i, j = (int(index) for index in bad[0])
        cell = str(cells[i, j])
        reason = (
            f"overflows {dtype}. Fix: pass dtype=np.float64 or rescale the column"
            if np.isfinite(values[i, j])
            else "is not a finite number. Fix: replace it with a value or remove the row"
        )
        raise InputError(f"{file}, row {numbers[i]}, column {names[j]!r}: {cell!r} {reason}.")
    return converted
