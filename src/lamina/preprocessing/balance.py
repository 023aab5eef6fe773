"""Balancing a classification set by undersampling (notes §1.9 "Balancing")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.errors import ConfigError, InputError, ShapeError, invalid

Array = np.ndarray


BALANCE_STRATEGIES = ("undersample",)


@dataclass(frozen=True)
class BalanceReport:
    """Samples per class before and after :func:`balance`."""

    strategy: str
    before: dict[Any, int]
    after: dict[Any, int]

    @property
    def removed(self) -> int:
        return sum(self.before.values()) - sum(self.after.values())

    def __str__(self) -> str:
        total_before, total_after = sum(self.before.values()), sum(self.after.values())
        width = max(5, *(len(str(label)) for label in self.before))
        lines = [
            f"balance ({self.strategy}): {total_before:,} → {total_after:,} samples, "
            f"{self.removed:,} removed",
            f"{'class':<{width}}  {'before':>8}  {'after':>8}",
        ]
        lines += [
            f"{label!s:<{width}}  {count:>8,}  {self.after[label]:>8,}"
            for label, count in self.before.items()
        ]
        return "\n".join(lines)


def balance(
    X: ArrayLike,
    y: ArrayLike,
    strategy: str = "undersample",
    seed: int | np.random.Generator | None = None,
) -> tuple[Array, Array, BalanceReport]:
    """Make every class equally frequent (notes §1.9 "Balancing"): training data only.

    ``"undersample"`` keeps, of every class, a random subset as large as the smallest class
    (drawn without replacement from ``np.random.default_rng(seed)``); kept samples stay in
    their original relative order. Balancing by augmentation is ``lamina.augmentation``'s.

    Args:
        X: samples along axis 0, of any dtype (images, feature rows, file paths).
        y: class labels (N,), integers or strings.
        strategy: only ``"undersample"``.
        seed: an int, a Generator, or ``None`` for fresh entropy.
    Returns:
        ``(X_balanced, y_balanced, report)``; ``print(report)`` shows the counts per class.
    """
    if strategy not in BALANCE_STRATEGIES:
        raise ConfigError(
            invalid(
                "balance strategy",
                f"one of {list(BALANCE_STRATEGIES)}",
                repr(strategy),
                "use strategy='undersample', or augment the small classes (notes §1.9)",
            )
        )
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim != 1:
        raise ShapeError(
            "balance: "
            + invalid(
                "X, y",
                "samples X (N, ...) and labels y (N,)",
                f"X of shape {X.shape}, y of shape {y.shape}",
                "pass integer labels, e.g. y.argmax(axis=1) for one-hot rows",
            )
        )
    if len(X) != len(y):
        raise InputError(
            "balance: "
            + invalid("X, y", "as many labels as samples", f"{len(X)} samples, {len(y)} labels")
        )
    if len(y) == 0:
        raise InputError("balance: " + invalid("X", "at least one sample", "empty arrays"))
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise InputError("balance: " + invalid("y", "finite labels", "NaN or inf"))
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = int(counts.min())
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.choice(indices, size=keep, replace=False) for indices in by_class]
    kept = np.sort(np.concatenate(chosen))
    labels = [label.item() for label in classes]
    report = BalanceReport(
        strategy=strategy,
        before={label: int(count) for label, count in zip(labels, counts, strict=True)},
        after=dict.fromkeys(labels, keep),
    )
    return X[kept], y[kept], report
