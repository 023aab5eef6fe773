"""One image file read safely with Pillow: a regular file of bounded size, a known format,
a pixel count checked from the header before anything is decoded (notes §1.9)."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lamina._files import open_regular
from lamina.errors import DataIntegrityError

# Files with these suffixes (any case) are images; anything else in a folder is ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The only formats Pillow may try: a file is decoded as one of these or reported as unreadable.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")

# An image is refused from its header when it declares more pixels than this: 40 megapixels
# (120 MB as RGB) is beyond what any model here is trained on, while a PNG of a few kB can
# declare 225 megapixels (a decompression bomb) and cost gigabytes to decode.
MAX_IMAGE_PIXELS = 40_000_000
# An image file larger than this is refused from its size, before it is read.
MAX_IMAGE_BYTES = 256 * 1024 * 1024


def pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            "Image folders need Pillow. Fix: pip install 'lamina[images]' (or pip install Pillow)."
        ) from error
    return Image


def load_image(
    path: str | os.PathLike[str],
    *,
    grayscale: bool = True,
    size: tuple[int, int] | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> NDArray[np.uint8]:
    """The pixels of one image file, read as :func:`image_folder` reads each of its files.

    The file must be a regular file of at most :data:`MAX_IMAGE_BYTES` (a FIFO or a device
    is refused without reading it) holding a PNG, JPEG, BMP, GIF (first frame) or WebP
    image that declares at most ``max_pixels`` pixels: the header is checked before a pixel
    is decoded. The image is converted to ``"L"`` or ``"RGB"`` and resized to ``size``
    (``(height, width)``) with Pillow's BILINEAR filter unless it already has that size.

    Returns:
        (H, W) uint8 pixels if ``grayscale``, else (H, W, 3).
    Raises:
        DataIntegrityError: any reason the file cannot be read as such an image; the message
            names the file.
    """
    Image = pillow()
    with open_regular(
        path, what="image file", limit=MAX_IMAGE_BYTES, error=DataIntegrityError
    ) as stream:
        try:
            with warnings.catch_warnings():
                # Pillow warns from 89 megapixels and raises from 179: the check below
                # refuses those anyway, with a message that names the file and the limit
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=IMAGE_FORMATS)
            with image:
                width, height = image.size
                if width * height > max_pixels:
                    shown = f"{width}×{height} = {width * height:,} pixels"
                    raise _too_many_pixels(path, shown, max_pixels)
                image = image.convert("L" if grayscale else "RGB")
                if size is not None and image.size != (size[1], size[0]):
                    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except DataIntegrityError:
            raise
        except Image.DecompressionBombError as error:
            # raised from the header, before this function sees the size: Pillow's message
            # holds the pixel count
            declared = re.search(r"\((\d+) pixels\)", str(error))
            shown = f"{int(declared.group(1)):,} pixels" if declared else "more pixels"
            raise _too_many_pixels(path, shown, max_pixels) from None
        except Exception as error:
            # Pillow signals a malformed file with many exception types (OSError,
            # SyntaxError, ValueError, struct.error, ...): each means "cannot be read".
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            raise DataIntegrityError(
                f"{os.fspath(path)} cannot be read as an image ({reason}). Fix: remove or "
                f"replace the file (a {', '.join(IMAGE_FORMATS)} image)."
            ) from error


def _too_many_pixels(path: str | os.PathLike[str], shown: str, limit: int) -> DataIntegrityError:
    return DataIntegrityError(
        f"{os.fspath(path)} declares an image of {shown}, more than the {limit:,} lamina "
        f"decodes (MAX_IMAGE_PIXELS; a decompression bomb?). Fix: shrink "
        "the image before passing it, e.g. to the model's input size."
    )
