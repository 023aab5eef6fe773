"""What the ``lamina`` command prints when something goes wrong: one line per error or
warning, with every control character of text that came from a file escaped, so that a
hostile file cannot send escape sequences to the terminal."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from lamina.errors import LaminaError

# C0 and C1 controls (ESC starts terminal escape sequences), line separators and the
# bidirectional overrides that make text display in another order than it is stored.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with every control character escaped (``\\x1b``), safe to print."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, str(text))


def one_line(text: object) -> str:
    """``text`` on one line (whitespace runs joined), safe to print."""
    return printable(" ".join(str(text).split()))


def error_message(error: Exception, action: str) -> str:
    """One line saying what went wrong; the fix comes from lamina's own messages."""
    text = str(error)
    if isinstance(error, LaminaError | OSError | ImportError):
        message = text or type(error).__name__
    elif isinstance(error, MemoryError):
        detail = f" ({text})" if text else ""
        message = (
            f"not enough memory to {action}{detail}. Fix: use less data (a [data] limit, a "
            "smaller batch_size) or a machine with more memory."
        )
    elif isinstance(error, RecursionError):
        message = (
            f"an input is nested too deeply to {action} ({text}). Fix: flatten the nesting; "
            "run with --debug for the traceback."
        )
    else:
        message = (
            f"unexpected {type(error).__name__} while trying to {action}: {text}. "
            "Run with --debug for the traceback (and please report it)."
        )
    return one_line(message)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings as one line each, like errors, not Python's two lines with a source line
    (the signature of ``warnings.showwarning``)."""
    print(f"lamina: warning: {one_line(message)}", file=file or sys.stderr)
