"""lamina.lr_finder, the learning-rate range test (Smith 2017): on W1 (the notes'
Fashion-MNIST MLP, a subset) it suggests a rate within 3× of the examples' Adam 1e-3, and
it leaves the model's weights and optimizer state bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Dense


@pytest.fixture(scope="module")
def w1_data() -> tuple[np.ndarray, np.ndarray]:
    (X, y), _ = lm.datasets.fashion_mnist()
    X = X[:10000].reshape(10000, -1).astype(np.float32)
    return (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-3), y[:10000]


def w1(seed: int = 0) -> lm.Model:
    """examples/fashion_mnist_mlp.py's model and optimizer."""
    model = lm.Model(
        [
            Dense(784, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 10, activation="softmax", weight_init="glorot_uniform"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-3))
    return model


def state(model: lm.Model) -> tuple[list[np.ndarray], dict, dict]:
    weights = [theta.copy() for _, theta, _ in model.parameters()]
    return weights, model.optimizer.snapshot(), model.random_state  # type: ignore[union-attr]


def assert_same(a: tuple[list[np.ndarray], dict, dict], b: tuple[list[np.ndarray], dict, dict]):
    for x, y in zip(a[0], b[0], strict=True):
        assert x.tobytes() == y.tobytes()
    assert a[1]["iterations"] == b[1]["iterations"]
    assert a[1]["learning_rate"] == b[1]["learning_rate"]
    assert a[1]["slots"].keys() == b[1]["slots"].keys()
    for key, slots in a[1]["slots"].items():
        for name, array in slots.items():
            assert array.tobytes() == b[1]["slots"][key][name].tobytes()
    assert a[2] == b[2]


@pytest.mark.parametrize("seed", [0, 1])
def test_w1_suggestion_is_within_3x_of_the_examples_rate(w1_data, seed: int) -> None:
    model = w1(seed)
    result = lm.lr_finder(model, *w1_data, batch_size=128, steps=100, seed=seed)
    print(result)
    assert 1e-3 / 3 <= result.suggestion <= 3e-3
    assert result.suggestion == pytest.approx(result.minimum / 10)
    assert result.rule.startswith("minimum/10")
    # the curve: flat at 1e-7, lowest well before 10
    assert result.smoothed[0] > 2.0 and result.smoothed.min() < 1.5
    assert result.learning_rates[0] == pytest.approx(1e-7)


def test_weights_and_optimizer_state_are_bit_identical_before_and_after(w1_data) -> None:
    X, y = w1_data
    fresh = w1()
    before = state(fresh)
    lm.lr_finder(fresh, X[:2000], y[:2000], batch_size=128, steps=30)
    assert_same(before, state(fresh))
    assert fresh.optimizer.slots == {}  # not even a zeroed slot appeared  # type: ignore[union-attr]

    trained = w1()
    trained.fit(X[:1000], y[:1000], epochs=1, batch_size=128, verbose=0)  # slots, 8 steps
    before = state(trained)
    lm.lr_finder(trained, X[:2000], y[:2000], batch_size=128, steps=30)
    assert_same(before, state(trained))
    # and training goes on exactly as without the detour
    twin = w1()
    twin.fit(X[:1000], y[:1000], epochs=1, batch_size=128, verbose=0)
    for model in (trained, twin):
        model.fit(X[:1000], y[:1000], epochs=2, initial_epoch=1, batch_size=128, verbose=0)
    for (_, a, _), (_, b, _) in zip(trained.parameters(), twin.parameters(), strict=True):
        assert a.tobytes() == b.tobytes()


def test_the_sweep_stops_when_the_loss_explodes_and_the_curve_plots(w1_data, tmp_path) -> None:
    X, y = w1_data
    model = lm.Model([Dense(784, 10, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.SGD())
    result = model_result = lm.lr_finder(model, X[:2000], y[:2000], start=1e-4, stop=1e4)
    assert result.stopped is not None and len(result.learning_rates) < 100
    assert result.smoothed[-1] > 4 * result.smoothed.min() or "NaN" in result.stopped
    figure = model_result.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 0
    assert figure.axes[0].get_xscale() == "log"


def test_arguments_are_checked(w1_data) -> None:
    X, y = w1_data
    with pytest.raises(lm.errors.ConfigError, match="stop"):
        lm.lr_finder(w1(), X[:100], y[:100], start=1.0, stop=0.1)
    with pytest.raises(lm.errors.ConfigError, match="steps"):
        lm.lr_finder(w1(), X[:100], y[:100], steps=1)
    with pytest.raises(lm.errors.NotCompiledError):
        lm.lr_finder(lm.Model([Dense(784, 10)]), X[:100], y[:100])
