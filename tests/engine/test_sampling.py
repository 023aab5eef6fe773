"""Predictions with their uncertainty (issue 14): Monte-Carlo dropout's mean and spread,
reproducible, without touching training's random draws or BatchNorm's statistics."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as lm
from lamina.engine.sampling import RunningMoments

L = lm.layers


def model() -> lm.Model:
    network = lm.Model(
        [
            L.Dense(3, 32, activation="relu"),
            L.BatchNorm(32),
            L.Dropout(0.3),
            L.Dense(32, 2),
        ],
        seed=0,
    )
    network.compile(loss="mse", optimizer="adam")
    rng = np.random.default_rng(1)
    network.fit(rng.standard_normal((64, 3)), rng.standard_normal((64, 2)), epochs=2, verbose=0)
    return network


def test_monte_carlo_dropout_gives_a_mean_and_a_spread() -> None:
    network = model()
    X = np.random.default_rng(2).standard_normal((10, 3))
    state = network.random_state
    tensors = [a.copy() for a in lm.io.model_tensors(network).values()]
    mean, std = network.predict(X, samples=50, return_std=True)
    assert mean.shape == std.shape == (10, 2) and (std > 0).all()
    again_mean, again_std = network.predict(X, samples=50, return_std=True)
    np.testing.assert_array_equal(mean, again_mean)  # seeded: the same masks
    np.testing.assert_array_equal(std, again_std)
    other = network.predict(X, samples=50, return_std=True, seed=1)[0]
    assert not np.array_equal(other, mean)
    assert network.random_state == state  # training's Generators untouched
    for before, after in zip(tensors, lm.io.model_tensors(network).values(), strict=True):
        np.testing.assert_array_equal(before, after)  # BatchNorm statistics too
    # many samples: the mean approaches the deterministic prediction (inverted dropout)
    deterministic = network.predict(X)
    close = network.predict(X, samples=2000, seed=3)
    assert np.abs(close - deterministic).mean() < 0.2 * np.abs(deterministic).mean() + 0.05
    assert network.predict(X, samples=1) is not None


def test_uncertainty_needs_dropout_or_a_variance_head() -> None:
    plain = lm.Model([L.Dense(3, 1)], seed=0)
    plain.compile(loss="mse")
    X = np.ones((2, 3))
    with pytest.raises(lm.errors.ConfigError, match="samples"):
        plain.predict(X, samples=10)
    with pytest.raises(lm.errors.ConfigError, match="return_std"):
        plain.predict(X, return_std=True)
    with pytest.raises(lm.errors.ConfigError, match="samples"):
        model().predict(X, samples=0)
    for bad, name in (({"samples": True}, "samples"), ({"return_std": "yes"}, "return_std")):
        with pytest.raises(lm.errors.ConfigError, match=name):
            model().predict(X, **bad)  # type: ignore[call-overload]
    with pytest.raises(lm.errors.ConfigError, match="seed"):
        model().predict(X, samples=3, seed=-1)


def test_running_moments_equal_the_stacked_ones_in_constant_memory() -> None:
    """S passes are folded in one at a time (Welford), so samples=10⁶ costs the memory of
    one pass; the result equals np.mean/np.std of the stack and GaussianNLL.mixture."""
    rng = np.random.default_rng(0)
    outputs = [rng.standard_normal((5, 2)).astype(np.float32) + 1e3 for _ in range(40)]
    moments = RunningMoments()
    for array in outputs:
        moments.add(array)
    mean, std = moments.mean_std(np.dtype(np.float32))
    stacked = np.stack(outputs).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(std, stacked.std(axis=0), rtol=1e-5)  # no cancellation at 1e3
    assert mean.dtype == std.dtype == np.float32

    heads = [(rng.standard_normal((5, 1)), rng.uniform(0.1, 2, (5, 1))) for _ in range(7)]
    gaussian = RunningMoments()
    for mu, sigma in heads:
        gaussian.add(mu, np.square(sigma))
    expected = lm.losses.GaussianNLL.mixture(heads)
    for got, want in zip(gaussian.mean_std(np.dtype(np.float64)), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
