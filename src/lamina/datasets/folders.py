"""Class-per-folder image sets, read and written with Pillow (notes §1.9)."""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from lamina._files import atomic_write
from lamina._params import Flag, Options, Rule
from lamina.datasets.checks import ImageSize
from lamina.datasets.images import IMAGE_SUFFIXES, load_image, pillow
from lamina.errors import (
    ConfigError,
    DataIntegrityError,
    DataNotFoundError,
    InputError,
    ShapeError,
    invalid,
)

_WRITE_FORMATS = {"png": "PNG", "bmp": "BMP"}  # lossless only, so that a round trip is exact
_IGNORED_FOLDERS = frozenset({"__MACOSX"})  # resource forks left by macOS zip archives
_ON_ERROR = Rule([Options("raise", "skip")], fix='pass on_error="skip"')
_SIZE = Rule([ImageSize(), None], fix="pass size=(28, 28)")
_GRAYSCALE = Rule([Flag()], fix="pass grayscale=False for RGB")
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
    written: each file is read by :func:`load_image`, which refuses an image declaring more
    than :data:`~lamina.datasets.images.MAX_IMAGE_PIXELS` pixels before decoding it.

    Args:
        path: the folder holding one sub-folder per class.
        size: ``(height, width)`` of every image (NumPy's order, not Pillow's ``(w, h)``), at
            most ``MAX_IMAGE_PIXELS`` pixels; None keeps the files' size, which must then be
            the same for all.
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
        DataIntegrityError: a file cannot be decoded or is too large (with
            ``on_error="raise"``), or none can.
        InputError: ``path`` is a file, bad ``class_names``, or images of different sizes
            with ``size=None``.
        ConfigError: bad ``size``, ``grayscale``, ``on_error`` or ``dtype``.
    """
    on_error = _ON_ERROR.check("", "on_error", on_error)
    shape = _SIZE.check("", "size", size)
    out_dtype = _image_dtype(dtype)
    grayscale = _GRAYSCALE.check("", "grayscale", grayscale)
    pillow()
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

    channels = 1 if grayscale else 3
    images: NDArray[np.uint8] | None = None
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    for index, file in enumerate(files):
        try:
            pixels = load_image(file, grayscale=grayscale, size=shape)
        except DataIntegrityError as error:
            if on_error == "raise":
                raise DataIntegrityError(
                    f'{error} Or pass on_error="skip" to leave unreadable files out.'
                ) from error
            skipped.append((file, str(error)))
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
    Image = pillow()
    suffix, pillow_format = f".{format}", _WRITE_FORMATS[format]
    folders = {int(label): root / folder_names[label] for label in np.unique(y)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(pixels) - 1))
    written: list[Path] = []
    for index, (image, label) in enumerate(zip(pixels, y.tolist(), strict=True)):
        target = folders[label] / f"{index:0{width}d}{suffix}"
        encoded = io.BytesIO()
        Image.fromarray(image).save(encoded, format=pillow_format)
        atomic_write(target, encoded.getvalue(), durable=fsync, what="image file")
        written.append(target)
    return written


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
    return ", ".join(IMAGE_SUFFIXES)


def _image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not hidden, known suffix), sorted by name."""
    with os.scandir(folder) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            and entry.is_file()
        )
    return [folder / name for name in names]


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
