"""BatchNorm folded into the linear layer beside it for inference (``lamina.engine.folding``):
``predict`` and ``evaluate`` equal the layer-by-layer forward (float64: ≤ 1e-10), read the
current weights, leave the model's own layers untouched, and fold only where it is exact."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import lamina as lm
from lamina.engine.folding import fold_batch_norms
from lamina.engine.fusion import PooledConvolution

L = lm.layers
RNG = np.random.default_rng(0)


def trained_statistics(layers: list[lm.layers.Layer]) -> None:
    """Give every BatchNorm the γ, β and running statistics of a trained one (not 1, 0)."""
    for layer in layers:
        if isinstance(layer, L.BatchNorm):
            n = layer.n_features
            layer.params["gamma"][...] = RNG.uniform(0.5, 2.0, n)
            layer.params["beta"][...] = RNG.normal(size=n)
            layer.state["running_mean"][...] = RNG.normal(size=n)
            layer.state["running_var"][...] = RNG.uniform(0.2, 3.0, n)


def model_of(layers: list[lm.layers.Layer], dtype: str = "float64") -> lm.Model:
    model = lm.Model(layers, seed=0, dtype=dtype)
    model.compile(loss="mse", optimizer="adam")
    trained_statistics(model.layers)
    return model


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


IMAGES = (6, 12, 12, 3)
SEQUENCES = (6, 10, 3)
PATTERNS: dict[str, tuple[Callable[[], list[lm.layers.Layer]], tuple[int, ...], int]] = {
    # name: (layers, input shape, BatchNorms folded)
    "dense then bn": (lambda: [L.Dense(3, 8), L.BatchNorm(8), L.ReLU(), L.Dense(8, 2)], (6, 3), 1),
    "bn then dense": (lambda: [L.BatchNorm(3), L.Dense(3, 5, activation="tanh")], (6, 3), 1),
    "conv2d then bn, pooled": (
        lambda: [L.Conv2D(3, 4, 3), L.BatchNorm(4), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                 L.Dense(5 * 5 * 4, 2)],
        IMAGES,
        1,
    ),
    "conv2d same then bn": (
        lambda: [L.Conv2D(3, 4, 3, padding="same"), L.BatchNorm(4), L.Flatten(),
                 L.Dense(12 * 12 * 4, 2)],
        IMAGES,
        1,
    ),
    "bn then conv2d": (
        lambda: [L.Conv2D(3, 4, 3, activation="relu"), L.BatchNorm(4),
                 L.Conv2D(4, 5, 3, stride=2, activation="relu"), L.Flatten(), L.Dense(80, 2)],
        IMAGES,
        1,
    ),
    "pool, bn, flatten, dropout, dense": (
        lambda: [L.Conv2D(3, 4, 3, activation="relu"), L.MaxPool2D(2), L.BatchNorm(4),
                 L.Flatten(), L.Dropout(0.5), L.Dense(5 * 5 * 4, 3)],
        IMAGES,
        1,
    ),
    "conv1d then bn, bn then conv1d": (
        lambda: [L.Conv1D(3, 4, 3), L.BatchNorm(4), L.ReLU(), L.BatchNorm(4),
                 L.Conv1D(4, 2, 2, stride=2), L.Flatten(), L.Dense(8, 2)],
        SEQUENCES,
        2,
    ),
    "dense on sequences then bn": (
        lambda: [L.Dense(3, 4), L.BatchNorm(4), L.Dense(4, 2)],
        SEQUENCES,
        1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PATTERNS))
def test_folded_inference_equals_the_layers(name: str) -> None:
    layers, shape, folds = PATTERNS[name]
    model = model_of(layers())
    X = RNG.normal(size=shape)
    plain = model.forward(X, training=False)
    assert len(fold_batch_norms(model.layers)) == len(model.layers) - folds
    assert relative_error(model.predict(X), plain) <= 1e-10
    assert model.evaluate(X, plain)["loss"] <= 1e-20  # the same path, scored


def test_a_folded_convolution_runs_fused_with_its_pooling() -> None:
    """Conv2D → BatchNorm → ReLU → MaxPool2D: the BatchNorm in between keeps the plain plan
    from fusing the convolution with the pooling; the inference plan fuses them."""
    model = model_of(PATTERNS["conv2d then bn, pooled"][0]())
    assert not any(isinstance(step, PooledConvolution) for step in model.plan.steps)
    assert isinstance(model.plan.inference_plan().steps[0], PooledConvolution)


@pytest.mark.parametrize(
    "layers",
    [
        # a padded border is 0 after the BatchNorm, not its shift t
        [L.Conv2D(3, 4, 3, activation="relu"), L.BatchNorm(4), L.Conv2D(4, 2, 3, padding="same")],
        [L.BatchNorm(3), L.Conv1D(3, 2, 3, padding="causal")],
        # an activation between them
        [L.Dense(3, 4, activation="relu"), L.BatchNorm(4), L.ReLU()],
        # BatchNorm last, or before a layer that is not linear
        [L.Dense(3, 4, activation="relu"), L.BatchNorm(4)],
        [L.Dense(3, 4, activation="relu"), L.BatchNorm(4), L.Dropout(0.2), L.ReLU()],
    ],
    ids=["same", "causal", "activation between", "last", "then relu"],
)
def test_where_folding_would_not_be_exact_nothing_folds(layers: list[lm.layers.Layer]) -> None:
    model = model_of(layers)
    assert fold_batch_norms(model.layers) == model.layers
    assert model.plan.inference_plan() is model.plan


def test_a_subclass_of_a_linear_layer_is_not_folded() -> None:
    """A user's subclass may compute something else than x·W + b with the same weights."""
    subclass = type("MyDense", (L.Dense,), {})
    layers = [subclass(3, 4), L.BatchNorm(4), subclass(4, 2)]
    assert fold_batch_norms(layers) == layers
    assert len(fold_batch_norms([L.Dense(3, 4), *layers[1:]])) == 2


