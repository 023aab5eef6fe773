"""Tests for lamina.datasets: the notes' synthetic sets and the IDX image loaders (notes §1.9)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lamina import config, datasets
from lamina.errors import ConfigError, DataIntegrityError, DataNotFoundError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # installed by `apt-get install -y
FILES = (  # dataset-fashion-mnist` (.ci/run's `make test` does it)
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


# --------------------------------------------------------------------------- helpers, fixtures


def link_set(source: Path, folder: Path, suffix: str = ".gz") -> Path:
    """Symlink the four files of ``source`` into ``folder`` (created); return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (folder / (name + suffix)).symlink_to(source / (name + suffix))
    return folder


def assert_same(loaded: Any, expected: Any) -> None:
    (X_train, y_train), (X_test, y_test) = loaded
    (eX_train, ey_train), (eX_test, ey_test) = expected
    for array, reference in ((X_train, eX_train), (y_train, ey_train), (X_test, eX_test)):
        assert array.dtype == reference.dtype
        np.testing.assert_array_equal(array, reference)
    np.testing.assert_array_equal(y_test, ey_test)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic 0x0000_08_<ndim>, big-endian sizes, data."""
    header = np.array([0x800 + array.ndim, *array.shape], dtype=">u4")
    return header.tobytes() + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes()[:64].hex())
        for path in sorted(folder.iterdir())
    }


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """No user cache, no $LAMINA_DATA, no network: urlopen records the URL and fails."""
    monkeypatch.delenv("LAMINA_DATA", raising=False)
    monkeypatch.setattr(datasets, "CACHE_ROOT", tmp_path / "cache")
    calls: list[str] = []

    def offline(url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return calls


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the Debian folder at an empty place, so only what a test sets up can be found."""
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")
    return tmp_path


@pytest.fixture(scope="module")
def reference() -> Any:
    return datasets.fashion_mnist(DEBIAN, download=False)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    for name in FILES:
        (folder / name).write_bytes(gzip.decompress((DEBIAN / (name + ".gz")).read_bytes()))
    return folder


def corrupt_copy(tmp_path: Path, edit: Callable[[bytes], bytes], gz: bool = False) -> Path:
    """A set in tmp_path/bad whose train labels are ``edit``ed; the rest link to the originals."""
    folder = tmp_path / "bad" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in FILES:
        if name != "train-labels-idx1-ubyte":
            (folder / (name + ".gz")).symlink_to(DEBIAN / (name + ".gz"))
    raw = gzip.decompress((DEBIAN / "train-labels-idx1-ubyte.gz").read_bytes())
    if gz:
        content = edit((DEBIAN / "train-labels-idx1-ubyte.gz").read_bytes())
        (folder / "train-labels-idx1-ubyte.gz").write_bytes(content)
    else:
        (folder / "train-labels-idx1-ubyte").write_bytes(edit(raw))
    return folder


def flip(offset: int) -> Callable[[bytes], bytes]:
    def edit(content: bytes) -> bytes:
        changed = bytearray(content)
        changed[offset] ^= 0xFF
        return bytes(changed)

    return edit


# --------------------------------------------------------------------------- synthetic sets


def test_spiral_shapes_dtypes_and_balanced_classes() -> None:
    X, y = datasets.spiral(100, 3, seed=0)
    assert X.shape == (300, 2) and X.dtype == np.float32
    assert y.shape == (300,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 100))  # grouped by class
    radius = np.linalg.norm(X, axis=1).reshape(3, 100)
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, 100), (3, 1)), atol=1e-6)


def test_spiral_without_noise_follows_the_nnfs_formula() -> None:
    samples, classes = 50, 4
    X, y = datasets.spiral(samples, classes, noise=0.0, seed=1)
    for k in range(classes):  # the book's per-class loop, as the reference
        r = np.linspace(0.0, 1, samples)
        t = np.linspace(k * 4, (k + 1) * 4, samples)
        expected = np.c_[r * np.sin(t * 2.5), r * np.cos(t * 2.5)]
        rows = slice(k * samples, (k + 1) * samples)
        np.testing.assert_allclose(X[rows], expected, rtol=1e-6, atol=1e-6)
        assert (y[rows] == k).all()


