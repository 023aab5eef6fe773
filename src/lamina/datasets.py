"""Datasets: the notes' synthetic sets and the Fashion-MNIST / MNIST image sets (notes §1.9).

Synthetic sets (the generators of the nnfs book the notes follow) return float32 features and,
for classification, int64 labels; every random draw comes from ``np.random.default_rng(seed)``.

Image sets are read from IDX files (raw or gzip) found in, in this order (DESIGN §5):

1. the ``path`` argument, if given (and then nowhere else);
2. ``$LAMINA_DATA/<name>``;
3. ``~/.cache/lamina/<name>`` (:data:`CACHE_ROOT`);
4. ``/usr/share/datasets/<name>`` (:data:`SYSTEM_ROOT`; Debian's ``dataset-fashion-mnist``);
5. a download from the official mirror into the cache folder, if ``download=True``.

Every file's *decompressed* SHA-256 is checked before it is used. Reading never writes to disk.

Your own data: :func:`image_folder` reads a class-per-folder tree of images the way the notes
prepare them (grayscale, same pixel dimensions), :func:`to_image_folder` writes arrays as such a
tree, and :func:`load_csv` reads a table with a header row and a named target column.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import gzip
import hashlib
import http.client
import os
import re
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from lamina.errors import (
    ConfigError,
    DataIntegrityError,
    DataNotFoundError,
    InputError,
    ShapeError,
    invalid,
)

__all__ = [
    "CACHE_ROOT",
    "DOWNLOAD_TIMEOUT",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "SYSTEM_ROOT",
    "CsvData",
    "ImageFolder",
    "class_folder_name",
    "fashion_mnist",
    "image_folder",
    "load_csv",
    "load_csv_features",
    "mnist",
    "sine",
    "spiral",
    "to_image_folder",
    "vertical",
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


# --------------------------------------------------------------------------- synthetic sets


def _check_count(argument: str, value: Any, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        fix = f"pass an integer such as {argument}={example}"
        raise InputError(invalid(argument, f"an integer >= {minimum}", repr(value), fix))
    return int(value)


def spiral(
    samples: int = 100, classes: int = 3, *, noise: float = 0.2, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Interleaved spirals, one arm per class: the notes' classification data (notes §1.2–§1.7).

    For class k: r = linspace(0, 1, samples), t = linspace(4k, 4(k+1), samples) + noise·N(0, 1),
    points (r·sin(2.5t), r·cos(2.5t)). All classes are drawn at once, by broadcasting.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, class k in rows
        k*samples..(k+1)*samples-1.
    """
    samples = _check_count("samples", samples, 1, 100)
    classes = _check_count("classes", classes, 1, 3)
    if (
        isinstance(noise, bool)
        or not isinstance(noise, int | float | np.floating)
        or not (0 <= noise < np.inf)
    ):
        raise InputError(invalid("noise", "a finite float >= 0", repr(noise), "pass noise=0.2"))
    rng = np.random.default_rng(seed)
    k = np.arange(classes, dtype=np.float64)
    r = np.linspace(0.0, 1.0, samples)  # (samples,)
    t = np.linspace(4 * k, 4 * (k + 1), samples, axis=1)  # (classes, samples)
    t = t + noise * rng.standard_normal((classes, samples))
    X = np.stack([r * np.sin(2.5 * t), r * np.cos(2.5 * t)], axis=-1)  # (classes, samples, 2)
    y = np.repeat(np.arange(classes, dtype=np.int64), samples)
    return X.reshape(-1, 2).astype(np.float32), y


