"""What saves, loads (issue 12, must-show 1): every registered layer (each of its
gradient-check cases) and every registered preprocessing transformer, in every
configuration — per_feature True and False, fitted on 1-D, 2-D and image data, fitted or
not — saves and loads with bit-identical ``predict``; training then goes on identically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina.checks import LAYER_CASES, Case
from lamina.layers.base import LAYERS
from lamina.preprocessing import TRANSFORMERS

L, P = lm.layers, lm.preprocessing


def layer_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    cases = [case for build in LAYER_CASES.values() for case in build(rng)]
    return [case for case in cases if isinstance(case.target, lm.layers.Layer)]


def test_every_registered_layer_has_round_trip_cases() -> None:
    assert set(LAYER_CASES) == set(LAYERS)


def tensors(model: lm.Model) -> list[np.ndarray]:
    return list(lm.io.model_tensors(model).values())


def round_trip(model: lm.Model, X: np.ndarray, path: Path) -> lm.Model:
    model.save(path)
    loaded = lm.load_model(path)
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))
    assert loaded.predict(X).dtype == model.predict(X).dtype
    return loaded


@pytest.mark.parametrize("case", layer_cases(), ids=lambda case: case.name)
@pytest.mark.parametrize("frozen", [False, True], ids=["trainable", "frozen after training"])
def test_every_layer_saves_and_loads_bit_identically(
    case: Case, frozen: bool, tmp_path: Path
) -> None:
    layer = case.target
    assert isinstance(layer, lm.layers.Layer)
    X = case.inputs
    # rows or sequences (each step a target) as they are; images flattened
    direct = lm.Model([layer], dtype="float64").predict(X).ndim <= 3
    model = lm.Model([layer] if direct else [layer, L.Flatten()], dtype="float64")
    rng = np.random.default_rng(1)
    targets = rng.standard_normal(model.predict(X).shape)
    model.compile(loss="mean_squared_error", optimizer="adam", metrics=[])
    model.fit(X, targets, epochs=2, batch_size=max(1, len(X) // 2), verbose=0)
    layer.trainable = not frozen
    loaded = round_trip(model, X, tmp_path / "m.lamina")
    model.fit(X, targets, epochs=3, batch_size=max(1, len(X) // 2), initial_epoch=2, verbose=0)
    loaded.fit(X, targets, epochs=3, batch_size=max(1, len(X) // 2), initial_epoch=2, verbose=0)
    for a, b in zip(tensors(model), tensors(loaded), strict=True):
        np.testing.assert_array_equal(a, b)


def data(kind: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if kind == "1-D":
        return rng.normal(3.0, 2.0, 40)
    if kind == "2-D":
        return rng.normal(3.0, 2.0, (40, 5))
    if kind == "labels":
        return rng.integers(0, 4, 40)
    channels = 3 if kind == "RGB images" else 1
    return rng.integers(0, 256, (40, 6, 6, channels)).astype(np.uint8)


def scaler_cases(
    cls: Callable[..., P.Transformer],
) -> list[tuple[Callable[[], P.Transformer], str]]:
    return [
        (lambda per_feature=per_feature: cls(per_feature=per_feature), kind)
        for per_feature in (True, False)
        for kind in ("1-D", "2-D", "images")
    ]


TRANSFORMER_CASES: dict[str, list[tuple[Callable[[], P.Transformer], str]]] = {
    "min_max_scaler": scaler_cases(P.MinMaxScaler),
    "standard_scaler": scaler_cases(P.StandardScaler),
    "flatten": [(P.Flatten, kind) for kind in ("1-D", "2-D", "images")],
    "grayscale": [(P.Grayscale, "images"), (P.Grayscale, "RGB images")],
    "resize": [(lambda: P.Resize((4, 3)), "images"), (lambda: P.Resize(8), "RGB images")],
    "one_hot_encoder": [(P.OneHotEncoder, "labels"), (lambda: P.OneHotEncoder(6), "labels")],
    "pipeline": [
        (lambda: P.Pipeline([P.StandardScaler(per_feature=False), P.MinMaxScaler()]), "2-D"),
        (lambda: P.Pipeline([P.Grayscale(), P.Pipeline([P.StandardScaler()])]), "RGB images"),
    ],
}


def test_every_registered_transformer_has_round_trip_cases() -> None:
    assert set(TRANSFORMER_CASES) == set(TRANSFORMERS)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, index) for name, cases in TRANSFORMER_CASES.items() for index in range(len(cases))],
)
@pytest.mark.parametrize("fitted", [True, False], ids=["fitted", "not yet fitted"])
def test_every_transformer_saves_and_loads_bit_identically(
    name: str, index: int, fitted: bool, tmp_path: Path
) -> None:
    build, kind = TRANSFORMER_CASES[name][index]
    X = data(kind)
    y = np.random.default_rng(3).integers(0, 3, len(X))
    pipeline = P.Pipeline([build(), P.Flatten()]).fit(X)
    features = pipeline.transform(X[:1]).shape[1]
    model = lm.Model(
        [L.Dense(features, 3, activation="softmax")],
        seed=0,
        preprocessing=pipeline if fitted else P.Pipeline([build(), P.Flatten()]),
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    if not fitted:  # saved before fit: the loaded model fits it on its first fit, as this one
        model.save(tmp_path / "unfitted.lamina")
        loaded = lm.load_model(tmp_path / "unfitted.lamina")
        for each in (model, loaded):
            each.fit(X, y, epochs=1, batch_size=10, verbose=0)
        np.testing.assert_array_equal(model.predict(X), loaded.predict(X))
    model.fit(X, y, epochs=1, batch_size=10, verbose=0)
    round_trip(model, X, tmp_path / "m.lamina")
