"""Tensor members of model files: the safetensors format (a JSON header, then raw
little-endian data), written by the safetensors library and read with every field of the
header checked before any array exists.

Reading never copies: arrays are read-only views of the bytes they came from, so a file
costs its own size once in memory, plus whatever the caller copies out of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lamina.errors import ModelFileError

Array = np.ndarray

DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
MAX_TENSORS = 100_000
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_RANK = 8


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header: dtype, shape and where its bytes are."""

    dtype: np.dtype
    shape: tuple[int, ...]
    start: int
    end: int


def encode(tensors: Mapping[str, Array], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``tensors``; every shape is kept as it is, 0-d included
    (``np.ascontiguousarray`` would make a 0-d array 1-d)."""
    from safetensors.numpy import save

    contiguous = {name: np.require(array, requirements="C") for name, array in tensors.items()}
    return bytes(save(contiguous, metadata=metadata))


def read_header(data: bytes | memoryview, where: str) -> dict[str, TensorInfo]:
    """The checked header of a safetensors buffer: known dtypes, non-negative shapes, and
    data offsets that tile the data exactly (each entry's bytes = its shape's), so no
    entry can declare more values than the buffer holds."""
    size = len(data)
    if size < 8:
        raise ModelFileError(f"{where}: truncated ({size} bytes; a header needs at least 8).")
    length = int.from_bytes(bytes(data[:8]), "little")
    if length > min(size - 8, MAX_HEADER_BYTES):
        raise ModelFileError(f"{where}: corrupt header (it declares {length:,} bytes).")
    text = bytes(data[8 : 8 + length])
    if text.count(b"[") + text.count(b"{") > 2 * MAX_TENSORS + 2:
        raise ModelFileError(f"{where}: the header is nested or repeated beyond any model's.")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        raise ModelFileError(f"{where}: the header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: the header is not a JSON object.")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise ModelFileError(f"{where}: malformed __metadata__ in the header.")
    if len(header) > MAX_TENSORS:
        raise ModelFileError(f"{where}: {len(header):,} tensors, more than {MAX_TENSORS:,}.")
    entries = {name: _entry(name, value, where) for name, value in header.items()}
    position, available = 0, size - 8 - length
    for name, info in sorted(entries.items(), key=lambda item: (item[1].start, item[1].end)):
        if info.start != position:
            raise ModelFileError(f"{where}: tensor {name!r} does not start where the last ends.")
        position = info.end
    if position != available:
        raise ModelFileError(
            f"{where}: the header describes {position:,} bytes of data, the member holds "
            f"{available:,}."
        )
    return entries


def _entry(name: str, value: object, where: str) -> TensorInfo:
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise ModelFileError(f"{where}: malformed header entry {name!r}.")
    dtype = DTYPES.get(value["dtype"]) if isinstance(value["dtype"], str) else None
    shape, offsets = value["shape"], value["data_offsets"]
    if (
        dtype is None
        or not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(type(n) is int and n >= 0 for n in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(n) is int for n in offsets)
    ):
        raise ModelFileError(f"{where}: malformed header entry {name!r}.")
    start, end = offsets
    if not 0 <= start <= end or math.prod(shape) * dtype.itemsize != end - start:
        raise ModelFileError(
            f"{where}: tensor {name!r} of shape {tuple(shape)} does not fit its data offsets."
        )
    return TensorInfo(dtype, tuple(shape), start, end)


def decode(data: bytes | memoryview, where: str) -> dict[str, Array]:
    """Every tensor of a safetensors buffer, as read-only views of ``data``."""
    header = read_header(data, where)
    base = 8 + int.from_bytes(bytes(data[:8]), "little")
    buffer = memoryview(data)
    return {
        name: np.frombuffer(
            buffer, dtype=info.dtype, count=math.prod(info.shape), offset=base + info.start
        ).reshape(info.shape)
        for name, info in header.items()
    }
