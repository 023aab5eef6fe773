"""Data for sequence models: sliding windows over a series, padding of variable-length
sequences, and two generated problems with known answers (notes §2.2, *Recurrent Neural
Network*).

Recurrent layers read (batch, time, features): every X here is 3-D, float32, batch first.
The generators check their arguments with the rules of :mod:`lamina.datasets.checks`, which
``lamina.config`` applies to a ``[data]`` table too, so a bad value gives the same message
from Python and from a config file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lamina._params import Interval, Options, Rule, checked
from lamina.datasets.checks import check_count, check_noise, check_rows, check_seed
from lamina.errors import InputError, invalid
from lamina.validation import as_array, cast_samples, check_finite

__all__ = ["SINE_FREQUENCIES", "adding_problem", "noisy_sine", "pad_sequences", "windows"]

# noisy_sine's frequencies, in cycles per time step: periods of 10 to 30 steps, so a window
# of 50 steps holds 1⅔ to 5 periods.
SINE_FREQUENCIES = (1 / 30, 1 / 10)


def _count(name: str, example: int) -> Rule:
    return Rule([Interval(int, 1)], fix=f"pass an integer such as {name}={example}")


@checked(
    window=_count("window", 50),
    horizon=_count("horizon", 1),
    stride=_count("stride", 1),
    targets=Rule(
        [Options("next", "sequence")],
        fix='pass targets="next" to forecast the values after each window, or '
        'targets="sequence" for the window shifted `horizon` steps ahead',
    ),
)
def windows(
    series: ArrayLike,
    window: int,
    horizon: int = 1,
    stride: int = 1,
    *,
    targets: str = "next",
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Sliding windows over one series, for forecasting: window k starts at time s = k·stride,
    ``X[k] = series[s : s + window]`` and, with ``targets="next"``, ``y[k] = series[s + window
    : s + window + horizon]`` (the ``horizon`` values after the window). Only whole windows
    with all their targets are made: n = ⌊(T − window − horizon) / stride⌋ + 1.

    With ``horizon=1`` these are the windows and targets of Keras'
    ``timeseries_dataset_from_array(series[:-1], series[window:], sequence_length=window,
    sequence_stride=stride)``, its batches put together (Keras' own example passes
    ``data[:-window]``, which drops the last window − 1 windows).

    ``targets="sequence"`` gives a target at every step instead, for a model that returns
    sequences: ``y[k] = series[s + horizon : s + horizon + window]``, each input step's value
    ``horizon`` steps later.

    The windows are a strided view of the series, copied once into X and once into y.

    Args:
        series: T values, shape (T,), or T rows of F features, shape (T, F); time on axis 0.
        window: steps in each input window.
        horizon: how far ahead the targets are (how many values with ``targets="next"``).
        stride: steps between the starts of two windows.
        targets: ``"next"`` or ``"sequence"``, as above.
    Shape:
        X (n, window, F) float32 (F = 1 for a 1-D series); y (n, horizon) for a 1-D series,
        (n, horizon, F) for a 2-D one; with ``targets="sequence"``, ``window`` for ``horizon``.
    Raises:
        InputError: a series that is not 1-D or 2-D, not numeric, has NaN/inf or overflows
            float32, or is shorter than window + horizon.
        ConfigError: window, horizon or stride not an int ≥ 1, or an unknown ``targets``.
    """
    data = _series(series)
    T = data.shape[0]
    if T < window + horizon:
        raise InputError(
            invalid(
                "series",
                f"at least window + horizon = {window} + {horizon} = {window + horizon} time steps",
                f"a series of {T} time steps (shape {np.shape(series)})",
                f"pass a longer series, or a window of at most {max(T - horizon, 1)} steps",
            )
        )
    columns = data if data.ndim == 2 else data[:, None]
    # (n, F, window + horizon) view -> (n, window + horizon, F): nothing is copied yet
    view = np.lib.stride_tricks.sliding_window_view(columns, window + horizon, axis=0)
    view = view[::stride].transpose(0, 2, 1)
    X = np.ascontiguousarray(view[:, :window])
    y = np.ascontiguousarray(view[:, window:] if targets == "next" else view[:, horizon:])
    return X, (y if data.ndim == 2 else y[..., 0])


def _series(series: ArrayLike) -> NDArray[np.float32]:
    """``series`` as a finite float32 array of 1 or 2 dimensions, time first."""
    data = as_array(series, "series")
    if data.dtype.kind not in "biuf":
        raise InputError(
            invalid(
                "series",
                "a numeric series",
                f"dtype {data.dtype}",
                "convert it with np.asarray(series, dtype=np.float32)",
            )
        )
    if data.ndim not in (1, 2):
        fix = (
            "pass one series at a time, as (T,) or (T, features)"
            if data.ndim > 2
            else "pass an array of T values, e.g. np.sin(np.arange(200) / 10)"
        )
        raise InputError(
            invalid("series", "a series of shape (T,) or (T, features)", f"shape {data.shape}", fix)
        )
    check_finite(data, "series")
    return cast_samples(data, np.dtype(np.float32), "series")


