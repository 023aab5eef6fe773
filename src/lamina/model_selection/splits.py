"""Hold-out and k-fold splits of a data set (notes §1.5 "Validating"); NumPy only."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sized

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lamina._params import Flag, Interval, Rule
from lamina.errors import ConfigError, InputError, invalid

Index = NDArray[np.int64]

SEED = Rule([Interval(int, 0), None], fix="pass e.g. seed=0")
SHUFFLE = Rule([Flag()], fix="pass shuffle=True")
N_SPLITS = Rule([Interval(int, 2)], fix="pass e.g. n_splits=5 (the number of folds k)")


def train_test_split(
    *arrays: ArrayLike,
    test_size: float | int = 0.25,
    shuffle: bool = True,
    stratify: ArrayLike | None = None,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Split arrays into a training and a test (or validation) part, row-aligned (notes §1.5).

    Returns ``[a_train, a_test, b_train, b_test, ...]``, two arrays per input in input order,
    as scikit-learn's ``train_test_split``; row ``i`` of every input goes to the same side.

    Args:
        arrays: one or more arrays with the samples along axis 0, all of the same length.
        test_size: a fraction in (0, 1) — the test part gets ``⌈test_size·n⌉`` samples, as in
            scikit-learn — or an int count of test samples in [1, n − 1].
        shuffle: shuffle before splitting; without it the test part is the last samples.
        stratify: class labels (1-D, one per sample) to split each class in proportion: class
            c gets ``t_c`` test samples with ``|t_c − s_c| ≤ 1`` for its share
            ``s_c = n_test·n_c/n`` (``⌊s_c⌋`` or ``⌈s_c⌉`` whenever every class has two or
            more samples), and ``Σ t_c`` is exactly the test size. A class with a single
            sample always goes to the training part. Needs ``shuffle=True``.
        seed: seed of the generator that shuffles; ``None`` for fresh entropy.

    Raises:
        InputError: no arrays, arrays of different lengths, fewer than 2 samples, bad labels.
        ConfigError: a ``test_size`` that leaves either part empty, a bad ``shuffle``/``seed``.
    """
    if not arrays:
        raise InputError(
            invalid("arrays", "at least one array", "none", "call train_test_split(X, y)")
        )
    data = [np.asarray(array) for array in arrays]
    for position, array in enumerate(data):
        if array.ndim == 0:
            raise InputError(
                invalid(
                    f"arrays[{position}]",
                    "an array with one sample per row (axis 0)",
                    f"a scalar {array!r}",
                    "pass arrays such as X of shape (n, features) and y of shape (n,)",
                )
            )
    lengths = [len(array) for array in data]
    if len(set(lengths)) > 1:
        raise InputError(
            invalid(
                "arrays",
                "arrays with the same number of samples along axis 0",
                f"lengths {lengths}",
                "pass one row per sample in every array",
            )
        )
    n = lengths[0]
    if n < 2:
        raise InputError(
            invalid("arrays", "at least 2 samples to split", f"{n} sample(s)", "pass more data")
        )
    shuffle = SHUFFLE.check("", "shuffle", shuffle)
    seed = check_seed(seed)
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(seed)

    if stratify is not None:
        if not shuffle:
            raise ConfigError(
                invalid(
                    "shuffle",
                    "True when `stratify` is given",
                    "shuffle=False",
                    "pass shuffle=True, or stratify=None to take the last samples as test",
                )
            )
        codes, counts = _class_codes(stratify, n, "stratify")
        train, test = _stratified_split(codes, counts, n_test, rng)
    elif shuffle:
        order = rng.permutation(n)
        train, test = order[n_test:], order[:n_test]
    else:
        train, test = np.arange(n - n_test), np.arange(n - n_test, n)
    return [part for array in data for part in (array[train], array[test])]


def _test_count(test_size: object, n: int) -> int:
    if isinstance(test_size, int | np.integer) and not isinstance(test_size, bool):
        if not 1 <= test_size <= n - 1:
            raise ConfigError(
                invalid(
                    "test_size",
                    f"an int count in [1, {n - 1}] for {n} samples",
                    repr(test_size),
                    "leave at least one sample on each side, or pass a fraction such as 0.25",
                )
            )
        return int(test_size)
    if not isinstance(test_size, float | np.floating) or not 0.0 < test_size < 1.0:
        raise ConfigError(
            invalid(
                "test_size",
                "a float fraction in (0, 1) or an int count",
                repr(test_size),
                "pass e.g. test_size=0.25 or test_size=100",
            )
        )
    n_test = math.ceil(float(test_size) * n)
    if n_test >= n:
        raise ConfigError(
            invalid(
                "test_size",
                f"a fraction that leaves at least one of the {n} samples for training",
                f"test_size={test_size!r}, i.e. {n_test} test samples",
                "pass a smaller test_size or more data",
            )
        )
    return n_test


