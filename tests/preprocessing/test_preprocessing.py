"""Preprocessing (notes §1.5 "Preprocessing", §1.9 "Data sets"): values by hand, config and
state round trips over every registered transformer, and the errors bad input raises."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from lamina import preprocessing as P
from lamina.errors import ConfigError, InputError, ShapeError


def _images(n: int = 4, h: int = 6, w: int = 5, c: int = 3) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (n, h, w, c), dtype=np.uint8)


# One example per registered name, with non-default arguments, and data to fit it on. A
# transformer registered without an entry here fails test_every_transformer_has_a_case.
CASES: dict[str, Callable[[], tuple[P.Transformer, np.ndarray]]] = {
    "min_max_scaler": lambda: (P.MinMaxScaler((0, 1)), _images()),
    "standard_scaler": lambda: (P.StandardScaler(per_feature=False, epsilon=1e-6), _images()),
    "one_hot_encoder": lambda: (P.OneHotEncoder(), np.array([3, 7, 9, 7])),
    "flatten": lambda: (P.Flatten(), _images()),
    "grayscale": lambda: (P.Grayscale(), _images()),
    "resize": lambda: (P.Resize((3, 8)), _images()),
    "pipeline": lambda: (
        P.Pipeline(
            [
                P.Grayscale(),
                P.Resize((4, 4)),
                P.Pipeline([P.Flatten(), P.StandardScaler()]),
                P.MinMaxScaler(),
            ]
        ),
        _images(),
    ),
}


def test_every_transformer_has_a_case() -> None:
    assert set(P.TRANSFORMERS) == set(CASES), "add an example to CASES"
    assert set(P.TRANSFORMERS) == {
        "min_max_scaler",
        "standard_scaler",
        "one_hot_encoder",
        "flatten",
        "grayscale",
        "resize",
        "pipeline",
    }


@pytest.mark.parametrize("name", list(P.TRANSFORMERS))
def test_config_round_trip(name: str) -> None:
    transformer, _ = CASES[name]()
    assert P.TRANSFORMERS.name_of(transformer) == name
    config = transformer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert type(transformer).from_config(config).get_config() == config
    spec = json.loads(json.dumps(P.serialize(transformer)))
    assert spec["class"] == name
    rebuilt = P.deserialize(spec)
    assert type(rebuilt) is type(transformer) and rebuilt.get_config() == config


@pytest.mark.parametrize("name", list(P.TRANSFORMERS))
def test_state_round_trip_through_safetensors(name: str) -> None:
    transformer, X = CASES[name]()
    expected = transformer.fit_transform(X)
    assert transformer.fitted
    state = transformer.get_state()
    assert all(isinstance(array, np.ndarray) for array in state.values())
    assert all(key.endswith("_") for key in state)
    loaded = load_tensors(save_tensors(state)) if state else {}
    rebuilt = P.deserialize(P.serialize(transformer))
    rebuilt.set_state(loaded)
    assert rebuilt.fitted
    result = rebuilt.transform(X)
    assert result.dtype == expected.dtype
    assert_array_equal(result, expected)


@pytest.mark.parametrize(
    "transformer", [P.MinMaxScaler(), P.StandardScaler(), P.OneHotEncoder()], ids=repr
)
def test_learned_attributes_end_in_underscore_and_appear_on_fit(
    transformer: P.Transformer,
) -> None:
    X = np.array([0, 1, 2, 1]) if isinstance(transformer, P.OneHotEncoder) else np.eye(3)
    assert transformer.learned and all(name.endswith("_") for name in transformer.learned)
    assert not transformer.fitted and transformer.get_state() == {}
    assert all(getattr(transformer, name) is None for name in transformer.learned)
    assert transformer.fit(X) is transformer
    assert transformer.fitted
    assert set(transformer.get_state()) == set(transformer.learned)


@pytest.mark.parametrize(
    "transformer",
    [P.MinMaxScaler(), P.StandardScaler(), P.OneHotEncoder(), P.Pipeline([P.StandardScaler()])],
    ids=lambda t: type(t).__name__,
)
def test_transform_before_fit_says_fit_first(transformer: P.Transformer) -> None:
    name = type(transformer).__name__
    with pytest.raises(InputError, match=rf"{name} is not fitted yet.*Fix: call fit\(X_train\)"):
        transformer.transform(np.array([1, 2]))


def test_stateless_transformers_are_always_fitted() -> None:
    for transformer in (P.Flatten(), P.Grayscale(), P.Resize(), P.OneHotEncoder(n_classes=3)):
        assert transformer.fitted


# -- MinMaxScaler -------------------------------------------------------------------------
def test_min_max_scaler_by_hand_with_a_constant_feature() -> None:
    X = np.array([[0.0, 10.0, 5.0], [5.0, 20.0, 5.0], [10.0, 30.0, 5.0]])
    scaler = P.MinMaxScaler().fit(X)
    assert_array_equal(scaler.data_min_, [0, 10, 5])
    assert_array_equal(scaler.data_max_, [10, 30, 5])
    # x' = a + (x − min)(b − a)/(max − min) with [a, b] = [−1, 1]; constant → middle 0
    assert_allclose(scaler.transform(X), [[-1, -1, 0], [0, 0, 0], [1, 1, 0]])
    unit = P.MinMaxScaler(feature_range=(0, 1)).fit(X)
    assert_allclose(unit.transform(X), [[0, 0, 0.5], [0.5, 0.5, 0.5], [1, 1, 0.5]])
    odd = P.MinMaxScaler(feature_range=(2, 6)).fit(X)
    assert_allclose(odd.transform(X)[:, 0], [2, 4, 6])
    assert_allclose(odd.transform(X)[:, 2], [4, 4, 4])


def test_min_max_scaler_uses_the_training_statistics_on_other_data() -> None:
    train = np.array([[0.0, 10.0, 5.0], [10.0, 30.0, 5.0]])
    scaler = P.MinMaxScaler().fit(train)
    test = np.array([[20.0, 0.0, 7.0]])
    # col 0: 20·2/10 − 1 = 3; col 1: (0 − 10)·2/20 − 1 = −2; constant col: middle
    assert_allclose(scaler.transform(test), [[3, -2, 0]])
    assert_array_equal(scaler.data_max_, [10, 30, 5])


def test_min_max_scaler_global_is_the_notes_pixel_scaling() -> None:
    X = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    scaler = P.MinMaxScaler(per_feature=False).fit(X)
    assert scaler.data_min_ is not None and scaler.data_min_.shape == ()
    out = scaler.transform(X)
    assert out.dtype == np.float32
    assert_allclose(out, X / 255 * 2 - 1, rtol=1e-6)
    # any sample shape at transform time: one global min/max
    assert scaler.transform(np.full((2, 3, 3), 255, np.uint8)).shape == (2, 3, 3)
    assert_allclose(scaler.transform(np.full((2, 3, 3), 255, np.uint8)), 1.0)


def test_min_max_scaler_per_pixel_statistics_of_images() -> None:
    X = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    scaler = P.MinMaxScaler().fit(X)
    assert scaler.data_min_ is not None and scaler.data_min_.shape == (2, 3)
    out = scaler.transform(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    assert_allclose(out[0], -1.0)
    assert_allclose(out[1], 1.0)


# -- StandardScaler -----------------------------------------------------------------------
def test_standard_scaler_by_hand_with_a_constant_feature() -> None:
    X = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]], dtype=np.float32)
    scaler = P.StandardScaler().fit(X)
    sigma = np.sqrt(8 / 3)  # population σ of 1, 3, 5
    assert scaler.mean_ is not None and scaler.scale_ is not None
    assert scaler.mean_.dtype == np.float64 and scaler.scale_.dtype == np.float64
    assert_allclose(scaler.mean_, [3, 2])
    assert_allclose(scaler.scale_, [sigma, 1.0])  # σ = 0 → 1: only centred
    out = scaler.transform(X)
    assert out.dtype == np.float32
    assert_allclose(out, [[-2 / sigma, 0], [0, 0], [2 / sigma, 0]], rtol=1e-6)
    # other data: the training μ and σ; the constant feature is centred, not blown up
    assert_allclose(scaler.transform(np.array([[7.0, 4.0]])), [[4 / sigma, 2]])


def test_standard_scaler_global_statistics() -> None:
    X = np.array([[0, 2], [4, 6]], dtype=np.uint8)
    scaler = P.StandardScaler(per_feature=False).fit(X)
    assert scaler.mean_ is not None and scaler.mean_.shape == ()
    assert_allclose(scaler.mean_, 3)
    assert_allclose(scaler.scale_, np.sqrt(5))  # (9 + 1 + 1 + 9)/4
    out = scaler.transform(X)
    assert out.dtype == np.float32
    assert_allclose(out, (X.astype(np.float64) - 3) / np.sqrt(5), rtol=1e-6)


def test_standard_scaler_epsilon_floor_and_dtypes() -> None:
    X = np.array([[0.0], [1e-9]])
    assert_allclose(P.StandardScaler().fit(X).scale_, [1.0])
    assert_allclose(P.StandardScaler(epsilon=0).fit(X).scale_, [5e-10])
    big = np.random.default_rng(0).normal(1000, 3, (5000, 3))
    for dtype in (np.float32, np.float64):
        out = P.StandardScaler().fit_transform(big.astype(dtype))
        assert out.dtype == dtype
        assert_allclose(out.mean(axis=0), 0, atol=1e-3)
        assert_allclose(out.std(axis=0), 1, atol=1e-3)
    assert P.StandardScaler().fit_transform(np.array([[1], [2]], np.int64)).dtype == np.float32


def test_standard_scaler_statistics_are_chunked_but_exact() -> None:
    X = np.random.default_rng(1).integers(0, 256, (3000, 20, 20), dtype=np.uint8)
    scaler = P.StandardScaler().fit(X)  # 3000 · 400 values: several chunks of rows
    assert_allclose(scaler.mean_, X.mean(axis=0), rtol=1e-12)
    assert_allclose(scaler.scale_, X.std(axis=0), rtol=1e-10)


# -- OneHotEncoder ------------------------------------------------------------------------
def test_one_hot_encoder_round_trip_with_learned_classes() -> None:
    y = np.array([7, 3, 9, 7])
    encoder = P.OneHotEncoder().fit(y)
    assert_array_equal(encoder.classes_, [3, 7, 9])
    Y = encoder.transform(y)
    assert Y.dtype == np.float32
    assert_array_equal(Y, [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert_array_equal(encoder.inverse_transform(Y), y)
    confidences = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    assert_array_equal(encoder.inverse_transform(confidences), [7, 3])
    assert_array_equal(encoder.transform(np.array([9.0, 3.0])), [[0, 0, 1], [1, 0, 0]])


def test_one_hot_encoder_unknown_label_names_it() -> None:
    encoder = P.OneHotEncoder().fit(np.array([0, 1, 2]))
    with pytest.raises(InputError, match=r"label 5 at index 2 \(2 unknown labels in all\)"):
        encoder.transform(np.array([0, 1, 5, -1]))


def test_one_hot_encoder_with_n_classes_needs_no_fit() -> None:
    encoder = P.OneHotEncoder(n_classes=4)
    assert_array_equal(encoder.classes_, np.arange(4))
    assert_array_equal(encoder.transform(np.array([3, 0])), np.eye(4)[[3, 0]])
    with pytest.raises(InputError, match=r"\(n_classes=4\), received label 4 at index 1"):
        encoder.fit(np.array([0, 4]))
    encoder.set_state({})
    assert encoder.fitted and encoder.get_state()["classes_"].tolist() == [0, 1, 2, 3]


def test_one_hot_encoder_bad_labels() -> None:
    encoder = P.OneHotEncoder()
    with pytest.raises(InputError, match=r"whole-number class labels.*1\.5 at index 1"):
        encoder.fit(np.array([1.0, 1.5]))
    with pytest.raises(ShapeError, match=r"class labels of shape \(N,\).*argmax"):
        encoder.fit(np.eye(3))
    encoder.fit(np.array([0, 1, 2]))
    with pytest.raises(ShapeError, match=r"shape \(N, 3\).*shape \(2, 4\)"):
        encoder.inverse_transform(np.zeros((2, 4)))


# -- Flatten, Grayscale, Resize -----------------------------------------------------------
def test_flatten() -> None:
    X = np.arange(2 * 3 * 4 * 1, dtype=np.uint8).reshape(2, 3, 4, 1)
    out = P.Flatten().fit_transform(X)
    assert out.shape == (2, 12) and out.dtype == np.uint8
    assert_array_equal(out[1], np.arange(12, 24))


def test_grayscale_luma_by_hand() -> None:
    X = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], dtype=np.uint8)
    out = P.Grayscale().transform(X)
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float32
    # 0.299·R + 0.587·G + 0.114·B
    assert_allclose(out[0, :, :, 0], [[76.245, 149.685], [29.07, 18.15]], rtol=1e-6)
    rgba = np.concatenate([X, np.full((1, 2, 2, 1), 7, np.uint8)], axis=3)
    assert_array_equal(P.Grayscale().transform(rgba), out)  # alpha ignored
    one = np.random.default_rng(0).random((2, 3, 3, 1))
    assert_array_equal(P.Grayscale().transform(one), one)


def test_grayscale_matches_pillow_up_to_its_rounding() -> None:
    X = _images(2, 8, 9, 3)
    pillow = np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in X])
    assert np.abs(P.Grayscale().transform(X)[..., 0] - pillow).max() <= 0.5 + 1e-4


def test_grayscale_rejects_other_channel_counts() -> None:
    with pytest.raises(ShapeError, match=r"C = 1, 3 \(RGB\) or 4.*shape \(2, 4, 4, 2\)"):
        P.Grayscale().transform(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ShapeError, match="channel axis"):
        P.Grayscale().transform(np.zeros((2, 4, 4)))


def test_resize_of_a_constant_image_stays_constant() -> None:
    X = np.full((2, 5, 7, 3), 42, dtype=np.uint8)
    for size in [(10, 3), (2, 2), (5, 7), (13, 17)]:
        out = P.Resize(size).transform(X)
        assert out.shape == (2, *size, 3) and out.dtype == np.float32
        assert_allclose(out, 42, rtol=1e-6)


def test_resize_upscaled_checker_by_hand() -> None:
    checker = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)[np.newaxis]
    out = P.Resize((4, 4)).transform(checker)  # (N, H, W): no channel axis
    assert out.shape == (1, 4, 4) and out.dtype == np.float32
    corners = out[0][np.ix_([0, 3], [0, 3])]
    assert_array_equal(corners, checker[0])
    # half-pixel centres: output 1 ↦ input 0.25 → weights (0.75, 0.25) on each axis
    assert_allclose(out[0, 1, 1], 0.75 * 0.25 * 2)
    assert_allclose(out[0, 0, 1], 0.25)


def test_resize_halving_widens_the_triangle_by_hand() -> None:
    X = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)  # x[i, j] = 4i + j
    out = P.Resize(2).transform(X)
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float64
    # s = 2: output 0 is centred at input 1.0; input centres 0.5, 1.5, 2.5, 3.5 lie
    # 0.5, 0.5, 1.5, 2.5 away → weights 1 − d/2 = 0.75, 0.75, 0.25, 0 → (3, 3, 1, 0)/7
    weights = np.array([[3, 3, 1, 0], [0, 1, 3, 3]]) / 7
    position = weights @ np.arange(4)  # the weighted mean index: 5/7 and 16/7
    assert_allclose(out[0, :, :, 0], 4 * position[:, None] + position[None, :])


@pytest.mark.parametrize("size", [(7, 11), (40, 31), (3, 30)])
def test_resize_matches_pillow_bilinear(size: tuple[int, int]) -> None:
    image = np.random.default_rng(3).random((17, 23)).astype(np.float32)
    pillow = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))
    ours = P.Resize(size).transform(image[np.newaxis, :, :, np.newaxis])[0, :, :, 0]
    assert_allclose(ours, pillow, atol=1e-6)


# -- Pipeline -----------------------------------------------------------------------------
def test_pipeline_fits_each_step_on_the_previous_output() -> None:
    train, test = _images(6, 4, 4, 3), _images(3, 4, 4, 3)[::-1]
    steps = [P.Grayscale(), P.Resize((2, 2)), P.Flatten(), P.MinMaxScaler((0, 1))]
    pipeline = P.Pipeline(steps)
    out = pipeline.fit_transform(train)
    assert out.shape == (6, 4) and out.dtype == np.float32
    scaler = pipeline.steps[3]
    assert isinstance(scaler, P.MinMaxScaler) and scaler.data_min_ is not None
    assert scaler.data_min_.shape == (4,)
    by_hand = P.Flatten().transform(P.Resize((2, 2)).transform(P.Grayscale().transform(test)))
    expected = (by_hand - scaler.data_min_) / (scaler.data_max_ - scaler.data_min_)
    assert_allclose(pipeline.transform(test), expected, rtol=1e-5)
    assert_array_equal(P.Pipeline(steps).fit(train).transform(train), out)
    assert set(pipeline.get_state()) == {"3/data_min_", "3/data_max_"}
    assert [spec["class"] for spec in pipeline.get_config()["steps"]] == [
        "grayscale",
        "resize",
        "flatten",
        "min_max_scaler",
    ]


def test_nested_pipeline_state_prefixes_and_routing() -> None:
    pipeline, X = CASES["pipeline"]()
    pipeline.fit(X)
    state = pipeline.get_state()
    assert set(state) == {"2/1/mean_", "2/1/scale_", "3/data_min_", "3/data_max_"}
    rebuilt = P.deserialize(P.serialize(pipeline))
    assert isinstance(rebuilt, P.Pipeline) and not rebuilt.fitted
    with pytest.raises(InputError, match=r"Pipeline is not fitted yet \(step 2, Pipeline"):
        rebuilt.transform(X)
    rebuilt.set_state(state)
    inner = rebuilt.steps[2]
    assert isinstance(inner, P.Pipeline)
    assert_array_equal(inner.steps[1].get_state()["mean_"], state["2/1/mean_"])
    assert_array_equal(rebuilt.transform(X), pipeline.transform(X))


def test_pipeline_set_state_errors_name_the_step_and_change_nothing() -> None:
    pipeline = P.Pipeline([P.StandardScaler(), P.MinMaxScaler()]).fit(np.eye(3))
    before = pipeline.get_state()
    bad = dict(before)
    bad["1/data_max_"] = np.zeros(4)
    with pytest.raises(ConfigError, match=r"Pipeline step 1: .*data_max_.*\(3,\)"):
        pipeline.set_state(bad)
    with pytest.raises(ConfigError, match=r"'5/mean_'"):
        pipeline.set_state({**before, "5/mean_": np.zeros(3)})
    with pytest.raises(ConfigError, match=r"'mean_'"):
        pipeline.set_state({"mean_": np.zeros(3)})
    after = pipeline.get_state()
    assert all(np.array_equal(after[key], before[key]) for key in before)


# -- set_state validation -----------------------------------------------------------------
def test_set_state_rejects_wrong_names_shapes_dtypes_and_values() -> None:
    scaler = P.StandardScaler().fit(np.array([[1.0, 2.0], [3.0, 5.0]]))
    good = scaler.get_state()
    with pytest.raises(ConfigError, match=r"missing \['scale_'\], unexpected \['sigma_'\]"):
        scaler.set_state({"mean_": good["mean_"], "sigma_": good["scale_"]})
    with pytest.raises(ConfigError, match=r"scale_.*shape \(2,\).*\(3,\)"):
        scaler.set_state({"mean_": good["mean_"], "scale_": np.ones(3)})
    with pytest.raises(ConfigError, match=r"dtype float64, received dtype float32"):
        scaler.set_state({"mean_": good["mean_"].astype(np.float32), "scale_": good["scale_"]})
    with pytest.raises(ConfigError, match="a numpy array"):
        scaler.set_state({"mean_": [0.0, 0.0], "scale_": good["scale_"]})
    with pytest.raises(ConfigError, match="finite values"):
        scaler.set_state({"mean_": np.array([np.nan, 0.0]), "scale_": good["scale_"]})
    with pytest.raises(ConfigError, match="values > 0"):
        scaler.set_state({"mean_": good["mean_"], "scale_": np.array([1.0, 0.0])})
    global_scaler = P.MinMaxScaler(per_feature=False)
    with pytest.raises(ConfigError, match=r"shape \(\)"):
        global_scaler.set_state({"data_min_": np.zeros(2), "data_max_": np.ones(2)})
    with pytest.raises(ConfigError, match=r"data_min_.*≤ data_max_"):
        P.MinMaxScaler().set_state({"data_min_": np.ones(2), "data_max_": np.zeros(2)})
    with pytest.raises(ConfigError, match="sorted unique"):
        P.OneHotEncoder().set_state({"classes_": np.array([2, 1])})
    with pytest.raises(ConfigError, match=r"0 … 2 \(n_classes=3\)"):
        P.OneHotEncoder(3).set_state({"classes_": np.array([1, 2, 3])})
    assert_array_equal(scaler.get_state()["mean_"], good["mean_"])  # nothing changed
    scaler.set_state({})
    assert not scaler.fitted


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "transformer",
    [P.MinMaxScaler(), P.StandardScaler(), P.OneHotEncoder(), P.Flatten(), P.Grayscale()],
    ids=lambda t: type(t).__name__,
)
def test_fit_rejects_non_numeric_empty_and_non_finite_input(transformer: P.Transformer) -> None:
    with pytest.raises(InputError, match=r"numeric array.*received dtype <U1"):
        transformer.fit(np.array(["a", "b"]))
    with pytest.raises(InputError, match=r"at least one sample.*shape \(0, 3\)"):
        transformer.fit(np.zeros((0, 3)))
    with pytest.raises(ShapeError, match="batch axis"):
        transformer.fit(np.float64(3.0))
    if transformer.learned:
        X = np.array([0.0, np.nan, 1.0, np.inf])
        with pytest.raises(InputError, match=r"2 NaN/inf values \(the first at index \(1,\)\)"):
            transformer.fit(X)


def test_nan_message_names_the_first_index_of_a_matrix() -> None:
    X = np.zeros((3, 2))
    X[2, 1] = X[1, 0] = np.nan
    with pytest.raises(InputError, match=r"MinMaxScaler\.fit.*2 NaN/inf.*index \(1, 0\)"):
        P.MinMaxScaler().fit(X)


@pytest.mark.parametrize("cls", [P.MinMaxScaler, P.StandardScaler])
def test_wrong_number_of_features_at_transform(cls: type[P.Transformer]) -> None:
    scaler = cls().fit(np.ones((5, 3)))
    name = cls.__name__
    with pytest.raises(ShapeError, match=rf"{name}.*\(batch, 3\).*shape \(4, 2\)"):
        scaler.transform(np.ones((4, 2)))
    with pytest.raises(InputError, match="numeric"):
        scaler.transform(np.array([["x", "y", "z"]]))


def test_transform_leaves_its_input_alone() -> None:
    X = np.array([[1.0, 5.0], [3.0, 9.0]])
    copy = X.copy()
    P.Pipeline([P.StandardScaler(), P.MinMaxScaler()]).fit_transform(X)
    assert_array_equal(X, copy)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: P.MinMaxScaler(feature_range=(1, 0)), "feature_range.*a < b"),
        (lambda: P.MinMaxScaler(feature_range=(0, 1, 2)), "feature_range"),
        (lambda: P.MinMaxScaler(per_feature="yes"), "per_feature.*True or False"),
        (lambda: P.StandardScaler(epsilon=-1.0), "epsilon.*≥ 0"),
        (lambda: P.OneHotEncoder(n_classes=0), "n_classes.*positive int"),
        (lambda: P.Resize((0, 3)), "size.*positive ints"),
        (lambda: P.Resize("big"), "size"),
        (lambda: P.Pipeline([P.Flatten(), 3]), r"steps\[1\].*Transformer"),
        (lambda: P.deserialize({"class": "min_max_scalar", "config": {}}), "min_max_scaler"),
        (lambda: P.deserialize({"class": "resize"}), "spec"),
        (lambda: P.deserialize({"class": "resize", "config": {"bad": 1}}), "Cannot build"),
    ],
)
def test_bad_arguments_raise_config_errors(build: Callable[[], object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build()


# -- balance (notes §1.9 "Balancing") -----------------------------------------------------
def test_balance_undersamples_to_the_smallest_class_in_order() -> None:
    y = np.array([0, 0, 2, 0, 1, 2, 1, 0, 2])
    X = np.arange(len(y)) * 10
    Xb, yb, report = P.balance(X, y, seed=0)
    assert report.before == {0: 4, 1: 2, 2: 3}
    assert report.after == {0: 2, 1: 2, 2: 2}
    assert report.removed == 3
    assert np.bincount(yb).tolist() == [2, 2, 2]
    assert_array_equal(yb, y[Xb // 10])  # X and y stay paired
    assert (np.diff(Xb) > 0).all()  # original relative order kept
    assert set(Xb[yb == 1]) == {40, 60}  # the smallest class is kept whole
    text = str(report)
    assert "undersample" in text and "9 → 6 samples, 3 removed" in text
    assert "before" in text and "after" in text


def test_balance_is_deterministic_per_seed() -> None:
    y = np.random.default_rng(0).integers(0, 3, 300)
    X = np.arange(300)
    first, second = P.balance(X, y, seed=5)[0], P.balance(X, y, seed=5)[0]
    assert_array_equal(first, second)
    others = [P.balance(X, y, seed=seed)[0] for seed in range(6, 10)]
    assert any(not np.array_equal(first, other) for other in others)


def test_balance_bad_input() -> None:
    y = np.array([0, 1, 1])
    with pytest.raises(ConfigError, match=r"one of \['undersample', 'oversample'\].*'smote'"):
        P.balance(np.zeros(3), y, strategy="smote")
    with pytest.raises(InputError, match="3 samples, 2 labels"):
        P.balance(np.zeros(3), y[:2])
    with pytest.raises(InputError, match="at least one sample"):
        P.balance(np.zeros(0), np.zeros(0, int))
    with pytest.raises(ShapeError, match="argmax"):
        P.balance(np.zeros(3), np.eye(3))


def test_balance_oversamples_to_the_largest_class_keeping_every_sample() -> None:
    y = np.array([0, 0, 2, 0, 1, 2, 0, 0, 2, 0, 0])  # 7, 1 and 3 samples
    X = np.arange(len(y)) * 10
    Xb, yb, report = P.balance(X, y, strategy="oversample", seed=0)
    assert report.before == {0: 7, 1: 1, 2: 3}
    assert report.after == {0: 7, 1: 7, 2: 7} and np.bincount(yb).tolist() == [7, 7, 7]
    assert report.added == 10 and report.removed == 0
    assert_array_equal(yb, y[Xb // 10])  # X and y stay paired
    assert set(Xb) == set(X)  # every original sample is kept
    assert (np.diff(Xb) >= 0).all()  # original order, each repeat beside its original
    repeats = np.bincount(Xb // 10)
    assert repeats[y == 0].tolist() == [1] * 7 and repeats[y == 1].tolist() == [7]
    assert sorted(repeats[y == 2]) == [2, 2, 3]  # 7 = 2·3 + 1: counts differ by at most 1
    text = str(report)
    assert "oversample" in text and "11 → 21 samples, 10 added" in text


def test_oversampling_is_deterministic_per_seed() -> None:
    y = np.random.default_rng(0).choice(3, 300, p=[0.7, 0.2, 0.1])
    X = np.arange(300)
    first = P.balance(X, y, strategy="oversample", seed=5)[0]
    assert_array_equal(first, P.balance(X, y, strategy="oversample", seed=5)[0])
    assert_array_equal(first, P.balance(X, y, "oversample", np.random.default_rng(5))[0])
    others = [P.balance(X, y, strategy="oversample", seed=seed)[0] for seed in range(6, 10)]
    assert any(not np.array_equal(first, other) for other in others)
    assert np.bincount(y[first]).tolist() == [np.bincount(y).max()] * 3


def test_oversampling_keeps_string_labels_and_images() -> None:
    y = np.array(["cat", "dog", "dog", "dog"])
    X = np.arange(4 * 2 * 2).reshape(4, 2, 2)
    Xb, yb, report = P.balance(X, y, strategy="oversample", seed=1)
    assert Xb.shape == (6, 2, 2) and report.after == {"cat": 3, "dog": 3}
    assert (Xb[yb == "cat"] == X[0]).all()
