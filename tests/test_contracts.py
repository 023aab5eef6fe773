"""Contract tests over every registered component: adding a class to a registry enrols it.

- every layer, activation and loss has gradient-check cases (lamina.checks) and passes them
  in float64 with max relative error < 1e-6;
- every layer rebuilds from its config; float32 in gives float32 out, float64 gives float64;
- every optimizer rebuilds from its config.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lamina as lm
from lamina import checks
from lamina.layers import LAYERS
from lamina.losses import LOSSES
from lamina.optimizers import OPTIMIZERS

CASES = checks.all_cases(seed=0)


def test_every_registered_layer_and_loss_has_gradcheck_cases() -> None:
    assert set(LAYERS) == set(checks.LAYER_CASES), "register a gradcheck case in lamina.checks"
    assert set(LOSSES) == set(checks.LOSS_CASES), "register a gradcheck case in lamina.checks"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_gradcheck(case: checks.Case) -> None:
    report = case.run(tolerance=1e-6)
    assert report.errors, "nothing was checked"
    assert report.max_error < 1e-6, str(report)


def test_fused_cases_really_use_the_fused_path() -> None:
    fused = [case for case in CASES if "fused" in case.name]
    assert len(fused) == 3
    for case in fused:
        assert isinstance(case.target, lm.Model) and case.target.plan.fused_softmax


def test_gradcheck_catches_a_wrong_gradient() -> None:
    class WrongReLU(lm.layers.ReLU):
        def backward(self, dvalues: np.ndarray) -> np.ndarray:
            return dvalues * (self._output >= 0)  # wrong: passes gradient where x < 0

    x = checks.away_from_zero(np.random.default_rng(0), (4, 5))
    report = lm.gradcheck(WrongReLU(), x, raise_on_failure=False)
    assert not report.passed
    with pytest.raises(lm.errors.GradcheckError, match="FAILED"):
        lm.gradcheck(WrongReLU(), x)


def _example_layers() -> list[lm.layers.Layer]:
    return [build(np.random.default_rng(0))[0].target for build in checks.LAYER_CASES.values()]


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_config_round_trip(name: str) -> None:
    layer = checks.LAYER_CASES[name](np.random.default_rng(0))[0].target
    assert isinstance(layer, lm.layers.Layer)
    config = layer.get_config()
    json.dumps(config)  # JSON-able
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    assert {k: v.shape for k, v in rebuilt.params.items()} == {
        k: v.shape for k, v in layer.params.items()
    }
    spec = lm.layers.serialize(layer)
    assert lm.layers.deserialize(json.loads(json.dumps(spec))).get_config() == config


def test_dense_with_non_default_activation_round_trips() -> None:
    layer = lm.layers.Dense(3, 2, activation=lm.layers.LeakyReLU(alpha=0.2))
    rebuilt = lm.layers.deserialize(json.loads(json.dumps(lm.layers.serialize(layer))))
    assert isinstance(rebuilt.activation, lm.layers.LeakyReLU)
    assert rebuilt.activation.alpha == 0.2


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_keeps_dtype(name: str, dtype: type) -> None:
    case = checks.LAYER_CASES[name](np.random.default_rng(0))[0]
    layer = case.target
    assert isinstance(layer, lm.layers.Layer)
    layer.astype(dtype)
    x = case.inputs.astype(dtype)
    out = layer.forward(x, training=True)
    assert out.dtype == dtype
    back = layer.backward(np.ones_like(out))
    if layer.integer_inputs:  # ids have no gradient: Embedding's backward returns None
        assert back is None
    else:
        assert back is not None and back.dtype == dtype
    assert all(g.dtype == dtype for g in layer.grads.values())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_config_round_trip(name: str) -> None:
    optimizer = OPTIMIZERS.lookup(name)()
    config = optimizer.get_config()
    json.dumps(config)
    assert type(optimizer).from_config(config).get_config() == config


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_lookup_by_name(name: str) -> None:
    assert isinstance(lm.losses.get(name), LOSSES.lookup(name))