def test_spiral_noise_perturbs_angles_by_the_given_scale() -> None:
    clean, _ = datasets.spiral(1000, 2, noise=0.0)
    noisy, _ = datasets.spiral(1000, 2, noise=0.2, seed=3)
    np.testing.assert_allclose(np.linalg.norm(noisy, axis=1), np.linalg.norm(clean, axis=1), 1e-5)
    angle = np.arctan2(noisy[:, 0], noisy[:, 1]) - np.arctan2(clean[:, 0], clean[:, 1])
    delta = (angle + np.pi) % (2 * np.pi) - np.pi  # wrapped difference = 2.5 * noise
    assert 0.4 < np.std(delta[clean[:, 0] ** 2 + clean[:, 1] ** 2 > 0.01]) < 0.6


@pytest.mark.parametrize("generator", [datasets.spiral, datasets.vertical])
def test_generators_are_deterministic_by_seed(generator: Callable[..., Any]) -> None:
    X1, y1 = generator(64, 3, seed=7)
    X2, y2 = generator(64, 3, seed=7)
    X3, _ = generator(64, 3, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_vertical_blobs_sit_at_k_over_3_and_one_half() -> None:
    X, y = datasets.vertical(2000, 3, seed=0)
    assert X.shape == (6000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [2000, 2000, 2000])
    for k in range(3):
        points = X[y == k]
        np.testing.assert_allclose(points.mean(axis=0), [k / 3, 0.5], atol=0.01)
        np.testing.assert_allclose(points.std(axis=0), [0.1, 0.1], atol=0.01)


def test_sine_is_one_deterministic_period() -> None:
    X, y = datasets.sine(1000)
    assert X.shape == y.shape == (1000, 1)
    assert X.dtype == y.dtype == np.float32
    np.testing.assert_allclose(X[:, 0], np.arange(1000) / 1000, rtol=1e-6)
    np.testing.assert_allclose(y, np.sin(2 * np.pi * X.astype(np.float64)), atol=1e-6)
    assert y[250, 0] == pytest.approx(1.0) and y[750, 0] == pytest.approx(-1.0)
    np.testing.assert_array_equal(datasets.sine(1000)[1], y)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: datasets.spiral(0), "samples"),
        (lambda: datasets.spiral(-5), "samples"),
        (lambda: datasets.spiral(10.0), "samples"),
        (lambda: datasets.spiral(2e9), "samples"),
        (lambda: datasets.spiral(True), "samples"),
        (lambda: datasets.spiral(np.bool_(True)), "samples"),
        (lambda: datasets.spiral(10, 0), "classes"),
        (lambda: datasets.spiral(10, 2.5), "classes"),
        (lambda: datasets.spiral(10, False), "classes"),
        (lambda: datasets.spiral(10, 2, noise=-0.1), "noise"),
        (lambda: datasets.spiral(10, 2, noise=math.nan), "noise"),
        (lambda: datasets.spiral(10, 2, noise=math.inf), "noise"),
        (lambda: datasets.spiral(10, 2, noise="0.2"), "noise"),
        (lambda: datasets.spiral(10, 2, noise=True), "noise"),
        (lambda: datasets.spiral(10, 2, seed=-1), "seed"),
        (lambda: datasets.spiral(10, 2, seed=1.5), "seed"),
        (lambda: datasets.spiral(10, 2, seed="0"), "seed"),
        (lambda: datasets.spiral(10, 2, seed=True), "seed"),
        (lambda: datasets.vertical(0), "samples"),
        (lambda: datasets.vertical(10, -1), "classes"),
        (lambda: datasets.vertical(10, 2, seed=-1), "seed"),
        (lambda: datasets.vertical(10, True), "classes"),
        (lambda: datasets.sine(0), "samples"),
        (lambda: datasets.sine("100"), "samples"),
        (lambda: datasets.sine(False), "samples"),
    ],
)
def test_bad_generator_arguments_raise_config_error(call: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ConfigError, match=f"`{argument}`") as caught:
        call()
    assert isinstance(caught.value, ValueError)
    assert "Fix:" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: datasets.spiral(datasets.MAX_SAMPLES + 1, 1),
        lambda: datasets.spiral(4_000_000, 3),  # each count is fine, the product is not
        lambda: datasets.vertical(2_000_000_000),
        lambda: datasets.sine(datasets.MAX_SAMPLES + 1),
    ],
)
def test_too_many_samples_are_refused_before_anything_is_drawn(call: Callable[[], Any]) -> None:
    with pytest.raises(ConfigError, match=r"at most 10,000,000 rows") as caught:
        call()
    assert "Fix: pass fewer samples" in str(caught.value)


