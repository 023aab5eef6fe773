"""Reading only regular files, and writing atomically to what ``open()`` would write
(lamina._files; issue 12, "Found" 4–5)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lamina._files import atomic_write, read_regular, temporary_prefix
from lamina.errors import FileWriteError, InputError


def read(path: Path | str, limit: int = 1 << 20) -> bytes:
    return read_regular(path, what="test file", limit=limit, error=InputError)


def test_reading_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.perf_counter()
    with pytest.raises(InputError, match="is a FIFO"):
        read(fifo)  # no writer: a blocking open would hang here
    assert time.perf_counter() - start < 1
    with pytest.raises(InputError, match="is a directory"):
        read(tmp_path)
    with pytest.raises(InputError, match="is a character device"):
        read("/dev/zero")
    with pytest.raises(InputError, match="No test file at"):
        read(tmp_path / "missing")


def test_reading_refuses_an_over_large_file_by_its_size(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as file:
        file.truncate(6 * 1024**3)
    with pytest.raises(InputError, match="6,442,450,944 bytes, more than a test file may"):
        read(sparse)
    (tmp_path / "small").write_bytes(b"abc")
    assert read(tmp_path / "small") == b"abc"


def test_writing_follows_a_symlink_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    atomic_write(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.bin"
    dangling.symlink_to(tmp_path / "created.bin")
    atomic_write(dangling, b"made")  # as open(): the link's target is created
    assert dangling.is_symlink() and (tmp_path / "created.bin").read_bytes() == b"made"


def test_writing_never_replaces_a_device_a_fifo_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match="character device, not a regular file"):
        atomic_write("/dev/null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileWriteError, match="FIFO"):
        atomic_write(fifo, b"x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(FileWriteError, match="directory"):
        atomic_write(tmp_path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


@pytest.mark.parametrize("length", [250, 255])
def test_long_file_names_work(tmp_path: Path, length: int) -> None:
    path = tmp_path / ("m" * (length - 7) + ".lamina")
    atomic_write(path, b"data")
    assert path.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert len(os.fsencode(temporary_prefix(path))) < 255 - 16


def test_errors_name_the_target_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no" / "such" / "model.lamina"
    with pytest.raises(FileWriteError, match=r"no/such/model\.lamina.*create the folder first"):
        atomic_write(missing, b"x")
    path = tmp_path / "model.lamina"
    path.write_bytes(b"old")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(FileWriteError) as caught:
        atomic_write(path, b"new")
    message = str(caught.value)
    assert str(path) in message and ".tmp" not in message and "free some disk space" in message
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.lamina"]


def test_the_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "model.lamina"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, b"new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    descriptor = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(60)
""")


def test_stale_temporary_files_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "model.lamina"
    prefix = temporary_prefix(path)
    stale = [tmp_path / f"{prefix}{index:016x}.tmp" for index in range(3)]
    for file in stale:
        file.write_bytes(b"half a model")  # a writer killed mid-write: no lock held
    other = tmp_path / f"{temporary_prefix(tmp_path / 'other.lamina')}{0:016x}.tmp"
    other.write_bytes(b"another target's")
    live = tmp_path / f"{prefix}{'f' * 16}.tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        atomic_write(path, b"model")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(["model.lamina", other.name, live.name])
    finally:
        holder.kill()
        holder.wait()
    atomic_write(path, b"model")  # the writer is dead now: its file is stale
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.lamina", other.name])


def test_a_writer_holds_its_temporary_file_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.lamina"
    seen: list[bool] = []
    replace = os.replace

    def check_lock(source: str, target: str) -> None:
        descriptor = os.open(source, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            seen.append(True)
        finally:
            os.close(descriptor)
        replace(source, target)

    monkeypatch.setattr(os, "replace", check_lock)
    atomic_write(path, b"model")
    assert seen == [True] and path.read_bytes() == b"model"