def vertical(
    samples: int = 100, classes: int = 3, *, seed: int | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Vertical Gaussian blobs, one per class: the notes' first optimizer example (notes §1.4).

    For class k: x = 0.1·N(0, 1) + k/3, y-coordinate = 0.1·N(0, 1) + 0.5.

    Shape:
        X (samples*classes, 2) float32, y (samples*classes,) int64, grouped by class.
    """
    samples = _check_count("samples", samples, 1, 100)
    classes = _check_count("classes", classes, 1, 3)
    rng = np.random.default_rng(seed)
    centres = np.stack([np.arange(classes) / 3, np.full(classes, 0.5)], axis=-1)  # (classes, 2)
    X = 0.1 * rng.standard_normal((classes, samples, 2)) + centres[:, None, :]
    y = np.repeat(np.arange(classes, dtype=np.int64), samples)
    return X.reshape(-1, 2).astype(np.float32), y


def sine(samples: int = 1000) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One period of a sine: the notes' regression data (notes §1.8). Deterministic.

    X = i/samples for i = 0..samples-1, y = sin(2πX).

    Shape:
        X (samples, 1) float32, y (samples, 1) float32.
    """
    samples = _check_count("samples", samples, 1, 1000)
    X = (np.arange(samples, dtype=np.float64) / samples).reshape(-1, 1)
    return X.astype(np.float32), np.sin(2 * np.pi * X).astype(np.float32)


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


# --------------------------------------------------------------------------- image folders

# Files with these suffixes (any case) are images; anything else in a folder is ignored.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The only formats Pillow may try: a file is decoded as one of these or reported as unreadable.
_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
_WRITE_FORMATS = {"png": "PNG", "bmp": "BMP"}  # lossless only, so that a round trip is exact
_IGNORED_FOLDERS = frozenset({"__MACOSX"})  # resource forks left by macOS zip archives
_ON_ERROR = ("raise", "skip")
_LAYOUT = "<path>/<class name>/<image files>"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """What :func:`image_folder` read; unpacks as ``images, labels = image_folder(path)``.

    Attributes:
        images: (N, H, W, C) NHWC pixels, C = 1 (grayscale) or 3 (RGB), values 0–255.
        labels: (N,) int64 class indices into ``class_names``.
        class_names: the class of each label, in label order.
        files: the file of each image, in the order of ``images`` and ``labels``.
        skipped: unreadable files left out (only with ``on_error="skip"``).
    """

    images: NDArray[Any]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    skipped: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return iter((self.images, self.labels))


def class_folder_name(name: str) -> str:
    """The folder name a class gets on disk: ``"T-shirt/top"`` -> ``"T-shirt_top"``.

    Path separators, ``: * ? " < > |`` and control characters become ``_``; surrounding
    whitespace and trailing dots are removed (Windows drops them); a leading ``.`` becomes ``_``
    (hidden folders are ignored by :func:`image_folder`). Names that are already valid folder
    names are returned unchanged, so applying it twice changes nothing.
    """
    if not isinstance(name, str):
        raise InputError(invalid("class name", "a str", repr(name), "pass the names as strings"))
    folder = re.sub(r"[\s.]+$", "", _UNSAFE.sub("_", name)).lstrip()
    if folder.startswith("."):
        folder = "_" + folder[1:]
    if not folder:
        raise InputError(
            invalid("class name", "a name with a letter or digit", repr(name), "rename the class")
        )
    return folder


def image_folder(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = (28, 28),
    grayscale: bool = True,
    *,
    on_error: str = "raise",
    class_names: Sequence[str] | None = None,
    dtype: DTypeLike = np.uint8,
) -> ImageFolder:
    """Read a class-per-folder tree of images with Pillow, prepared as the notes say (notes §1.9).

    The layout is ``<path>/<class name>/<image files>``: each sub-folder of ``path`` is a class,
    every PNG, JPEG, BMP, GIF (first frame) or WebP file directly in it is one sample. Each image
    is converted to ``"L"`` (grayscale, ITU-R 601-2 luma) or ``"RGB"`` by Pillow's ``convert``
    (palettes are expanded, alpha is dropped), then resized to ``size`` with Pillow's BILINEAR
    filter (antialiased when shrinking; the aspect ratio is not kept). Images already of that
    size are not resampled, so pixels written by :func:`to_image_folder` come back exactly.

    Order: classes in label order (sorted folder names, or ``class_names``' order), files sorted
    by name within a class. Hidden files and folders (``.DS_Store``, ``._x.png``), ``__MACOSX``,
    files of other types and sub-folders of class folders are ignored. Nothing on disk is
    written: each file is opened read-only and only decoded.

    Args:
        path: the folder holding one sub-folder per class.
        size: ``(height, width)`` of every image (NumPy's order, not Pillow's ``(w, h)``); None
            keeps the files' size, which must then be the same for all.
        grayscale: one channel (the notes' default) or three (RGB).
        on_error: what to do with a file that cannot be decoded: ``"raise"`` a
            DataIntegrityError, or ``"skip"`` it, list it in ``skipped`` and emit one
            RuntimeWarning at the end.
        class_names: the classes in label order; each is read from the folder
            :func:`class_folder_name` gives (the name itself for valid folder names), so the
            names given to :func:`to_image_folder` read its output back in label order. Folders
            not named are ignored. Default: every sub-folder, sorted by name.
        dtype: ``np.uint8`` (default) or a float type; floats hold the same 0–255 values,
            unscaled: scaling (notes §1.9) belongs to the preprocessing saved with the model.
    Returns:
        An :class:`ImageFolder`; ``images`` has shape (N, H, W, 1 if grayscale else 3).
    Raises:
        DataNotFoundError: ``path`` is missing, has no class folders, a class folder has no
            images, or a folder named in ``class_names`` is missing.
        DataIntegrityError: a file cannot be decoded (with ``on_error="raise"``), or none can.
        InputError: ``path`` is a file, bad ``class_names``, or images of different sizes
            with ``size=None``.
        ConfigError: bad ``size``, ``grayscale``, ``on_error`` or ``dtype``.
    """
    if on_error not in _ON_ERROR:
        raise ConfigError(
            invalid("on_error", '"raise" or "skip"', repr(on_error), 'pass on_error="skip"')
        )
    shape = _check_size(size)
    out_dtype = _image_dtype(dtype)
    if not isinstance(grayscale, bool | np.bool_):
        raise ConfigError(invalid("grayscale", "True or False", repr(grayscale)))
    Image = _pillow()
    root = Path(os.fspath(path)).expanduser()
    names, folders = _class_folders(root, class_names)
    files: list[Path] = []
    counts: list[int] = []
    for folder in folders:
        found = _image_files(folder)
        if not found:
            raise DataNotFoundError(
                f"Class folder {folder} holds no images; expected {_suffix_list()} files directly "
                "in it (other files, hidden files and sub-folders are ignored). Fix: add its "
                "images, or remove the folder (or leave it out of class_names)."
            )
        files.extend(found)
        counts.append(len(found))
    labels = np.repeat(np.arange(len(names), dtype=np.int64), counts)

    mode, channels = ("L", 1) if grayscale else ("RGB", 3)
    images: NDArray[np.uint8] | None = None
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    for index, file in enumerate(files):
        try:
            # Pillow signals a malformed file with many exception types (OSError, SyntaxError,
            # ValueError, struct.error, DecompressionBombError, ...): any of them means
            # "this file cannot be read", which on_error decides about.
            with open(file, "rb") as stream, Image.open(stream, formats=_IMAGE_FORMATS) as image:
                pixels = _decode(Image, image, mode, shape)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if on_error == "raise":
                raise DataIntegrityError(
                    f"{file} cannot be read as an image ({reason}). Fix: remove or replace the "
                    'file, or pass on_error="skip" to leave unreadable files out.'
                ) from error
            skipped.append((file, reason))
            continue
        if images is None:
            images = np.empty((len(files), *pixels.shape[:2], channels), dtype=np.uint8)
        elif pixels.shape[:2] != images.shape[1:3]:
            first = files[kept[0]]
            raise InputError(
                f"{file} is {pixels.shape[1]}×{pixels.shape[0]} pixels but {first} is "
                f"{images.shape[2]}×{images.shape[1]}: with size=None all images must have the "
                f"same size. Fix: pass size=(height, width), e.g. size={images.shape[1:3]}."
            )
        images[len(kept)] = pixels.reshape(images.shape[1:])
        kept.append(index)

    if skipped:
        listed = "; ".join(f"{file} ({reason})" for file, reason in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(
            f"image_folder skipped {len(skipped)} of {len(files)} files in {root} that cannot "
            f"be read as images: {listed}{more}. The full list is in the result's `skipped`.",
            RuntimeWarning,
            stacklevel=2,
        )
    if images is None:
        raise DataIntegrityError(
            f"None of the {len(files)} image files in {root} can be read as an image (first: "
            f"{skipped[0][0]}: {skipped[0][1]}). Fix: check that the files are PNG, JPEG, BMP, "
            "GIF or WebP images."
        )
    if skipped:  # a copy, so that the rows of the skipped files are not kept in memory
        images = images[: len(kept)].copy()
        labels = labels[kept]
    return ImageFolder(
        images=images if out_dtype == np.uint8 else images.astype(out_dtype),
        labels=labels,
        class_names=names,
        files=tuple(files[index] for index in kept),
        skipped=tuple(file for file, _ in skipped),
    )


def to_image_folder(
    images: NDArray[Any],
    labels: NDArray[Any],
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    *,
    format: str = "png",
    overwrite: bool = False,
    fsync: bool = False,
) -> list[Path]:
    """Write images as ``<path>/<class folder>/<index>.png``, the tree :func:`image_folder` reads.

    This is how the notes' images (e.g. Fashion-MNIST) become image files (notes §1.9). The class
    folder is ``class_folder_name(class_names[label])`` ("T-shirt/top" -> "T-shirt_top"), or the
    label number, zero-padded to the width of the largest label so that sorted folder names keep
    label order. ``<index>`` is the image's position in ``images``, zero-padded so that sorting
    by name keeps the array order within a class. Only classes that occur get a folder.
    Read back in label order with ``image_folder(path, class_names=class_names)`` (with no
    ``class_names``, folders are sorted by name, which is label order only for numbered ones).

    Each file is lossless (PNG, or BMP with ``format="bmp"``) and written atomically: to a hidden
    temporary file in its folder, then ``os.replace``d, so a crash never leaves a partial image
    under its final name. Files are fsync'd only with ``fsync=True`` (a disk flush per image;
    needed to survive a power cut, not a crash of the program).

    Args:
        images: uint8 (N, H, W) or (N, H, W, C) with C = 1 (grayscale) or 3 (RGB). Integer
            arrays holding 0–255 are accepted; floats are refused (their scale is ambiguous).
        labels: (N,) integer class indices.
        path: the folder to create or fill.
        class_names: the name of each label; default: the label numbers.
        format: ``"png"`` or ``"bmp"``.
        overwrite: allow writing into a folder that is not empty; files with the same names
            are replaced, nothing is deleted.
        fsync: flush each file and folder to disk before moving on.
    Returns:
        The path of each image, in the order of ``images``.
    Raises:
        InputError/ShapeError: bad images, labels or class names, or a non-empty ``path``
            without ``overwrite=True``.
        ConfigError: an unknown ``format``.
    """
    if format not in _WRITE_FORMATS:
        raise ConfigError(
            invalid(
                "format",
                f"one of {sorted(_WRITE_FORMATS)} (lossless, so the pixels come back exactly)",
                repr(format),
                'pass format="png"',
            )
        )
    pixels = _check_images(images)
    named = None if class_names is None else _folder_names(class_names)
    y = _check_labels(labels, len(pixels), None if named is None else len(named))
    if named is None:
        width = len(str(int(y.max())))
        folder_names = [f"{label:0{width}d}" for label in range(int(y.max()) + 1)]
    else:
        folder_names = named
    root = Path(os.fspath(path)).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file. Fix: pass the path of a folder to write images into.")
    if root.is_dir() and not overwrite and any(root.iterdir()):
        raise InputError(
            f"{root} is not empty; writing images into it could mix them with what is there. "
            "Fix: pass a new or empty folder, or overwrite=True to write into it (files with the "
            "same names are replaced, nothing is deleted)."
        )
    Image = _pillow()
    suffix, pillow_format = f".{format}", _WRITE_FORMATS[format]
    folders = {int(label): root / folder_names[label] for label in np.unique(y)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o666 & ~umask  # what a plain open() would give; mkstemp gives 0600
    width = len(str(len(pixels) - 1))
    written: list[Path] = []
    for index, (image, label) in enumerate(zip(pixels, y.tolist(), strict=True)):
        target = folders[label] / f"{index:0{width}d}{suffix}"
        _write_atomic(Image.fromarray(image), target, pillow_format, mode, fsync)
        written.append(target)
    if fsync:
        for folder in (*folders.values(), root):
            _fsync_folder(folder)
    return written


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            "Image folders need Pillow. Fix: pip install 'lamina[images]' (or pip install Pillow)."
        ) from error
    return Image


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    ok = (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(
            isinstance(side, int | np.integer) and not isinstance(side, bool) and side >= 1
            for side in size
        )
    )
    if not ok:
        raise ConfigError(
            invalid(
                "size",
                "(height, width), two integers >= 1, or None",
                repr(size),
                "pass size=(28, 28)",
            )
        )
    return int(size[0]), int(size[1])


def _image_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        result = np.dtype(dtype)
    except TypeError as error:
        raise ConfigError(invalid("dtype", "np.uint8 or a float type", repr(dtype))) from error
    if result != np.uint8 and result.kind != "f":
        raise ConfigError(
            invalid("dtype", "np.uint8 or a float type", repr(dtype), "pass dtype=np.float32")
        )
    return result


def _folder_names(class_names: Any) -> list[str]:
    """``class_folder_name`` of each class name; checks they are strings and stay distinct."""
    if isinstance(class_names, str) or not isinstance(class_names, Sequence | np.ndarray):
        raise InputError(
            invalid(
                "class_names",
                "a sequence of strings, one per class",
                repr(class_names),
                'pass a list such as class_names=["cat", "dog"]',
            )
        )
    if len(class_names) == 0:
        raise InputError(invalid("class_names", "at least one name", "an empty sequence"))
    folders = [class_folder_name(name) for name in class_names]
    seen: dict[str, str] = {}
    for name, folder in zip(class_names, folders, strict=True):
        if folder in seen:
            raise InputError(
                f"Invalid value for `class_names`: {seen[folder]!r} and {name!r} both map to the "
                f"folder {folder!r}. Fix: give the classes distinct names."
            )
        seen[folder] = name
    return folders


def _class_folders(
    root: Path, class_names: Sequence[str] | None
) -> tuple[tuple[str, ...], list[Path]]:
    """The class names in label order and the folder of each."""
    expected = f"expected one sub-folder of images per class ({_LAYOUT})"
    if not root.exists():
        raise DataNotFoundError(
            f"Image folder {root} does not exist; {expected}. Fix: check the path."
        )
    if not root.is_dir():
        raise InputError(
            f"{root} is a file, not a folder; {expected}. Fix: pass the folder that holds the "
            "class folders."
        )
    with os.scandir(root) as entries:
        found = sorted(
            entry.name
            for entry in entries
            if entry.is_dir()
            and not entry.name.startswith(".")
            and entry.name not in _IGNORED_FOLDERS
        )
    if class_names is None:
        if not found:
            loose = len(_image_files(root))
            hint = (
                f" It holds {loose} image files directly: move them into one folder per class."
                if loose
                else ""
            )
            raise DataNotFoundError(
                f"{root} has no class sub-folders; {expected}.{hint} Fix: create "
                f"{root}/<class name>/ folders holding the images of each class."
            )
        return tuple(found), [root / name for name in found]
    folder_names = _folder_names(class_names)
    missing = [name for name in folder_names if name not in found]
    if missing:
        raise DataNotFoundError(
            f"{root} has no folder for the classes {missing} named in class_names; it has "
            f"{found}. Fix: create {root / missing[0]}/ with its images, or pass class_names "
            "naming existing folders (or class_names=None to use them all)."
        )
    return tuple(str(name) for name in class_names), [root / name for name in folder_names]


def _suffix_list() -> str:
    return ", ".join(_IMAGE_SUFFIXES)


def _image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not hidden, known suffix), sorted by name."""
    with os.scandir(folder) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in _IMAGE_SUFFIXES
            and entry.is_file()
        )
    return [folder / name for name in names]


def _decode(Image: Any, image: Any, mode: str, shape: tuple[int, int] | None) -> NDArray[np.uint8]:
    """(H, W) or (H, W, 3) uint8 pixels of the first frame, converted and resized."""
    image = image.convert(mode)
    if shape is not None and image.size != (shape[1], shape[0]):
        image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _check_images(images: Any) -> NDArray[np.uint8]:
    """(N, H, W) or (N, H, W, 1|3) uint8 pixels, as Pillow's ``fromarray`` wants them."""
    array = np.asarray(images)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] != 3):
        raise ShapeError(
            invalid(
                "images",
                "(N, H, W) or NHWC (N, H, W, C) with C = 1 or 3",
                f"shape {array.shape}",
                "reshape flattened rows with X.reshape(-1, 28, 28)",
            )
        )
    if array.shape[0] == 0 or array.size == 0:
        raise InputError(invalid("images", "at least one non-empty image", f"shape {array.shape}"))
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "iu" and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8)
    raise InputError(
        invalid(
            "images",
            "uint8 pixels (or integers in 0..255)",
            f"dtype {array.dtype} with values in [{array.min()}, {array.max()}]",
            "convert them: (np.clip(X, 0, 1) * 255).round().astype(np.uint8) for floats in "
            "[0, 1], X.round().astype(np.uint8) for floats in [0, 255]",
        )
    )


