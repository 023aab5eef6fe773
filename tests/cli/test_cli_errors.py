"""Every error of the ``lamina`` command is one line on stderr and exit status 2, never a
traceback (issue 12): bad configs, model files and images, as a careless or hostile user
gives them.

Most cases run in-process through ``lamina.cli.main`` (fast); those that could hang (FIFOs,
devices) or allocate without bound if a check regressed run in a subprocess with a timeout
and a memory cap. Every case also checks that the error is a deliberate one: the last-resort
message ("run with --debug ...") means lamina did not check that input.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import lamina as lm
from lamina import cli
from lamina.config import ConfigFileError

L = lm.layers


# --------------------------------------------------------------------------- helpers
def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv: str | Path, timeout: float = 60) -> tuple[int, str, str]:
    """``python -m lamina`` in a child capped at 3 GiB of address space, so that a check
    that regressed fails with MemoryError instead of exhausting the machine."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "lamina", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap_memory,
    )
    return result.returncode, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, words: list[str]) -> str:
    """Exit status 2, exactly one line on stderr, a deliberate error holding ``words``."""
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("lamina: error: "), line
    assert "Traceback" not in err
    assert "--debug" not in line, f"an unchecked input reached the last resort: {line}"
    for word in words:
        assert word in line, (word, line)
    return line


# --------------------------------------------------------------------------- bad configs
def config_text(
    data: str = 'dataset = "spiral"\nsamples = 20',
    model: str = "",
    compile: str = "",
    train: str = "",
    extra: str = "",
) -> str:
    return f"""[data]
{data}

[model]
{model}

[[layers]]
type = "dense"
n_inputs = 2
n_neurons = 3
activation = "softmax"

[compile]
loss = "categorical_crossentropy"
{compile}

[train]
{train}

{extra}
"""


def checkpoint(path: str, kind: str = "model_checkpoint") -> str:
    return f'[[callbacks]]\ntype = "{kind}"\npath = {json.dumps(path)}\n'


