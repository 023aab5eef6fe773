"""Training steps split over two processes (``lamina.engine.halves``): the parameters of a
one-process fit (float64, within rounding) — dropout, sample and class weights, penalties,
a recurrent model included; which models split and which do not; the worker stopped
however the fit ends, its failures named."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import lamina as lm
from lamina.engine import halves
from lamina.errors import WorkerError
from lamina.layers.stack import named_tensors
from lamina.registration import registered

L = lm.layers


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split whatever machine the suite runs on."""
    monkeypatch.setattr(halves, "usable_cores", lambda: 2)
    monkeypatch.setattr(halves, "current_blas_threads", lambda: 2)


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pids of the worker processes the test's fits start."""
    pids: list[int] = []
    start = halves.TrainingHalves._start

    def recording(self: halves.TrainingHalves, signature: tuple[object, ...]) -> None:
        start(self, signature)
        pids.append(self.pid)

    monkeypatch.setattr(halves, "MIN_STEPS", 1)  # the tests' short fits split too
    monkeypatch.setattr(halves.TrainingHalves, "_start", recording)
    yield pids
    for pid in pids:  # every worker is gone once its fit returned or raised
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def convolutional(dropout: float = 0.3, **dense: object) -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 4, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dropout(dropout),
            L.Dense(3 * 3 * 4, 3, activation="softmax", **dense),  # type: ignore[arg-type]
        ],
        seed=0,
        dtype="float64",
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def data(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.random((n, 8, 8, 1)), rng.integers(0, 3, n)


def trained(
    build: Callable[[], lm.Model], split: bool, epochs: int = 2, **fit: object
) -> list[np.ndarray]:
    processes = halves.training_processes
    halves.training_processes = processes if split else (lambda plan: 1)  # type: ignore[assignment]
    try:
        model = build()
        X, y = data()
        model.fit(X, y, epochs=epochs, batch_size=40, verbose=0, **fit)  # type: ignore[arg-type]
        return [theta.copy() for layer in model.layers for theta in layer.params.values()]
    finally:
        halves.training_processes = processes  # type: ignore[assignment]


def assert_same(split: list[np.ndarray], one: list[np.ndarray]) -> None:
    for a, b in zip(split, one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "fit",
    [{}, {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5}}, {"sample_weight": np.linspace(0, 2, 96)}],
    ids=["plain", "class weights", "sample weights"],
)
def test_a_split_fit_trains_the_parameters_of_a_one_process_fit(
    fit: dict[str, object], workers: list[int]
) -> None:
    # batches of 40, 40 and 16 rows: two split steps and one too small to split, per epoch
    assert_same(trained(convolutional, True, **fit), trained(convolutional, False, **fit))
    assert len(workers) == 1  # one worker for the fit's two epochs


def test_penalties_are_added_once_and_dropout_drops_the_same_units(workers: list[int]) -> None:
    def build() -> lm.Model:
        return convolutional(dropout=0.5, weight_l2=0.1, bias_l1=0.01)

    assert_same(trained(build, True), trained(build, False))


def normalized() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 4, 3),
            L.BatchNorm(momentum=0.5),
            L.ReLU(),
            L.MaxPool2D(2),
            L.Flatten(),
            L.BatchNorm(3 * 3 * 4),
            L.Dense(3 * 3 * 4, 3, activation="softmax"),
        ],
        seed=0,
        dtype="float64",
    )
    # SGD, not Adam: the convolution's biases get a gradient of 0 up to rounding (the
    # BatchNorm after it subtracts their effect), which Adam would scale up to steps of ±lr
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    return model


def test_batch_norm_splits_with_the_statistics_of_the_whole_batch(workers: list[int]) -> None:
    # batches of 40, 40 and 16 rows: the two parts of a 40-row batch have 20 rows each, but
    # every BatchNorm normalizes over all 40, and its running statistics follow them
    results = []
    for split in (True, False):
        processes = halves.training_processes
        halves.training_processes = processes if split else (lambda plan: 1)  # type: ignore[assignment]
        try:
            model = normalized()
            X, y = data()
            model.fit(X, y, epochs=2, batch_size=40, verbose=0)
            results.append([array.copy() for _, array in named_tensors(model.layers)])
        finally:
            halves.training_processes = processes  # type: ignore[assignment]
    split, one = results
    assert len(split) == 12  # 4 parameters and 2 running statistics per BatchNorm
    assert_same(split, one)
    assert len(workers) == 1


def gru_regression() -> tuple[lm.Model, np.ndarray, np.ndarray]:
    model = lm.Model([L.GRU(2, 5), L.Dense(5, 1)], seed=0, dtype="float64")
    model.compile(loss="mse", optimizer="adam")
    rng = np.random.default_rng(2)
    return model, rng.random((96, 6, 2)), rng.random((96, 1))


