"""The .lamina container: a zip of a fixed set of members, with every size
bounded before it is read.

Writing: ``config.json`` deflated, tensor members stored, fixed timestamps (the same model
gives the same bytes). Reading trusts nothing and costs at most about twice the file:

- only a regular file of at most :data:`MAX_FILE_BYTES` is read (``lamina._files``);
- the end-of-central-directory record is checked before ``zipfile`` parses anything, so a
  directory that repeats an entry 400,000 times is refused from its 22-byte summary;
- names come from :data:`MEMBERS`, each once; tensor members must be stored (their size on
  disk is their size in memory), ``config.json`` may inflate to :data:`CONFIG_LIMIT`;
- every member's CRC-32 is checked (safetensors has no checksum of its own).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import BinaryIO

from lamina._files import open_regular
from lamina.errors import ModelFileError

PathLike = str | os.PathLike[str]

MEMBERS = (
    "config.json",
    "weights.safetensors",
    "optimizer.safetensors",
    "preprocessing.safetensors",
    "target_preprocessing.safetensors",
    "history.safetensors",
    "callbacks.safetensors",
)
REQUIRED = ("config.json", "weights.safetensors")
MAX_FILE_BYTES = 2 * 1024**3  # no zip64: offsets and sizes stay below 4 GiB
CONFIG_LIMIT = 2 * 1024 * 1024  # inflated bytes of config.json
_CENTRAL_DIRECTORY_LIMIT = 64 * 1024
_END_RECORD = struct.Struct("<4s4H2LH")  # signature … comment length (22 bytes)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_archive(members: dict[str, bytes]) -> bytes:
    """The zip bytes of ``members`` (names from :data:`MEMBERS`), deterministic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = (
                zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            )
            archive.writestr(info, data)
    return buffer.getvalue()


class ArchiveReader:
    """An open .lamina file (a path, or its bytes) whose members are read one at a time,
    so that a loader holds at most the member it is working on::

        with ArchiveReader(path, where) as archive:
            config = archive.read("config.json")
    """

    def __init__(self, source: PathLike | bytes, where: str) -> None:
        self.where = where
        if isinstance(source, bytes):
            self._file: BinaryIO = io.BytesIO(source)
            size = len(source)
        else:
            self._file = open_regular(
                source, what="model file", limit=MAX_FILE_BYTES, error=ModelFileError
            )
            size = os.fstat(self._file.fileno()).st_size
        try:
            self._zip, self._infos = _open_zip(self._file, size, where)
        except BaseException:
            self._file.close()
            raise
        self._size = size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``, size-checked and CRC-checked (errors name the
        member; the loader puts the file's name in front)."""
        return _read_member(self._zip, self._infos[name], self._size)

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _open_zip(
    file: BinaryIO, size: int, where: str
) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    _check_end_record(file, size, where)
    try:
        archive = zipfile.ZipFile(file)
        infos = archive.infolist()
    except Exception as error:  # hostile bytes: zipfile may raise nearly anything
        raise ModelFileError(
            f"{where} is not a lamina model file (not a readable zip: {error}). "
            "Fix: pass a file written by Model.save."
        ) from None
    names = [info.filename for info in infos]
    unknown = sorted(set(names) - set(MEMBERS))
    if unknown or len(names) != len(set(names)):
        problem = f"unexpected entries {unknown[:5]}" if unknown else "duplicate entries"
        raise ModelFileError(f"{where} has {problem}; a lamina model holds only {MEMBERS}.")
    for required in REQUIRED:
        if required not in names:
            raise ModelFileError(f"{where} has no {required}: it is not a complete model.")
    return archive, {info.filename: info for info in infos}


def _check_end_record(file: BinaryIO, size: int, where: str) -> None:
    """Refuse a zip whose central directory is larger than a lamina model's can be, from
    the end record alone: at most ``len(MEMBERS)`` entries in at most 64 KiB."""
    tail_size = min(size, _END_RECORD.size + 0xFFFF)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or len(tail) - position < _END_RECORD.size:
        raise ModelFileError(
            f"{where} is not a lamina model file (no zip end record). "
            "Fix: pass a file written by Model.save."
        )
    fields = _END_RECORD.unpack_from(tail, position)
    entries, directory_size = fields[4], fields[5]
    zip64 = position >= 20 and tail[position - 20 : position - 16] == b"PK\x06\x07"
    if zip64 or entries > len(MEMBERS) or directory_size > _CENTRAL_DIRECTORY_LIMIT:
        raise ModelFileError(
            f"{where}: its zip directory declares {entries:,} entries in {directory_size:,} "
            f"bytes{' (zip64)' if zip64 else ''}; a lamina model has at most {len(MEMBERS)}. "
            "Fix: pass a file written by Model.save."
        )
    file.seek(0)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes:
    name = info.filename
    json = name.endswith(".json")
    limit = CONFIG_LIMIT if json else size
    allowed = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) if json else (zipfile.ZIP_STORED,)
    if info.compress_type not in allowed:
        raise ModelFileError(f"entry {name!r} uses a compression lamina never writes.")
    stored = info.compress_type == zipfile.ZIP_STORED
    if info.file_size > limit or (stored and info.file_size != info.compress_size):
        raise ModelFileError(
            f"entry {name!r} declares {info.file_size:,} bytes, more than it may "
            f"({limit:,}): a zip bomb or a corrupt file."
        )
    try:
        with archive.open(info) as stream:  # checks the CRC-32 at the end
            content = stream.read(info.file_size + 1)
    except Exception as error:  # BadZipFile, zlib.error, encryption flags, EOF...
        raise ModelFileError(
            f"entry {name!r} is corrupt ({error}). Fix: use an intact copy of the file."
        ) from None
    if len(content) != info.file_size:
        raise ModelFileError(f"entry {name!r} is truncated.")
    return content