def test_the_largest_allowed_count_passes_the_check() -> None:
    datasets.synthetic.check_rows(datasets.MAX_SAMPLES // 4, 4)
    X, _ = datasets.spiral(5, 2, seed=np.int64(3))
    assert X.shape == (10, 2) and np.array_equal(X, datasets.spiral(5, 2, seed=3)[0])


@pytest.mark.parametrize(
    ("data", "call"),
    [
        ('dataset = "spiral"\nseed = -1', lambda: datasets.spiral(seed=-1)),
        ('dataset = "spiral"\nsamples = 2e9', lambda: datasets.spiral(2e9)),
        ('dataset = "vertical"\nclasses = true', lambda: datasets.vertical(classes=True)),
        ('dataset = "spiral"\nnoise = nan', lambda: datasets.spiral(noise=math.nan)),
        ('dataset = "sine"\nsamples = 20000000', lambda: datasets.sine(20_000_000)),
    ],
)
def test_a_config_and_the_python_api_give_the_same_message(
    tmp_path: Path, data: str, call: Callable[[], Any]
) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        f'[data]\n{data}\n\n[[layers]]\ntype = "dense"\nn_inputs = 2\nn_neurons = 2\n\n'
        '[compile]\nloss = "mean_squared_error"\n'
    )
    with pytest.raises(ConfigError) as from_python:
        call()
    with pytest.raises(config.ConfigFileError) as from_config:
        config.load_config(path)
    assert str(from_config.value) == f"{path}:3: [data]: {from_python.value}"


def test_numpy_integers_are_accepted() -> None:
    X, _ = datasets.spiral(np.int64(5), np.int32(2), seed=0)
    assert X.shape == (10, 2)


# --------------------------------------------------------------------------- Fashion-MNIST


def test_class_names() -> None:
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
    assert datasets.FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert datasets.FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert datasets.MNIST_CLASSES == tuple("0123456789")


def test_fashion_mnist_loads_from_the_debian_package(reference: Any, isolated: list[str]) -> None:
    loaded = datasets.fashion_mnist(download=False)
    (X_train, y_train), (X_test, y_test) = loaded
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert X_train.dtype == y_train.dtype == X_test.dtype == y_test.dtype == np.uint8
    assert y_train.min() == 0 and y_train.max() == 9 and y_test.max() == 9
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 1000))
    assert X_train.min() == 0 and X_train.max() == 255
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the official order
    assert X_train.flags.writeable and X_train.flags.c_contiguous
    assert_same(loaded, reference)
    assert isolated == []  # found locally: nothing downloaded


def test_path_argument_finds_the_files(tmp_path: Path, elsewhere: Path, reference: Any) -> None:
    folder = link_set(DEBIAN, tmp_path / "my data")
    assert_same(datasets.fashion_mnist(str(folder), download=False), reference)


def test_lamina_data_is_searched(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, reference: Any
) -> None:
    link_set(DEBIAN, tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "env"))
    assert_same(datasets.fashion_mnist(download=False), reference)


def test_cache_folder_is_searched(tmp_path: Path, elsewhere: Path, reference: Any) -> None:
    link_set(DEBIAN, tmp_path / "cache" / "fashion-mnist")
    assert_same(datasets.fashion_mnist(download=False), reference)


