"""A diverging run ends on its last finite step (issue 12, must-show 2): weights, layer
state and optimizer state equal those of a run stopped right before the step that went
wrong, and nothing non-finite reaches a model file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


def model(optimizer: lm.optimizers.Optimizer | str = "adam") -> lm.Model:
    network = lm.Model(
        [
            L.Dense(4, 16, activation="relu"),
            L.BatchNorm(16),
            L.Dropout(0.2),
            L.Dense(16, 3, activation="softmax"),
        ],
        seed=0,
    )
    network.compile(loss="categorical_crossentropy", optimizer=optimizer)
    return network


def state(network: lm.Model) -> dict[str, np.ndarray]:
    tensors = dict(lm.io.model_tensors(network))
    assert network.optimizer is not None
    for key, slots in network.optimizer.slots.items():
        tensors.update({f"{key}/{name}": array for name, array in slots.items()})
    return tensors


def assert_same(a: lm.Model, b: lm.Model) -> None:
    first, second = state(a), state(b)
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert a.optimizer is not None and b.optimizer is not None
    assert a.optimizer.iterations == b.optimizer.iterations


def fit_quietly(network: lm.Model, *args: object, **kwargs: object) -> lm.callbacks.History:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = network.fit(*args, verbose=0, **kwargs)  # type: ignore[arg-type]
    if history.divergence is not None:
        assert any("Training stopped at" in str(w.message) for w in caught)
    return history


def test_sgd_at_1e300_ends_on_the_initial_weights(tmp_path: Path) -> None:
    X, y = data()
    diverging = model(lm.optimizers.SGD(learning_rate=1e300))
    untouched = model(lm.optimizers.SGD(learning_rate=1e300))
    history = fit_quietly(diverging, X, y, epochs=5, batch_size=16)
    assert history.divergence is not None and "start of this epoch" in history.divergence
    assert history.epoch == [] and diverging.epochs_done == 0
    for a, b in zip(
        lm.io.model_tensors(diverging).values(),
        lm.io.model_tensors(untouched).values(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    diverging.save(tmp_path / "m.lamina")  # finite, so it saves and loads
    np.testing.assert_array_equal(
        lm.load_model(tmp_path / "m.lamina").predict(X), diverging.predict(X)
    )


def test_an_overflowing_update_mid_training_ends_on_the_last_finite_epoch() -> None:
    X, y = data()

    def schedule(epoch: int, rate: float) -> float:
        return 1e-2 if epoch < 2 else 1e300  # epoch 3's first update overflows float32

    diverging = model(lm.optimizers.SGD(learning_rate=1e-2, momentum=0.9))
    history = fit_quietly(
        diverging,
        X,
        y,
        epochs=6,
        batch_size=16,
        callbacks=[lm.callbacks.LearningRateScheduler(schedule)],
    )
    assert history.divergence is not None and history.epoch == [0, 1]
    reference = model(lm.optimizers.SGD(learning_rate=1e-2, momentum=0.9))
    fit_quietly(reference, X, y, epochs=2, batch_size=16)
    assert_same(diverging, reference)


class Batches:
    """A Sequence of batches whose batch ``bad`` overflows the forward pass."""

    def __init__(self, X: np.ndarray, y: np.ndarray, bad: int | None, count: int = 8) -> None:
        self.X, self.y, self.bad, self.count = X, y, bad, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        xb = self.X[8 * index : 8 * index + 8].copy()
        if index == self.bad:
            xb[:] = 3e38  # finite, but X·W overflows: the loss is NaN
        return xb, self.y[8 * index : 8 * index + 8]


@pytest.mark.parametrize("stream", ["sequence", "generator"])
def test_a_nan_producing_batch_ends_on_the_step_before_it(stream: str) -> None:
    X, y = data()
    diverging, reference = model(), model()
    fit_quietly(diverging, Batches(X, y, None), epochs=1, shuffle=False)
    fit_quietly(reference, Batches(X, y, None), epochs=1, shuffle=False)
    bad = Batches(X, y, bad=5)
    source = bad if stream == "sequence" else (lambda: (bad[i] for i in range(len(bad))))
    history = fit_quietly(diverging, source, epochs=3, initial_epoch=1, shuffle=False)
    assert history.divergence is not None and "after step 5 of this epoch" in history.divergence
    fit_quietly(reference, Batches(X, y, None, count=5), epochs=2, initial_epoch=1, shuffle=False)
    assert_same(diverging, reference)


def test_a_shuffled_epoch_is_replayed_exactly() -> None:
    X, y = data(96)
    X[70] = 3e38  # one sample whose batch overflows (finite), wherever shuffling puts it
    diverging, reference = model(), model()
    history = fit_quietly(diverging, X, y, epochs=2, batch_size=8)
    assert history.divergence is not None
    kept = int(history.divergence.split("after step ")[1].split()[0])
    shuffle = np.random.Generator(np.random.PCG64())
    shuffle.bit_generator.state = reference.random_state["shuffle"]
    order = shuffle.permutation(96)  # the order the diverging epoch drew
    assert kept == int(np.where(order == 70)[0][0]) // 8  # the steps before the bad batch
    reference.random_state = {**reference.random_state, "shuffle": shuffle.bit_generator.state}

    class FirstSteps:  # the same batches as the diverging epoch, stopping before the bad one
        def __len__(self) -> int:
            return kept

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = order[8 * index : 8 * index + 8]
            return X[rows], y[rows]

    fit_quietly(reference, FirstSteps(), epochs=1, shuffle=False)
    assert_same(diverging, reference)


def test_non_finite_optimizer_state_is_divergence_too() -> None:
    X, y = data()
    network = lm.Model([L.Dense(4, 3, activation="softmax")], seed=0)
    network.compile(loss="categorical_crossentropy", optimizer="adam")
    # finite losses and weights, but gradients near 1e20 whose squares overflow Adam's
    # second moment: the weights stay finite (m / √inf = 0), the optimizer state does not
    history = fit_quietly(network, X * np.float32(1e20), y, epochs=2, batch_size=16)
    assert history.divergence is not None and "optimizer state" in history.divergence
    assert history.epoch == [] and "start of this epoch" in history.divergence
    assert all(np.isfinite(array).all() for array in state(network).values())
