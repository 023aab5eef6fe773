"""Errors lamina raises, each naming the problem, what was expected, what was received and the fix.

Every class derives from :class:`LaminaError`; those about bad arguments or data also derive
from :class:`ValueError`, so ``except ValueError`` keeps working for users who expect it.
"""

from __future__ import annotations

__all__ = [
    "BackwardError",
    "ConfigError",
    "DataIntegrityError",
    "DataNotFoundError",
    "FileWriteError",
    "GradcheckError",
    "InputError",
    "LaminaError",
    "ModelFileError",
    "NotCompiledError",
    "NumericalError",
    "ShapeError",
    "WorkerError",
    "invalid",
]


class LaminaError(Exception):
    """Base class of every error lamina raises on purpose."""


class InputError(LaminaError, ValueError):
    """Bad data passed in: NaN/inf, wrong dtype, empty, mismatched lengths, labels out of range."""


class ShapeError(InputError):
    """An array or a layer size that does not fit where it is used."""


class ConfigError(LaminaError, ValueError):
    """A bad hyper-parameter, an unknown name, or a config that cannot be built.

    Attributes:
        argument: the name of the argument that was refused, when one was (a config file
            uses it to point at the key's line).
    """

    def __init__(self, message: str = "", *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class NumericalError(LaminaError, FloatingPointError):
    """Non-finite values (NaN/inf) produced by the model itself: overflow, divergence."""


class NotCompiledError(LaminaError, RuntimeError):
    """A model used for training or evaluation before ``compile``."""


class BackwardError(LaminaError, RuntimeError):
    """A backward pass with no training forward before it: an inference forward keeps
    nothing for backward, and backward never runs forward again on its own."""


class WorkerError(LaminaError, RuntimeError):
    """The second process of a training step split over two (``lamina.engine.halves``)
    failed or stopped."""


class GradcheckError(LaminaError, AssertionError):
    """A numerical gradient check found analytic and numerical gradients that disagree."""


class ModelFileError(LaminaError, ValueError):
    """A model or weights file that is corrupt, hostile, or does not fit the model."""


class FileWriteError(LaminaError, OSError):
    """A file that could not be written (disk full, permissions, not a regular file); it
    names the target and the fix, and the old file, if any, is left as it was."""


class DataNotFoundError(LaminaError, FileNotFoundError):
    """A dataset that is in none of the places searched."""


class DataIntegrityError(LaminaError, ValueError):
    """A dataset file whose contents are not what they should be (checksum, format)."""


def invalid(argument: str, expected: str, received: object, fix: str | None = None) -> str:
    """The message format used everywhere: *argument, expected, received, fix*.

    >>> invalid("rate", "a float in [0, 1)", 1.5, "pass rate=0.5 to drop half the units")
    'Invalid value for `rate`: expected a float in [0, 1), received 1.5. Fix: pass rate=0.5 ...'
    """
    message = f"Invalid value for `{argument}`: expected {expected}, received {received}."
    if fix:
        message += f" Fix: {fix}."
    return message
