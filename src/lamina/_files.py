"""Reading and writing files safely: what every loader and saver of lamina goes through.

Reading (:func:`open_regular`, :func:`read_regular`) accepts only regular files and refuses
one larger than the caller's limit from its size alone, before reading a byte: a FIFO, a
device such as ``/dev/zero``, a directory or a multi-GB sparse file is a clear error, not
a hang or a ``MemoryError``. The file is opened non-blocking, so even opening a FIFO that
no one writes to returns at once.

Writing (:func:`atomic_write`) goes to a temporary file beside the target, fsync'd, then
``os.replace``'d over it, so a reader sees the old file or the new one, never half of one:

- the target is what ``open()`` would write: symlinks are followed to their target (the
  link stays a link), and an existing target must be a regular file (``/dev/null`` or a
  FIFO is refused instead of being replaced by a regular file);
- the temporary name fits the file-name limit (255 bytes) whatever the target's name is;
- a writer holds an ``flock`` on its temporary file until the rename; a temporary file of
  the same target whose lock is free belongs to a writer that died (SIGKILL, SIGTERM,
  power cut) and is removed by the next write;
- errors name the target, not the temporary file, and say how to fix them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lamina.errors import FileWriteError

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so stale temporary files are left alone
    fcntl = None  # type: ignore[assignment]

PathLike = str | os.PathLike[str]
ErrorFactory = Callable[[str], Exception]

NAME_MAX = 255  # bytes in a file name on every common file system
TEMPORARY_SUFFIX = ".tmp"


# --------------------------------------------------------------------------- reading
def open_regular(path: PathLike, *, what: str, limit: int, error: ErrorFactory) -> BinaryIO:
    """``path`` opened for binary reading, after checking that it is a regular file of at
    most ``limit`` bytes; anything else raises ``error(message)`` naming the problem."""
    name = os.fspath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(name, flags)
    except FileNotFoundError:
        raise error(f"No {what} at {name!r}. Fix: check the path.") from None
    except OSError as failure:
        raise error(
            f"Cannot read the {what} {name!r}: {failure.strerror}. {_fix(failure)}"
        ) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{name!r} is {_kind(info.st_mode)}, not a regular file, so it cannot be "
                f"{_a(what)}. Fix: pass the path of {_a(what)} (copy a stream to a file first)."
            )
        if info.st_size > limit:
            raise error(
                f"{name!r} holds {info.st_size:,} bytes, more than {_a(what)} may ({limit:,}). "
                f"Fix: pass {_a(what)}; this file is too large to be one."
            )
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path: PathLike, *, what: str, limit: int, error: ErrorFactory) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, what=what, limit=limit, error=error) as file:
        try:
            data = file.read(limit + 1)
        except OSError as failure:
            raise error(
                f"Cannot read the {what} {os.fspath(path)!r}: {failure.strerror}."
            ) from None
    if len(data) > limit:  # it grew after the size check
        raise error(f"{os.fspath(path)!r} grew beyond {limit:,} bytes while being read.")
    return data


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "not a regular file")


# --------------------------------------------------------------------------- writing
def atomic_write(path: PathLike, data: bytes, *, durable: bool = True, what: str = "file") -> None:
    """Write ``data`` to ``path`` via a locked temporary file in the same folder and
    ``os.replace``: readers see the old file or the new one, never half of one.
    ``durable`` also fsyncs the file and the folder, so the new file survives a power cut.

    Raises:
        FileWriteError: the target is not a regular file, or writing failed; it names the
            target and the fix. The old file, if any, is left as it was.
    """
    target = _write_target(path, what)
    folder = target.parent
    try:
        descriptor, temporary = _locked_temporary(target)
    except OSError as failure:
        raise _write_error(target, what, failure) from None
    try:
        _remove_stale_temporaries(target, keep=temporary)
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(descriptor, os.stat(target).st_mode & 0o7777)
        with os.fdopen(descriptor, "wb", closefd=False) as file:
            file.write(data)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException as failure:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(failure, OSError) and not isinstance(failure, FileWriteError):
            raise _write_error(target, what, failure) from None
        raise
    finally:
        os.close(descriptor)  # releases the lock, after the rename
    if durable:
        with contextlib.suppress(OSError):  # make the rename itself durable
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def _write_target(path: PathLike, what: str) -> Path:
    """The file ``open(path, "w")`` would write: symlinks followed; a regular file or a
    new name, never a device, FIFO or directory."""
    requested = os.fspath(path)
    if not requested:
        raise FileWriteError(f"Cannot write {_a(what)} to an empty path. Fix: pass a file name.")
    target = Path(os.path.realpath(requested))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as failure:
        raise _write_error(Path(requested), what, failure) from None
    if not stat.S_ISREG(info.st_mode):
        shown = f"{requested} (→ {target})" if os.path.islink(requested) else requested
        raise FileWriteError(
            f"Cannot write the {what} {shown!r}: it is {_kind(info.st_mode)}, not a regular "
            f"file, and lamina never replaces one. Fix: pass the path of a file."
        )
    return target


def temporary_prefix(target: Path) -> str:
    """The start of every temporary name for ``target``: a dot, as much of its name as
    fits, and a digest of the whole name (so truncated names of two targets differ)."""
    digest = hashlib.sha256(os.fsencode(target.name)).hexdigest()[:10]
    room = NAME_MAX - len(f".~{digest}~{'0' * 16}{TEMPORARY_SUFFIX}")
    head = os.fsencode(target.name)[:room].decode("utf-8", "ignore") or "x"
    while len(os.fsencode(head)) > room:  # an undecodable name: fsencode can grow it
        head = head[:-1]
    return f".{head}~{digest}~"


def _locked_temporary(target: Path) -> tuple[int, Path]:
    """A new temporary file beside ``target``, created exclusively and locked; retried if a
    concurrent cleaner removed it before the lock was taken."""
    prefix = temporary_prefix(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(8):
        temporary = target.parent / f"{prefix}{secrets.token_hex(8)}{TEMPORARY_SUFFIX}"
        descriptor = os.open(temporary, flags, 0o666)
        if fcntl is None:
            return descriptor, temporary
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(temporary).st_ino == os.fstat(descriptor).st_ino:
                return descriptor, temporary
        os.close(descriptor)
    raise OSError(errno.EAGAIN, "could not create a temporary file")


def _remove_stale_temporaries(target: Path, keep: Path) -> None:
    """Remove the temporary files of ``target`` that no live writer holds locked."""
    if fcntl is None:
        return
    prefix = temporary_prefix(target)
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        candidates = [
            entry.name
            for entry in entries
            if entry.name.startswith(prefix)
            and entry.name.endswith(TEMPORARY_SUFFIX)
            and entry.name != keep.name
        ]
    for name in candidates:
        path = target.parent / name
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                os.unlink(path)
        except OSError:  # locked by a live writer, or already gone
            pass
        finally:
            os.close(descriptor)


def _write_error(target: Path, what: str, failure: OSError) -> FileWriteError:
    error = FileWriteError(
        f"Cannot write the {what} {str(target)!r}: {failure.strerror or failure}. {_fix(failure)}"
    )
    error.errno = failure.errno
    return error


def _fix(failure: OSError) -> str:
    fixes = {
        errno.ENOSPC: "free some disk space, or write to another disk",
        errno.EDQUOT: "free some of your disk quota, or write elsewhere",
        errno.EACCES: "check the permissions of the file and its folder",
        errno.EPERM: "check the permissions of the file and its folder",
        errno.EROFS: "write to a folder on a writable disk",
        errno.ENOENT: "create the folder first, or check the path",
        errno.ENOTDIR: "check the path: one of its folders is a file",
        errno.ENAMETOOLONG: "use a shorter file name (at most 255 bytes)",
        errno.EISDIR: "pass the path of a file, not of a folder",
        errno.ELOOP: "check the path: its symbolic links form a loop",
    }
    return f"Fix: {fixes.get(failure.errno or 0, 'check the path and the disk')}."