# name: (config_text arguments, words the error line holds, text on the line it names)
CONFIG_CASES: dict[str, tuple[dict[str, str], list[str], str | None]] = {
    "unknown key": (
        {"extra": '[optimizer]\ntype = "adam"\nlearnin_rate = 0.1'},
        ["unknown key `learnin_rate`", "did you mean `learning_rate`"],
        "learnin_rate",
    ),
    "unknown table": ({"extra": "[trainer]\nepochs = 3"}, ["unknown table [trainer]"], None),
    "not TOML": ({"extra": "[compile"}, ["not valid TOML"], None),
    "unknown dataset": ({"data": 'dataset = "spirals"'}, ["unknown dataset"], "dataset ="),
    "unknown layer": (
        {"extra": '[[layers]]\ntype = "dense2"'},
        ["unknown type 'dense2'"],
        '"dense2"',
    ),
    "optimizer wrong type": (
        {"extra": '[optimizer]\ntype = "adam"\nlearning_rate = "fast"'},
        ["learning_rate", "fast"],
        None,
    ),
    "unknown callback": (
        {"extra": '[[callbacks]]\ntype = "early_stoping"'},
        ["unknown type 'early_stoping'"],
        "early_stoping",
    ),
    "dtype float33": ({"model": 'dtype = "float33"'}, ["`dtype`", '"float33"'], "dtype ="),
    "dtype a number": ({"model": "dtype = 32"}, ["`dtype`", "32"], "dtype ="),
    "model seed negative": ({"model": "seed = -1"}, ["`seed`", "-1"], "seed ="),
    "model seed bool": ({"model": "seed = true"}, ["`seed`", "true"], "seed ="),
    "model seed float": ({"model": "seed = 1.5"}, ["`seed`", "1.5"], "seed ="),
    "metrics not a list": ({"compile": 'metrics = "accuracy"'}, ["`metrics`"], "metrics ="),
    "epochs 0": ({"train": "epochs = 0"}, ["`epochs`", "integer >= 1"], "epochs ="),
    "epochs string": ({"train": 'epochs = "10"'}, ["`epochs`", '"10"'], "epochs ="),
    "epochs float": ({"train": "epochs = 2.5"}, ["`epochs`", "2.5"], "epochs ="),
    "batch_size 0": ({"train": "batch_size = 0"}, ["`batch_size`"], "batch_size ="),
    "batch_size bool": ({"train": "batch_size = true"}, ["`batch_size`"], "batch_size ="),
    "validation_split 1": (
        {"train": "validation_split = 1.0"},
        ["`validation_split`", "[0, 1)"],
        "validation_split =",
    ),
    "validation_split negative": (
        {"train": "validation_split = -0.1"},
        ["`validation_split`"],
        "validation_split =",
    ),
    "validation_split string": (
        {"train": 'validation_split = "0.2"'},
        ["`validation_split`"],
        "validation_split =",
    ),
    "validation_split nan": (
        {"train": "validation_split = nan"},
        ["`validation_split`"],
        "validation_split =",
    ),
    "shuffle string": ({"train": 'shuffle = "no"'}, ["`shuffle`", '"no"'], "shuffle ="),
    "shuffle int": ({"train": "shuffle = 1"}, ["`shuffle`"], "shuffle ="),
    "verbose 3": ({"train": "verbose = 3"}, ["`verbose`", "0, 1 or 2"], "verbose ="),
    "verbose bool": ({"train": "verbose = true"}, ["`verbose`"], "verbose ="),
    "samples 2e9": (
        {"data": 'dataset = "spiral"\nsamples = 2e9'},
        ["`samples`", "2000000000.0"],
        "samples =",
    ),
    "samples too many": (
        {"data": 'dataset = "spiral"\nsamples = 2000000000'},
        ["`samples`", "at most 10,000,000"],
        "samples =",
    ),
    "samples × classes too many": (
        {"data": 'dataset = "vertical"\nsamples = 4000000\nclasses = 3'},
        ["`samples`", "12,000,000 rows"],
        "samples =",
    ),
    "samples 0": ({"data": 'dataset = "sine"\nsamples = 0'}, ["`samples`"], "samples ="),
    "samples bool": ({"data": 'dataset = "sine"\nsamples = true'}, ["`samples`"], "samples ="),
    "classes 0": ({"data": 'dataset = "spiral"\nclasses = 0'}, ["`classes`"], "classes ="),
    "classes float": (
        {"data": 'dataset = "spiral"\nclasses = 2.0'},
        ["`classes`", "2.0"],
        "classes =",
    ),
    "spiral seed -1": (
        {"data": 'dataset = "spiral"\nseed = -1'},
        ["`seed`", "-1", "non-negative"],
        "seed =",
    ),
    "vertical seed -1": ({"data": 'dataset = "vertical"\nseed = -1'}, ["`seed`"], "seed ="),
    "spiral seed string": ({"data": 'dataset = "spiral"\nseed = "0"'}, ["`seed`"], "seed ="),
    "noise negative": ({"data": 'dataset = "spiral"\nnoise = -1'}, ["`noise`"], "noise ="),
    "noise nan": ({"data": 'dataset = "spiral"\nnoise = nan'}, ["`noise`", "finite"], "noise ="),
    "noise inf": ({"data": 'dataset = "spiral"\nnoise = inf'}, ["`noise`"], "noise ="),
    "noise string": ({"data": 'dataset = "spiral"\nnoise = "0.2"'}, ["`noise`"], "noise ="),
    "image size one number": (
        {"data": 'dataset = "image_folder"\npath = "x"\nsize = [28]'},
        ["`size`", "[28]"],
        "size =",
    ),
    "image size zero": (
        {"data": 'dataset = "image_folder"\npath = "x"\nsize = [0, 28]'},
        ["`size`"],
        "size =",
    ),
    "image size string": (
        {"data": 'dataset = "image_folder"\npath = "x"\nsize = "28x28"'},
        ["`size`"],
        "size =",
    ),
    "image size huge": (
        {"data": 'dataset = "image_folder"\npath = "x"\nsize = [100000, 100000]'},
        ["`size`", "pixels"],
        "size =",
    ),
    "grayscale string": (
        {"data": 'dataset = "image_folder"\npath = "x"\ngrayscale = "yes"'},
        ["`grayscale`"],
        "grayscale =",
    ),
    "path a number": (
        {"data": 'dataset = "image_folder"\npath = 3'},
        ["`path`"],
        "path =",
    ),
    "image folder without path": (
        {"data": 'dataset = "image_folder"'},
        ["missing key `path`"],
        "[data]",
    ),
    "csv delimiter two characters": (
        {"data": 'dataset = "csv"\npath = "d.csv"\ntarget = "y"\ndelimiter = ";;"'},
        ["`delimiter`", "one character"],
        "delimiter =",
    ),
    "csv without target": (
        {"data": 'dataset = "csv"\npath = "d.csv"'},
        ["missing key `target`"],
        "[data]",
    ),
    "csv limit 0": (
        {"data": 'dataset = "csv"\npath = "d.csv"\ntarget = "y"\nlimit = 0'},
        ["`limit`"],
        "limit =",
    ),
    "fashion limit float": (
        {"data": 'dataset = "fashion_mnist"\nlimit = 1.5'},
        ["`limit`", "1.5"],
        "limit =",
    ),
    "checkpoint absolute": (
        {"extra": checkpoint("/tmp/lamina-x.lamina")},
        ["is absolute", "--out"],
        "path =",
    ),
    "checkpoint escapes with ..": (
        {"extra": checkpoint("../../x.lamina")},
        ["leaves the --out folder", "Fix:"],
        "path =",
    ),
    "checkpoint escapes deeper": (
        {"extra": checkpoint("a/../../x.lamina")},
        ["leaves the --out folder"],
        "path =",
    ),
    "checkpoint path a number": (
        {"extra": '[[callbacks]]\ntype = "model_checkpoint"\npath = 3'},
        ["`path`"],
        "path =",
    ),
    "csv logger escapes": (
        {"extra": checkpoint("../history.csv", kind="csv_logger")},
        ["leaves the --out folder"],
        "path =",
    ),
    "template not closed": (
        {"extra": checkpoint("ckpt-{epoch")},
        ["not a valid template", "{epoch}"],
        "path =",
    ),
    "template unknown field": (
        {"extra": checkpoint("ckpt-{los}.lamina")},
        ["{los}", "does not log", "{loss}", "{accuracy}"],
        "path =",
    ),
    "template val_ field without validation": (
        {"extra": checkpoint("ckpt-{val_loss:.3f}.lamina")},
        ["{val_loss}", "validation_split"],
        "path =",
    ),
    "template attribute": (
        {"extra": checkpoint("ckpt-{epoch.__class__}.lamina")},
        ["{epoch.__class__}"],
        "path =",
    ),
    "template positional field": ({"extra": checkpoint("ckpt-{}.lamina")}, ["{}"], "path ="),
    "template bad format spec": (
        {"extra": checkpoint("ckpt-{loss:d}.lamina")},
        ["cannot be formatted"],
        "path =",
    ),
    "monitor not logged": (
        {"extra": '[[callbacks]]\ntype = "early_stopping"\nmonitor = "val_accuracy"'},
        ["val_accuracy", "validation_split"],
        "monitor =",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_one_line_naming_file_and_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments, words, at = CONFIG_CASES[case]
    text = config_text(**arguments)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "out", "--verbose", "0")
    line = assert_one_line_error(code, err, words)
    assert f"{path}:" in line
    if at is not None:
        number = next(i for i, row in enumerate(text.splitlines(), 1) if at in row)
        assert f"bad.toml:{number}: " in line, line
    assert not (tmp_path / "out" / "model.lamina").exists()


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.toml"
    path.write_text(config_text())
    out = write(tmp_path / "model.lamina", b"a model the user wanted to keep")
    code, _, err = run_cli(capsys, "train", path, "--out", out)
    assert_one_line_error(code, err, [f"--out {out} is a file", "Fix: pass a folder"])
    assert out.read_bytes() == b"a model the user wanted to keep"


def test_the_base_config_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The cases above fail because of what each changes, not because of the base."""
    path = tmp_path / "good.toml"
    path.write_text(
        config_text(
            train="epochs = 2\nvalidation_split = 0.25\nshuffle = false\nverbose = 0",
            extra=checkpoint("ckpt/{epoch:02d}-{val_loss:.3f}-{accuracy:.2f}.lamina"),
        )
    )
    code, out, err = run_cli(capsys, "train", path, "--out", tmp_path / "out")
    assert code == 0, err
    assert "trained 2 epoch(s)" in out
    saved = sorted(p.name for p in (tmp_path / "out" / "ckpt").iterdir())
    assert len(saved) == 2 and saved[0].startswith("01-")
    assert (tmp_path / "out" / "model.lamina").exists()


def write_deep(path: Path, opening: str, closing: str, depth: int = 50_000) -> Path:
    path.write_text(f"[data]\nx = {opening * depth}1{closing * depth}\n")
    return path


def huge_sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as file:
        file.truncate(size)  # sparse: costs no disk space
    return path


CONFIG_FILES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "deep arrays": (lambda tmp: write_deep(tmp / "deep.toml", "[", "]"), ["nested too deeply"]),
    "deep inline tables": (
        lambda tmp: write_deep(tmp / "deep.toml", "{a = ", "}"),
        ["nested too deeply"],
    ),
    "a directory": (lambda tmp: tmp, ["is a directory", "regular file"]),
    "missing": (lambda tmp: tmp / "missing.toml", ["missing.toml", "Fix: check the path"]),
    "not UTF-8": (
        lambda tmp: (tmp / "latin1.toml", (tmp / "latin1.toml").write_bytes(b"# \xe9t\xe9\n"))[0],
        ["not UTF-8"],
    ),
    "a 3 GiB sparse file": (
        lambda tmp: huge_sparse(tmp / "huge.toml", 3 << 30),
        ["3,221,225,472 bytes", "more than a config file may"],
    ),
    "a 2 MiB file": (
        lambda tmp: (tmp / "big.toml", (tmp / "big.toml").write_text("# x\n" * (1 << 19)))[0],
        ["more than a config file may"],
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_FILES))
def test_unreadable_config_file_is_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, words = CONFIG_FILES[case]
    path = make(tmp_path)
    code, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "out")
    assert_one_line_error(code, err, [*words, str(path)])


def test_fifo_and_device_configs_neither_hang_nor_crash(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), (Path("/dev/zero"), "character device")):
        code, _, err = run_process("train", path, "--out", tmp_path / "out")
        assert_one_line_error(code, err, [str(path), kind, "regular file"])


# --------------------------------------------------------------------------- model files
def save_models(folder: Path) -> dict[str, Path]:
    """A spiral model that records its data, and an image model, both saved."""
    X, y = lm.datasets.spiral(20, 3, seed=0)
    spiral = lm.Model([L.Dense(2, 3, activation="softmax")], seed=0)
    spiral.compile(loss="categorical_crossentropy")
    spiral.fit(X, y, epochs=1, verbose=0)
    spiral.metadata.update(
        {
            "class_names": ["0", "1", "2"],
            "input_shape": [2],
            "data": {"dataset": "spiral", "samples": 20, "seed": 0},
        }
    )
    images = lm.Model([L.Flatten(), L.Dense(28 * 28, 3, activation="softmax")], seed=0)
    images.compile(loss="categorical_crossentropy")
    images.metadata.update({"class_names": ["cat", "dog", "owl"], "input_shape": [28, 28, 1]})
    paths = {"spiral": folder / "spiral.lamina", "images": folder / "images.lamina"}
    spiral.save(paths["spiral"])
    images.save(paths["images"])
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_models(tmp_path_factory.mktemp("models"))


def with_config(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    """A .lamina file's bytes with its config.json changed, members otherwise as saved."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        members = {info.filename: archive.read(info) for info in infos}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in infos:
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = info.compress_type
            archive.writestr(entry, members[info.filename])
    return buffer.getvalue()


def a_png(folder: Path) -> Path:
    path = folder / "ok.png"
    Image.new("L", (28, 28), 128).save(path)
    return path


# name: (command, how to make the model file from a valid one, words of the error)
MODEL_FILES: dict[str, tuple[str, Callable[[Path, bytes], Path], list[str]]] = {
    "text file": ("info", lambda tmp, _: write(tmp / "m.lamina", b"hello, world"), []),
    "empty file": ("predict", lambda tmp, _: write(tmp / "m.lamina", b""), []),
    "truncated": ("evaluate", lambda tmp, valid: write(tmp / "m.lamina", valid[:300]), []),
    "half a file": ("export", lambda tmp, valid: write(tmp / "m.lamina", valid[:-40]), []),
    "a directory": ("info", lambda tmp, _: make_dir(tmp / "m.lamina"), ["regular file"]),
    "missing": ("evaluate", lambda tmp, _: tmp / "m.lamina", []),
    "a zip of something else": (
        "info",
        lambda tmp, _: write(tmp / "m.lamina", zip_bytes({"notes.txt": b"hi"})),
        [],
    ),
}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_dir(path: Path) -> Path:
    path.mkdir()
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def command_line(command: str, model: Path, tmp_path: Path) -> list[str | Path]:
    if command == "predict":
        return ["predict", model, a_png(tmp_path)]
    if command == "export":
        return ["export", model, "--onnx", tmp_path / "m.onnx"]
    if command == "evaluate":
        return ["evaluate", model, "--out", tmp_path]
    return [command, model]


@pytest.mark.parametrize("case", list(MODEL_FILES))
def test_bad_model_file_is_one_line(
    case: str, tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    command, make, words = MODEL_FILES[case]
    path = make(tmp_path, models["spiral"].read_bytes())
    code, _, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_one_line_error(code, err, [*words, str(path)])


@pytest.mark.parametrize("command", ["info", "predict", "evaluate", "export"])
def test_fifo_device_and_sparse_model_files_neither_hang_nor_crash(
    command: str, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.lamina"
    os.mkfifo(fifo)
    sparse = huge_sparse(tmp_path / "sparse.lamina", 6 << 30)
    for path in (fifo, Path("/dev/zero"), sparse):
        code, _, err = run_process(*command_line(command, path, tmp_path))
        words = ["bytes"] if path == sparse else ["regular file"]
        assert_one_line_error(code, err, [str(path), *words])


# name: (command, model, change to config.json, words of the error)
HOSTILE_METADATA: dict[str, tuple[str, str, Callable[[dict[str, Any]], object], list[str]]] = {
    "input_shape of strings (info)": (
        "info",
        "images",
        lambda c: c["metadata"].__setitem__("input_shape", ["a", "b", 1]),
        ["input_shape"],
    ),
    "input_shape of strings (predict)": (
        "predict",
        "images",
        lambda c: c["metadata"].__setitem__("input_shape", ["a", "b", 1]),
        ["input_shape"],
    ),
    "huge input_shape (info)": (
        "info",
        "images",
        lambda c: c["metadata"].__setitem__("input_shape", [100_000, 100_000, 1]),
        ["input_shape"],
    ),
    "huge input_shape (predict)": (
        "predict",
        "images",
        lambda c: c["metadata"].__setitem__("input_shape", [100_000, 100_000, 1]),
        ["input_shape"],
    ),
    "fewer class_names than outputs (predict)": (
        "predict",
        "images",
        lambda c: c["metadata"].__setitem__("class_names", ["cat"]),
        ["class_names"],
    ),
    "fewer class_names than outputs (evaluate)": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"].__setitem__("class_names", ["0", "1"]),
        ["class_names"],
    ),
    "data record not a table": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"].__setitem__("data", "spiral"),
        ["data"],
    ),
    "data record of an unknown dataset": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"].__setitem__("data", {"dataset": "nope"}),
        ["[data]", "unknown dataset"],
    ),
    "data record with a negative seed": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"]["data"].__setitem__("seed", -1),
        ["[data]", "`seed`"],
    ),
    "data record with 2e9 samples": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"]["data"].__setitem__("samples", 2e9),
        ["[data]", "`samples`"],
    ),
    "data record with an unknown key": (
        "evaluate",
        "spiral",
        lambda c: c["metadata"]["data"].__setitem__("exec", "rm -rf /"),
        ["[data]", "unknown key `exec`"],
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_METADATA))
def test_hostile_metadata_is_one_line_naming_the_model_file(
    case: str, tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    command, which, change, words = HOSTILE_METADATA[case]
    path = write(tmp_path / "hostile.lamina", with_config(models[which].read_bytes(), change))
    code, _, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_one_line_error(code, err, [*words, str(path)])


RED = "\x1b[31mred\x1b[0m"


def test_control_characters_in_class_names_are_escaped(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def hostile(config: dict[str, Any]) -> None:
        config["metadata"]["class_names"] = [RED, f"dog{RED}", "owl\u202e"]

    path = write(tmp_path / "ansi.lamina", with_config(models["images"].read_bytes(), hostile))
    for argv in (["info", path], ["predict", path, a_png(tmp_path)]):
        code, out, err = run_cli(capsys, *argv)
        assert code in (0, 2), err  # the loader may refuse such names; never print them raw
        assert "\x1b" not in out + err and "\u202e" not in out + err
        if code == 2:
            assert_one_line_error(code, err, [str(path)])


def test_text_from_a_model_is_printed_with_controls_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever a loader lets through, info, predict and evaluate escape what they print:
    layer names, class names, history keys."""
    X, y = lm.datasets.spiral(10, 3, seed=0)
    model = lm.Model([L.Dense(2, 3, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy")
    model.fit(X, y, epochs=1, verbose=0)
    model.layers[0].name = f"dense{RED}"
    assert model.history is not None
    model.history.history[f"loss{RED}"] = [0.5]
    model.metadata.update(
        {
            "class_names": [RED, "b", "c\u202e"],
            "input_shape": [2],
            "feature_names": ["x", "y"],
            "data": {"dataset": "spiral", "samples": 10, "seed": 0},
        }
    )
    monkeypatch.setattr(lm, "load_model", lambda path: model)
    table = tmp_path / "rows.csv"
    table.write_text("x,y\n0.1,0.2\n")
    for argv in (
        ["info", "m.lamina"],
        ["predict", "m.lamina", table],
        ["evaluate", "m.lamina", "--out", tmp_path],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert "\x1b" not in out + err and "\u202e" not in out + err, out
        assert "\\x1b[31m" in out, out


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert cli.printable("T-shirt/top é 猫") == "T-shirt/top é 猫"
    assert cli.printable("a\x1b[2Jb\nc\u202ed\x9b") == "a\\x1b[2Jb\\x0ac\\u202ed\\x9b"


# --------------------------------------------------------------------------- bad images
def bomb(folder: Path, side: int) -> Path:
    path = folder / f"bomb-{side}.png"
    Image.new("1", (side, side)).save(path)  # a few kB that declare side² pixels
    return path


def truncated_png(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, "PNG")
    return write(folder / "truncated.png", buffer.getvalue()[:400])


IMAGES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "a 225-megapixel bomb": (lambda tmp: bomb(tmp, 15_000), ["225,000,000 pixels", "40,000,000"]),
    "a 100-megapixel bomb": (lambda tmp: bomb(tmp, 10_000), ["10000×10000", "40,000,000"]),
    "a 49-megapixel image": (lambda tmp: bomb(tmp, 7_000), ["7000×7000", "40,000,000"]),
    "truncated": (truncated_png, ["cannot be read as an image"]),
    "a text file named .png": (
        lambda tmp: write(tmp / "notes.png", b"just some text\n"),
        ["cannot be read as an image"],
    ),
    "a directory named .png": (lambda tmp: make_dir(tmp / "folder.png"), ["regular file"]),
    "missing": (lambda tmp: tmp / "missing.png", ["Fix: check the path"]),
    "not an image suffix": (lambda tmp: write(tmp / "x.txt", b"hi"), ["expected an image"]),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_bad_image_for_predict_is_one_line(
    case: str, tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    make, words = IMAGES[case]
    path = make(tmp_path)
    code, _, err = run_cli(capsys, "predict", models["images"], path)
    assert_one_line_error(code, err, [*words, str(path)])


def test_image_for_a_model_that_takes_no_images(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "predict", models["spiral"], a_png(tmp_path))
    assert_one_line_error(code, err, ["shape [2]", "not images"])


def test_fifo_and_device_images_neither_hang_nor_crash(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    device = tmp_path / "zero.png"
    device.symlink_to("/dev/zero")
    for path in (fifo, device):
        code, _, err = run_process("predict", models["images"], path)
        assert_one_line_error(code, err, [str(path), "regular file"])


# --------------------------------------------------------------------------- arguments
ARGUMENTS: dict[str, tuple[list[str], list[str]]] = {
    "no command": ([], ["required"]),
    "unknown command": (["trian"], ["invalid choice"]),
    "train without config": (["train"], ["config"]),
    "epochs not a number": (["train", "x.toml", "--epochs", "ten"], ["--epochs", "'ten'"]),
    "epochs 0": (["train", "x.toml", "--epochs", "0"], ["--epochs", "integer >= 1"]),
    "negative seed": (["train", "x.toml", "--seed", "-3"], ["--seed"]),
    "top 0": (["predict", "m.lamina", "x.png", "--top", "0"], ["--top"]),
    "one fold": (["cv", "x.toml", "--folds", "1"], ["--folds", "integer >= 2"]),
}


@pytest.mark.parametrize("case", list(ARGUMENTS))
def test_bad_arguments_are_one_line(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, words = ARGUMENTS[case]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, [*words, "--help"])


# --------------------------------------------------------------------------- last resort
def raising(error: BaseException) -> Callable[[Any], int]:
    def command(args: Any) -> int:
        raise error

    return command


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (MemoryError("Unable to allocate 7.45 GiB"), ["not enough memory to describe the model"]),
        (RecursionError("maximum recursion depth exceeded"), ["nested too deeply"]),
        (ZeroDivisionError("division by zero"), ["ZeroDivisionError", "division by zero"]),
        (KeyError("loss"), ["KeyError", "'loss'"]),
        (ValueError("first line\nsecond line\n\tthird"), ["first line second line third"]),
    ],
)
def test_unexpected_errors_are_one_line_too(
    error: Exception,
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "info_command", raising(error))
    code, _, err = run_cli(capsys, "info", "m.lamina")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lamina: error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    if not isinstance(error, MemoryError):
        assert "--debug" in lines[0]  # the traceback is one flag away
    with pytest.raises(type(error)):
        cli.main(["--debug", "info", "m.lamina"])


def test_lamina_error_messages_are_joined_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "Fashion-MNIST not found. Looked in:\n  - a\n  - b\nFix: \x1b[31mput the files"
    monkeypatch.setattr(cli, "info_command", raising(lm.errors.DataNotFoundError(message)))
    code, _, err = run_cli(capsys, "info", "m.lamina")
    line = assert_one_line_error(code, err, ["Looked in: - a - b Fix:"])
    assert "\\x1b[31m" in line


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "info_command", raising(KeyboardInterrupt()))
    code, _, err = run_cli(capsys, "info", "m.lamina")
    assert code == 130 and err == "lamina: interrupted\n"


def test_debug_shows_the_traceback_of_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config_text(train="epochs = 0"))
    with pytest.raises(ConfigFileError, match=r"bad\.toml:\d+: \[train\]"):
        cli.main(["--debug", "train", str(path)])
    code, _, err = run_process("--debug", "train", path, "--out", tmp_path / "out")
    assert code == 1 and "Traceback" in err


def test_at_least_fifty_bad_inputs_are_covered() -> None:
    cases = (
        len(CONFIG_CASES)
        + len(CONFIG_FILES)
        + 2  # FIFO and /dev/zero configs
        + len(MODEL_FILES)
        + 4 * 3  # FIFO, device and sparse model files, per command
        + len(HOSTILE_METADATA)
        + len(IMAGES)
        + 2  # FIFO and /dev/zero images
        + len(ARGUMENTS)
    )
    assert cases >= 50


# --------------------------------------------------------------------------- divergence
def test_a_diverged_run_exits_1_and_keeps_the_previous_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    previous = save_models(tmp_path)["spiral"].read_bytes()
    (out / "model.lamina").write_bytes(previous)
    path = tmp_path / "diverge.toml"
    path.write_text(
        config_text(
            train="epochs = 3\nverbose = 0",
            extra='[optimizer]\ntype = "sgd"\nlearning_rate = 1e300',
        )
    )
    code, _, err = run_cli(capsys, "train", path, "--out", out)
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    expected = r"lamina: error: training diverged: .+; .*model\.lamina was not written\. Fix:"
    assert re.match(expected, lines[0]), lines[0]
    kept = hashlib.sha256((out / "model.lamina").read_bytes()).hexdigest()
    assert kept == hashlib.sha256(previous).hexdigest()
