"""Tests for lamina.model_selection: hold-out splits and k-fold cross-validation (notes §1.5)."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import model_selection as skms

from lamina.errors import ConfigError, InputError
from lamina.model_selection import KFold, StratifiedKFold, train_test_split

IMBALANCED = (50, 23, 7, 100)


def imbalanced_labels(counts: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Labels with ``counts[c]`` samples of class c, in random order."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


def check_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int, k: int) -> None:
    """Validation folds cover every sample exactly once; train is the complement of each."""
    assert len(folds) == k
    everything = np.arange(n)
    for train, validation in folds:
        assert train.dtype == np.int64 and validation.dtype == np.int64
        assert len(validation) > 0 and len(train) > 0
        assert np.intersect1d(train, validation).size == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, validation])), everything)
    validations = np.concatenate([validation for _, validation in folds])
    np.testing.assert_array_equal(np.sort(validations), everything)
    sizes = [len(validation) for _, validation in folds]
    assert max(sizes) - min(sizes) <= 1


# --------------------------------------------------------------------------- StratifiedKFold


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 7])
@pytest.mark.parametrize("counts", [IMBALANCED, (8, 8, 8), (12, 41), (9, 30, 11, 160, 10)])
def test_stratified_kfold_covers_every_sample_once_and_keeps_class_ratios(
    counts: tuple[int, ...], k: int, shuffle: bool
) -> None:
    y = imbalanced_labels(counts)
    X = np.zeros((len(y), 2))
    folds = list(StratifiedKFold(k, shuffle=shuffle, seed=3 if shuffle else None).split(X, y))
    check_partition(folds, len(y), k)
    per_fold = np.array([np.bincount(y[v], minlength=len(counts)) for _, v in folds])
    for c, n_c in enumerate(counts):
        assert set(per_fold[:, c]) <= {n_c // k, math.ceil(n_c / k)}
        assert per_fold[:, c].max() - per_fold[:, c].min() <= 1
        assert per_fold[:, c].sum() == n_c
    # fold sizes as KFold's: the first n % k folds one larger
    sizes = [len(v) for _, v in folds]
    assert sizes == [len(v) for _, v in KFold(k).split(X)]


@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_stratified_kfold_unshuffled_equals_scikit_learn(k: int) -> None:
    y = imbalanced_labels(IMBALANCED, seed=1)
    ours = list(StratifiedKFold(k).split(y, y))
    theirs = list(skms.StratifiedKFold(k).split(y, y))
    for (train, validation), (sk_train, sk_validation) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(train, sk_train)
        np.testing.assert_array_equal(validation, sk_validation)


def test_stratified_kfold_string_labels_and_seeded_shuffle() -> None:
    names = np.array(["cat", "dog", "bird"])
    y = names[imbalanced_labels((30, 12, 5), seed=2)]
    splitter = StratifiedKFold(4, shuffle=True, seed=7)
    first = list(splitter.split(y, y))
    again = list(splitter.split(y, y))
    other = list(StratifiedKFold(4, shuffle=True, seed=8).split(y, y))
    check_partition(first, len(y), 4)
    for (_, a), (_, b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(first, other, strict=True))
    for name in names:
        in_folds = [int(np.sum(y[v] == name)) for _, v in first]
        assert max(in_folds) - min(in_folds) <= 1


def test_stratified_kfold_warns_for_a_class_smaller_than_k() -> None:
    y = imbalanced_labels((3, 30, 12))
    with pytest.warns(RuntimeWarning, match="n_splits=5"):
        folds = list(StratifiedKFold(5).split(y, y))
    check_partition(folds, len(y), 5)
    assert sorted(int(np.sum(y[v] == 0)) for _, v in folds) == [0, 0, 1, 1, 1]
    # every class smaller than k: folds stay non-empty and balanced as long as n ≥ k
    y = np.array([0, 1, 0, 1, 1, 0])
    with pytest.warns(RuntimeWarning, match="fewer members"):
        folds = list(StratifiedKFold(5, shuffle=True).split(y, y))
    check_partition(folds, len(y), 5)


def test_stratified_kfold_no_warning_when_every_class_fills_every_fold() -> None:
    y = imbalanced_labels(IMBALANCED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(StratifiedKFold(7).split(y, y))


# --------------------------------------------------------------------------- KFold


@pytest.mark.parametrize("n", [10, 11, 17, 100])
@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_kfold_equals_scikit_learn(n: int, k: int) -> None:
    X = np.arange(3 * n).reshape(n, 3)
    ours = list(KFold(k).split(X))
    theirs = list(skms.KFold(k).split(X))
    check_partition(ours, n, k)
    for (train, validation), (sk_train, sk_validation) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(train, sk_train)
        np.testing.assert_array_equal(validation, sk_validation)
    shuffled = list(KFold(k, shuffle=True, seed=0).split(X))
    sk_shuffled = skms.KFold(k, shuffle=True, random_state=0).split(X)
    check_partition(shuffled, n, k)
    assert [len(v) for _, v in shuffled] == [len(v) for _, v in sk_shuffled]
    assert KFold(k).get_n_splits() == k


def test_kfold_shuffle_is_seeded() -> None:
    X = np.zeros((40, 1))
    a = [v for _, v in KFold(4, shuffle=True, seed=5).split(X)]
    b = [v for _, v in KFold(4, shuffle=True, seed=5).split(X)]
    c = [v for _, v in KFold(4, shuffle=True, seed=6).split(X)]
    unshuffled = [v for _, v in KFold(4).split(X)]
    assert all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    assert not all(np.array_equal(x, z) for x, z in zip(a, unshuffled, strict=True))


def test_kfold_accepts_lists_and_k_equal_to_n() -> None:
    folds = list(KFold(4).split([[1], [2], [3], [4]], [0, 1, 0, 1]))
    assert [v.tolist() for _, v in folds] == [[0], [1], [2], [3]]


# --------------------------------------------------------------------------- train_test_split


@pytest.mark.parametrize("n", [2, 7, 10, 33, 100])
@pytest.mark.parametrize("test_size", [0.1, 0.25, 0.3, 0.5, 0.9, 1])
def test_train_test_split_sizes_equal_scikit_learn(n: int, test_size: float) -> None:
    X = np.arange(n)
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    if n_test >= n:
        with pytest.raises(ConfigError, match="`test_size`"):
            train_test_split(X, test_size=test_size)
        return
    train, test = train_test_split(X, test_size=test_size, seed=0)
    sk_train, sk_test = skms.train_test_split(X, test_size=test_size, random_state=0)
    assert (len(train), len(test)) == (len(sk_train), len(sk_test)) == (n - n_test, n_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), X)
    # without shuffling the test part is the last samples, as scikit-learn's
    unshuffled = train_test_split(X, test_size=test_size, shuffle=False)
    sk_unshuffled = skms.train_test_split(X, test_size=test_size, shuffle=False)
    for ours, theirs in zip(unshuffled, sk_unshuffled, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_train_test_split_int_test_size_and_default() -> None:
    X = np.arange(20).reshape(10, 2)
    X_train, X_test = train_test_split(X, test_size=3, seed=1)
    assert X_train.shape == (7, 2) and X_test.shape == (3, 2)
    X_train, X_test = train_test_split(X, seed=1)  # default 0.25 → ⌈2.5⌉ = 3
    assert len(X_test) == 3
    X_train, X_test = train_test_split(X, test_size=np.int64(4), seed=1)
    assert len(X_test) == 4


def test_train_test_split_keeps_rows_of_several_arrays_aligned() -> None:
    n = 50
    X = np.arange(2 * n).reshape(n, 2)
    y = np.arange(n) * 10
    w = [f"sample{i}" for i in range(n)]
    X_train, X_test, y_train, y_test, w_train, w_test = train_test_split(
        X, y, w, test_size=0.2, seed=4
    )
    for Xs, ys, ws in ((X_train, y_train, w_train), (X_test, y_test, w_test)):
        rows = Xs[:, 0] // 2
        np.testing.assert_array_equal(ys, rows * 10)
        assert ws.tolist() == [f"sample{i}" for i in rows]
    assert len(X_test) == 10 and len(X_train) == 40


def test_train_test_split_is_deterministic_by_seed() -> None:
    X = np.arange(60)
    y = imbalanced_labels((40, 15, 5))
    for stratify in (None, y):
        a = train_test_split(X, y, stratify=stratify, seed=9)
        b = train_test_split(X, y, stratify=stratify, seed=9)
        c = train_test_split(X, y, stratify=stratify, seed=10)
        for x, z in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, z)
        assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("test_size", [0.1, 0.2, 0.25, 0.33, 0.5, 0.8, 3, 9])
@pytest.mark.parametrize("counts", [IMBALANCED, (5, 5), (3, 97), (2, 9, 13, 1, 40)])
def test_train_test_split_stratified_proportions_within_one(
    counts: tuple[int, ...], test_size: float
) -> None:
    y = imbalanced_labels(counts, seed=3)
    n = len(y)
    X = np.arange(n)
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, seed=2
    )
    np.testing.assert_array_equal(y[X_train], y_train)
    assert len(X_test) == n_test and len(X_train) == n - n_test
    np.testing.assert_array_equal(y[X_test], y_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([X_train, X_test])), X)
    in_test = np.bincount(y_test, minlength=len(counts))
    for c, n_c in enumerate(counts):
        share = n_test * n_c / n
        if n_c == 1:
            assert in_test[c] == 0  # a single-sample class stays in training
        else:
            assert abs(in_test[c] - share) <= 1


def test_train_test_split_stratified_rounds_to_floor_or_ceil() -> None:
    # 10 samples, test_size 0.3 → shares 1.8, 0.9, 0.3 (the single sample stays in training)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    _, y_test = train_test_split(y, test_size=0.3, stratify=y, seed=0)
    assert np.bincount(y_test, minlength=3).tolist() == [2, 1, 0]
    for seed in range(20):
        y = imbalanced_labels(IMBALANCED, seed=seed)
        _, y_test = train_test_split(y, test_size=0.3, stratify=y, seed=seed)
        shares = 54 * np.array(IMBALANCED) / 180
        in_test = np.bincount(y_test, minlength=4)
        assert np.all((in_test == np.floor(shares)) | (in_test == np.ceil(shares)))


def test_train_test_split_too_many_single_sample_classes() -> None:
    y = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])  # 8 singletons cannot fill 5 test samples
    with pytest.raises(InputError, match="`stratify`"):
        train_test_split(y, test_size=0.5, stratify=y, seed=0)


# --------------------------------------------------------------------------- bad arguments


X10 = np.zeros((10, 2))
Y10 = np.arange(10) % 2

BAD_CALLS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("no arrays", lambda: train_test_split(), InputError, "arrays"),
    ("lengths differ", lambda: train_test_split(X10, Y10[:9]), InputError, "arrays"),
    ("empty", lambda: train_test_split(np.zeros((0, 2))), InputError, "arrays"),
    ("one sample", lambda: train_test_split(np.zeros((1, 2))), InputError, "arrays"),
    ("scalar", lambda: train_test_split(X10, 3), InputError, "arrays[1]"),
    ("test_size 0", lambda: train_test_split(X10, test_size=0.0), ConfigError, "test_size"),
    ("test_size 1.0", lambda: train_test_split(X10, test_size=1.0), ConfigError, "test_size"),
    ("test_size 0 int", lambda: train_test_split(X10, test_size=0), ConfigError, "test_size"),
    ("test_size = n", lambda: train_test_split(X10, test_size=10), ConfigError, "test_size"),
    ("test_size ceil", lambda: train_test_split(X10, test_size=0.95), ConfigError, "test_size"),
    ("test_size str", lambda: train_test_split(X10, test_size="0.2"), ConfigError, "test_size"),
    ("test_size bool", lambda: train_test_split(X10, test_size=True), ConfigError, "test_size"),
    ("test_size nan", lambda: train_test_split(X10, test_size=np.nan), ConfigError, "test_size"),
    ("seed negative", lambda: train_test_split(X10, seed=-1), ConfigError, "seed"),
    ("seed float", lambda: train_test_split(X10, seed=1.5), ConfigError, "seed"),
    ("shuffle", lambda: train_test_split(X10, shuffle="yes"), ConfigError, "shuffle"),
    (
        "stratify unshuffled",
        lambda: train_test_split(X10, stratify=Y10, shuffle=False),
        ConfigError,
        "shuffle",
    ),
    (
        "stratify length",
        lambda: train_test_split(X10, stratify=Y10[:8]),
        InputError,
        "stratify",
    ),
    (
        "stratify one-hot",
        lambda: train_test_split(X10, stratify=np.eye(2)[Y10]),
        InputError,
        "stratify",
    ),
    (
        "stratify nan",
        lambda: train_test_split(X10, stratify=np.full(10, np.nan)),
        InputError,
        "stratify",
    ),
    ("k = 1", lambda: KFold(1), ConfigError, "n_splits"),
    ("k float", lambda: KFold(2.5), ConfigError, "n_splits"),
    ("k bool", lambda: StratifiedKFold(True), ConfigError, "n_splits"),
    ("k shuffle", lambda: KFold(3, shuffle=1), ConfigError, "shuffle"),
    ("k seed unused", lambda: KFold(3, seed=0), ConfigError, "seed"),
    ("k seed", lambda: StratifiedKFold(3, shuffle=True, seed=-2), ConfigError, "seed"),
    ("k > n", lambda: KFold(11).split(X10), ConfigError, "n_splits"),
    ("k > n stratified", lambda: StratifiedKFold(11).split(X10, Y10), ConfigError, "n_splits"),
    ("kfold empty", lambda: KFold(2).split(np.zeros((0, 3))), InputError, "X"),
    ("kfold empty list", lambda: KFold(2).split([]), InputError, "X"),
    ("kfold scalar", lambda: KFold(2).split(5), InputError, "X"),
    ("kfold y length", lambda: KFold(2).split(X10, Y10[:5]), InputError, "y"),
    ("stratified y 2-D", lambda: StratifiedKFold(2).split(X10, np.eye(2)[Y10]), InputError, "y"),
    ("stratified y length", lambda: StratifiedKFold(2).split(X10, Y10[:7]), InputError, "y"),
]


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [case[1:] for case in BAD_CALLS],
    ids=[case[0] for case in BAD_CALLS],
)
def test_bad_arguments_raise_naming_the_argument(
    call: Callable[[], Any], error: type[Exception], argument: str
) -> None:
    message = rf"Invalid value for `{re.escape(argument)}`: expected .*, received .*Fix: "
    with pytest.raises(error, match=message):
        call()


def test_errors_are_value_errors_and_raised_at_the_call() -> None:
    with pytest.raises(ValueError):
        train_test_split(X10, test_size=2.0)
    # split() checks its arguments before the first fold is asked for
    with pytest.raises(ConfigError):
        KFold(20).split(X10)


def test_repr_shows_the_constructor_arguments() -> None:
    assert repr(KFold(3)) == "KFold(n_splits=3, shuffle=False, seed=None)"
    assert repr(StratifiedKFold(4, shuffle=True, seed=1)) == (
        "StratifiedKFold(n_splits=4, shuffle=True, seed=1)"
    )
