"""The argument checks of the data readers and generators, as :mod:`lamina._params` rules.

A ``[data]`` table of a config is checked with the same rules (``lamina.config.data``), so a
bad value gives the same message from Python and from a config file. Errors name the bare
argument (``samples``, not ``spiral.samples``): a config key has no function to name.
"""

from __future__ import annotations

from typing import Any

from lamina._params import Constraint, Interval, Rule
from lamina.datasets.images import MAX_IMAGE_PIXELS
from lamina.errors import ConfigError, invalid

# Rows a generator makes at most. Spiral's float64 temporaries take ~80 bytes a row, so this
# bounds one call to about 1 GB; more rows than this is a typo (2e9 for 2e3), not a data set.
MAX_SAMPLES = 10_000_000


class Worded(Constraint):
    """``constraint``, described in other words: ``Worded(Interval(int, 1), "an integer
    >= 1")`` accepts what ``Interval(int, 1)`` accepts and says it as a config reads it."""

    def __init__(self, constraint: Constraint, expected: str) -> None:
        self.constraint, self.expected = constraint, expected

    def convert(self, value: Any) -> Any:
        return self.constraint.convert(value)

    def describe(self) -> str:
        return self.expected

    def refused(self) -> list[Any]:
        return self.constraint.refused()


class Delimiter(Constraint):
    """The one character between the cells of a CSV row: not a quote or a newline."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
            raise ValueError
        return value

    def describe(self) -> str:
        return "one character other than a quote or a newline"

    def refused(self) -> list[Any]:
        return [";;", "", 3, '"', "\n"]


class ImageSize(Constraint):
    """``(height, width)``: two ints ≥ 1 of at most :data:`MAX_IMAGE_PIXELS` pixels in all,
    returned as a tuple."""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError
        height, width = (Interval(int, 1).convert(side) for side in value)
        if height * width > MAX_IMAGE_PIXELS:
            raise ValueError
        return (height, width)

    def describe(self) -> str:
        return f"(height, width), two integers >= 1 of at most {MAX_IMAGE_PIXELS:,} pixels"

    def refused(self) -> list[Any]:
        return [[28], (0, 28), "28x28", (100_000, 100_000), (True, 28), 28]


def count_rule(argument: str, minimum: int, example: int) -> Rule:
    """An int ≥ ``minimum`` (bools and floats refused)."""
    return Rule(
        [Worded(Interval(int, minimum), f"an integer >= {minimum}")],
        fix=f"pass an integer such as {argument}={example}",
    )


DELIMITER = Rule([Delimiter()], fix='pass delimiter=";" or delimiter="\\t"')
SEED = Rule([Worded(Interval(int, 0), "a non-negative integer"), None], fix="pass seed=0")
NOISE = Rule([Worded(Interval(float, 0), "a finite float >= 0")], fix="pass noise=0.2")


def check_count(argument: str, value: Any, minimum: int, example: int) -> int:
    """``value`` as an int ≥ ``minimum`` (bools and floats refused), or a ConfigError."""
    return int(count_rule(argument, minimum, example).check("", argument, value))


def check_rows(samples: int, classes: int = 1, *, steps: int = 1) -> None:
    """Refuse ``samples × classes`` rows (``samples × steps`` for a set of sequences: one row
    a time step) above :data:`MAX_SAMPLES` before allocating them."""
    if samples * classes * steps > MAX_SAMPLES:
        received = f"samples={samples:,}" + (f" × classes={classes:,}" if classes > 1 else "")
        received += f" × steps={steps:,}" if steps > 1 else ""
        counted = "samples × steps, one row a time step" if steps > 1 else "samples × classes"
        raise ConfigError(
            invalid(
                "samples",
                f"at most {MAX_SAMPLES:,} rows in all ({counted})",
                f"{received} = {samples * classes * steps:,} rows",
                "pass fewer samples, e.g. samples=1000",
            ),
            argument="samples",
        )


def check_seed(seed: Any) -> int | None:
    """``seed`` as a non-negative int, or None for fresh entropy; else a ConfigError."""
    checked: int | None = SEED.check("", "seed", seed)
    return checked


def check_noise(noise: Any) -> float:
    """``noise`` as a finite float ≥ 0, or a ConfigError."""
    return float(NOISE.check("", "noise", noise))