def _check_labels(labels: Any, count: int, classes: int | None) -> NDArray[np.int64]:
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ShapeError(
            invalid(
                "labels",
                "(N,) class indices",
                f"shape {y.shape} (one-hot?)",
                "pass labels.argmax(axis=1)",
            )
        )
    if y.ndim != 1 or len(y) != count:
        raise ShapeError(
            invalid("labels", f"shape ({count},), one label per image", f"shape {y.shape}")
        )
    if y.dtype.kind not in "iu":
        raise InputError(
            invalid(
                "labels",
                "integer class indices",
                f"dtype {y.dtype}",
                "pass labels.astype(np.int64)",
            )
        )
    if y.min() < 0 or (classes is not None and y.max() >= classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        expected = "labels >= 0" if classes is None else f"labels in 0..{classes - 1}"
        fix = (
            "pass class indices counting from 0"
            if bad < 0
            else f"pass one class name per class ({bad + 1} or more names)"
        )
        received = f"label {bad} at index {int(np.argmax(y == bad))}"
        raise InputError(invalid("labels", expected, received, fix))
    return y.astype(np.int64)


def _write_atomic(image: Any, target: Path, pillow_format: str, mode: int, fsync: bool) -> None:
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=pillow_format)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can fsync a folder
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# --------------------------------------------------------------------------- CSV tables


