"""Tests for lamina.datasets' own-data readers: image folders and CSV tables (notes §1.9)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from lamina import datasets
from lamina.datasets import (
    MAX_IMAGE_PIXELS,
    class_folder_name,
    image_folder,
    load_csv,
    load_image,
    to_image_folder,
)
from lamina.datasets.tables import load_csv_features
from lamina.errors import ConfigError, DataIntegrityError, DataNotFoundError, InputError, ShapeError

FASHION = Path("/usr/share/datasets/fashion-mnist")  # `apt-get install -y dataset-fashion-mnist`


# --------------------------------------------------------------------------- helpers


def save(path: Path, pixels: np.ndarray, format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=format)
    return path


def png_bytes(tmp_path: Path, pixels: np.ndarray) -> bytes:
    return save(tmp_path / "scratch" / "x.png", pixels).read_bytes()


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every entry under root: mode, mtime and (for files) content."""
    return {
        str(path.relative_to(root)): (
            path.stat().st_mode,
            path.stat().st_mtime_ns,
            path.read_bytes() if path.is_file() else None,
        )
        for path in sorted([root, *root.rglob("*")])
    }


def small_tree(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    """cat/ with 3 and dog/ with 2 random 6×5 grayscale PNGs; returns the pixels by file."""
    root = tmp_path / "tree"
    pixels = {}
    for name, count in (("cat", 3), ("dog", 2)):
        for index in range(count):
            image = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            pixels[f"{name}/{index}.png"] = image
            save(root / name / f"{index}.png", image)
    return root, pixels


@pytest.fixture(scope="module")
def fashion_test() -> tuple[np.ndarray, np.ndarray]:
    _, (X_test, y_test) = datasets.fashion_mnist(FASHION, download=False)
    return X_test, y_test


# --------------------------------------------------------------------------- round trip


def test_fashion_mnist_test_set_round_trips_exactly(
    tmp_path: Path, fashion_test: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = fashion_test
    root = tmp_path / "fashion"
    try:
        check_fashion_round_trip(root, X, y)
    finally:  # 10,000 files would otherwise stay until pytest prunes old temporary folders
        shutil.rmtree(root, ignore_errors=True)


def check_fashion_round_trip(root: Path, X: np.ndarray, y: np.ndarray) -> None:
    written = to_image_folder(X, y, root, class_names=datasets.FASHION_MNIST_CLASSES)

    assert len(written) == 10_000 and all(path.is_file() for path in written[::997])
    assert written[0] == root / "Ankle boot" / "0000.png"  # y[0] == 9, index padded to 4
    assert written[1] == root / "Pullover" / "0001.png"
    folders = sorted(path.name for path in root.iterdir())
    assert folders == sorted(class_folder_name(n) for n in datasets.FASHION_MNIST_CLASSES)
    assert "T-shirt_top" in folders
    assert not [path for path in root.rglob(".*")]  # no temporary file left behind

    names = tuple(class_folder_name(name) for name in datasets.FASHION_MNIST_CLASSES)
    result = image_folder(root, class_names=names)
    assert result.images.shape == (10_000, 28, 28, 1) and result.images.dtype == np.uint8
    assert result.labels.dtype == np.int64 and result.class_names == names
    assert result.skipped == ()
    # Reading groups by class, files in name order: the order of a stable sort by label.
    order = np.argsort(y, kind="stable")
    np.testing.assert_array_equal(result.images[..., 0], X[order])
    np.testing.assert_array_equal(result.labels, y[order])
    # And each file's name is its index in X.
    np.testing.assert_array_equal([int(path.stem) for path in result.files], order)

    # The original (unsanitised) names read the same folders and come back as given.
    again = image_folder(root, class_names=datasets.FASHION_MNIST_CLASSES)
    assert again.class_names == datasets.FASHION_MNIST_CLASSES
    images, labels = again
    np.testing.assert_array_equal(images, result.images)
    np.testing.assert_array_equal(labels, result.labels)


def test_numbered_class_folders_keep_label_order_and_rgb_round_trips(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    images = rng.integers(0, 256, (24, 4, 3, 3), dtype=np.uint8)
    labels = np.arange(24) % 12  # 12 classes: folders 00..11 sort in label order
    written = to_image_folder(images, labels, tmp_path / "out")
    assert written[11] == tmp_path / "out" / "11" / "11.png"
    assert written[3] == tmp_path / "out" / "03" / "03.png"

    result = image_folder(tmp_path / "out", size=(4, 3), grayscale=False)
    assert result.class_names == tuple(f"{k:02d}" for k in range(12))
    assert result.images.shape == (24, 4, 3, 3)
    index = np.array([int(path.stem) for path in result.files])
    np.testing.assert_array_equal(result.images, images[index])
    np.testing.assert_array_equal(result.labels, labels[index])


def test_to_image_folder_accepts_nhwc_with_one_channel_and_bmp(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    images = rng.integers(0, 256, (5, 7, 6, 1), dtype=np.uint8)
    labels = np.array([1, 0, 1, 1, 0])
    written = to_image_folder(images, labels, tmp_path / "bmp", ["no", "yes"], format="bmp")
    assert [path.suffix for path in written] == [".bmp"] * 5
    result = image_folder(tmp_path / "bmp", size=None, class_names=["no", "yes"])
    index = np.array([int(path.stem) for path in result.files])
    np.testing.assert_array_equal(index, [1, 4, 0, 2, 3])
    np.testing.assert_array_equal(result.images, images[index])


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        written = to_image_folder(np.zeros((2, 3, 3), np.uint8), [0, 1], tmp_path / "m")
    finally:
        os.umask(umask)
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in written)  # not mkstemp's 0600


# --------------------------------------------------------------------------- conversions


def test_rgb_gray_conversion_and_resize_follow_pillow(tmp_path: Path) -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    rgb[0, 0] = (10, 250, 30)
    save(tmp_path / "root" / "a" / "x.png", rgb)

    colour = image_folder(tmp_path / "root", size=None, grayscale=False)
    assert colour.images.shape == (1, 4, 6, 3)
    np.testing.assert_array_equal(colour.images[0], rgb)

    gray = image_folder(tmp_path / "root", size=None)
    assert gray.images.shape == (1, 4, 6, 1)
    expected = Image.new("RGB", (1, 1), (200, 100, 50)).convert("L").getpixel((0, 0))
    assert gray.images[0, 1, 1, 0] == expected == 124  # 0.299·200 + 0.587·100 + 0.114·50
    np.testing.assert_array_equal(
        gray.images[0, ..., 0], np.asarray(Image.fromarray(rgb).convert("L"))
    )

    resized = image_folder(tmp_path / "root", size=(9, 5))  # (height, width)
    assert resized.images.shape == (1, 9, 5, 1)
    reference = Image.fromarray(rgb).convert("L").resize((5, 9), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(resized.images[0, ..., 0], np.asarray(reference))

    floats = image_folder(tmp_path / "root", size=None, dtype=np.float32)
    assert floats.images.dtype == np.float32  # same 0–255 values, not scaled
    np.testing.assert_array_equal(floats.images, gray.images.astype(np.float32))


def test_formats_palette_alpha_and_mixed_sizes(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "root"
    pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save(root / "a" / "1.PNG", pixels)  # suffixes in any case
    save(root / "a" / "2.bmp", pixels)
    save(root / "a" / "3.jpg", pixels, format="JPEG")
    Image.fromarray(pixels).convert("P").save(root / "a" / "4.gif")
    rgba = np.dstack([pixels, np.full((8, 8), 7, np.uint8)])
    save(root / "b" / "5.png", rgba)
    Image.fromarray(pixels[:4]).convert("P").save(root / "b" / "6.png")  # palette, 4×8
    expected = ["1.PNG", "2.bmp", "3.jpg", "4.gif", "5.png", "6.png"]
    if features.check("webp"):
        Image.fromarray(pixels).save(root / "b" / "7.webp", lossless=True)
        expected.append("7.webp")

    result = image_folder(root, size=(8, 8), grayscale=False)
    assert [path.name for path in result.files] == expected
    np.testing.assert_array_equal(result.labels, [0, 0, 0, 0] + [1] * (len(expected) - 4))
    assert result.images.shape == (len(expected), 8, 8, 3)
    np.testing.assert_array_equal(result.images[0], pixels)  # PNG, lossless, no resize
    np.testing.assert_array_equal(result.images[1], pixels)  # BMP
    np.testing.assert_array_equal(result.images[4], pixels)  # alpha dropped
    for index in (2, 3):  # JPEG is lossy, GIF has 256 colours: as Pillow decodes them
        with Image.open(result.files[index]) as image:
            np.testing.assert_array_equal(result.images[index], np.asarray(image.convert("RGB")))

    with pytest.raises(InputError, match=r"6\.png is 8×4 pixels .* size=None"):
        image_folder(root, size=None)


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path, rng: np.random.Generator) -> None:
    root, pixels = small_tree(tmp_path, rng)
    (root / "cat" / ".DS_Store").write_bytes(os.urandom(64))
    (root / "cat" / "._0.png").write_bytes(os.urandom(64))  # macOS resource fork
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / "nested").mkdir()
    save(root / "cat" / "nested" / "9.png", pixels["cat/0.png"])
    (root / ".git").mkdir()
    (root / "__MACOSX").mkdir()
    (root / "README.md").write_text("readme")

    result = image_folder(root, size=None)
    assert result.class_names == ("cat", "dog")
    assert [f"{p.parent.name}/{p.name}" for p in result.files] == list(pixels)
    np.testing.assert_array_equal(result.labels, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(result.images[..., 0], np.stack(list(pixels.values())))


def test_class_names_choose_order_and_subset(tmp_path: Path, rng: np.random.Generator) -> None:
    root, _ = small_tree(tmp_path, rng)
    save(root / "owl" / "0.png", np.zeros((6, 5), np.uint8))
    result = image_folder(root, size=None, class_names=["dog", "cat"])
    assert result.class_names == ("dog", "cat")
    np.testing.assert_array_equal(result.labels, [0, 0, 1, 1, 1])
    assert {path.parent.name for path in result.files} == {"dog", "cat"}

    with pytest.raises(DataNotFoundError, match=r"no folder for the classes \['bird'\]") as error:
        image_folder(root, class_names=["cat", "bird"])
    assert str(root) in str(error.value) and "'owl'" in str(error.value)


# --------------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("kind", ["random bytes", "truncated png"])
def test_corrupt_file_raises_naming_it(tmp_path: Path, rng: np.random.Generator, kind: str) -> None:
    root, _ = small_tree(tmp_path, rng)
    bad = root / "dog" / "1.png"
    if kind == "random bytes":
        bad.write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    else:
        content = png_bytes(tmp_path, rng.integers(0, 256, (28, 28), dtype=np.uint8))
        bad.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataIntegrityError) as error:
        image_folder(root)
    message = str(error.value)
    assert str(bad) in message and 'on_error="skip"' in message and "remove" in message
    assert ("cannot identify" if kind == "random bytes" else "truncated") in message


def test_skip_leaves_out_corrupt_files_with_one_warning(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    root, pixels = small_tree(tmp_path, rng)
    noise, truncated = root / "cat" / "1.png", root / "dog" / "0.png"
    noise.write_bytes(os.urandom(200))
    content = truncated.read_bytes()
    truncated.write_bytes(content[: len(content) // 2])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = image_folder(root, size=None, on_error="skip")
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1
    message = str(runtime[0].message)
    assert "skipped 2 of 5 files" in message and str(noise) in message and str(truncated) in message
    assert runtime[0].filename == __file__  # points at the caller

    assert result.skipped == (noise, truncated)
    assert [f"{p.parent.name}/{p.name}" for p in result.files] == [
        "cat/0.png",
        "cat/2.png",
        "dog/1.png",
    ]
    np.testing.assert_array_equal(result.labels, [0, 0, 1])
    expected = np.stack([pixels["cat/0.png"], pixels["cat/2.png"], pixels["dog/1.png"]])
    np.testing.assert_array_equal(result.images[..., 0], expected)


def test_skip_with_nothing_readable_still_fails(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"not a png")
    with pytest.warns(RuntimeWarning, match="skipped 1 of 1"):
        with pytest.raises(DataIntegrityError, match="None of the 1 image files"):
            image_folder(tmp_path, on_error="skip")


def test_reading_modifies_nothing_on_disk(tmp_path: Path, rng: np.random.Generator) -> None:
    root, _ = small_tree(tmp_path, rng)
    (root / "dog" / "bad.png").write_bytes(os.urandom(100))
    save(root / "dog" / "big.jpg", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "JPEG")
    (root / "dog" / "notes.txt").write_text("x")
    for path in root.rglob("*"):  # times in the past, so that any write would show
        os.utime(path, ns=(10**18, 10**18))
    before = snapshot(root)

    with pytest.warns(RuntimeWarning):
        image_folder(root, size=(12, 12), grayscale=False, on_error="skip")
    with pytest.raises(DataIntegrityError):
        image_folder(root)
    assert snapshot(root) == before


# --------------------------------------------------------------------------- folder errors


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist") as error:
        image_folder(tmp_path / "nowhere")
    assert isinstance(error.value, FileNotFoundError)
    assert str(tmp_path / "nowhere") in str(error.value) and "<class name>" in str(error.value)


def test_empty_folder_and_loose_images(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no class sub-folders") as error:
        image_folder(tmp_path)
    assert str(tmp_path) in str(error.value)
    save(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataNotFoundError, match="holds 1 image files directly"):
        image_folder(tmp_path)


def test_class_folder_without_images_names_it(tmp_path: Path) -> None:
    save(tmp_path / "cat" / "0.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(DataNotFoundError, match="holds no images") as error:
        image_folder(tmp_path)
    assert str(tmp_path / "dog") in str(error.value) and ".png" in str(error.value)


def test_path_to_a_file_and_bad_arguments(tmp_path: Path, rng: np.random.Generator) -> None:
    root, _ = small_tree(tmp_path, rng)
    with pytest.raises(InputError, match="is a file, not a folder"):
        image_folder(root / "cat" / "0.png")
    with pytest.raises(ConfigError, match="on_error"):
        image_folder(root, on_error="ignore")
    with pytest.raises(ConfigError, match="size"):
        image_folder(root, size=(28, 0))
    with pytest.raises(ConfigError, match="dtype"):
        image_folder(root, dtype=np.int32)
    with pytest.raises(InputError, match="class_names"):
        image_folder(root, class_names="cat")


# --------------------------------------------------------------------------- writing


def test_class_folder_name() -> None:
    assert class_folder_name("T-shirt/top") == "T-shirt_top"
    assert class_folder_name("Ankle boot") == "Ankle boot"
    assert class_folder_name('a\\b:c*d?"e<f>g|h\ti') == "a_b_c_d__e_f_g_h_i"
    assert class_folder_name(" .hidden. ") == "_hidden"
    for name in ("T-shirt/top", " .x. ", "a:b"):
        assert class_folder_name(class_folder_name(name)) == class_folder_name(name)
    for empty in ("", "  ", "..", "..."):
        with pytest.raises(InputError, match="class name"):
            class_folder_name(empty)


def test_to_image_folder_refuses_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    images, labels = np.zeros((2, 3, 3), np.uint8), np.array([0, 1])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty") as error:
        to_image_folder(images, labels, tmp_path / "out")
    assert "overwrite=True" in str(error.value) and not (tmp_path / "out" / "0").exists()
    written = to_image_folder(images + 9, labels, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"  # nothing deleted
    to_image_folder(images + 5, labels, tmp_path / "out", overwrite=True)  # replaced
    np.testing.assert_array_equal(np.asarray(Image.open(written[0])), images[0] + 5)
    with pytest.raises(InputError, match="is a file"):
        to_image_folder(images, labels, tmp_path / "out" / "keep.txt")


def test_to_image_folder_rejects_bad_input(tmp_path: Path) -> None:
    images, labels = np.zeros((2, 3, 3), np.uint8), np.array([0, 1])
    target = tmp_path / "out"
    with pytest.raises(InputError, match="uint8") as error:
        to_image_folder(images.astype(np.float32) / 255, labels, target)
    assert "astype(np.uint8)" in str(error.value)
    with pytest.raises(InputError, match="uint8"):
        to_image_folder(np.full((2, 3, 3), 300), labels, target)
    to_image_folder(np.full((2, 3, 3), 200, dtype=np.int64), labels, target)  # 0..255 ints
    with pytest.raises(ShapeError, match="one-hot"):
        to_image_folder(images, np.eye(2), tmp_path / "x")
    with pytest.raises(ShapeError, match=r"C = 1 or 3"):
        to_image_folder(np.zeros((2, 3, 3, 2), np.uint8), labels, tmp_path / "x")
    with pytest.raises(InputError, match=r"labels in 0\.\.0"):
        to_image_folder(images, labels, tmp_path / "x", class_names=["only"])
    with pytest.raises(InputError, match="both map to the folder 'a_b'"):
        to_image_folder(images, labels, tmp_path / "x", class_names=["a/b", "a_b"])
    with pytest.raises(ConfigError, match="format"):
        to_image_folder(images, labels, tmp_path / "x", format="jpeg")
    assert not (tmp_path / "x").exists()


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = Image.Image.save
    calls = []

    def failing_save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(fp)
        if len(calls) == 2:
            fp.write(b"\x89PNG half")
            raise OSError("disk full")
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        to_image_folder(np.zeros((3, 2, 2), np.uint8), [0, 0, 0], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "0").iterdir()) == ["0.png"]


# --------------------------------------------------------------------------- large and odd files


@contextlib.contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging the test run, if the block takes longer than ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: it blocks")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def bomb(path: Path, side: int) -> Path:
    """A PNG of a few kB whose header declares side × side pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("1", (side, side)).save(path)
    return path


@pytest.mark.parametrize(
    ("side", "shown"),
    [(15_000, "225,000,000 pixels"), (10_000, "10000×10000"), (7_000, "7000×7000")],
)
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int, shown: str
) -> None:
    path = bomb(tmp_path / "bomb.png", side)
    assert path.stat().st_size < 64 * 1024

    def no_decoding(self: Any) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning is not shown either
        with pytest.raises(DataIntegrityError) as error:
            load_image(path, size=(28, 28))
    message = str(error.value)
    assert str(path) in message and shown in message and f"{MAX_IMAGE_PIXELS:,}" in message
    assert "Fix:" in message and "\n" not in message


def test_the_pixel_limit_is_inclusive_and_can_be_lowered(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    pixels = rng.integers(0, 256, (10, 20), dtype=np.uint8)
    path = save(tmp_path / "a.png", pixels)
    np.testing.assert_array_equal(load_image(path, max_pixels=200), pixels)
    with pytest.raises(DataIntegrityError, match="20×10"):  # width × height
        load_image(path, max_pixels=199)
    rgb = load_image(path, grayscale=False, size=(4, 6))
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8


def test_image_folder_refuses_or_skips_a_bomb(tmp_path: Path, rng: np.random.Generator) -> None:
    root, _ = small_tree(tmp_path, rng)
    bad = bomb(root / "dog" / "9.png", 15_000)
    with pytest.raises(DataIntegrityError) as error:
        image_folder(root, size=(6, 5))
    message = str(error.value)
    assert str(bad) in message and "225,000,000 pixels" in message
    assert 'on_error="skip"' in message
    with pytest.warns(RuntimeWarning, match="skipped 1 of 6 files"):
        result = image_folder(root, size=(6, 5), on_error="skip")
    assert result.skipped == (bad,) and len(result.images) == 5


def test_images_that_are_not_regular_files_are_refused_without_reading(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    cases = [(fifo, "FIFO"), (Path("/dev/zero"), "character device"), (folder, "directory")]
    for path, kind in cases:
        with within(10), pytest.raises(DataIntegrityError, match=kind) as error:
            load_image(path)
        assert str(path) in str(error.value)


def test_csv_paths_that_are_not_regular_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases = [(fifo, "FIFO"), (Path("/dev/zero"), "character device"), (folder, "directory")]
    for path, kind in cases:
        with within(10), pytest.raises(InputError, match=kind):
            load_csv(path, "y")
        with within(10), pytest.raises(InputError, match=kind):
            load_csv_features(path, ["x"])
    sparse = tmp_path / "huge.csv"
    with open(sparse, "wb") as file:
        file.truncate(3 << 30)  # 3 GiB that cost no disk space
    with pytest.raises(InputError, match="3,221,225,472 bytes"):
        load_csv(sparse, "y")


# --------------------------------------------------------------------------- CSV


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_numeric_target(tmp_path: Path) -> None:
    path = write(tmp_path, "a, price ,b\n1,0.5,2\n3,1.5,-4e1\n\n5, 2 ,6\n,,\n")
    data = load_csv(path, "price")
    assert data.feature_names == ("a", "b") and data.class_names is None
    assert data.X.dtype == np.float32 and data.y.dtype == np.float32
    np.testing.assert_array_equal(data.X, [[1, 2], [3, -40], [5, 6]])
    np.testing.assert_array_equal(data.y, [0.5, 1.5, 2.0])
    X, y = load_csv(path, "price", dtype=np.float64)
    assert X.dtype == y.dtype == np.float64


def test_load_csv_text_target_becomes_class_indices(tmp_path: Path) -> None:
    text = '\ufefflength;species;width\n1.5;setosa;2\n3;"virginica";4\n5; setosa ;6\n'
    path = write(tmp_path, text)  # a byte-order mark, ';', quotes and spaces
    data = load_csv(path, "species", delimiter=";")
    assert data.class_names == ("setosa", "virginica")
    assert data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y, [0, 1, 0])
    np.testing.assert_array_equal(data.X, [[1.5, 2], [3, 4], [5, 6]])
    assert data.feature_names == ("length", "width")


def test_load_csv_missing_target_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, "sepal,petal,label\n1,2,3\n")
    with pytest.raises(InputError) as error:
        load_csv(path, "lable")
    message = str(error.value)
    assert str(path) in message and "['sepal', 'petal', 'label']" in message
    assert "did you mean 'label'?" in message
    with pytest.raises(InputError, match="did you mean 'label'"):
        load_csv(path, "LABEL")
    semicolons = write(tmp_path, "a;b;label\n1;2;3\n", "semi.csv")
    with pytest.raises(InputError, match="pass delimiter=';'"):
        load_csv(semicolons, "label")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a,b,y\n1,2,0\n3,abc,1\n", r"row 3, column 'b': 'abc' is not a number"),
        ("a,b,y\n1,2,0\n3,4\n", r"row 3: 2 cells, but the header has 3 columns \(a, b, y\)"),
        ("a,b,y\n1,2,0\n\n3,4,5,6\n", r"row 4: 4 cells"),  # blank lines still count as rows
        ("a,b,y\n,2,0\n", r"row 2, column 'a': the cell is empty"),
        ("a,b,y\n1,2,0\n1, ,0\n", r"row 3, column 'b': the cell is empty"),
        ("a,b,y\n1,2,0\n1,2,\n", r"row 3, column 'y': the cell is empty"),
        ("a,b,y\n1,nan,0\n", r"row 2, column 'b': 'nan' is not a finite number"),
        ("a,b,y\n1,2,inf\n", r"row 2, column 'y': 'inf' is not a finite number"),
        ("a,b,y\n1,1e39,0\n", r"row 2, column 'b': '1e39' overflows float32"),
        ("a,b,y\n1,2,cat\n1,2,7\n", r"column 'y' mixes numbers \(row 3: '7'\) and text"),
        ("", r"is empty; expected a header row"),
        ("a,b,y\n", r"has a header row but no data rows"),
        ("a,,y\n1,2,3\n", r"row 1: column 2 has no name"),
        ("a,a,y\n1,2,3\n", r"column names \['a'\] occur more than once"),
        ("y\n1\n", r"only the target column"),
    ],
)
def test_load_csv_errors_name_file_row_and_column(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=pattern) as error:
        load_csv(path, "y")
    assert str(path) in str(error.value) and "Fix:" in str(error.value)


def test_load_csv_decimal_comma_hint_and_quoted_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "a;y\n1,5;0\n")
    with pytest.raises(InputError, match=r"'1,5' is not a number \(a decimal comma"):
        load_csv(path, "y", delimiter=";")
    quoted = write(tmp_path, 'a,name,y\n1,"x, y",0\n', "quoted.csv")
    with pytest.raises(InputError, match=r"row 2, column 'name': 'x, y' is not a number"):
        load_csv(quoted, "y")


def test_load_csv_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist") as error:
        load_csv(tmp_path / "nope.csv", "y")
    assert isinstance(error.value, FileNotFoundError)
    path = write(tmp_path, "a,y\n1,2\n")
    with pytest.raises(ConfigError, match="delimiter"):
        load_csv(path, "y", delimiter=";;")
    with pytest.raises(ConfigError, match="dtype"):
        load_csv(path, "y", dtype=np.int64)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("caf\xe9,y\n1,2\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_csv(latin, "y")
