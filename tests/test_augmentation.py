"""Tests of lamina.augmentation (notes §1.5, §1.9) and lamina.plot.images_grid.

Known results: right-angle rotations against ``np.rot90``, other angles against a per-pixel
reference written with plain loops, shifts and crops against ``np.pad`` windows, and a
registry-driven contract (every registered augmentation: determinism, purity, dtype, config).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lamina import augmentation as aug
from lamina import plot
from lamina.errors import ConfigError, InputError, ShapeError

# One non-default example per registered name: adding a class without a case fails below.
EXAMPLES: dict[str, Callable[[], aug.Augmentation]] = {
    "random_flip": lambda: aug.RandomFlip("horizontal_and_vertical", probability=0.5),
    "random_rotation": lambda: aug.RandomRotation((-30.0, 45.0), fill_mode="reflect"),
    "random_shift": lambda: aug.RandomShift((0.3, 0.2), fill_mode="nearest", fill_value=0.5),
    "random_crop": lambda: aug.RandomCrop((2, 3), fill_mode="constant", fill_value=-1.0),
    "random_brightness": lambda: aug.RandomBrightness(0.2, clip=(0.0, 1.0)),
    "augment": lambda: aug.Augment(
        [aug.RandomFlip(), aug.RandomShift(0.2), aug.RandomRotation(20.0)]
    ),
}
NAMES = list(aug.AUGMENTATIONS)
NON_SQUARE = (16, 9, 7, 2)  # H ≠ W, C > 1: catches swapped axes


def batch(
    shape: tuple[int, ...] = NON_SQUARE, dtype: type = np.float32, seed: int = 0
) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(dtype)


def example(name: str) -> aug.Augmentation:
    return EXAMPLES[name]()


def test_every_registered_augmentation_has_an_example() -> None:
    assert set(NAMES) == set(EXAMPLES), "add an example for the new augmentation to EXAMPLES"


# --- the contract over every registered augmentation ---------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_batch_different_seed_different_batch(name: str) -> None:
    x = batch()
    first = example(name)(x, np.random.default_rng(7))
    again = example(name)(x, np.random.default_rng(7))
    other = example(name)(x, np.random.default_rng(8))
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, x)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_returns_a_new_array_of_the_same_shape_and_dtype_and_leaves_the_input(
    name: str, dtype: type
) -> None:
    x = batch(dtype=dtype)
    before = x.copy()
    out = example(name)(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_an_empty_batch(name: str) -> None:
    x = np.zeros((0, 5, 4, 3), dtype=np.float32)
    out = example(name)(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name: str) -> None:
    for augmentation in (example(name), aug.AUGMENTATIONS.lookup(name)()):
        config = augmentation.get_config()
        assert json.loads(json.dumps(config)) == config  # JSON-able, unchanged by JSON
        rebuilt = type(augmentation).from_config(config)
        assert rebuilt.get_config() == config
        spec = json.loads(json.dumps(aug.serialize(augmentation)))
        assert spec["class"] == name
        restored = aug.deserialize(spec)
        assert type(restored) is type(augmentation)
        assert restored.get_config() == config
        x = batch()
        np.testing.assert_array_equal(
            restored(x, np.random.default_rng(3)), augmentation(x, np.random.default_rng(3))
        )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(28, 28), (4, 28, 28), (2, 4, 28, 28, 1), (3, 0, 28, 1)])
def test_wrong_shape_names_the_augmentation_and_both_shapes(
    name: str, shape: tuple[int, ...]
) -> None:
    augmentation = example(name)
    with pytest.raises(ShapeError) as error:
        augmentation(np.zeros(shape, dtype=np.float32), np.random.default_rng(0))
    message = str(error.value)
    assert type(augmentation).__name__ in message
    assert str(shape) in message
    assert "(batch, H, W, C)" in message


@pytest.mark.parametrize("name", NAMES)
def test_integer_images_and_a_missing_generator_are_rejected(name: str) -> None:
    with pytest.raises(InputError, match="float"):
        example(name)(np.zeros((2, 4, 4, 1), dtype=np.uint8), np.random.default_rng(0))
    with pytest.raises(InputError, match="rng"):
        example(name)(batch(), 0)


# --- bad arguments -------------------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[Callable[[], object], str]] = [
    (lambda: aug.RandomFlip(probability=1.5), "RandomFlip.probability"),
    (lambda: aug.RandomFlip(probability=-0.1), "RandomFlip.probability"),
    (lambda: aug.RandomFlip(probability=True), "RandomFlip.probability"),
    (lambda: aug.RandomFlip(mode="diagonal"), "RandomFlip.mode"),
    (lambda: aug.RandomRotation(max_degrees=-5.0), "RandomRotation.max_degrees"),
    (lambda: aug.RandomRotation(max_degrees=(10.0, -10.0)), "RandomRotation.max_degrees"),
    (lambda: aug.RandomRotation(max_degrees=math.nan), "RandomRotation.max_degrees"),
    (lambda: aug.RandomRotation(max_degrees=(1.0, 2.0, 3.0)), "RandomRotation.max_degrees"),
    (lambda: aug.RandomRotation(fill_mode="wrap"), "RandomRotation.fill_mode"),
    (lambda: aug.RandomRotation(fill_value=math.inf), "RandomRotation.fill_value"),
    (lambda: aug.RandomShift(max_fraction=-0.1), "RandomShift.max_fraction"),
    (lambda: aug.RandomShift(max_fraction=(0.1, 1.5)), "RandomShift.max_fraction"),
    (lambda: aug.RandomShift(fill_mode="mirror"), "RandomShift.fill_mode"),
    (lambda: aug.RandomShift(fill_value="black"), "RandomShift.fill_value"),
    (lambda: aug.RandomCrop(padding=-1), "RandomCrop.padding"),
    (lambda: aug.RandomCrop(padding=2.5), "RandomCrop.padding"),
    (lambda: aug.RandomCrop(padding=(2, -2)), "RandomCrop.padding"),
    (lambda: aug.RandomCrop(fill_mode="zeros"), "RandomCrop.fill_mode"),
    (lambda: aug.RandomBrightness(max_delta=-0.1), "RandomBrightness.max_delta"),
    (lambda: aug.RandomBrightness(clip=(1.0, 0.0)), "RandomBrightness.clip"),
    (lambda: aug.RandomBrightness(clip=1.0), "RandomBrightness.clip"),
    (lambda: aug.Augment(aug.RandomFlip()), "Augment.steps"),
    (lambda: aug.Augment([aug.RandomFlip(), 3]), "Augment.steps[1]"),
]


@pytest.mark.parametrize(("build", "argument"), BAD_ARGUMENTS)
def test_bad_arguments_raise_config_errors_naming_the_argument(
    build: Callable[[], object], argument: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"`{argument}`")):
        build()


def test_deserialize_rejects_unknown_names_and_malformed_specs() -> None:
    with pytest.raises(ConfigError, match="random_flip"):
        aug.deserialize({"class": "random_flipp", "config": {}})
    with pytest.raises(ConfigError, match="augmentation spec"):
        aug.deserialize({"class": "random_flip"})
    with pytest.raises(ConfigError, match="random_flip"):
        aug.deserialize({"class": "random_flip", "config": {"angle": 3}})


def test_get_builds_from_names_specs_and_lists() -> None:
    assert isinstance(aug.get("random_crop"), aug.RandomCrop)
    flip = aug.RandomFlip("vertical")
    assert aug.get(flip) is flip
    assert aug.get(aug.serialize(flip)).get_config() == flip.get_config()
    pipeline = aug.get(["random_flip", flip])
    assert isinstance(pipeline, aug.Augment)
    assert [type(step) for step in pipeline.steps] == [aug.RandomFlip, aug.RandomFlip]


# --- RandomFlip ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "flipped"),
    [
        ("horizontal", lambda x: x[:, :, ::-1]),
        ("vertical", lambda x: x[:, ::-1]),
        ("horizontal_and_vertical", lambda x: x[:, ::-1, ::-1]),
    ],
)
def test_flip_probability_one_flips_every_image_and_zero_none(
    mode: str, flipped: Callable[[np.ndarray], np.ndarray]
) -> None:
    x = batch()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(aug.RandomFlip(mode, probability=1.0)(x, rng), flipped(x))
    np.testing.assert_array_equal(aug.RandomFlip(mode, probability=0.0)(x, rng), x)


def test_flip_half_flips_each_image_independently() -> None:
    x = batch((64, 5, 6, 1))
    out = aug.RandomFlip("horizontal", probability=0.5)(x, np.random.default_rng(1))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 16 < mirrored.sum() < 48


# --- RandomRotation ------------------------------------------------------------------------

KNOWN = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)  # distinct values


@pytest.mark.parametrize("degrees", [90.0, -90.0, 180.0, 270.0, 360.0, -450.0])
def test_rotation_by_right_angles_equals_rot90_exactly(degrees: float) -> None:
    k = round(degrees / 90)
    rotate = aug.RandomRotation(max_degrees=(degrees, degrees))
    out = rotate(KNOWN, np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.rot90(KNOWN, k, axes=(1, 2)))
    square = batch((3, 6, 6, 2), dtype=np.float64)
    out = rotate(square, np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.rot90(square, k, axes=(1, 2)))


def test_rotation_by_90_is_counter_clockwise() -> None:
    out = aug.RandomRotation((90.0, 90.0))(KNOWN, np.random.default_rng(0))[0, :, :, 0]
    assert out[0, 0] == KNOWN[0, 0, 4, 0]  # the top-right corner moves to the top left


@pytest.mark.parametrize("rotate", [aug.RandomRotation(0.0), aug.RandomRotation((0.0, 0.0))])
def test_rotation_by_zero_is_the_identity(rotate: aug.RandomRotation) -> None:
    x = batch()
    np.testing.assert_array_equal(rotate(x, np.random.default_rng(0)), x)


def reference_rotation(
    image: np.ndarray, degrees: float, fill_mode: str, fill_value: float
) -> np.ndarray:
    """Bilinear rotation of one (H, W, C) image, pixel by pixel (the slow, obvious way)."""
    h, w, _ = image.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    theta = math.radians(degrees)

    def read(r: int, c: int) -> np.ndarray:
        if fill_mode == "constant" and not (0 <= r < h and 0 <= c < w):
            return np.full(image.shape[-1], fill_value)
        if fill_mode == "nearest":
            r, c = min(max(r, 0), h - 1), min(max(c, 0), w - 1)
        if fill_mode == "reflect":  # d c b a | a b c d | d c b a
            r, c = r % (2 * h), c % (2 * w)
            r, c = (2 * h - 1 - r if r >= h else r), (2 * w - 1 - c if c >= w else c)
        return image[r, c].astype(np.float64)

    out = np.empty(image.shape)
    for y in range(h):
        for x in range(w):
            dy, dx = y - cy, x - cx
            sy = cy + dy * math.cos(theta) + dx * math.sin(theta)
            sx = cx - dy * math.sin(theta) + dx * math.cos(theta)
            y0, x0 = math.floor(sy), math.floor(sx)
            fy, fx = sy - y0, sx - x0
            out[y, x] = (
                (1 - fy) * (1 - fx) * read(y0, x0)
                + (1 - fy) * fx * read(y0, x0 + 1)
                + fy * (1 - fx) * read(y0 + 1, x0)
                + fy * fx * read(y0 + 1, x0 + 1)
            )
    return out


@pytest.mark.parametrize("fill_mode", aug.FILL_MODES)
@pytest.mark.parametrize("degrees", [17.0, -33.5, 120.0])
def test_rotation_matches_a_per_pixel_reference(fill_mode: str, degrees: float) -> None:
    x = batch((2, 6, 9, 2), dtype=np.float64)
    rotate = aug.RandomRotation((degrees, degrees), fill_mode=fill_mode, fill_value=-0.5)
    out = rotate(x, np.random.default_rng(0))
    for n in range(len(x)):
        expected = reference_rotation(x[n], degrees, fill_mode, -0.5)
        np.testing.assert_allclose(out[n], expected, rtol=0, atol=1e-12)
    out32 = rotate(x.astype(np.float32), np.random.default_rng(0))
    np.testing.assert_allclose(out32, out, rtol=0, atol=1e-4)


def test_rotation_angles_stay_in_range_and_differ_per_image() -> None:
    # a single bright pixel off-centre turns by θ about the centre; its bilinear spread has
    # its centre of mass on the circle of the same radius, at an angle in [−20°, 20°]
    x = np.zeros((32, 41, 41, 1))
    x[:, 20, 35] = 1.0  # radius 15 to the right of the centre (20, 20)
    out = aug.RandomRotation(20.0)(x, np.random.default_rng(5))[..., 0]
    ys, xs = np.mgrid[0:41, 0:41]
    mass = out.sum(axis=(1, 2))
    cy = (out * ys).sum(axis=(1, 2)) / mass - 20
    cx = (out * xs).sum(axis=(1, 2)) / mass - 20
    angles = np.degrees(np.arctan2(-cy, cx))  # counter-clockwise as displayed
    assert np.all(np.abs(angles) <= 20.0 + 0.5)
    assert np.ptp(angles) > 20.0
    np.testing.assert_allclose(np.hypot(cy, cx), 15.0, atol=0.3)


# --- RandomShift ---------------------------------------------------------------------------


def numpy_pad(
    x: np.ndarray, widths: tuple[tuple[int, int], ...], fill_mode: str, fill_value: float
) -> np.ndarray:
    """The fill modes of the module docstring in np.pad's words: k k | a b c d | k k,
    a a | a b c d | d d (edge), b a | a b c d | d c (symmetric)."""
    if fill_mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=fill_value)
    return np.pad(x, widths, mode="edge" if fill_mode == "nearest" else "symmetric")


def test_shift_moves_a_single_bright_pixel_by_a_bounded_random_offset() -> None:
    n = 40
    x = np.zeros((n, 21, 21, 1), dtype=np.float32)
    x[:, 10, 10] = 1.0
    out = aug.RandomShift(0.2)(x, np.random.default_rng(2))  # ⌊0.2 · 21⌋ = 4 pixels
    assert np.all(out.sum(axis=(1, 2, 3)) == 1.0)  # the pixel is still whole, nothing else
    where = np.argwhere(out[..., 0] == 1.0)
    np.testing.assert_array_equal(where[:, 0], np.arange(n))
    offsets = where[:, 1:] - 10
    assert np.abs(offsets).max() == 4
    assert len({tuple(o) for o in offsets}) > 15  # many different offsets


@pytest.mark.parametrize("fill_mode", aug.FILL_MODES)
def test_shift_equals_a_window_of_the_padded_image_at_the_drawn_offset(fill_mode: str) -> None:
    x = batch((12, 8, 10, 2))
    shift = aug.RandomShift((0.25, 0.3), fill_mode=fill_mode, fill_value=-1.0)
    out = shift(x, np.random.default_rng(4))
    # RandomShift draws t_y, then t_x, one per image, from the rng it is given
    rng = np.random.default_rng(4)
    t_y = rng.integers(-2, 2, size=12, endpoint=True)  # ⌊0.25 · 8⌋ = 2
    t_x = rng.integers(-3, 3, size=12, endpoint=True)  # ⌊0.3 · 10⌋ = 3
    for n in range(12):
        padded = numpy_pad(x[n], ((2, 2), (3, 3), (0, 0)), fill_mode, -1.0)
        top, left = 2 - t_y[n], 3 - t_x[n]  # X̃[y, x] = X[y − t_y, x − t_x]
        np.testing.assert_array_equal(out[n], padded[top : top + 8, left : left + 10])


def test_zero_shift_and_zero_padding_crop_are_the_identity() -> None:
    x = batch()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(aug.RandomShift(0.0)(x, rng), x)
    np.testing.assert_array_equal(aug.RandomShift((0.05, 0.1))(x, rng), x)  # < 1 pixel
    np.testing.assert_array_equal(aug.RandomCrop(0)(x, rng), x)


# --- RandomCrop ----------------------------------------------------------------------------


@pytest.mark.parametrize("fill_mode", aug.FILL_MODES)
def test_every_crop_is_a_window_of_the_padded_image(fill_mode: str) -> None:
    n, h, w, p = 20, 8, 7, 3
    x = batch((n, h, w, 1))
    out = aug.RandomCrop(p, fill_mode=fill_mode)(x, np.random.default_rng(6))
    padded = numpy_pad(x, ((0, 0), (p, p), (p, p), (0, 0)), fill_mode, 0.0)
    offsets = set()
    for i in range(n):
        matches = [
            (oy, ox)
            for oy in range(2 * p + 1)
            for ox in range(2 * p + 1)
            if np.array_equal(out[i], padded[i, oy : oy + h, ox : ox + w])
        ]
        assert matches, f"crop {i} is no window of the padded image"
        offsets.add(matches[0])
    assert len(offsets) > 8


# --- RandomBrightness ----------------------------------------------------------------------


def test_brightness_adds_one_bounded_constant_per_image() -> None:
    x = batch((32, 6, 5, 3), dtype=np.float64)
    out = aug.RandomBrightness(0.2)(x, np.random.default_rng(0))
    delta = out - x
    per_image = delta[:, 0, 0, 0]
    np.testing.assert_allclose(delta, np.broadcast_to(per_image[:, None, None, None], x.shape))
    assert np.all(np.abs(per_image) <= 0.2)
    assert np.ptp(per_image) > 0.2


def test_brightness_clip_keeps_values_in_range() -> None:
    x = batch((32, 6, 5, 1))
    out = aug.RandomBrightness(0.5, clip=(0.0, 1.0))(x, np.random.default_rng(0))
    assert out.min() == 0.0 and out.max() == 1.0


# --- Augment -------------------------------------------------------------------------------


def test_pipeline_applies_its_steps_in_order_with_one_rng() -> None:
    steps = [aug.RandomFlip(), aug.RandomShift(0.2), aug.RandomRotation(15.0)]
    x = batch()
    out = aug.Augment(steps)(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    expected = x
    for step in steps:
        expected = step(expected, rng)
    np.testing.assert_array_equal(out, expected)


def test_empty_pipeline_returns_an_equal_copy() -> None:
    x = batch()
    out = aug.Augment([])(x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_nested_pipeline_round_trips() -> None:
    inner = aug.Augment([aug.RandomCrop(2), aug.RandomBrightness(0.1)])
    outer = aug.Augment([aug.RandomFlip("vertical"), inner])
    spec = json.loads(json.dumps(aug.serialize(outer)))
    rebuilt = aug.deserialize(spec)
    x = batch()
    np.testing.assert_array_equal(
        rebuilt(x, np.random.default_rng(1)), outer(x, np.random.default_rng(1))
    )


# --- plot.images_grid ----------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_images_grid_writes_a_png_with_one_axes_per_image(tmp_path: Path) -> None:
    images = batch((10, 28, 28, 1))
    labels = np.arange(10) % 3
    path = tmp_path / "grid.png"
    figure = plot.images_grid(
        images, labels, class_names=["shirt", "bag", "boot"], columns=4, path=path, title="t"
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(figure.axes) == 10
    assert [axis.get_title() for axis in figure.axes[:4]] == ["shirt", "bag", "boot", "shirt"]


def test_images_grid_draws_rgb_and_unlabelled_images(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    figure = plot.images_grid(batch((3, 8, 8, 3)) * 255, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(figure.axes) == 3
    shown = figure.axes[0].get_images()[0].get_array()
    assert shown.min() >= 0.0 and shown.max() <= 1.0  # scaled for display


def test_images_grid_rejects_bad_images_and_labels() -> None:
    with pytest.raises(ShapeError, match="images"):
        plot.images_grid(np.zeros((2, 8, 8, 2)))
    with pytest.raises(ShapeError, match="labels"):
        plot.images_grid(np.zeros((2, 8, 8, 1)), [0, 1, 2])
    with pytest.raises(InputError, match="labels"):
        plot.images_grid(np.zeros((2, 8, 8, 1)), [0, 5], class_names=["a", "b"])
    with pytest.raises(ConfigError, match="columns"):
        plot.images_grid(np.zeros((2, 8, 8, 1)), columns=0)