def embedded_gru() -> tuple[lm.Model, np.ndarray, np.ndarray]:
    layers = [L.Embedding(20, 4), L.GRU(4, 6), L.Dense(6, 3, activation="softmax")]
    model = lm.Model(layers, seed=0, dtype="float64")
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    rng = np.random.default_rng(3)
    return model, rng.integers(0, 20, (96, 7)), rng.integers(0, 3, 96)


@pytest.mark.parametrize("build", [gru_regression, embedded_gru], ids=["gru", "embedding ids"])
def test_a_recurrent_model_splits_as_well(
    build: Callable[[], tuple[lm.Model, np.ndarray, np.ndarray]], workers: list[int]
) -> None:
    processes = halves.training_processes
    results = []
    for split in (True, False):
        halves.training_processes = processes if split else (lambda plan: 1)  # type: ignore[assignment]
        try:
            model, X, y = build()
            model.fit(X, y, epochs=1, batch_size=48, verbose=0)
            results.append([theta.copy() for _, theta, _ in model.parameters()])
        finally:
            halves.training_processes = processes  # type: ignore[assignment]
    assert_same(*results)
    assert len(workers) == 1


def test_dropout_keeps_its_rows_of_the_whole_batch_mask() -> None:
    layer = L.Dropout(0.5)
    x = np.ones((10, 4))
    state = layer.rng.bit_generator.state
    whole = layer.forward(x, training=True)
    layer.rng.bit_generator.state = state
    layer.batch_part = (6, 10, 10)
    np.testing.assert_array_equal(layer.forward(x[6:], training=True), whole[6:])


class Custom(L.Dense):
    """A user's layer: it does not split unless its class says so."""


class SplitCustom(L.Dense):
    splits_over_batch = True


class CustomNorm(L.BatchNorm):
    """A user's BatchNorm: its statistics may be computed otherwise, so it does not split."""


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([L.Conv2D(1, 2, 3), L.Flatten(), L.Dense(72, 2)], 2),
        ([L.Flatten(), L.Dense(64, 2)], 1),  # a Dense stack: bounded by its products
        ([L.Conv2D(1, 2, 3), L.BatchNorm(), L.Flatten(), L.Dense(72, 2)], 2),  # sums exchanged
        ([L.Conv2D(1, 2, 3), CustomNorm(), L.Flatten(), L.Dense(72, 2)], 1),
        ([L.Conv2D(1, 2, 3), L.Flatten(), Custom(72, 2)], 1),
        ([L.Conv2D(1, 2, 3), L.Flatten(), SplitCustom(72, 2)], 2),
    ],
    ids=["cnn", "dense", "batchnorm", "custom batchnorm", "custom", "custom that says so"],
)
def test_which_models_split(layers: list[L.Layer], expected: int) -> None:
    with registered(Custom), registered(SplitCustom), registered(CustomNorm):
        model = lm.Model(layers, seed=0)
        model.compile(loss="mse", optimizer="sgd")
        assert halves.training_processes(model.plan) == expected


def test_one_blas_thread_a_mask_or_an_observer_keeps_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = convolutional()
    monkeypatch.setattr(halves, "current_blas_threads", lambda: 1)  # fit(threads=1)
    assert halves.training_processes(model.plan) == 1
    monkeypatch.setattr(halves, "current_blas_threads", lambda: 2)
    model.plan.observers.append(lambda name, layer, outputs: None)
    assert halves.training_processes(model.plan) == 1
    masked = lm.Model([L.Masking(0.0), L.GRU(2, 3), L.Dense(3, 1)], seed=0)
    masked.compile(loss="mse", optimizer="sgd")
    assert halves.training_processes(masked.plan) == 1


class Kill(lm.callbacks.Callback):
    def __init__(self, model: lm.Model, how: str) -> None:
        super().__init__()
        self.target, self.how = model, how

    def on_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        if self.how == "interrupt":
            raise KeyboardInterrupt
        worker = self.target.plan.halves
        assert worker is not None
        os.kill(worker.pid, signal.SIGKILL)


def test_a_killed_worker_is_named_with_the_fix(workers: list[int]) -> None:
    model = convolutional()
    X, y = data()
    with pytest.raises(WorkerError, match=r"stopped \(killed by signal 9\).*threads=1"):
        model.fit(X, y, epochs=1, batch_size=40, verbose=0, callbacks=[Kill(model, "kill")])
    assert model.plan.halves is None
    assert all(np.isfinite(theta).all() for _, theta, _ in model.parameters())