def _stratified_split(
    codes: Index, counts: Index, n_test: int, rng: np.random.Generator
) -> tuple[Index, Index]:
    n = len(codes)
    # Exact integer arithmetic for the shares s_c = n_test·n_c/n: floor and remainder.
    numerators = n_test * counts
    test_counts, remainders = numerators // n, numerators % n
    # Only a class with two or more samples can take one more than ⌊s_c⌋ (⌊s_c⌋ + 1 ≤ n_c
    # since s_c < n_c); a single-sample class has ⌊s_c⌋ = 0 and so stays in training.
    eligible = counts > 1
    missing = n_test - int(test_counts.sum())
    if missing > int(eligible.sum()):
        raise InputError(
            invalid(
                "stratify",
                f"enough classes with two or more samples to fill {n_test} test samples",
                f"{int((~eligible).sum())} of {len(counts)} classes with a single sample",
                "drop the single-sample classes, pass a smaller test_size, or stratify=None",
            )
        )
    # Largest remainder first (those classes end up within one of their share either way);
    # ties between classes are broken at random so no class is favoured by its label.
    order = np.lexsort((rng.random(len(counts)), -remainders, ~eligible))
    test_counts[order[:missing]] += 1

    # Samples grouped by class, in random order inside each class: the first t_c go to test.
    shuffled = rng.permutation(n)
    by_class = shuffled[np.argsort(codes[shuffled], kind="stable")]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sorted_codes = codes[by_class]
    is_test = np.arange(n) - starts[sorted_codes] < test_counts[sorted_codes]
    return rng.permutation(by_class[~is_test]), rng.permutation(by_class[is_test])


# --------------------------------------------------------------------------- k-fold


class _BaseKFold:
    """Shared arguments and output of the k-fold splitters (notes §1.5)."""

    def __init__(self, n_splits: int = 5, shuffle: bool = False, seed: int | None = None) -> None:
        self.n_splits: int = N_SPLITS.check("", "n_splits", n_splits)
        self.shuffle: bool = SHUFFLE.check("", "shuffle", shuffle)
        self.seed = check_seed(seed)
        if self.seed is not None and not self.shuffle:
            raise ConfigError(
                invalid(
                    "seed",
                    "None when shuffle=False (unshuffled folds draw nothing at random)",
                    repr(seed),
                    "pass shuffle=True to use the seed, or drop seed",
                )
            )

    def get_n_splits(self, X: ArrayLike | None = None, y: ArrayLike | None = None) -> int:
        """The number of folds k; ``X`` and ``y`` are ignored (scikit-learn's signature)."""
        return self.n_splits

    def _check_n_samples(self, X: ArrayLike, y: ArrayLike | None) -> int:
        n = _n_samples(X, "X")
        if y is not None and _n_samples(y, "y") != n:
            raise InputError(
                invalid(
                    "y",
                    f"{n} targets, one per sample of X",
                    f"{_n_samples(y, 'y')}",
                    "pass X and y with one row per sample",
                )
            )
        if self.n_splits > n:
            raise ConfigError(
                invalid(
                    "n_splits",
                    f"at most the number of samples, {n}",
                    f"n_splits={self.n_splits}",
                    f"pass n_splits ≤ {n} or more data",
                )
            )
        return n

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_splits={self.n_splits}, shuffle={self.shuffle}, "
            f"seed={self.seed})"
        )


class KFold(_BaseKFold):
    """k-fold cross-validation (notes §1.5): k consecutive folds, each the validation part once.

    Fold sizes are as in scikit-learn: the first ``n % k`` folds hold ``⌊n/k⌋ + 1`` samples,
    the others ``⌊n/k⌋``. With ``shuffle=True`` the samples are permuted before folding.
    Without shuffling the folds are identical to scikit-learn's ``KFold``.

    Args:
        n_splits: the number of folds k, at least 2 and at most the number of samples.
        shuffle: permute the samples before cutting them into folds.
        seed: seed of the permutation (only with ``shuffle=True``); the same seed gives the
            same folds on every ``split``, ``None`` new folds each time.
    """

    def split(self, X: ArrayLike, y: ArrayLike | None = None) -> Iterator[tuple[Index, Index]]:
        """Yield ``(train_index, validation_index)``, sorted int64 arrays, once per fold.

        The validation folds partition ``range(len(X))``; each train index is the rest.
        Arguments are checked at the call, not at the first iteration.
        """
        n = self._check_n_samples(X, y)
        indices = np.arange(n, dtype=np.int64)
        if self.shuffle:
            indices = np.random.default_rng(self.seed).permutation(indices)
        sizes = _fold_sizes(n, self.n_splits)
        folds = [np.sort(fold) for fold in np.split(indices, np.cumsum(sizes)[:-1])]
        return _train_validation_pairs(n, folds)