@dataclass(frozen=True, eq=False)
class CsvData:
    """What :func:`load_csv` read; unpacks as ``X, y = load_csv(path, "target")``.

    Attributes:
        X: (N, F) features, one row per data row, columns in file order without the target.
        y: (N,) targets: floats of ``X``'s dtype for a numeric target column, int64 class
            indices into ``class_names`` for a text one.
        feature_names: the header name of each column of ``X``.
        class_names: the target's classes, sorted (``y == i`` means ``class_names[i]``);
            None for a numeric target.
    """

    X: NDArray[np.floating[Any]]
    y: NDArray[Any]
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return iter((self.X, self.y))


def load_csv(
    path: str | os.PathLike[str],
    target: str,
    *,
    delimiter: str = ",",
    dtype: DTypeLike = np.float32,
) -> CsvData:
    """Read a table with a header row: every column but ``target`` is a feature (notes §1.9).

    The file is UTF-8 text (a byte-order mark is allowed) read with the stdlib ``csv`` module;
    names and cells are stripped of surrounding whitespace. Every feature cell must be a finite
    number (``float`` syntax). The target column is either all numbers (``y`` is float, for
    regression or numeric labels: ``y.astype(np.int64)`` turns the latter into class indices) or
    all text (class names, encoded as int64 indices into the sorted ``class_names``). Rows whose
    cells are all empty are skipped, like blank lines; any other empty cell is an error, since
    lamina does not guess missing values. Errors name the file, the row as a spreadsheet numbers
    it (the header is row 1) and the column.

    Args:
        path: the CSV file.
        target: the header name of the column to predict.
        delimiter: the one character between cells, e.g. ``";"`` or ``"\\t"``.
        dtype: the float type of ``X`` (and of a numeric ``y``).
    Returns:
        A :class:`CsvData` ``(X, y, feature_names, class_names)``, unpackable as ``X, y``.
    Raises:
        DataNotFoundError: the file does not exist.
        InputError: an empty file, no such target column (the message lists the columns and
            suggests the nearest), a row with the wrong number of cells, an empty or
            non-numeric or non-finite cell, or a target column mixing numbers and text.
        ConfigError: a bad ``delimiter`` or ``dtype``.
    """
    if not isinstance(target, str) or not target.strip():
        raise InputError(invalid("target", "the name of a column", repr(target)))
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ConfigError(
            invalid(
                "delimiter",
                "one character other than a quote or newline",
                repr(delimiter),
                'pass delimiter=";" or delimiter="\\t"',
            )
        )
    float_dtype = _float_dtype(dtype)
    file = Path(os.fspath(path)).expanduser()
    rows = _read_rows(file, delimiter)
    columns = _header(file, rows, target.strip(), delimiter)
    data: list[list[str]] = []
    numbers: list[int] = []  # the spreadsheet row number of each data row
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise InputError(
                f"{file}, row {number}: {len(row)} cells, but the header has {len(columns)} "
                f"columns ({', '.join(columns)}). Fix: give every row one cell per column (quote "
                f"cells that contain the delimiter {delimiter!r})."
            )
        data.append(row)
        numbers.append(number)
    if not data:
        raise InputError(f"{file} has a header row but no data rows. Fix: add one row per sample.")

    cells = np.char.strip(np.array(data, dtype=str))
    empty = np.argwhere(np.char.str_len(cells) == 0)
    if len(empty):
        i, j = (int(index) for index in empty[0])
        raise InputError(
            f"{file}, row {numbers[i]}, column {columns[j]!r}: the cell is empty. Fix: fill "
            "it in or remove the row (lamina does not guess missing values)."
        )
    t = columns.index(target.strip())
    features = [j for j in range(len(columns)) if j != t]
    feature_names = tuple(columns[j] for j in features)
    X = _parse_numbers(file, cells[:, features], numbers, feature_names, float_dtype, delimiter)
    column = cells[:, t]
    try:
        column.astype(np.float64)
    except ValueError:
        is_number = [_is_number(cell) for cell in column.tolist()]
        if any(is_number):
            number_at, text_at = is_number.index(True), is_number.index(False)
            raise InputError(
                f"{file}, column {target!r} mixes numbers (row {numbers[number_at]}: "
                f"{str(column[number_at])!r}) and text (row {numbers[text_at]}: "
                f"{str(column[text_at])!r}). "
                "Fix: correct the cells so that the column holds only numbers (a value to "
                "predict) or only class names."
            ) from None
        names, y = np.unique(column, return_inverse=True)
        return CsvData(
            X, y.reshape(-1).astype(np.int64), feature_names, tuple(str(n) for n in names)
        )
    y_values = _parse_numbers(file, column[:, None], numbers, (target,), float_dtype, delimiter)
    return CsvData(X, y_values[:, 0], feature_names, None)