def adding_problem(
    samples: int = 1000, steps: int = 50, *, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The adding problem (Hochreiter & Schmidhuber 1997, *Long Short-Term Memory*,
    Experiment 4), in the form later papers use (Le, Jaitly & Hinton 2015; Arjovsky, Shah &
    Bengio 2016, *Unitary Evolution Recurrent Neural Networks*): at each step a value
    u ~ U[0, 1) and a marker; the marker is 1 at exactly two steps, one drawn uniformly in the
    first half [0, ⌊steps/2⌋), one in the second half [⌊steps/2⌋, steps), and 0 elsewhere.
    The target is the sum of the two marked values.

    A network must keep the first marked value for up to ``steps`` − 1 steps while ignoring
    the others: the memory of previous inputs the notes credit recurrent networks with (§2.2).
    Predicting the constant 1 gives MSE = Var(u₁ + u₂) = 2/12 = 1/6 ≈ 0.167, the number to
    beat (issue 15 asks for MSE < 0.01 at 50 steps). The 1997 original differs in detail:
    values in [−1, 1], sequences of random length, other marker positions, the target scaled
    into [0, 1].

    Shape:
        X (samples, steps, 2) float32: channel 0 the values, channel 1 the markers;
        y (samples, 1) float32.
    Raises:
        ConfigError: ``samples`` not an int ≥ 1, ``steps`` not an int ≥ 2, more than
            :data:`~lamina.datasets.MAX_SAMPLES` time steps in all, or a bad ``seed``.
    """
    samples = check_count("samples", samples, 1, 100)
    steps = check_count("steps", steps, 2, 50)
    check_rows(samples, steps=steps)
    rng = np.random.default_rng(check_seed(seed))
    X = np.zeros((samples, steps, 2), dtype=np.float32)
    X[..., 0] = rng.random((samples, steps), dtype=np.float32)
    half = steps // 2
    rows = np.arange(samples)
    first, second = rng.integers(0, half, samples), rng.integers(half, steps, samples)
    X[rows, first, 1] = X[rows, second, 1] = 1
    y = X[rows, first, 0] + X[rows, second, 0]
    return X, y.reshape(-1, 1)


def noisy_sine(
    samples: int = 1000,
    steps: int = 50,
    *,
    horizon: int = 1,
    noise: float = 0.1,
    seed: int | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Forecasting a sine through noise: each sample is its own sine
    s(t) = sin(2π·f·t + φ), f ~ U(1/30, 1/10) cycles per step (:data:`SINE_FREQUENCIES`),
    φ ~ U[0, 2π), observed for ``steps`` steps with Gaussian noise of standard deviation
    ``noise``; the targets are the next ``horizon`` values of the sine *without* noise,
    s(steps), …, s(steps + horizon − 1). Noise-free targets make the MSE measure the
    forecast alone: a model that recovers the sine scores 0, not noise².

    The baseline to beat repeats the last observed value: ``np.repeat(X[:, -1:, 0], horizon,
    axis=1)``. For horizon 1 its MSE is E[(s(T−1) − s(T))²] + noise² = E[2·sin²(πf)] +
    noise² ≈ 0.093 + 0.01 ≈ 0.103 with the default noise of 0.1.

    Shape:
        X (samples, steps, 1) float32, y (samples, horizon) float32.
    Raises:
        ConfigError: ``samples``/``horizon`` not an int ≥ 1, ``steps`` not an int ≥ 2, a
            negative or non-finite ``noise``, too many time steps in all, or a bad ``seed``.
    """
    samples = check_count("samples", samples, 1, 100)
    steps = check_count("steps", steps, 2, 50)
    horizon = check_count("horizon", horizon, 1, 1)
    noise = check_noise(noise)
    check_rows(samples, steps=steps + horizon)
    rng = np.random.default_rng(check_seed(seed))
    f = rng.uniform(*SINE_FREQUENCIES, size=(samples, 1))
    phi = rng.uniform(0.0, 2 * math.pi, size=(samples, 1))
    s = np.sin(2 * math.pi * f * np.arange(steps + horizon) + phi)  # (samples, steps + horizon)
    observed = s[:, :steps] + noise * rng.standard_normal((samples, steps))
    return observed[..., None].astype(np.float32), s[:, steps:].astype(np.float32)


@checked(
    maxlen=Rule(
        [Interval(int, 1), None], fix="pass maxlen=100, or None for the longest sequence's length"
    ),
    padding=Rule([Options("post", "pre")], fix='pass padding="post" (or "pre", as Keras)'),
    truncating=Rule([Options("post", "pre")], fix='pass truncating="post" (or "pre", as Keras)'),
    value=Rule([Interval(float)], fix="pass value=0"),
)
def pad_sequences(
    sequences: Iterable[ArrayLike],
    maxlen: int | None = None,
    *,
    padding: str = "post",
    truncating: str = "post",
    value: float = 0.0,
) -> NDArray[Any]:
    """Sequences of different lengths as one array, as Keras' ``pad_sequences`` makes it:
    each is cut to ``maxlen`` steps (from its end with ``truncating="post"``, from its start
    with ``"pre"``) and filled up to ``maxlen`` with ``value`` (after it with
    ``padding="post"``, before it with ``"pre"``).

    The defaults are ``"post"`` where Keras' are ``"pre"``: lamina's recurrent layers take a
    mask and carry their state over masked steps, so the padding may be at either end, and
    with ``"post"`` step t of a row is step t of its sequence — the mask is the prefix
    ``t < length``, the layout of the lengths the recurrent layers and PyTorch's
    ``pack_padded_sequence`` take. ``padding="pre", truncating="pre"`` gives Keras' arrays.
    Token ids pad with 0, the id ``Embedding(..., mask_zero=True)`` masks: keep real ids ≥ 1.

    The lengths and the mask (True at real steps)::

        lengths = np.minimum([len(s) for s in sequences], padded.shape[1])
        mask = np.arange(padded.shape[1]) < lengths[:, None]                    # "post"
        mask = np.arange(padded.shape[1]) >= padded.shape[1] - lengths[:, None]  # "pre"

    Args:
        sequences: N sequences, each a list of ids (t_i,) or an array of t_i steps of F
            features (t_i, F); every sequence has the same F. A sequence may be empty.
        maxlen: steps of the result; None for the longest sequence's length.
        padding, truncating: ``"post"`` or ``"pre"``, as above.
        value: the value of the padded steps.
    Returns:
        (N, maxlen) or (N, maxlen, F): intp when every sequence holds integers and ``value``
        is a whole number (ids for an Embedding), float32 otherwise.
    Raises:
        InputError: no sequences, a sequence that is not numeric or not 1-D/2-D, sequences
            with different numbers of features, or every sequence empty with maxlen=None.
        ConfigError: a bad ``maxlen``, ``padding``, ``truncating`` or ``value``.
    """
    items = _sequences(sequences)
    nonempty = [index for index, item in enumerate(items) if len(item)]
    step_shape = items[nonempty[0]].shape[1:] if nonempty else ()
    for index in nonempty:
        if items[index].shape[1:] != step_shape:
            raise InputError(
                invalid(
                    f"sequences[{index}]",
                    f"steps of shape {step_shape}, as sequences[{nonempty[0]}]",
                    f"steps of shape {items[index].shape[1:]}",
                    "give every sequence the same number of features",
                )
            )
    lengths = [len(item) for item in items]
    if maxlen is None:
        maxlen = max(lengths)
        if maxlen == 0:
            raise InputError(
                invalid(
                    "sequences",
                    "at least one non-empty sequence",
                    f"{len(items)} empty sequences",
                    "pass maxlen to pad them all, or sequences with at least one step",
                )
            )
    integers = all(items[index].dtype.kind in "biu" for index in nonempty)
    dtype = np.intp if integers and float(value).is_integer() else np.float32
    padded = np.full((len(items), maxlen, *step_shape), value, dtype=dtype)
    for row, item in zip(padded, items, strict=True):
        kept = item[:maxlen] if truncating == "post" else item[max(len(item) - maxlen, 0) :]
        if len(kept):  # an empty (0,) list would not broadcast into (0, F) steps
            start = 0 if padding == "post" else maxlen - len(kept)
            row[start : start + len(kept)] = kept
    return padded


def _sequences(sequences: Iterable[ArrayLike]) -> list[NDArray[Any]]:
    """Each sequence as a numeric array of 1 or 2 dimensions (an empty one as shape (0,))."""
    if isinstance(sequences, str | bytes) or not isinstance(sequences, Iterable):
        raise InputError(
            invalid(
                "sequences",
                "a list of sequences (lists of ids, or (t, features) arrays)",
                f"a {type(sequences).__name__}",
                "pass e.g. [[3, 1, 4], [1, 5]]",
            )
        )
    items = []
    for index, sequence in enumerate(sequences):
        name = f"sequences[{index}]"
        item = as_array(sequence, name)
        if item.ndim not in (1, 2) or item.dtype.kind not in "biuf":
            raise InputError(
                invalid(
                    name,
                    "a numeric sequence of shape (t,) or (t, features)",
                    f"shape {item.shape}, dtype {item.dtype}",
                    "pass each sequence as a list of ids or an array of steps",
                )
            )
        items.append(item)
    if not items:
        raise InputError(
            invalid("sequences", "at least one sequence", "none", "pass a non-empty list")
        )
    return items
