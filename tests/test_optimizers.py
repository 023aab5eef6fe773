"""Optimizers: three updates checked against the notes' formulas worked by hand, then
convergence to the minimum of a parabola and of Rosenbrock's function (as optax tests).

The hand-worked problem: one parameter θ₀ = 1 and loss f(θ) = θ², so ∇θ = 2θ.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

import lamina as lm
from lamina.optimizers import OPTIMIZERS, Optimizer

opt = lm.optimizers


def three_steps(optimizer: Optimizer, theta0: float = 1.0) -> list[float]:
    theta = np.array([theta0])
    values = []
    for _ in range(3):
        optimizer.step([("theta", theta, 2 * theta)])
        values.append(float(theta[0]))
    return values


def test_sgd_by_hand() -> None:
    # θₜ = θₜ₋₁ − η∇θ with η = 0.1 (notes §3.4.1)
    assert three_steps(opt.SGD(learning_rate=0.1)) == pytest.approx(
        [1 - 0.1 * 2, 0.8 - 0.1 * 1.6, 0.64 - 0.1 * 1.28], rel=1e-12
    )


def test_sgd_decay_by_hand() -> None:
    # ηₜ = η₀ / (1 + decay·t), t = steps taken so far (notes §1.4): 0.1/1, 0.1/1.1, 0.1/1.2
    theta1 = 1 - 0.1 * 2
    theta2 = theta1 - (0.1 / 1.1) * 2 * theta1
    theta3 = theta2 - (0.1 / 1.2) * 2 * theta2
    optimizer = opt.SGD(learning_rate=0.1, decay=0.1)
    assert three_steps(optimizer) == pytest.approx([theta1, theta2, theta3], rel=1e-12)
    assert optimizer.current_learning_rate == pytest.approx(0.1 / 1.3)


def test_sgd_momentum_by_hand() -> None:
    # vₜ = γvₜ₋₁ + η∇θ, θₜ = θₜ₋₁ − vₜ (notes §1.4) with γ = 0.9, η = 0.1
    v1 = 0.1 * 2  # 0.2
    theta1 = 1 - v1  # 0.8
    v2 = 0.9 * v1 + 0.1 * 2 * theta1  # 0.18 + 0.16 = 0.34
    theta2 = theta1 - v2  # 0.46
    v3 = 0.9 * v2 + 0.1 * 2 * theta2  # 0.306 + 0.092 = 0.398
    theta3 = theta2 - v3  # 0.062
    assert three_steps(opt.SGD(learning_rate=0.1, momentum=0.9)) == pytest.approx(
        [theta1, theta2, theta3], rel=1e-12
    )


def test_sgd_moving_average_momentum_by_hand() -> None:
    # notes §3.4.2: vₜ = γvₜ₋₁ + (1 − γ)∇θ, θₜ = θₜ₋₁ − η vₜ; dampening = γ gives this form
    v1 = 0.1 * 2  # (1 − 0.9)·2
    theta1 = 1 - 0.5 * v1  # η = 0.5
    v2 = 0.9 * v1 + 0.1 * 2 * theta1
    theta2 = theta1 - 0.5 * v2
    v3 = 0.9 * v2 + 0.1 * 2 * theta2
    theta3 = theta2 - 0.5 * v3
    optimizer = opt.SGD(learning_rate=0.5, momentum=0.9, dampening=0.9)
    assert three_steps(optimizer) == pytest.approx([theta1, theta2, theta3], rel=1e-12)


def test_adagrad_by_hand() -> None:
    # vₜ = vₜ₋₁ + ∇θ², θₜ = θₜ₋₁ − η∇θ/(√vₜ + ε) (notes §3.4.3), η = 0.1, ε = 1e−7
    eps = 1e-7
    v1 = 2.0**2
    theta1 = 1 - 0.1 * 2 / (math.sqrt(v1) + eps)
    v2 = v1 + (2 * theta1) ** 2
    theta2 = theta1 - 0.1 * 2 * theta1 / (math.sqrt(v2) + eps)
    v3 = v2 + (2 * theta2) ** 2
    theta3 = theta2 - 0.1 * 2 * theta2 / (math.sqrt(v3) + eps)
    assert three_steps(opt.Adagrad(learning_rate=0.1)) == pytest.approx(
        [theta1, theta2, theta3], rel=1e-12
    )


def test_rmsprop_by_hand() -> None:
    # vₜ = ρvₜ₋₁ + (1 − ρ)∇θ², θₜ = θₜ₋₁ − η∇θ/(√vₜ + ε) (notes §3.4.5), defaults η=1e−3, ρ=0.9
    eps, rho, lr = 1e-7, 0.9, 1e-3
    v1 = (1 - rho) * 2.0**2  # 0.4
    theta1 = 1 - lr * 2 / (math.sqrt(v1) + eps)
    v2 = rho * v1 + (1 - rho) * (2 * theta1) ** 2
    theta2 = theta1 - lr * 2 * theta1 / (math.sqrt(v2) + eps)
    v3 = rho * v2 + (1 - rho) * (2 * theta2) ** 2
    theta3 = theta2 - lr * 2 * theta2 / (math.sqrt(v3) + eps)
    assert three_steps(opt.RMSprop()) == pytest.approx([theta1, theta2, theta3], rel=1e-12)


def test_adadelta_by_hand() -> None:
    # Zeiler: E[g²]ₜ = ρE[g²]ₜ₋₁ + (1−ρ)g²; Δθ = −√(E[Δθ²]ₜ₋₁+ε)/√(E[g²]ₜ+ε)·g;
    # E[Δθ²]ₜ = ρE[Δθ²]ₜ₋₁ + (1−ρ)Δθ²; θ += Δθ (notes §3.4.4, DESIGN §9), ρ=0.95, ε=1e−6
    rho, eps = 0.95, 1e-6
    theta, eg2, edx2, expected = 1.0, 0.0, 0.0, []
    for _ in range(3):
        g = 2 * theta
        eg2 = rho * eg2 + (1 - rho) * g * g
        dx = -math.sqrt(edx2 + eps) / math.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx * dx
        theta += dx
        expected.append(theta)
    # first step by hand: E[g²] = 0.05·4 = 0.2; Δθ = −√1e−6/√(0.2+1e−6)·2 ≈ −0.0044721
    assert expected[0] == pytest.approx(1 - math.sqrt(1e-6) / math.sqrt(0.2 + 1e-6) * 2)
    assert three_steps(opt.Adadelta()) == pytest.approx(expected, rel=1e-12)


def test_adam_by_hand() -> None:
    # notes §3.4.6, η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e−7, t from 1
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    m1 = (1 - b1) * 2  # 0.2
    v1 = (1 - b2) * 4  # 0.004
    theta1 = 1 - lr * (m1 / (1 - b1)) / (math.sqrt(v1 / (1 - b2)) + eps)  # 1 − 0.001·2/(2+ε)
    g2 = 2 * theta1
    m2 = b1 * m1 + (1 - b1) * g2
    v2 = b2 * v1 + (1 - b2) * g2**2
    theta2 = theta1 - lr * (m2 / (1 - b1**2)) / (math.sqrt(v2 / (1 - b2**2)) + eps)
    g3 = 2 * theta2
    m3 = b1 * m2 + (1 - b1) * g3
    v3 = b2 * v2 + (1 - b2) * g3**2
    theta3 = theta2 - lr * (m3 / (1 - b1**3)) / (math.sqrt(v3 / (1 - b2**3)) + eps)
    assert theta1 == pytest.approx(0.999, abs=1e-9)
    assert three_steps(opt.Adam()) == pytest.approx([theta1, theta2, theta3], rel=1e-12)


def test_adamw_by_hand() -> None:
    # Loshchilov & Hutter: θₜ = θₜ₋₁ − η(m̂ₜ/(√v̂ₜ + ε) + λθₜ₋₁), η = 0.01, λ = 0.1,
    # β₁ = 0.9, β₂ = 0.999, ε = 1e−7; ∇θ = 2θₜ₋₁ is taken before the decay
    lr, wd, b1, b2, eps = 1e-2, 0.1, 0.9, 0.999, 1e-7
    m1 = (1 - b1) * 2  # 0.2
    v1 = (1 - b2) * 4  # 0.004
    theta1 = 1 - lr * ((m1 / (1 - b1)) / (math.sqrt(v1 / (1 - b2)) + eps) + wd * 1)
    g2 = 2 * theta1
    m2 = b1 * m1 + (1 - b1) * g2
    v2 = b2 * v1 + (1 - b2) * g2**2
    theta2 = theta1 - lr * ((m2 / (1 - b1**2)) / (math.sqrt(v2 / (1 - b2**2)) + eps) + wd * theta1)
    g3 = 2 * theta2
    m3 = b1 * m2 + (1 - b1) * g3
    v3 = b2 * v2 + (1 - b2) * g3**2
    theta3 = theta2 - lr * ((m3 / (1 - b1**3)) / (math.sqrt(v3 / (1 - b2**3)) + eps) + wd * theta2)
    assert theta1 == pytest.approx(1 - 0.01 - 0.001, abs=1e-9)  # Adam's 0.01, decay's ηλθ
    optimizer = opt.AdamW(learning_rate=lr, weight_decay=wd)
    assert three_steps(optimizer) == pytest.approx([theta1, theta2, theta3], rel=1e-12)


def test_adamw_decay_is_decoupled_from_the_gradient() -> None:
    # with ∇θ = 0 Adam leaves θ alone; AdamW still shrinks it by (1 − ηλ) per step, and the
    # shrinking is not divided by √v̂ as an L2 term added to ∇θ would be
    theta = np.array([2.0, -4.0])
    optimizer = opt.AdamW(learning_rate=0.1, weight_decay=0.5)
    for _ in range(3):
        optimizer.step([("theta", theta, np.zeros(2))])
    np.testing.assert_allclose(theta, np.array([2.0, -4.0]) * 0.95**3, rtol=1e-12)


def test_adamw_without_weight_decay_is_adam() -> None:
    assert three_steps(opt.AdamW(weight_decay=0.0)) == three_steps(opt.Adam())
    assert opt.AdamW().weight_decay == 0.01  # PyTorch's default


def test_every_optimizer_has_a_hand_worked_test() -> None:
    tested = {"sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"}
    assert set(OPTIMIZERS) == tested, "add a by-hand test for the new optimizer"


def test_defaults_are_the_notes() -> None:
    assert opt.Adam().learning_rate == 1e-3 and opt.Adam().epsilon == 1e-7
    rms = opt.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.epsilon) == (1e-3, 0.9, 1e-7)
    assert opt.SGD().learning_rate == 1.0


def test_state_lives_in_named_slots_per_parameter() -> None:
    optimizer = opt.Adam()
    weights, biases = np.ones((2, 3)), np.ones(3)
    optimizer.step(
        [("dense/weights", weights, np.ones((2, 3))), ("dense/biases", biases, np.ones(3))]
    )
    assert set(optimizer.slots) == {"dense/weights", "dense/biases"}
    assert set(optimizer.slots["dense/weights"]) == {"momentum", "cache"}
    np.testing.assert_allclose(optimizer.slots["dense/weights"]["momentum"], 0.1)


def test_flat_and_per_parameter_steps_agree() -> None:
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (3, 2)]
    per_param = [rng.standard_normal(s) for s in shapes]
    flat_values = np.concatenate([p.ravel() for p in per_param])
    views, offset = [], 0
    for p in per_param:
        views.append(flat_values[offset : offset + p.size].reshape(p.shape))
        offset += p.size
    a, b = opt.Adam(learning_rate=0.01), opt.Adam(learning_rate=0.01)
    for _ in range(3):
        grads = [rng.standard_normal(s) for s in shapes]
        a.step([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(per_param, grads, strict=True))])
        flat_grads = np.concatenate([g.ravel() for g in grads])
        b.step(
            [(f"p{i}", v, None) for i, v in enumerate(views)],  # type: ignore[misc]
            flat=(flat_values, flat_grads),
        )
    for p, v in zip(per_param, views, strict=True):
        np.testing.assert_allclose(p, v, rtol=1e-12)
    np.testing.assert_allclose(a.slots["p2"]["cache"], b.slots["p2"]["cache"], rtol=1e-12)


# -- convergence: every optimizer reaches the minimum (optax's alias_test protocol) ------------
CONVERGENCE: dict[str, Callable[[], Optimizer]] = {
    "sgd": lambda: opt.SGD(learning_rate=1e-3, momentum=0.9),
    "adagrad": lambda: opt.Adagrad(learning_rate=1.0),
    "rmsprop": lambda: opt.RMSprop(learning_rate=5e-3),
    "adadelta": lambda: opt.Adadelta(learning_rate=1.0),
    "adam": lambda: opt.Adam(learning_rate=0.1, decay=1e-3),
    "adamw": lambda: opt.AdamW(learning_rate=0.1, decay=1e-3),
}


def parabola(theta: np.ndarray) -> np.ndarray:
    return 2 * (theta - np.array([1.0, -1.0, 1.0]))


def rosenbrock(theta: np.ndarray) -> np.ndarray:
    x, y = theta  # f = (1 − x)² + 100(y − x²)², minimum at (1, 1)
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize(
    ("gradient", "start", "minimum"),
    [(parabola, [-1.0, 10.0, 1.0], [1.0, -1.0, 1.0]), (rosenbrock, [0.0, 0.0], [1.0, 1.0])],
    ids=["parabola", "rosenbrock"],
)
def test_reaches_the_minimum(
    name: str,
    gradient: Callable[[np.ndarray], np.ndarray],
    start: list[float],
    minimum: list[float],
) -> None:
    optimizer = CONVERGENCE[name]()
    if name == "adadelta" and gradient is rosenbrock:
        # AdaDelta's unit-free steps overshoot along the narrow valley; a scaled step
        # (η = 0.05 multiplies Δθ) follows it, as optax tests it with η = 0.1.
        optimizer = opt.Adadelta(learning_rate=0.05)
    theta = np.array(start)
    for _ in range(10_000):
        optimizer.step([("theta", theta, gradient(theta))])
    np.testing.assert_allclose(theta, minimum, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: opt.Adam(learning_rate=-1), "learning_rate"),
        (lambda: opt.SGD(momentum=1.5), "momentum"),
        (lambda: opt.RMSprop(rho=float("nan")), "rho"),
        (lambda: opt.Adam(beta_1=1.0), "beta_1"),
        (lambda: opt.SGD(decay=-0.1), "decay"),
        (lambda: opt.AdamW(weight_decay=-0.01), "weight_decay"),
    ],
)
def test_bad_hyper_parameters_are_named(build: Callable[[], Optimizer], match: str) -> None:
    with pytest.raises(lm.errors.ConfigError, match=match):
        build()


def test_unknown_optimizer_name_suggests_the_nearest() -> None:
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        opt.get("adma")


def test_clipvalue_limits_each_gradient_element() -> None:
    theta, grad = np.zeros(3), np.array([-5.0, 0.2, 3.0])
    opt.SGD(learning_rate=1.0, clipvalue=0.5).step([("theta", theta, grad)])
    np.testing.assert_allclose(theta, [0.5, -0.2, -0.5])


def test_clipnorm_rescales_by_the_global_norm() -> None:
    a, b = np.zeros(2), np.zeros(1)
    ga, gb = np.array([3.0, 0.0]), np.array([4.0])  # global norm 5
    opt.SGD(learning_rate=1.0, clipnorm=1.0).step([("a", a, ga), ("b", b, gb)])
    np.testing.assert_allclose(np.concatenate([a, b]), [-0.6, 0.0, -0.8])
    small = np.array([0.3])
    theta = np.zeros(1)
    opt.SGD(learning_rate=1.0, clipnorm=1.0).step([("t", theta, small)])
    np.testing.assert_allclose(theta, [-0.3])  # under the limit: unchanged


def test_clipnorm_keeps_a_diverging_run_finite() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4)).astype(np.float32)
    y = X[:, :1] * 3
    for clipnorm, should_diverge in ((None, True), (1.0, False)):
        model = lm.Model([lm.layers.Dense(4, 1)], seed=0)
        model.compile(
            loss="mean_squared_error", optimizer=opt.SGD(learning_rate=10.0, clipnorm=clipnorm)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(X, y, epochs=20, batch_size=10, verbose=0)
        diverged = any("Training stopped" in str(w.message) for w in caught)
        assert diverged is should_diverge
        if not should_diverge:
            assert len(history.epoch) == 20 and np.isfinite(history.history["loss"]).all()


# -- subnormal slots (lamina/subnormals.py) ---------------------------------------------------


def steps_with_subnormal_slots(name: str, flush_every: int, monkeypatch: pytest.MonkeyPatch):
    """θ after 48 float32 steps whose gradient is 0 on a third of the entries, the slots of
    those entries started subnormal (what ~750 steps of zero gradient make of a moment)."""
    from lamina import subnormals

    monkeypatch.setattr(subnormals, "EVERY", flush_every)
    optimizer = OPTIMIZERS.lookup(name)(**({"momentum": 0.9} if name == "sgd" else {}))
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(3000).astype(np.float32)
    dead = np.arange(3000) % 3 == 0
    tiny = np.finfo(np.float32).tiny
    for step in range(48):
        grad = (rng.standard_normal(3000) * 1e-2).astype(np.float32)
        grad[dead] = 0
        optimizer.step([("theta", theta, grad)])
        if step == 0:
            for slot in optimizer.slots["theta"].values():
                slot[dead] = tiny * rng.uniform(0.01, 0.99, dead.sum()).astype(np.float32)
    slots = optimizer.slots["theta"].values()
    subnormal = sum(int(((slot != 0) & (np.abs(slot) < tiny)).sum()) for slot in slots)
    return theta, subnormal


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_flushing_subnormal_slots_changes_no_parameter(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, subnormal_kept = steps_with_subnormal_slots(name, 10**9, monkeypatch)
    flushed, subnormal_flushed = steps_with_subnormal_slots(name, 16, monkeypatch)
    assert subnormal_kept > 0  # the slots did hold subnormals without the flush
    assert subnormal_flushed == 0  # step 48 flushed them
    np.testing.assert_array_equal(flushed, kept)  # bit for bit


def test_flush_keeps_nan_inf_and_normal_values() -> None:
    from lamina.subnormals import flush

    values = np.array([1e-39, -1e-39, np.nan, np.inf, -np.inf, 1.0, -2e-38, 0.0], np.float32)
    flush(values, np.empty_like(values))
    np.testing.assert_array_equal(
        values, np.array([0, 0, np.nan, np.inf, -np.inf, 1.0, -2e-38, 0], np.float32)
    )
