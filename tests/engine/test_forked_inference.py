"""Inference batches on forked processes (``lamina.engine.forked_inference``): the outputs of
one thread bit for bit, in order; a failed or killed copy's batches computed here, errors
raised here at their batch; every copy reaped however the caller leaves; a second inference
at once on threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import pytest

import lamina as lm
from lamina.engine import exchange, forked_inference, spread
from lamina.errors import InputError
from lamina.threads import current_blas_threads

L = lm.layers
BATCHES = 20


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers whatever machine the suite runs on, and a fork whatever the batches'
    time (these models are small)."""
    monkeypatch.setattr(spread, "usable_cores", lambda: 2)
    monkeypatch.setattr(forked_inference, "MIN_SECONDS", 0.0)


@pytest.fixture
def forked_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every copy forked while the test runs."""
    pids: list[int] = []
    real = forked_inference._Copy.fork

    def fork(compute, starts, waits):  # type: ignore[no-untyped-def]
        copy = real(compute, starts, waits)
        pids.append(copy.pid)
        return copy

    monkeypatch.setattr(forked_inference._Copy, "fork", staticmethod(fork))
    return pids


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def convolutional() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 16, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(16, 16, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(16, 4, activation="softmax"),  # 12 → 10 → 5 → 3 → 1 pixel
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def images(n: int = 16 * BATCHES - 5) -> np.ndarray:  # the last batch short
    return np.random.default_rng(1).random((n, 12, 12, 1), dtype=np.float32)


def test_predict_and_evaluate_on_processes_equal_one_thread_exactly(forked_pids) -> None:
    model = convolutional()
    X, y = images(), np.arange(len(images())) % 4
    with lm.blas_threads(1):
        alone = model.predict(X, batch_size=16), model.evaluate(X, y, batch_size=16)
    assert forked_pids == []  # one BLAS thread: one process
    with lm.blas_threads(2):
        forked = model.predict(X, batch_size=16)
        assert len(forked_pids) == 1
        assert model.evaluate(X, y, batch_size=16) == alone[1]
        assert current_blas_threads() == 2  # the count back after the inference
    np.testing.assert_array_equal(forked, alone[0])  # each batch computed as one thread does
    assert len(forked_pids) == 2 and all(gone(pid) for pid in forked_pids)


def test_which_inferences_fork() -> None:
    assert forked_inference.forks(masked=False)
    assert not forked_inference.forks(masked=True)  # a mask stays on threads


@pytest.mark.parametrize(("seconds", "least", "forked"), [(0.01, 0.02, True), (0.0, 0.5, False)])
def test_an_inference_forks_when_its_first_batch_says_the_rest_takes_long_enough(
    seconds: float, least: float, forked: bool, forked_pids, monkeypatch
) -> None:
    # 4 batches: the first here, timed; 3 × 10 ms ≥ 20 ms forks, 3 × ~0 < 0.5 s does not
    monkeypatch.setattr(forked_inference, "MIN_SECONDS", least)
    threaded = []
    real = spread.in_order
    monkeypatch.setattr(spread, "in_order", lambda *a: threaded.append(a[1]) or real(*a))

    def compute(start: int) -> tuple[np.ndarray, None]:
        if start == 0:
            time.sleep(seconds)
        return np.full(2, start), None

    results = list(forked_inference.in_order(compute, range(4), 2))
    assert [int(outputs[0]) for _, (outputs, _) in results] == [0, 1, 2, 3]
    assert (len(forked_pids) == 1) == forked
    assert threaded == ([] if forked else [range(1, 4)])  # the rest on threads


@pytest.mark.parametrize("row", [4 * 16 + 1, 5 * 16 + 3])  # a copy's batch, this process's
def test_a_nan_in_either_process_is_named_as_on_one_thread(row: int, forked_pids) -> None:
    model = convolutional()
    X = images()
    X[row, 3, 4, 0] = np.nan
    with lm.blas_threads(2), pytest.raises(InputError, match=rf"`X`.* at index \({row}, 3, 4, 0\)"):
        model.predict(X, batch_size=16)
    assert forked_pids and all(gone(pid) for pid in forked_pids)


def test_a_copys_error_is_raised_here_at_its_batch_after_the_batches_before_it() -> None:
    given = []

    def compute(start: int) -> tuple[np.ndarray, None]:
        if start == 80:  # the copy's: batch 0 here, then 10 here, 20 there, 30 here, …
            raise RuntimeError(f"batch {start} failed in process {os.getpid()}")
        return np.full(3, start, np.float32), None

    here = os.getpid()
    with pytest.raises(RuntimeError, match=f"batch 80 failed in process {here}$"):
        for start, (outputs, _) in forked_inference.in_order(compute, range(0, 200, 10), 2):
            np.testing.assert_array_equal(outputs, start)
            given.append(start)
    assert given == list(range(0, 80, 10))


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_copys_batches_are_computed_here(death: int, forked_pids) -> None:
    here = os.getpid()
    computed_here = []
    # a handler of this process's (a server's shutdown) must not run in the copy
    previous = signal.signal(signal.SIGTERM, lambda *_: computed_here.append("handler"))

    def compute(start: int) -> tuple[np.ndarray, None]:
        if os.getpid() != here and start == 100:
            os.kill(os.getpid(), death)  # the copy dies mid-inference
        if os.getpid() == here:
            computed_here.append(start)
        return np.arange(4, dtype=np.float64) + start, None

    try:
        results = list(forked_inference.in_order(compute, range(0, 200, 10), 2))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [start for start, _ in results] == list(range(0, 200, 10))
    for start, (outputs, _) in results:
        np.testing.assert_array_equal(outputs, np.arange(4) + start)
    # batch 0 here, then 10 here and 20 there, …: the copy sent 20, 40, 60 and 80, and this
    # process computed the rest of its share
    assert computed_here == [0, *range(10, 100, 20), *range(100, 200, 10)]
    assert gone(forked_pids[0])


def test_ctrl_c_reaching_a_copy_is_left_to_this_process(forked_pids) -> None:
    here = os.getpid()
    computed_here = []

    def compute(start: int) -> tuple[np.ndarray, None]:
        if os.getpid() != here and start == 40:
            os.kill(os.getpid(), signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        if os.getpid() == here:
            computed_here.append(start)
        return np.full(2, start), None

    results = list(forked_inference.in_order(compute, range(0, 100, 10), 2))
    assert [int(outputs[0]) for _, (outputs, _) in results] == list(range(0, 100, 10))
    assert computed_here == [0, *range(10, 100, 20)]  # the copy went on with its own


@pytest.mark.parametrize("leave", ["break", "raise"])
def test_a_caller_leaving_early_kills_and_reaps_the_copy(leave: str, forked_pids) -> None:
    def compute(start: int) -> tuple[np.ndarray, None]:
        return np.zeros(2), None

    batches = forked_inference.in_order(compute, range(1000), 2)
    with pytest.raises(KeyboardInterrupt) if leave == "raise" else nullcontext():
        for start, _ in batches:
            if start == 5:
                if leave == "raise":
                    raise KeyboardInterrupt  # Ctrl-C while the copy still computes
                break
    batches.close()
    assert len(forked_pids) == 1 and gone(forked_pids[0])


def test_a_second_inference_at_once_runs_on_threads(forked_pids, monkeypatch) -> None:
    threaded = []
    real = spread.in_order
    monkeypatch.setattr(spread, "in_order", lambda *a: threaded.append(a[2]) or real(*a))

    def inner(start: int) -> tuple[np.ndarray, None]:
        return np.full(2, -start), None

    def outer(start: int) -> tuple[np.ndarray, None]:
        if os.getpid() == here and start == 0:  # another predict starts meanwhile
            nested.extend(o[0] for _, (o, _) in forked_inference.in_order(inner, range(4), 2))
        return np.full(2, start), None

    here, nested = os.getpid(), []
    outputs = [o[0] for _, (o, _) in forked_inference.in_order(outer, range(0, 40, 2), 2)]
    assert outputs == list(range(0, 40, 2)) and nested == [0, -1, -2, -3]
    assert threaded == [2] and len(forked_pids) == 1
    # and the next inference forks again
    assert len(list(forked_inference.in_order(inner, range(4), 2))) == 4
    assert len(forked_pids) == 2


def test_validation_between_split_training_epochs_runs_on_processes(
    forked_pids, monkeypatch
) -> None:
    # fit's batches on two processes (engine/halves), its validation (batches of 1,024:
    # the predict default) on a forked copy: the epoch's val_loss is what a one-thread
    # evaluate gives afterwards, bit for bit
    model = convolutional()
    rng = np.random.default_rng(5)
    X, y = images(), rng.integers(0, 4, len(images()))
    X_val, y_val = images(4100)[::-1].copy(), rng.integers(0, 4, 4100)  # 5 batches
    with lm.blas_threads(2):
        history = model.fit(
            X, y, epochs=2, batch_size=16, validation_data=(X_val, y_val), verbose=0
        )
    assert len(forked_pids) == 2 and all(gone(pid) for pid in forked_pids)  # one an epoch
    with lm.blas_threads(1):
        scores = model.evaluate(X_val, y_val)
    assert history.history["val_loss"][-1] == scores["loss"]
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


def test_a_refused_fork_leaves_the_inference_to_threads(monkeypatch) -> None:
    model = convolutional()
    X = images()
    with lm.blas_threads(1):
        alone = model.predict(X, batch_size=16)
    forks = []

    def refused() -> int:
        forks.append(1)
        raise OSError(11, "Resource temporarily unavailable")  # EAGAIN: out of processes

    monkeypatch.setattr(os, "fork", refused)
    with lm.blas_threads(2), pytest.warns(RuntimeWarning, match="inference on threads"):
        np.testing.assert_array_equal(model.predict(X, batch_size=16), alone)
    assert forks == [1]


def test_a_copy_that_hangs_is_given_up_and_its_batches_computed_here(
    forked_pids, monkeypatch
) -> None:
    # a copy stuck (a lock another thread held at the fork) must not hang the inference
    monkeypatch.setattr(forked_inference, "PATIENCE_SECONDS", 0.3)  # + 100 × ~0 s
    here = os.getpid()

    def compute(start: int) -> tuple[np.ndarray, None]:
        if os.getpid() != here and start == 4:
            time.sleep(600)
        return np.full(2, start), None

    began = time.perf_counter()
    results = list(forked_inference.in_order(compute, range(10), 2))
    assert [int(outputs[0]) for _, (outputs, _) in results] == list(range(10))
    assert time.perf_counter() - began < 5
    assert len(forked_pids) == 1 and gone(forked_pids[0])
    assert exchange.patience(10.0, 0.006) == pytest.approx(10.6)  # W2's batch: 6 ms


INTERRUPTED = """
import os, signal, sys, time
import numpy as np
import lamina as lm

from lamina.engine import spread

signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
spread.usable_cores = lambda: 2  # two workers whatever machine the suite runs on
L = lm.layers
model = lm.Model([L.Conv2D(1, 16, 3, activation="relu"), L.MaxPool2D(2), L.Flatten(),
                  L.Dense(13 * 13 * 16, 4)], seed=0)
X = np.random.default_rng(0).random((4000, 28, 28, 1), dtype=np.float32)
print("ready", flush=True)
try:
    while True:
        model.predict(X, batch_size=64)
except KeyboardInterrupt:
    time.sleep(0.2)
    children = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
    print("interrupted", len(children), flush=True)
"""


def children_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return file.read().split()


def test_ctrl_c_during_a_forked_predict_interrupts_it_and_reaps_the_copy(tmp_path) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=environment
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 60
        while not children_of(process.pid):  # a copy is computing batches
            assert time.monotonic() < deadline, "no copy was forked"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert output == "interrupted 0\n" and process.returncode == 0
