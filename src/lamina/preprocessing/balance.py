"""Balancing a classification set by undersampling or oversampling (notes §1.9 "Balancing")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lamina.errors import ConfigError, InputError, ShapeError, invalid

Array = np.ndarray


BALANCE_STRATEGIES = ("undersample", "oversample")


@dataclass(frozen=True)
class BalanceReport:
    """Samples per class before and after :func:`balance`."""

    strategy: str
    before: dict[Any, int]
    after: dict[Any, int]

    @property
    def removed(self) -> int:
        """Samples dropped (undersampling)."""
        return max(0, sum(self.before.values()) - sum(self.after.values()))

    @property
    def added(self) -> int:
        """Repeated samples added (oversampling)."""
        return max(0, sum(self.after.values()) - sum(self.before.values()))

    def __str__(self) -> str:
        total_before, total_after = sum(self.before.values()), sum(self.after.values())
        width = max(5, *(len(str(label)) for label in self.before))
        change = f"{self.added:,} added" if self.added else f"{self.removed:,} removed"
        lines = [
            f"balance ({self.strategy}): {total_before:,} → {total_after:,} samples, {change}",
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

    With n_c samples in class c, ``"undersample"`` keeps n = min_c n_c of each class (the
    notes' "trim away samples from the high-frequency classes"); ``"oversample"`` brings
    each class up to n = max_c n_c by repetition, keeping every sample: each sample of
    class c appears ⌊n/n_c⌋ times, and n mod n_c of them, drawn without replacement, once
    more (so repeat counts differ by at most one). Draws come from
    ``np.random.default_rng(seed)``; the result keeps the original relative order, a
    repeat beside its original. Split off validation data *before* oversampling, or copies
    of a training sample land in it. Balancing by augmentation is
    ``lamina.augmentation``'s; weighting the loss instead is ``fit(class_weight=...)``.

    Args:
        X: samples along axis 0, of any dtype (images, feature rows, file paths).
        y: class labels (N,), integers or strings.
        strategy: ``"undersample"`` or ``"oversample"``.
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
                "use strategy='undersample' or 'oversample', or augment the small classes "
                "(notes §1.9)",
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
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    if strategy == "undersample":
        keep = int(counts.min())
        chosen = [rng.choice(indices, size=keep, replace=False) for indices in by_class]
    else:
        keep = int(counts.max())
        chosen = [_repeated(indices, keep, rng) for indices in by_class]
    kept = np.sort(np.concatenate(chosen))
    labels = [label.item() for label in classes]
    report = BalanceReport(
        strategy=strategy,
        before={label: int(count) for label, count in zip(labels, counts, strict=True)},
        after=dict.fromkeys(labels, keep),
    )
    return X[kept], y[kept], report


def _repeated(indices: Array, size: int, rng: np.random.Generator) -> Array:
    """``size`` indices: every one of ``indices`` ⌊size/n⌋ times, then size mod n of them,
    drawn without replacement, once more."""
    copies, extra = divmod(size, len(indices))
    return np.concatenate([np.tile(indices, copies), rng.choice(indices, extra, replace=False)])