class StratifiedKFold(_BaseKFold):
    """k-fold cross-validation that keeps the class ratios of ``y`` in every fold (notes §1.5).

    Each class c of ``n_c`` samples is dealt out so that every fold gets ``⌊n_c/k⌋`` or
    ``⌈n_c/k⌉`` of it; fold sizes are as balanced as :class:`KFold`'s (the first ``n % k``
    folds one larger). The allocation is scikit-learn's: classes in order of first
    appearance in ``y`` are laid end to end and dealt round-robin, so without shuffling the
    folds are identical to scikit-learn's ``StratifiedKFold``. A class with fewer than k
    samples is missing from some folds and raises a ``RuntimeWarning``, not an error.

    Args:
        n_splits: the number of folds k, at least 2 and at most the number of samples.
        shuffle: shuffle each class's samples before dealing them to folds.
        seed: seed of that shuffle (only with ``shuffle=True``); the same seed gives the
            same folds on every ``split``, ``None`` new folds each time.
    """

    def split(self, X: ArrayLike, y: ArrayLike) -> Iterator[tuple[Index, Index]]:
        """Yield ``(train_index, validation_index)``, sorted int64 arrays, once per fold.

        ``y`` holds 1-D class labels. The validation folds partition ``range(len(X))``.
        Arguments are checked at the call, not at the first iteration.
        """
        n = self._check_n_samples(X, y)
        codes, counts = _class_codes(y, n, "y")
        k = self.n_splits
        if counts.min() < k:
            small = np.flatnonzero(counts < k)
            warnings.warn(
                f"{len(small)} class(es) of y have fewer members than n_splits={k} "
                f"(least populated: {int(counts.min())}), so some validation folds lack "
                "them; pass a smaller n_splits to have every class in every fold",
                RuntimeWarning,
                stacklevel=2,
            )
        n_classes = len(counts)
        # allocation[f, c]: samples of class c in fold f. Dealing the class-sorted labels
        # round-robin gives each fold ⌊n_c/k⌋ or ⌈n_c/k⌉ of every class, and ⌊n/k⌋ or
        # ⌈n/k⌉ samples in all.
        dealt_to = np.arange(n) % k
        allocation = np.bincount(dealt_to * n_classes + np.sort(codes), minlength=k * n_classes)
        allocation = allocation.reshape(k, n_classes)
        # Each class's samples in index order (random order if shuffling) fill its folds
        # 0, 1, …, k − 1 in turn, as many as the allocation gives each fold.
        order = np.arange(n)
        if self.shuffle:
            order = np.random.default_rng(self.seed).permutation(n)
        by_class = order[np.argsort(codes[order], kind="stable")]
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[by_class] = np.repeat(np.tile(np.arange(k), n_classes), allocation.T.ravel())
        sizes = allocation.sum(axis=1)
        by_fold = np.argsort(fold_of, kind="stable").astype(np.int64, copy=False)
        folds = np.split(by_fold, np.cumsum(sizes)[:-1])
        return _train_validation_pairs(n, folds)


def _fold_sizes(n: int, k: int) -> Index:
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


def _train_validation_pairs(n: int, folds: list[Index]) -> Iterator[tuple[Index, Index]]:
    for validation in folds:
        in_train = np.ones(n, dtype=bool)
        in_train[validation] = False
        yield np.flatnonzero(in_train).astype(np.int64, copy=False), validation


# --------------------------------------------------------------------------- argument checks


def _n_samples(data: ArrayLike, argument: str) -> int:
    # The length alone, without copying a list or array-like into a new array.
    shape = getattr(data, "shape", None)
    if shape is None:
        if isinstance(data, Sized) and not isinstance(data, str | bytes):
            shape = (len(data),)
        else:
            shape = np.shape(data)
    if len(shape) == 0:
        raise InputError(
            invalid(
                argument,
                "an array with one sample per row (axis 0)",
                f"{data!r}",
                "pass an array of shape (n_samples, ...)",
            )
        )
    if shape[0] == 0:
        raise InputError(invalid(argument, "at least one sample", "0 samples", "pass data"))
    return int(shape[0])


def _class_codes(labels: ArrayLike, n: int, argument: str) -> tuple[Index, Index]:
    """Labels as class codes 0…K−1 in order of first appearance, and the count of each class."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise InputError(
            invalid(
                argument,
                "1-D class labels, one per sample",
                f"an array of shape {y.shape}",
                "pass y.argmax(axis=1) for one-hot labels, or y.ravel() for a column",
            )
        )
    if len(y) != n:
        raise InputError(
            invalid(
                argument,
                f"{n} labels, one per sample",
                f"{len(y)} labels",
                "pass one label per sample",
            )
        )
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise InputError(
            invalid(argument, "finite class labels", "NaN or inf", "drop or fix those samples")
        )
    _, first, inverse, counts = np.unique(
        y, return_index=True, return_inverse=True, return_counts=True
    )
    appearance = np.argsort(first)
    code_of = np.empty_like(appearance)
    code_of[appearance] = np.arange(len(appearance))
    return (
        code_of[inverse.ravel()].astype(np.int64, copy=False),
        counts[appearance].astype(np.int64, copy=False),
    )


def check_seed(seed: object) -> int | None:
    """``seed`` as an int ≥ 0, or None for fresh entropy; else a ConfigError."""
    checked: int | None = SEED.check("", "seed", seed)
    return checked