def test_monte_carlo_dropout_between_batchnorm_and_dense_stops_the_fold() -> None:
    """Dropout's mask multiplies the BatchNorm's shift too when it samples in inference."""
    model = model_of([L.Dense(3, 4, activation="relu"), L.BatchNorm(4), L.Dropout(0.5),
                      L.Dense(4, 2)])  # fmt: skip
    assert len(fold_batch_norms(model.layers)) == 3
    model.layers[2].sampling = np.random.default_rng(1)  # what predict(samples=S) sets
    assert fold_batch_norms(model.layers) == model.layers


def test_the_fold_reads_the_current_weights_and_leaves_the_layers_alone() -> None:
    model = model_of(PATTERNS["conv2d then bn, pooled"][0]())
    X = RNG.normal(size=IMAGES)
    arrays = [a for layer in model.layers for a in (*layer.params.values(), *layer.state.values())]
    before = [array.copy() for array in arrays]
    model.predict(X)
    for old, new in zip(before, arrays, strict=True):
        np.testing.assert_array_equal(old, new)
    model.fit(X, RNG.normal(size=(6, 2)), epochs=2, batch_size=3, verbose=0)  # new statistics
    trained_statistics(model.layers)
    assert relative_error(model.predict(X), model.forward(X, training=False)) <= 1e-10


def test_float32_folded_inference_is_within_float32_rounding() -> None:
    layers, shape, _ = PATTERNS["pool, bn, flatten, dropout, dense"]
    model = model_of(layers(), dtype="float32")
    X = RNG.normal(size=shape).astype(np.float32)
    predicted = model.predict(X)
    assert predicted.dtype == np.float32
    assert relative_error(predicted, model.forward(X, training=False)) <= 1e-5


def test_the_folded_plan_is_kept_until_a_source_array_changes() -> None:
    model = model_of(PATTERNS["bn then conv2d"][0]())
    X = RNG.normal(size=IMAGES)
    plan = model.plan.inference_plan()
    assert model.plan.inference_plan() is plan  # nothing changed: no new fold
    model.layers[1].state["running_var"][0] *= 4.0  # in place, as training changes it
    assert model.plan.inference_plan() is not plan
    assert relative_error(model.predict(X), model.forward(X, training=False)) <= 1e-10
    model.layers[2].params["biases"][...] += 1.0
    assert relative_error(model.predict(X), model.forward(X, training=False)) <= 1e-10
    kept = model.plan.inference_plan()
    for layer in model.layers:  # the same values in another dtype: folded anew, in float32
        layer.astype(np.float32)
    assert model.plan.inference_plan() is not kept
    assert model.plan.inference_plan().layers[1].params["weights"].dtype == np.float32