def test_lamina_data_comes_before_the_cache(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, reference: Any
) -> None:
    bad = corrupt_copy(tmp_path, flip(1000))  # tmp_path/bad/fashion-mnist
    (tmp_path / "cache").mkdir()
    bad.rename(tmp_path / "cache" / "fashion-mnist")
    link_set(DEBIAN, tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "env"))
    assert_same(datasets.fashion_mnist(download=False), reference)  # the cache is not read
    monkeypatch.delenv("LAMINA_DATA")
    with pytest.raises(DataIntegrityError, match="cache/fashion-mnist/train-labels"):
        datasets.fashion_mnist(download=False)  # a corrupt copy is reported, not skipped


def test_raw_files_load_identically_to_gzip(raw_dir: Path, reference: Any) -> None:
    assert_same(datasets.fashion_mnist(raw_dir), reference)


def test_explicit_path_without_the_files_searches_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: list[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte.gz").symlink_to(DEBIAN / "train-images-idx3-ubyte.gz")
    link_set(DEBIAN, tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "env"))  # would work, must not be used
    with pytest.raises(DataNotFoundError) as caught:
        datasets.fashion_mnist(empty, download=True)
    message = str(caught.value)
    assert str(empty) in message and "missing train-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte[.gz]" not in message
    assert str(tmp_path / "env") not in message
    assert isolated == []  # and nothing downloaded


# --------------------------------------------------------------------------- integrity


