"""Inference batches on several threads (``lamina.engine.spread``): the same outputs as one
thread, in order; errors at their batch; workers stopped and joined however the caller
leaves; the BLAS library's thread count back as it was."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lamina as lm
from lamina.engine import spread
from lamina.errors import InputError
from lamina.threads import current_blas_threads, one_blas_thread

L = lm.layers


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spread over two threads whatever machine the suite runs on."""
    monkeypatch.setattr(spread, "usable_cores", lambda: 2)


def inference_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lamina-inference")]


def convolutional() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 16, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(16, 16, 3, padding="same", activation="relu"),
            L.Flatten(),
            L.Dense(5 * 5 * 16, 4, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def recurrent() -> lm.Model:
    model = lm.Model([L.GRU(3, 8), L.Dense(8, 2)], seed=0)
    model.compile(loss="mse", optimizer="adam")
    return model


def images(n: int = 300) -> np.ndarray:
    return np.random.default_rng(1).random((n, 12, 12, 1), dtype=np.float32)


def test_in_order_gives_every_batch_in_order_from_several_threads() -> None:
    seen: dict[int, tuple[int, int | None]] = {}

    def compute(start: int) -> np.ndarray:
        seen[start] = threading.get_ident(), current_blas_threads()
        return np.full(3, start)

    before = current_blas_threads()
    with lm.blas_threads(2):
        results = list(spread.in_order(compute, range(0, 100, 10), 2))
    assert [start for start, _ in results] == list(range(0, 100, 10))
    assert all((outputs == start).all() for start, outputs in results)
    workers = {ident for ident, _ in seen.values()}
    assert len(workers) == 2 and threading.get_ident() not in workers
    assert {count for _, count in seen.values()} == {1}  # one BLAS thread in each worker
    assert current_blas_threads() == before and not inference_threads()


def test_an_error_in_a_worker_is_raised_at_its_batch_after_the_batches_before_it() -> None:
    def compute(start: int) -> np.ndarray:
        if start == 30:
            raise ValueError("batch 30 is bad")
        return np.zeros(1)

    given = []
    with pytest.raises(ValueError, match="batch 30 is bad"):
        for start, _ in spread.in_order(compute, range(0, 100, 10), 2):
            given.append(start)
    assert given == [0, 10, 20]
    assert not inference_threads()


@pytest.mark.parametrize("leave", ["close", "throw"])
def test_a_caller_leaving_early_stops_and_joins_the_workers(leave: str) -> None:
    computed = []

    def compute(start: int) -> np.ndarray:
        computed.append(start)
        return np.zeros(1)

    before = current_blas_threads()
    with lm.blas_threads(2):
        batches = spread.in_order(compute, range(1000), 2)
        next(batches)
        if leave == "close":
            batches.close()
        else:  # Ctrl-C while waiting for the next batch
            with pytest.raises(KeyboardInterrupt):
                batches.throw(KeyboardInterrupt)
        assert not inference_threads()
        assert current_blas_threads() == 2
    assert len(computed) < 20  # stopped, not run to the end
    assert current_blas_threads() == before


def test_one_blas_thread_restores_the_count_when_its_last_holder_leaves() -> None:
    with lm.blas_threads(2):
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert current_blas_threads() == 1  # the second holder is still inside
        second.__exit__(None, None, None)
        assert current_blas_threads() == 2


@pytest.mark.parametrize("build, inputs", [(convolutional, images), (recurrent, None)])
def test_predict_on_two_threads_equals_one_thread_exactly(build, inputs, monkeypatch) -> None:
    model = build()
    X = inputs() if inputs else np.random.default_rng(2).standard_normal((300, 7, 3))
    calls = []
    real = spread.in_order
    monkeypatch.setattr(spread, "in_order", lambda *a: calls.append(a[2]) or real(*a))
    with lm.blas_threads(1):
        alone = model.predict(X, batch_size=32)
    assert calls == []  # one BLAS thread: one inference thread
    with lm.blas_threads(2):
        spread_out = model.predict(X, batch_size=32)
    assert calls == [2]
    np.testing.assert_array_equal(spread_out, alone)  # each batch computed as one thread does


def test_evaluate_on_two_threads_equals_one_thread() -> None:
    model = convolutional()
    X, y = images(), np.arange(300) % 4
    with lm.blas_threads(1):
        alone = model.evaluate(X, y, batch_size=32)
    with lm.blas_threads(2):
        assert model.evaluate(X, y, batch_size=32) == alone


def test_a_nan_in_a_late_batch_names_it_as_on_one_thread() -> None:
    model = convolutional()
    X = images()
    X[250, 3, 4, 0] = np.nan
    with lm.blas_threads(2), pytest.raises(InputError, match="250"):
        model.predict(X, batch_size=32)
    assert not inference_threads()


def test_which_models_spread() -> None:
    conv, dense = convolutional(), lm.Model([L.Dense(4, 2)], seed=0)
    with lm.blas_threads(2):
        assert spread.inference_workers(conv.layers, batches=10) == 2
        assert spread.inference_workers(conv.layers, batches=4) == 2
        # a thread's first batch is dearer (new scratch memory): at least two batches each
        assert spread.inference_workers(conv.layers, batches=3) == 1
        # a stack of Dense layers: the BLAS library's own threads split its products better
        assert spread.inference_workers(dense.layers, batches=10) == 1
    with lm.blas_threads(1):
        assert spread.inference_workers(conv.layers, batches=10) == 1


def test_monte_carlo_dropout_runs_its_batches_in_draw_order(monkeypatch) -> None:
    model = lm.Model(
        [L.Conv2D(1, 4, 3, activation="relu"), L.Flatten(), L.Dropout(0.5), L.Dense(400, 2)],
        seed=0,
    )
    model.compile(loss="mse", optimizer="adam")
    X = images(200)
    calls = []
    real = spread.in_order
    monkeypatch.setattr(spread, "in_order", lambda *a: calls.append(a[2]) or real(*a))
    with lm.blas_threads(2):
        first = model.predict(X, batch_size=32, samples=3, seed=0)
        again = model.predict(X, batch_size=32, samples=3, seed=0)
    assert calls == []
    np.testing.assert_array_equal(first, again)


def test_two_callers_spreading_at_once_get_their_own_results() -> None:
    # a server answering two requests with one model, each request spread over two threads
    model = convolutional()
    X = [images(), images()[::-1].copy()]
    with lm.blas_threads(1):
        expected = [model.predict(x, batch_size=32) for x in X]
    results: dict[int, np.ndarray] = {}
    with lm.blas_threads(2):
        callers = [
            threading.Thread(target=lambda k=k: results.update({k: model.predict(X[k], 32)}))
            for k in range(2)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert current_blas_threads() == 2
    for k in range(2):
        np.testing.assert_array_equal(results[k], expected[k])


def test_a_padding_mask_travels_with_its_batch() -> None:
    # token ids with zero padding: evaluate scores every batch with its own mask
    model = lm.Model(
        [
            L.Embedding(20, 6, mask_zero=True),
            L.GRU(6, 8, return_sequences=True),
            L.Dense(8, 3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 20, (300, 9))
    lengths = rng.integers(1, 10, 300)
    ids[np.arange(9) >= lengths[:, None]] = 0
    y = rng.integers(0, 3, (300, 9))
    with lm.blas_threads(1):
        alone = model.evaluate(ids, y, batch_size=16), model.predict(ids, batch_size=16)
    with lm.blas_threads(2):
        assert spread.inference_workers(model.layers, batches=19) == 2
        together = model.evaluate(ids, y, batch_size=16), model.predict(ids, batch_size=16)
    assert together[0] == alone[0]
    np.testing.assert_array_equal(together[1], alone[1])


class Doubling(L.Layer):
    """A user's layer that keeps its output and returns the attribute: not thread-safe."""

    def forward(self, inputs, *, training=False):
        self.last = inputs * 2
        return self.last

    def backward(self, dvalues):
        return dvalues * 2


class SafeDoubling(Doubling):
    thread_safe_inference = True


def test_a_users_layer_keeps_the_plain_loop_unless_it_says_it_is_thread_safe() -> None:
    conv = L.Conv2D(1, 4, 3)
    with lm.blas_threads(2):
        assert spread.inference_workers([conv, Doubling()], batches=10) == 1
        assert spread.inference_workers([conv, SafeDoubling()], batches=10) == 2
        # a subclass of a built-in is the user's too
        mine = type("MyConv", (L.Conv2D,), {"__module__": "my_project.layers"})(1, 4, 3)
        assert spread.inference_workers([mine], batches=10) == 1
        # inside a wrapper as well
        gru = type("MyGRU", (L.GRU,), {"__module__": "my_project.layers"})(3, 4)
        assert spread.inference_workers([L.Bidirectional(gru)], batches=10) == 1
        assert spread.inference_workers([L.Bidirectional(L.GRU(3, 4))], batches=10) == 2
