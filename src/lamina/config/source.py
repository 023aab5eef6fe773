"""Where a config came from, so that every error names ``file:line``, the table and the key.

tomllib gives values without positions, so the line of a key is found again in the text:
:func:`line_of` reads the table headers and ``key =`` lines the way TOML writes them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ConfigError

CONFIG_LIMIT = 1024 * 1024  # bytes: a config is a page of text; anything larger is a mistake


class ConfigFileError(ConfigError):
    """A config file that cannot be run: names the file, the line and the key."""


@dataclass
class Source:
    """The file a config (or one table of it) was read from, and its text; a config given
    as a dict (a search's trial, a model's data record) has no text, so no lines."""

    path: Path
    text: str

    def error(
        self, message: str, table: str, index: int | None = None, key: str | None = None
    ) -> ConfigFileError:
        """``message`` located at ``key`` of [table] (or of the index-th [[table]])."""
        where = f"[[{table}]] #{index + 1}" if index is not None else f"[{table}]"
        if not self.text:
            return ConfigFileError(f"{self.path}: {where}: {message}")
        line = line_of(self.text, table, index, key)
        return ConfigFileError(f"{self.path}:{line}: {where}: {message}")


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def line_of(text: str, table: str, index: int | None, key: str | None) -> int:
    """The 1-based line of ``key`` in [table] (or the index-th [[table]]), else of the
    table's header, else 1."""
    current, count, header_line, fallback = None, -1, None, 1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(2)
            if current == table:
                count = count + 1 if header.group(1) == "[[" else 0
                if index is None or count == index:
                    header_line = number
            continue
        match = _KEY.match(line)
        in_table = current == table and (index is None or count == index)
        if match and in_table and match.group(1) == key:
            return number
        if match and current is None and match.group(1) == table:
            fallback = number
    return header_line or fallback


def shown(value: Any) -> str:
    """A value as the TOML file writes it (true, "text"), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)  # double quotes, control characters escaped
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def nearest(name: str, choices: Iterable[Any]) -> str:
    """`` — did you mean `x`?`` for the choice closest to ``name``, or nothing."""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" — did you mean `{close[0]}`?" if close else ""