def test_flipped_byte_fails_the_checksum_and_leaves_the_file_alone(
    tmp_path: Path, elsewhere: Path
) -> None:
    folder = corrupt_copy(tmp_path, flip(30000))
    before = snapshot(folder)
    with pytest.raises(DataIntegrityError) as caught:
        datasets.fashion_mnist(folder)
    message = str(caught.value)
    assert str(folder / "train-labels-idx1-ubyte") in message
    assert FASHION_SHA256["train-labels-idx1-ubyte"] in message  # expected digest
    bad = gzip.decompress((DEBIAN / "train-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.sha256(flip(30000)(bad)).hexdigest() in message  # received digest
    assert "Fix: delete" in message
    assert snapshot(folder) == before  # reading never modifies anything


def test_flipped_byte_in_a_gzip_file_is_caught(tmp_path: Path, elsewhere: Path) -> None:
    folder = corrupt_copy(tmp_path, flip(15000), gz=True)
    with pytest.raises(DataIntegrityError, match=r"train-labels-idx1-ubyte\.gz"):
        datasets.fashion_mnist(folder)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_is_caught(tmp_path: Path, elsewhere: Path, gz: bool) -> None:
    folder = corrupt_copy(tmp_path, lambda content: content[: len(content) // 2], gz=gz)
    with pytest.raises(DataIntegrityError, match="train-labels-idx1-ubyte") as caught:
        datasets.fashion_mnist(folder)
    assert "truncated" in str(caught.value) or "gzip" in str(caught.value)


def test_wrong_magic_number_is_caught(tmp_path: Path, elsewhere: Path) -> None:
    folder = corrupt_copy(tmp_path, lambda content: b"\x00\x00\x08\x03" + content[4:])
    with pytest.raises(DataIntegrityError, match="magic number 0x00000803, expected 0x00000801"):
        datasets.fashion_mnist(folder)


def test_mnist_checks_its_own_checksums(raw_dir: Path) -> None:
    with pytest.raises(DataIntegrityError, match="train-images-idx3-ubyte failed its checksum"):
        datasets.mnist(raw_dir)  # Fashion-MNIST files are not MNIST


def tiny_set(folder: Path, train_labels: int = 5) -> dict[str, str]:
    """Write a tiny valid IDX set (5 train, 2 test images of 3×4) and return its SHA-256s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 3, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(train_labels, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 3, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([7, 1], dtype=np.uint8),
    }
    folder.mkdir(parents=True)
    digests = {}
    for name, array in arrays.items():
        content = idx_bytes(array)
        (folder / name).write_bytes(content)
        digests[name] = hashlib.sha256(content).hexdigest()
    return digests


def test_idx_parsing_on_known_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digests = tiny_set(tmp_path / "mnist")
    spec = dataclasses.replace(datasets._SPECS["mnist"], sha256=digests)
    monkeypatch.setitem(datasets._SPECS, "mnist", spec)
    (X_train, y_train), (X_test, y_test) = datasets.mnist(tmp_path / "mnist")
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(X_train, rng.integers(0, 256, (5, 3, 4), dtype=np.uint8))
    np.testing.assert_array_equal(X_test, rng.integers(0, 256, (2, 3, 4), dtype=np.uint8))
    assert y_train.tolist() == [0, 1, 2, 3, 4] and y_test.tolist() == [7, 1]


def test_image_label_count_mismatch_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = tiny_set(tmp_path / "mnist", train_labels=4)
    spec = dataclasses.replace(datasets._SPECS["mnist"], sha256=digests)
    monkeypatch.setitem(datasets._SPECS, "mnist", spec)
    with pytest.raises(DataIntegrityError, match=r"holds 5 images but .*train-labels.* 4 labels"):
        datasets.mnist(tmp_path / "mnist")


# --------------------------------------------------------------------------- not found, download


def test_nothing_found_without_download_lists_every_place(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, isolated: list[str]
) -> None:
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as caught:
        datasets.fashion_mnist(download=False)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    for place in ("env/fashion-mnist", "cache/fashion-mnist", "system/fashion-mnist"):
        assert str(tmp_path / place) in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "download=False" in message and "LAMINA_DATA" in message
    assert isolated == []


def test_failed_download_is_reported_and_leaves_nothing(
    tmp_path: Path, elsewhere: Path, isolated: list[str]
) -> None:
    with pytest.raises(DataNotFoundError) as caught:
        datasets.fashion_mnist()
    message = str(caught.value)
    assert isolated == [datasets._SPECS["fashion-mnist"].url + "train-images-idx3-ubyte.gz"]
    assert "network disabled in tests" in message
    assert "LAMINA_DATA is not set" in message and str(tmp_path / "cache") in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert not (tmp_path / "cache").exists()  # folders made for the download are removed


def test_mnist_not_found_names_its_mirror(elsewhere: Path) -> None:
    with pytest.raises(DataNotFoundError, match="MNIST not found") as caught:
        datasets.mnist(download=False)
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in str(caught.value)


class Mirror:
    """A fake urlopen serving the Debian files, optionally broken for one file."""

    def __init__(self, broken: str | None = None, how: str = "") -> None:
        self.urls: list[str] = []
        self.broken, self.how = broken, how

    def __call__(self, url: str, timeout: float | None = None) -> io.BytesIO:
        assert timeout is not None and timeout > 0
        self.urls.append(url)
        name = url.rsplit("/", 1)[1]
        content = (DEBIAN / name).read_bytes()
        if self.broken is not None and name.startswith(self.broken):
            if self.how == "garbage":
                return io.BytesIO(gzip.compress(b"not the dataset"))
            return Interrupted(content[: len(content) // 3])
        return io.BytesIO(content)


class Interrupted(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        return chunk


def test_download_writes_verified_files_atomically(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, reference: Any
) -> None:
    mirror = Mirror()
    monkeypatch.setattr(urllib.request, "urlopen", mirror)
    assert_same(datasets.fashion_mnist(), reference)
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert sorted(mirror.urls) == sorted(url + name + ".gz" for name in FILES)
    cache = tmp_path / "cache" / "fashion-mnist"
    assert sorted(path.name for path in cache.iterdir()) == sorted(name + ".gz" for name in FILES)
    assert_same(datasets.fashion_mnist(), reference)  # now from the cache
    assert len(mirror.urls) == 4


@pytest.mark.parametrize("how", ["interrupted", "garbage"])
def test_broken_download_saves_no_partial_or_corrupt_file(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", Mirror("train-labels", how))
    with pytest.raises(DataNotFoundError) as caught:
        datasets.fashion_mnist()
    message = str(caught.value)
    expected = "connection reset" if how == "interrupted" else "SHA-256"
    assert expected in message and "train-labels-idx1-ubyte.gz" in message
    cache = tmp_path / "cache" / "fashion-mnist"
    # The complete, verified first file stays; the broken one left nothing behind.
    assert [path.name for path in cache.iterdir()] == ["train-images-idx3-ubyte.gz"]
