"""Hostile and broken model files (issue 12): each is refused with a ModelFileError, or loads
bit-identically, within 1 s and within 64 MiB + 2 × its size of peak memory — measured in
a subprocess by its own resident set size (the kernel's high-water mark, reset before each
file), not by tracemalloc, which misses NumPy's and zlib's buffers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from tests.saving.hostile_files import all_files, hostile_entries, special_paths, valid_model

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import json, re, sys, time
    import numpy as np
    import lamina as lm

    def status(field):
        with open("/proc/self/status") as file:
            return int(re.search(field + r":\\s+(\\d+) kB", file.read()).group(1)) * 1024

    reference, listing = sys.argv[1], sys.argv[2]
    expected = [a for _, a in lm.io.model_tensors(lm.load_model(reference)).items()]
    for path in open(listing).read().splitlines():
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")  # resets the peak resident set size (VmHWM) to the current one
        before = status("VmRSS")
        start = time.perf_counter()
        try:
            model = lm.load_model(path)
        except lm.errors.ModelFileError as error:
            outcome, message = "refused", str(error)
        except BaseException as error:
            outcome, message = "crashed", f"{type(error).__name__}: {error}"[:300]
        else:
            got = list(lm.io.model_tensors(model).values())
            same = len(got) == len(expected) and all(
                a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, expected)
            )
            outcome, message = ("identical" if same else "different"), ""
            del model
        seconds = time.perf_counter() - start
        peak = status("VmHWM") - before
        print(json.dumps({"path": path, "outcome": outcome, "message": message[:300],
                          "seconds": seconds, "peak": peak}), flush=True)
""")


def load_all(tmp_path: Path, reference: Path, paths: list[Path]) -> list[dict]:
    listing = tmp_path / "listing.txt"
    listing.write_text("\n".join(map(str, paths)))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(
        [sys.executable, str(script), str(reference), str(listing)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_hostile_file_is_refused_quickly_and_cheaply(tmp_path: Path) -> None:
    model = valid_model()
    reference = tmp_path / "valid.lamina"
    model.save(reference)
    folder = tmp_path / "files"
    folder.mkdir()
    labels: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for index, (label, data) in enumerate(all_files(model)):
        path = folder / f"{index:04d}.lamina"
        path.write_bytes(data)
        labels[str(path)], sizes[str(path)] = label, len(data)
    for label, path in special_paths(tmp_path):
        labels[str(path)], sizes[str(path)] = label, 0  # nothing of it may be read
    assert len(labels) >= 1070
    results = load_all(tmp_path, reference, [Path(p) for p in labels])
    assert len(results) == len(labels)
    identical = 0
    for result in results:
        label, size = labels[result["path"]], sizes[result["path"]]
        assert result["outcome"] in ("refused", "identical"), (label, result)
        identical += result["outcome"] == "identical"
        assert result["seconds"] < 1.0, (label, result["seconds"])
        assert result["peak"] <= 64 * 2**20 + 2 * size, (label, result["peak"], size)
    assert identical < len(results) // 2  # most corruptions are caught, not ignored
    by_label = {labels[r["path"]]: r for r in results}
    for label in (
        "8 × Dense(4096, 4096)",
        "Conv2D(1024, 1024, 16)",
        "10,000 activation layers",
        "16 MB of [{},{},…] deflated",
        "a 7.5-million-entry History",
        "a central directory repeating one entry 400,000 times",
        "/dev/zero",
        "a FIFO",
        "a 6 GB sparse file",
        "a negative second moment",
        "metadata fewer class_names than outputs",
    ):
        assert by_label[label]["outcome"] == "refused", label
    assert "not a regular file" in by_label["a FIFO"]["message"]
    assert "6,442,450,944 bytes" in by_label["a 6 GB sparse file"]["message"]
    assert (
        "declares" in by_label["8 × Dense(4096, 4096)"]["message"]
        or "does not fit" in (by_label["8 × Dense(4096, 4096)"]["message"])
    )


@pytest.fixture
def audit_events() -> list[str]:
    events: list[str] = []
    watched = (
        "os.system",
        "subprocess.Popen",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "pickle.find_class",
        "exec",
        "ctypes.dlopen",
        "os.fork",
    )

    def hook(event: str, args: tuple) -> None:
        if hook.active and event.startswith(watched):  # type: ignore[attr-defined]
            events.append(event)

    hook.active = True  # type: ignore[attr-defined]
    sys.addaudithook(hook)
    yield events
    hook.active = False  # type: ignore[attr-defined]


def test_hostile_entries_never_run_code(tmp_path: Path, audit_events: list[str]) -> None:
    from lamina.saving.model_file import encode_model

    path = tmp_path / "hostile.lamina"
    for label, data in hostile_entries(encode_model(valid_model())):
        path.write_bytes(data)
        with pytest.raises(lm.errors.ModelFileError):
            lm.load_model(path)
        assert audit_events == [], label


def test_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "model.lamina"
    with pytest.raises(lm.errors.ModelFileError, match="No model file"):
        lm.load_model(path)
    path.mkdir()
    with pytest.raises(lm.errors.ModelFileError, match="is a directory, not a regular file"):
        lm.load_model(path)
    with pytest.raises(lm.errors.ModelFileError, match="character device"):
        lm.load_model("/dev/zero")


def test_a_model_that_saves_always_loads(tmp_path: Path) -> None:
    model = valid_model()
    model.metadata["class_names"] = ["only one"]  # does not fit the 3 outputs
    with pytest.raises(lm.errors.ModelFileError, match=r"would not load back.*class_names"):
        model.save(tmp_path / "m.lamina")
    assert not list(tmp_path.iterdir())  # nothing written
    model.metadata["class_names"] = ["a", "b", "c"]
    model.layers[0].params["weights"][0, 0] = np.inf
    with pytest.raises(lm.errors.ModelFileError, match="dense/weights holds NaN or inf"):
        model.save(tmp_path / "m.lamina")
    assert not list(tmp_path.iterdir())