def test_a_worker_killed_while_batch_sums_are_exchanged_is_named(
    workers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange, calls = halves.TrainingHalves._with_theirs, []

    def killing(self: halves.TrainingHalves, mine: np.ndarray) -> np.ndarray:
        calls.append(len(mine))
        if len(calls) == 3:  # the second BatchNorm's Σ x of the first step
            os.kill(self.pid, signal.SIGKILL)
        return exchange(self, mine)

    monkeypatch.setattr(halves.TrainingHalves, "_with_theirs", killing)
    model, (X, y) = normalized(), data()
    with pytest.raises(WorkerError, match=r"stopped \(killed by signal 9\).*threads=1"):
        model.fit(X, y, epochs=1, batch_size=40, verbose=0)
    assert model.plan.halves is None
    monkeypatch.setattr(halves.TrainingHalves, "_with_theirs", exchange)
    model.fit(X, y, epochs=1, batch_size=40, verbose=0)  # and the model trains on
    assert all(np.isfinite(array).all() for _, array in named_tensors(model.layers))


def test_ctrl_c_stops_the_worker(workers: list[int]) -> None:
    model = convolutional()
    X, y = data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=1, batch_size=40, verbose=0, callbacks=[Kill(model, "interrupt")])
    assert len(workers) == 1 and model.plan.halves is None


class FailsInWorker(L.Flatten):
    splits_over_batch = True
    parent = os.getpid()

    def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
        if os.getpid() != self.parent:
            raise ValueError("only the worker's rows fail")
        return super().forward(inputs, training=training)


def test_an_error_in_the_worker_is_raised_here_with_its_message(workers: list[int]) -> None:
    with registered(FailsInWorker):
        model = lm.Model([L.Conv2D(1, 2, 3), FailsInWorker(), L.Dense(72, 2)], seed=0)
        model.compile(loss="mse", optimizer="sgd")
        X = np.random.default_rng(0).random((64, 8, 8, 1))
        with pytest.raises(WorkerError, match="ValueError: only the worker's rows fail"):
            model.fit(X, np.zeros((64, 2)), epochs=1, batch_size=64, verbose=0)


class HangsInWorker(L.Flatten):
    splits_over_batch = True
    parent = os.getpid()

    def forward(self, inputs: np.ndarray, *, training: bool = False) -> np.ndarray:
        if os.getpid() != self.parent:
            time.sleep(600)  # stuck, as on a lock another thread held at the fork
        return super().forward(inputs, training=training)


def test_a_worker_that_hangs_is_given_up_with_the_fix(
    workers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(halves, "PATIENCE_SECONDS", 0.5)
    with registered(HangsInWorker):
        model = lm.Model([L.Conv2D(1, 2, 3), HangsInWorker(), L.Dense(72, 2)], seed=0)
        model.compile(loss="mse", optimizer="sgd")
        X = np.random.default_rng(0).random((64, 8, 8, 1))
        before = [theta.copy() for _, theta, _ in model.parameters()]
        began = time.perf_counter()
        with pytest.raises(WorkerError, match=r"sent nothing for [0-9.]+ s.*threads=1"):
            model.fit(X, np.zeros((64, 2)), epochs=1, batch_size=64, verbose=0)
    assert time.perf_counter() - began < 10
    assert model.plan.halves is None and len(workers) == 1
    for (_, theta, _), kept in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(theta, kept)  # the step that hung changed nothing


def test_divergence_is_undone_as_in_one_process(workers: list[int]) -> None:
    model = convolutional(dropout=0.0)
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD(1e300))
    X, y = data()
    with pytest.warns(RuntimeWarning, match="diverged.*taken back to its state after step 1"):
        model.fit(X, y, epochs=1, batch_size=40, verbose=0)
    assert all(np.isfinite(theta).all() for _, theta, _ in model.parameters())


def test_a_fit_of_few_steps_never_forks(
    workers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(halves, "MIN_STEPS", 20)
    X, y = data()
    convolutional().fit(X, y, epochs=3, batch_size=40, verbose=0)  # 9 steps
    assert workers == []


class Changes(lm.callbacks.Callback):
    """Between epochs: a lower dropout rate, then the first layer frozen."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        layers = self.model.layers
        if epoch == 0:
            layers[3].rate = 0.1
        else:
            layers[0].trainable = False


def test_what_callbacks_change_between_epochs_reaches_the_worker(workers: list[int]) -> None:
    split = trained(convolutional, True, epochs=3, callbacks=[Changes()])
    assert_same(split, trained(convolutional, False, epochs=3, callbacks=[Changes()]))
    assert len(workers) == 2  # freezing a layer changed the parameters: a new worker
