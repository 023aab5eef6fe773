"""Datasets: the notes' synthetic sets and the Fashion-MNIST / MNIST image sets (notes §1.9).

Synthetic sets (the generators of the nnfs book the notes follow) return float32 features and,
for classification, int64 labels; every random draw comes from ``np.random.default_rng(seed)``.

Image sets are read from IDX files (raw or gzip) found in, in this order:

1. the ``path`` argument, if given (and then nowhere else);
2. ``$LAMINA_DATA/<name>``;
3. ``~/.cache/lamina/<name>`` (:data:`CACHE_ROOT`);
4. ``/usr/share/datasets/<name>`` (:data:`SYSTEM_ROOT`; Debian's ``dataset-fashion-mnist``);
5. a download from the official mirror into the cache folder, if ``download=True``.

Every file's *decompressed* SHA-256 is checked before it is used. Reading never writes to disk.

Your own data: :func:`image_folder` reads a class-per-folder tree of images the way the notes
prepare them (grayscale, same pixel dimensions), :func:`load_image` one image file (refusing
one that declares more than :data:`MAX_IMAGE_PIXELS` pixels), :func:`to_image_folder` writes
arrays as such a tree, and :func:`load_csv` reads a table with a header row and a named
target column. Only regular files are read: a FIFO or a device is refused, not read.

Sequences (:mod:`lamina.datasets.sequences`): :func:`windows` cuts a series into sliding
windows for forecasting, :func:`pad_sequences` puts sequences of different lengths into one
array, and :func:`adding_problem` and :func:`noisy_sine` generate two problems with known
answers for recurrent networks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lamina.datasets.folders import ImageFolder, class_folder_name, image_folder, to_image_folder
from lamina.datasets.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, load_image
from lamina.datasets.sequences import (
    SINE_FREQUENCIES,
    adding_problem,
    noisy_sine,
    pad_sequences,
    windows,
)
from lamina.datasets.synthetic import MAX_SAMPLES, sine, spiral, vertical
from lamina.datasets.tables import CsvData, load_csv, load_csv_features
from lamina.errors import DataIntegrityError, DataNotFoundError

__all__ = [
    "CACHE_ROOT",
    "DOWNLOAD_TIMEOUT",
    "FASHION_MNIST_CLASSES",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "MAX_SAMPLES",
    "MNIST_CLASSES",
    "SINE_FREQUENCIES",
    "SYSTEM_ROOT",
    "CsvData",
    "ImageFolder",
    "adding_problem",
    "class_folder_name",
    "fashion_mnist",
    "image_folder",
    "load_csv",
    "load_csv_features",
    "load_image",
    "mnist",
    "noisy_sine",
    "pad_sequences",
    "sine",
    "spiral",
    "to_image_folder",
    "vertical",
    "windows",
]

Split = tuple[NDArray[np.uint8], NDArray[np.uint8]]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

# Module-level so that tests (and users) can redirect them; read at call time.
CACHE_ROOT = Path("~/.cache/lamina")
SYSTEM_ROOT = Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT = 60.0  # seconds without data before a download gives up

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"
_FILES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Spec:
    """Where an IDX image set comes from and what its decompressed files hash to."""

    name: str
    title: str
    url: str
    sha256: Mapping[str, str]
    package: str | None  # Debian package that installs it under SYSTEM_ROOT


_SPECS: dict[str, _Spec] = {
    "fashion-mnist": _Spec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        # Computed from the files of Debian's dataset-fashion-mnist (the official release).
        sha256={
            _TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            _TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            _TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            _TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        package="dataset-fashion-mnist",
    ),
    "mnist": _Spec(
        name="mnist",
        title="MNIST",
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        # SHA-256 of the decompressed official files, as published by Hugging Face's Git LFS
        # pointers of copies of the raw files (e.g. huggingface.co/datasets/dmitva/
        # the-mnist-database: train-images, t10k-images; huggingface.co/spaces/chrisjay/
        # mnist-adversarial files/MNIST/raw: train-labels, t10k-images) and pinned as
        # "uncompressed_sha256" next to the .gz archives' SHA-256 (440fcabf…, 3552534a…,
        # 8d422c7b…, f7ae60f9…) by public MNIST loaders on GitHub, which also give t10k-labels.
        sha256={
            _TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            _TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            _TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            _TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        package=None,
    ),
}

# --------------------------------------------------------------------------- IDX image sets


def fashion_mnist(
    path: str | os.PathLike[str] | None = None, *, download: bool = True
) -> tuple[Split, Split]:
    """Zalando's Fashion-MNIST: 70,000 28×28 grayscale images of 10 clothes (notes §1.9, §1.10).

    Class names are :data:`FASHION_MNIST_CLASSES`. The files are looked up as the module
    docstring says; ``apt-get install -y dataset-fashion-mnist`` provides them on Debian.

    Args:
        path: a folder holding the four IDX files (raw or ``.gz``); if given, nothing else is
            searched.
        download: fetch the files into ``~/.cache/lamina/fashion-mnist`` when found nowhere.
    Returns:
        ``((X_train, y_train), (X_test, y_test))`` like Keras: writable uint8 arrays
        X_train (60000, 28, 28), y_train (60000,), X_test (10000, 28, 28), y_test (10000,).
    Raises:
        DataNotFoundError: the files are nowhere (the message lists every place tried).
        DataIntegrityError: a file is corrupt, truncated or not the official one.
    """
    return _load(_SPECS["fashion-mnist"], path, download)


def mnist(
    path: str | os.PathLike[str] | None = None, *, download: bool = True
) -> tuple[Split, Split]:
    """LeCun's MNIST handwritten digits, the same way as :func:`fashion_mnist` (notes §1.9).

    Class names are :data:`MNIST_CLASSES`. The decompressed files' SHA-256 is checked against
    values published for the official files (sources cited in the code).
    """
    return _load(_SPECS["mnist"], path, download)


def _load(spec: _Spec, path: str | os.PathLike[str] | None, download: bool) -> tuple[Split, Split]:
    tried: list[str] = []
    if path is not None:
        found = _find_files(Path(path).expanduser(), tried)
        if found is None:
            raise DataNotFoundError(_not_found_message(spec, tried, None, explicit=True))
        return _read_set(spec, found)

    for folder in _candidate_folders(spec, tried):
        found = _find_files(folder, tried)
        if found is not None:
            return _read_set(spec, found)

    if not download:
        raise DataNotFoundError(_not_found_message(spec, tried, "disabled (download=False)"))
    target = CACHE_ROOT.expanduser() / spec.name
    try:
        _download(spec, target)
    except (OSError, http.client.HTTPException, DataIntegrityError) as error:
        failure = f"into {target} failed: {error}"
        raise DataNotFoundError(_not_found_message(spec, tried, failure)) from error
    return _read_set(spec, _find_files(target, tried) or {})


def _candidate_folders(spec: _Spec, tried: list[str]) -> list[Path]:
    folders = []
    env = os.environ.get("LAMINA_DATA")
    if env:
        folders.append(Path(env).expanduser() / spec.name)
    else:
        tried.append(f"$LAMINA_DATA/{spec.name} (LAMINA_DATA is not set)")
    return [*folders, CACHE_ROOT.expanduser() / spec.name, SYSTEM_ROOT / spec.name]


def _find_files(folder: Path, tried: list[str]) -> dict[str, Path] | None:
    """The path of each of the four files in ``folder`` (raw preferred to ``.gz``), or None."""
    if not folder.is_dir():
        tried.append(f"{folder} (no such folder)")
        return None
    found: dict[str, Path] = {}
    for name in _FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    missing = [f"{name}[.gz]" for name in _FILES if name not in found]
    if missing:
        tried.append(f"{folder} (missing {', '.join(missing)})")
        return None
    return found


def _not_found_message(
    spec: _Spec, tried: list[str], download: str | None, *, explicit: bool = False
) -> str:
    lines = [f"{spec.title} not found. Looked in:", *(f"  - {place}" for place in tried)]
    if download is not None:
        lines.append(f"Download {download}.")
    files = f"{', '.join(_FILES)}, each raw or .gz"
    if explicit:
        fixes = [
            f"put the four files ({files}) in that folder",
            f"pass path=None to search $LAMINA_DATA, {CACHE_ROOT} and {SYSTEM_ROOT}",
        ]
    else:
        fixes = [
            f"put the four files ({files}) in one of those folders, or set LAMINA_DATA "
            f"to a folder holding {spec.name}/"
        ]
        if download is not None and download.startswith("disabled"):
            fixes.append(f"pass download=True to fetch them from {spec.url}")
    if spec.package is not None:
        fixes.insert(
            0, f"`apt-get install -y {spec.package}` (it installs {SYSTEM_ROOT / spec.name})"
        )
    lines.append("Fix: " + "; or ".join(fixes) + ".")
    return "\n".join(lines)


def _read_set(spec: _Spec, files: Mapping[str, Path]) -> tuple[Split, Split]:
    splits = []
    for images_name, labels_name in ((_TRAIN_IMAGES, _TRAIN_LABELS), (_TEST_IMAGES, _TEST_LABELS)):
        images = _read_idx(files[images_name], _IMAGES_MAGIC, spec.sha256[images_name], spec)
        labels = _read_idx(files[labels_name], _LABELS_MAGIC, spec.sha256[labels_name], spec)
        if len(images) != len(labels):
            raise DataIntegrityError(
                f"{files[images_name]} holds {len(images)} images but {files[labels_name]} "
                f"holds {len(labels)} labels. Fix: {_replace_fix(spec, files[labels_name])}."
            )
        splits.append((images, labels))
    return splits[0], splits[1]


def _replace_fix(spec: _Spec, file: Path) -> str:
    if spec.package is not None and file.is_relative_to(SYSTEM_ROOT):
        return f"reinstall it with `apt-get install --reinstall -y {spec.package}`"
    return f"delete {file} so that it is fetched again, or replace it with the official file"


def _read_idx(file: Path, magic: int, sha256: str, spec: _Spec) -> NDArray[np.uint8]:
    """Parse one IDX file of unsigned bytes: magic, big-endian uint32 sizes, C-order data.

    The file is read once and never written; ``.gz`` files are decompressed in memory.
    """
    fix = _replace_fix(spec, file)
    try:
        data = file.read_bytes()
        if file.suffix == ".gz":
            data = gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataIntegrityError(
            f"{file} is not a valid gzip file ({error}). Fix: {fix}."
        ) from error
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(data) < header:
        raise DataIntegrityError(
            f"{file} is truncated: {len(data)} bytes, shorter than its {header}-byte IDX header. "
            f"Fix: {fix}."
        )
    fields = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if int(fields[0]) != magic:
        raise DataIntegrityError(
            f"{file} is not an IDX {'image' if ndim == 3 else 'label'} file: magic number "
            f"{int(fields[0]):#010x}, expected {magic:#010x}. Fix: {fix}."
        )
    shape = tuple(int(size) for size in fields[1:])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise DataIntegrityError(
            f"{file} is {what}: its header announces shape {shape}, i.e. {expected} bytes, "
            f"but it holds {len(data)} bytes. Fix: {fix}."
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DataIntegrityError(
            f"{file} failed its checksum: SHA-256 of the decompressed content expected "
            f"{sha256}, received {digest}. Fix: {fix}."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    # bytes are immutable; users expect arrays they can modify in place, as Keras gives.
    return array if array.flags.writeable else array.copy()


def _download(spec: _Spec, target: Path) -> None:
    """Fetch the missing ``.gz`` files into ``target``, each verified before it is put in place.

    Each file is streamed into a temporary file in ``target`` and ``os.replace``d onto its final
    name only once complete and verified: a crash or a bad download never leaves a partial file.
    """
    created = [folder for folder in (target, *target.parents) if not folder.exists()]
    target.mkdir(parents=True, exist_ok=True)
    try:
        for name in _FILES:
            if (target / name).exists() or (target / f"{name}.gz").exists():
                continue
            url = f"{spec.url}{name}.gz"
            try:
                _fetch(url, target / f"{name}.gz", spec.sha256[name])
            except (OSError, http.client.HTTPException) as error:
                raise OSError(f"{url}: {type(error).__name__}: {error}") from error
    except BaseException:
        # Leave the disk as it was: remove the folders made here if nothing was put in them.
        with contextlib.suppress(OSError):
            for folder in created:
                folder.rmdir()
        raise


def _fetch(url: str, final: Path, sha256: str) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        try:
            digest = hashlib.sha256(gzip.decompress(Path(temporary).read_bytes())).hexdigest()
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            digest = f"no valid gzip content ({error})"
        if digest != sha256:
            raise DataIntegrityError(
                f"{url} sent a corrupt {final.name}: SHA-256 of the decompressed content "
                f"expected {sha256}, received {digest}; nothing was saved"
            )
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
