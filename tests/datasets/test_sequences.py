"""Tests for lamina.datasets.sequences: sliding windows, padding, and the adding and
noisy-sine problems (issue 15)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lamina import config, datasets
from lamina.errors import ConfigError, InputError

# --------------------------------------------------------------------------- windows


def test_windows_by_hand() -> None:
    X, y = datasets.windows(np.arange(10), window=3, horizon=2, stride=2)
    # starts 0, 2, 4; a start of 6 would need steps 6..10, and the series ends at 9
    np.testing.assert_array_equal(X[..., 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y, [[3, 4], [5, 6], [7, 8]])
    assert X.shape == (3, 3, 1) and X.dtype == y.dtype == np.float32


def test_windows_defaults_take_every_start_and_the_next_value() -> None:
    X, y = datasets.windows([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], 3)
    np.testing.assert_array_equal(X[..., 0], [[0.5, 1.5, 2.5], [1.5, 2.5, 3.5], [2.5, 3.5, 4.5]])
    np.testing.assert_array_equal(y, [[3.5], [4.5], [5.5]])


def test_windows_equal_keras_timeseries_dataset_worked_by_hand() -> None:
    """keras.utils.timeseries_dataset_from_array(data[:-1], data[3:], sequence_length=3,
    sequence_stride=2) on data = 0..9: Keras makes len(data[:-1]) − (3 − 1) = 7 candidate
    starts, takes every second (0, 2, 4, 6) and pairs the window at start i with
    targets[i] = data[i + 3]."""
    keras_windows = [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8]]
    keras_targets = [3, 5, 7, 9]
    X, y = datasets.windows(np.arange(10), window=3, horizon=1, stride=2)
    np.testing.assert_array_equal(X[..., 0], keras_windows)
    np.testing.assert_array_equal(y[:, 0], keras_targets)


def keras_windows(data: np.ndarray, targets: np.ndarray, length: int, stride: int) -> Any:
    """The index arithmetic of Keras' timeseries_dataset_from_array (sampling_rate 1, no
    start/end index): num_seqs = min(len(data) − (length − 1), len(targets)) candidate
    starts, every stride-th taken; window i is data[i : i + length], its target targets[i]."""
    num_seqs = min(len(data) - (length - 1), len(targets))
    starts = np.arange(0, num_seqs, stride)
    return np.stack([data[i : i + length] for i in starts]), targets[starts]


@pytest.mark.parametrize(("T", "window", "stride"), [(5, 1, 1), (12, 4, 1), (13, 4, 3), (30, 7, 5)])
def test_windows_equal_keras_for_next_step_targets(T: int, window: int, stride: int) -> None:
    series = np.random.default_rng(T).standard_normal((T, 2)).astype(np.float32)
    expected_X, expected_y = keras_windows(series[:-1], series[window:], window, stride)
    X, y = datasets.windows(series, window, 1, stride)
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y[:, 0], expected_y)


def test_windows_of_a_multivariate_series() -> None:
    series = np.arange(24, dtype=np.float64).reshape(12, 2)
    X, y = datasets.windows(series, window=4, horizon=2, stride=3)
    assert X.shape == (3, 4, 2) and y.shape == (3, 2, 2)
    for k, start in enumerate((0, 3, 6)):
        np.testing.assert_array_equal(X[k], series[start : start + 4])
        np.testing.assert_array_equal(y[k], series[start + 4 : start + 6])
    assert X.flags.c_contiguous and y.flags.c_contiguous
    assert not np.shares_memory(X, series) and not np.shares_memory(X, y)


def test_windows_with_a_target_at_every_step() -> None:
    X, y = datasets.windows(np.arange(8), window=3, horizon=2, targets="sequence")
    np.testing.assert_array_equal(X[..., 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    np.testing.assert_array_equal(y, [[2, 3, 4], [3, 4, 5], [4, 5, 6], [5, 6, 7]])
    X2, y2 = datasets.windows(np.arange(16).reshape(8, 2), 3, 2, targets="sequence")
    assert y2.shape == X2.shape == (4, 3, 2)
    np.testing.assert_array_equal(y2[:, :-2], X2[:, 2:])


def test_a_series_exactly_window_plus_horizon_long_gives_one_window() -> None:
    X, y = datasets.windows(np.arange(5), 3, 2, stride=4)
    np.testing.assert_array_equal(X[..., 0], [[0, 1, 2]])
    np.testing.assert_array_equal(y, [[3, 4]])


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: datasets.windows(np.arange(4), 3, 2), ["`series`", "3 + 2 = 5", "4 time steps"]),
        (lambda: datasets.windows([1.0, math.nan, 2.0, 3.0], 2), ["`series`", "NaN", "(1,)"]),
        (lambda: datasets.windows([[1.0], [math.inf], [2.0]], 1), ["`series`", "inf"]),
        (lambda: datasets.windows(np.zeros((5, 2, 2)), 2), ["`series`", "(5, 2, 2)", "one series"]),
        (lambda: datasets.windows(3.0, 1), ["`series`"]),
        (lambda: datasets.windows(["a", "b", "c"], 1), ["`series`", "numeric"]),
        (lambda: datasets.windows([1e300, 1.0, 2.0], 1), ["`series`", "float32"]),
    ],
)
def test_bad_series_raise_input_error(call: Callable[[], Any], fragments: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        call()
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "argument", "value"),
    [
        ({"window": 0}, "window", "0"),
        ({"window": -2}, "window", "-2"),
        ({"window": 2.5}, "window", "2.5"),
        ({"window": True}, "window", "True"),
        ({"window": 3, "horizon": 0}, "horizon", "0"),
        ({"window": 3, "stride": 0}, "stride", "0"),
        ({"window": 3, "targets": "last"}, "targets", "'last'"),
    ],
)
def test_bad_window_arguments_raise_config_error(
    arguments: dict[str, Any], argument: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=f"`windows.{argument}`") as caught:
        datasets.windows(np.arange(20), **arguments)
    assert f"received {value}" in str(caught.value) and "Fix:" in str(caught.value)
    assert caught.value.argument == argument


# --------------------------------------------------------------------------- adding problem


@pytest.mark.parametrize("steps", [2, 7, 50])
def test_adding_problem_markers_and_targets(steps: int) -> None:
    X, y = datasets.adding_problem(2000, steps, seed=0)
    assert X.shape == (2000, steps, 2) and y.shape == (2000, 1)
    assert X.dtype == y.dtype == np.float32
    values, markers = X[..., 0], X[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = steps // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1)  # one in the first half
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1)  # one in the second
    np.testing.assert_array_equal(y[:, 0], (values * markers).sum(axis=1))
    # every step of each half is drawn (uniformly: no step is left out)
    first, second = markers.argmax(axis=1), half + markers[:, half:].argmax(axis=1)
    assert set(first) == set(range(half)) and set(second) == set(range(half, steps))


def test_adding_problem_by_seed() -> None:
    X, y = datasets.adding_problem(5, 6, seed=3)
    X2, y2 = datasets.adding_problem(5, 6, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, datasets.adding_problem(5, 6, seed=4)[0])


def test_adding_problem_constant_predictor_mse_is_one_sixth() -> None:
    _, y = datasets.adding_problem(200_000, 10, seed=1)
    assert float(np.mean((y - 1.0) ** 2)) == pytest.approx(1 / 6, abs=0.002)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.005)


# --------------------------------------------------------------------------- noisy sine


def test_noisy_sine_targets_continue_the_noise_free_sine() -> None:
    X, y = datasets.noisy_sine(200, 20, horizon=3, noise=0.0, seed=0)
    assert X.shape == (200, 20, 1) and y.shape == (200, 3)
    s = np.concatenate([X[..., 0], y], axis=1).astype(np.float64)
    # a sine obeys s(t + 1) + s(t − 1) = 2·cos(2πf)·s(t): one constant c per row
    c = (s[:, 2:] + s[:, :-2]) / np.where(np.abs(s[:, 1:-1]) > 0.2, s[:, 1:-1], np.nan)
    c_row = np.nanmedian(c, axis=1)
    np.testing.assert_allclose(c, c_row[:, None] + 0 * c, atol=2e-4)  # NaN where skipped
    low, high = (2 * np.cos(2 * np.pi * f) for f in reversed(datasets.SINE_FREQUENCIES))
    assert low <= c_row.min() and c_row.max() <= high


def test_noisy_sine_noise_is_on_the_inputs_only() -> None:
    clean_X, clean_y = datasets.noisy_sine(4000, 30, noise=0.0, seed=5)
    X, y = datasets.noisy_sine(4000, 30, noise=0.2, seed=5)
    np.testing.assert_array_equal(y, clean_y)
    assert float(np.std(X - clean_X)) == pytest.approx(0.2, rel=0.02)


def test_noisy_sine_last_value_baseline() -> None:
    X, y = datasets.noisy_sine(50_000, 50, noise=0.1, seed=2)
    baseline = float(np.mean((X[:, -1, :] - y) ** 2))
    low, high = datasets.SINE_FREQUENCIES
    # E[2 sin²(πf)] = 1 − E[cos 2πf] for f ~ U(low, high), plus the noise's variance
    mean_cos = (np.sin(2 * np.pi * high) - np.sin(2 * np.pi * low)) / (2 * np.pi * (high - low))
    assert baseline == pytest.approx(1 - mean_cos + 0.1**2, rel=0.03)
    assert baseline == pytest.approx(0.103, abs=0.004)
    X3, y3 = datasets.noisy_sine(1000, 50, horizon=3, seed=2)
    repeated = np.repeat(X3[:, -1:, 0], 3, axis=1)
    assert repeated.shape == y3.shape
    per_step = np.mean((repeated - y3) ** 2, axis=0)
    assert per_step[0] < per_step[1] < per_step[2]  # the further ahead, the worse


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: datasets.adding_problem(0), "samples"),
        (lambda: datasets.adding_problem(10, 1), "steps"),
        (lambda: datasets.adding_problem(10, 2.0), "steps"),
        (lambda: datasets.adding_problem(10, True), "steps"),
        (lambda: datasets.adding_problem(10, seed=-1), "seed"),
        (lambda: datasets.adding_problem(300_000, 50), "samples"),  # 15M time steps
        (lambda: datasets.noisy_sine(10, horizon=0), "horizon"),
        (lambda: datasets.noisy_sine(10, 1), "steps"),
        (lambda: datasets.noisy_sine(10, noise=-0.1), "noise"),
        (lambda: datasets.noisy_sine(10, noise=math.nan), "noise"),
        (lambda: datasets.noisy_sine(10, seed="0"), "seed"),
    ],
)
def test_bad_generator_arguments(call: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ConfigError, match=f"`{argument}`") as caught:
        call()
    assert "Fix:" in str(caught.value) and "\n" not in str(caught.value)


def test_too_many_time_steps_are_refused_before_anything_is_drawn() -> None:
    with pytest.raises(ConfigError, match=r"at most 10,000,000 rows in all \(samples × steps"):
        datasets.adding_problem(1_000_000, 20)
    with pytest.raises(ConfigError, match=r"samples=200,000 × steps=51 = 10,200,000 rows"):
        datasets.noisy_sine(200_000, 50)  # 50 observed steps and 1 target step each


# --------------------------------------------------------------------------- pad_sequences

KERAS_EXAMPLE = [[1], [2, 3], [4, 5, 6]]


def test_pad_sequences_keras_examples_with_keras_settings() -> None:
    keras: dict[str, Any] = {"padding": "pre", "truncating": "pre"}
    pad = datasets.pad_sequences
    np.testing.assert_array_equal(pad(KERAS_EXAMPLE, **keras), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(
        pad(KERAS_EXAMPLE, value=-1, **keras), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    )
    np.testing.assert_array_equal(
        pad(KERAS_EXAMPLE, padding="post", truncating="pre"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    )
    np.testing.assert_array_equal(pad(KERAS_EXAMPLE, maxlen=2, **keras), [[0, 1], [2, 3], [5, 6]])


def test_pad_sequences_defaults_pad_and_cut_at_the_end() -> None:
    padded = datasets.pad_sequences(KERAS_EXAMPLE)
    np.testing.assert_array_equal(padded, [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    assert padded.dtype == np.intp
    np.testing.assert_array_equal(
        datasets.pad_sequences(KERAS_EXAMPLE, maxlen=2), [[1, 0], [2, 3], [4, 5]]
    )
    np.testing.assert_array_equal(
        datasets.pad_sequences(KERAS_EXAMPLE, maxlen=4, padding="pre", truncating="post"),
        [[0, 0, 0, 1], [0, 0, 2, 3], [0, 4, 5, 6]],
    )


def test_pad_sequences_lengths_and_mask_as_documented() -> None:
    sequences = [[7, 8, 9, 10], [1], [], [2, 3]]
    for padding, expected in (
        ("post", [[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]]),
        ("pre", [[1, 1, 1], [0, 0, 1], [0, 0, 0], [0, 1, 1]]),
    ):
        padded = datasets.pad_sequences(sequences, maxlen=3, padding=padding)
        lengths = np.minimum([len(s) for s in sequences], padded.shape[1])
        if padding == "post":
            mask = np.arange(padded.shape[1]) < lengths[:, None]
        else:
            mask = np.arange(padded.shape[1]) >= padded.shape[1] - lengths[:, None]
        np.testing.assert_array_equal(mask, np.array(expected, dtype=bool))
        assert (padded[~mask] == 0).all() and (padded[mask] != 0).all()


def test_pad_sequences_of_feature_arrays() -> None:
    a = np.arange(6, dtype=np.float64).reshape(3, 2)
    b = np.ones((1, 2), dtype=np.float32)
    padded = datasets.pad_sequences([a, b, np.zeros((0, 2))], value=-1)
    assert padded.shape == (3, 3, 2) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[0], a)
    np.testing.assert_array_equal(padded[1], [[1, 1], [-1, -1], [-1, -1]])
    np.testing.assert_array_equal(padded[2], np.full((3, 2), -1))
    pre = datasets.pad_sequences([a, b], maxlen=2, padding="pre", truncating="pre")
    np.testing.assert_array_equal(pre, [[[2, 3], [4, 5]], [[0, 0], [1, 1]]])


def test_pad_sequences_dtype() -> None:
    assert datasets.pad_sequences([[1, 2], [3]], value=0.5).dtype == np.float32
    assert datasets.pad_sequences([[1.5], [3]]).dtype == np.float32
    assert datasets.pad_sequences(np.array([[1, 2], [3, 4]])).dtype == np.intp


@pytest.mark.parametrize(
    ("sequences", "fragments"),
    [
        ([], ["`sequences`", "at least one sequence"]),
        ([[], []], ["`sequences`", "non-empty", "maxlen"]),
        ("abc", ["`sequences`", "a str"]),
        (5, ["`sequences`", "a int"]),
        ([np.ones((2, 3)), np.ones((2, 4))], ["`sequences[1]`", "(3,)", "(4,)"]),
        ([[1, 2], np.ones((2, 2, 2))], ["`sequences[1]`", "(2, 2, 2)"]),
        ([[1, 2], ["a"]], ["`sequences[1]`", "dtype <U1"]),
        ([[1, 2], 3], ["`sequences[1]`", "shape ()"]),
    ],
)
def test_bad_sequences_raise_input_error(sequences: Any, fragments: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        datasets.pad_sequences(sequences)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"maxlen": 0}, "maxlen"),
        ({"maxlen": 2.0}, "maxlen"),
        ({"padding": "middle"}, "padding"),
        ({"truncating": "both"}, "truncating"),
        ({"value": math.nan}, "value"),
        ({"value": "0"}, "value"),
    ],
)
def test_bad_padding_arguments_raise_config_error(arguments: dict[str, Any], argument: str) -> None:
    with pytest.raises(ConfigError, match=f"`pad_sequences.{argument}`"):
        datasets.pad_sequences(KERAS_EXAMPLE, **arguments)


# --------------------------------------------------------------------------- [data] tables


def write_run(path: Path, data: str) -> Path:
    path.write_text(
        f'[data]\n{data}\n\n[[layers]]\ntype = "dense"\nn_inputs = 2\nn_neurons = 1\n\n'
        '[compile]\nloss = "mean_squared_error"\n'
    )
    return path


@pytest.mark.parametrize(
    ("data", "call"),
    [
        (
            'dataset = "adding_problem"\nsamples = 30\nsteps = 12\nseed = 4',
            lambda: datasets.adding_problem(30, 12, seed=4),
        ),
        (
            'dataset = "noisy_sine"\nsamples = 20\nsteps = 9\nhorizon = 2\nnoise = 0.3\nseed = 1',
            lambda: datasets.noisy_sine(20, 9, horizon=2, noise=0.3, seed=1),
        ),
        ('dataset = "adding_problem"\nseed = 0', lambda: datasets.adding_problem(seed=0)),
    ],
)
def test_a_data_table_reads_the_generator(
    tmp_path: Path, data: str, call: Callable[[], Any]
) -> None:
    loaded = config.load_data(config.load_config(write_run(tmp_path / "run.toml", data)))
    X, y = call()
    np.testing.assert_array_equal(loaded.X_train, X)
    np.testing.assert_array_equal(loaded.y_train, y)
    assert loaded.class_names is None  # float targets: a regression


@pytest.mark.parametrize(
    ("data", "call"),
    [
        ('dataset = "adding_problem"\nsteps = 1', lambda: datasets.adding_problem(steps=1)),
        ('dataset = "adding_problem"\nsteps = true', lambda: datasets.adding_problem(steps=True)),
        ('dataset = "noisy_sine"\nhorizon = 0', lambda: datasets.noisy_sine(horizon=0)),
        ('dataset = "noisy_sine"\nnoise = -1.0', lambda: datasets.noisy_sine(noise=-1.0)),
        ('dataset = "noisy_sine"\nsamples = 0', lambda: datasets.noisy_sine(0)),
        (
            'dataset = "adding_problem"\nsamples = 300000',
            lambda: datasets.adding_problem(300_000),
        ),
        (
            'dataset = "noisy_sine"\nsamples = 200000\nhorizon = 10',
            lambda: datasets.noisy_sine(200_000, horizon=10),
        ),
    ],
)
def test_a_data_table_and_the_python_call_give_the_same_message(
    tmp_path: Path, data: str, call: Callable[[], Any]
) -> None:
    path = write_run(tmp_path / "run.toml", data)
    with pytest.raises(ConfigError) as from_python:
        call()
    with pytest.raises(config.ConfigFileError) as from_config:
        config.load_config(path)
    assert str(from_config.value) == f"{path}:3: [data]: {from_python.value}"


def test_a_key_of_another_dataset_is_refused(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.toml", 'dataset = "adding_problem"\nhorizon = 2')
    with pytest.raises(config.ConfigFileError, match="horizon"):
        config.load_config(path)