def load_csv_features(
    path: str | os.PathLike[str],
    feature_names: Sequence[str],
    *,
    delimiter: str = ",",
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """The named feature columns of a CSV file with a header row, in the given order — the
    inputs of a model trained on :func:`load_csv` data (other columns, such as the target,
    are ignored). Errors name the file, the row and the column, as for :func:`load_csv`."""
    float_dtype = _float_dtype(dtype)
    file = Path(os.fspath(path)).expanduser()
    rows = _read_rows(file, delimiter)
    if not rows:
        raise InputError(f"{file} is empty. Fix: give it a header row and one row per sample.")
    columns = [name.strip() for name in rows[0]]
    missing = [name for name in feature_names if name not in columns]
    if missing:
        raise InputError(
            f"{file} lacks the feature column(s) {missing}; its columns are {columns}. Fix: "
            "give it the columns the model was trained on."
        )
    data = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    numbers = [n for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    for number, row in zip(numbers, data, strict=True):
        if len(row) != len(columns):
            raise InputError(
                f"{file}, row {number}: {len(row)} cells, but the header has "
                f"{len(columns)} columns. Fix: give every row one cell per column."
            )
    if not data:
        raise InputError(f"{file} has a header row but no data rows. Fix: add one row per sample.")
    cells = np.char.strip(np.array(data, dtype=str))
    chosen = [columns.index(name) for name in feature_names]
    return _parse_numbers(
        file, cells[:, chosen], numbers, tuple(feature_names), float_dtype, delimiter
    )


def _float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        result = np.dtype(dtype)
    except TypeError as error:
        raise ConfigError(invalid("dtype", "a float type", repr(dtype))) from error
    if result.kind != "f":
        raise ConfigError(invalid("dtype", "a float type", repr(dtype), "pass dtype=np.float32"))
    return result


def _read_rows(file: Path, delimiter: str) -> list[list[str]]:
    if not file.exists():
        raise DataNotFoundError(f"CSV file {file} does not exist. Fix: check the path.")
    if not file.is_file():
        raise InputError(f"{file} is not a file. Fix: pass the path of a CSV file.")
    try:
        with open(file, newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream, delimiter=delimiter)
            try:
                return list(reader)
            except csv.Error as error:
                raise InputError(
                    f"{file}, line {reader.line_num}: not valid CSV ({error}). Fix: correct that "
                    "line (e.g. close its quotes)."
                ) from error
    except UnicodeDecodeError as error:
        raise InputError(
            f'{file} is not UTF-8 text ({error}). Fix: save it as UTF-8 ("CSV UTF-8" in a '
            "spreadsheet)."
        ) from error


def _header(file: Path, rows: list[list[str]], target: str, delimiter: str) -> list[str]:
    """The stripped column names of row 1, checked, with ``target`` among them."""
    expected = "expected a header row naming the columns, then one row per sample"
    if not rows:
        raise InputError(f"{file} is empty; {expected}. Fix: write the header and the data.")
    columns = [cell.strip() for cell in rows[0]]
    if not any(columns):
        raise InputError(f"{file}, row 1 is empty; {expected}. Fix: put the header in row 1.")
    for number, name in enumerate(columns, start=1):
        if not name:
            raise InputError(
                f"{file}, row 1: column {number} has no name (header: {columns}). Fix: name "
                "every column (a delimiter at the end of the header makes an empty one)."
            )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise InputError(
            f"{file}, row 1: the column names {repeated} occur more than once. Fix: give every "
            "column a distinct name."
        )
    if target not in columns:
        by_case = [name for name in columns if name.lower() == target.lower()]
        nearest = by_case or difflib.get_close_matches(target, columns, n=1, cutoff=0.5)
        other = [sep for sep in (",", ";", "\t", "|") if sep != delimiter and sep in columns[0]]
        if len(columns) == 1 and other:  # the whole header read as one name
            fix = f"the header is one column; pass delimiter={other[0]!r}"
        elif nearest:
            fix = f"did you mean {nearest[0]!r}? Pass target={nearest[0]!r}"
        else:
            fix = "pass target= one of those names"
        raise InputError(f"{file} has no column {target!r}; its columns are {columns}. Fix: {fix}.")
    if len(columns) < 2:
        raise InputError(
            f"{file} has only the target column {target!r}; expected at least one feature "
            "column besides it. Fix: add the features, or choose another target."
        )
    return columns


def _is_number(cell: str) -> bool:
    try:
        float(cell)  # the syntax NumPy's str -> float conversion accepts too
    except ValueError:
        return False
    return True


def _parse_numbers(
    file: Path,
    cells: NDArray[np.str_],
    numbers: list[int],
    names: tuple[str, ...],
    dtype: np.dtype[Any],
    delimiter: str,
) -> NDArray[Any]:
    """Convert a block of stripped cells to finite floats, or name the first bad cell."""
    try:
        values = cells.astype(np.float64)
    except ValueError:
        for i, j in np.ndindex(cells.shape):  # only to find the culprit
            cell = str(cells[i, j])
            if not _is_number(cell):
                decimal_comma = "," in cell and delimiter != ","
                hint = " (a decimal comma? write 1.5, not 1,5)" if decimal_comma else ""
                raise InputError(
                    f"{file}, row {numbers[i]}, column {names[j]!r}: {cell!r} is not a "
                    f"number{hint}. Fix: correct the cell; features must be numbers, so encode "
                    "text columns as numbers (e.g. one-hot) or drop them."
                ) from None
        raise
    with np.errstate(over="ignore"):  # overflow is reported below, naming the cell
        converted = values.astype(dtype)
    bad = np.argwhere(~np.isfinite(converted))
    if len(bad):
        i, j = (int(index) for index in bad[0])
        cell = str(cells[i, j])
        reason = (
            f"overflows {dtype}. Fix: pass dtype=np.float64 or rescale the column"
            if np.isfinite(values[i, j])
            else "is not a finite number. Fix: replace it with a value or remove the row"
        )
        raise InputError(f"{file}, row {numbers[i]}, column {names[j]!r}: {cell!r} {reason}.")
    return converted
