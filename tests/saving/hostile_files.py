"""Hostile and broken .lamina files, built from a valid one (issue 12, "Found" 3–4).

Each builder returns ``(label, bytes)``; :func:`special_paths` adds paths that are not
regular files. The tests in ``test_hostile_files.py`` load every one in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

import lamina as lm
from lamina.saving.tensors import encode

L = lm.layers


def valid_model() -> lm.Model:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    model = lm.Model(
        [
            L.Dense(4, 16, activation="relu"),
            L.BatchNorm(16),
            L.Dropout(0.3),
            L.Dense(16, 3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-2))
    model.fit(X, rng.integers(0, 3, 64), epochs=1, verbose=0)
    model.metadata = {"class_names": ["a", "b", "c"], "input_shape": [4]}
    return model


def zip_of(members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def lamina_zip(members: dict[str, bytes]) -> bytes:
    """As lamina writes them: config.json deflated, tensors stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            deflate = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=deflate)
    return buffer.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def with_config(data: bytes, change: Callable[[dict], object]) -> bytes:
    members = members_of(data)
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    return lamina_zip(members)


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    return lamina_zip({**members_of(data), name: content})


def corruptions(valid: bytes) -> list[tuple[str, bytes]]:
    """Truncations and bit flips anywhere in the file."""
    rng = np.random.default_rng(2026)
    files = [(f"truncated at {cut}", valid[:cut]) for cut in rng.integers(0, len(valid), 400)]
    for index in range(600):
        flipped = bytearray(valid)
        for position in rng.integers(0, len(valid), 1 + index % 8):
            flipped[position] ^= 1 << int(rng.integers(0, 8))
        files.append((f"bit flips #{index}", bytes(flipped)))
    return files


def hostile_entries(valid: bytes) -> list[tuple[str, bytes]]:
    """Foreign entries, bombs, deep JSON, pickles, classes named to run code."""
    members = members_of(valid)
    files = []
    for name in [
        "../evil.py",
        "/etc/passwd",
        "weights.safetensors/../x",
        "__init__.py",
        "config.json.bak",
        "a" * 300,
    ]:
        files.append((f"extra entry {name[:20]}", zip_of({**members, name: b"print('pwned')"})))
    files += [
        ("missing weights", zip_of({"config.json": members["config.json"]})),
        ("empty zip", zip_of({})),
        (
            "config bomb",
            zip_of({**members, "config.json": b" " * (64 << 20)}, zipfile.ZIP_DEFLATED),
        ),
        (
            "weights bomb",
            zip_of({**members, "weights.safetensors": bytes(200 << 20)}, zipfile.ZIP_DEFLATED),
        ),
        ("100k-deep JSON", with_member(valid, "config.json", b"[" * 100_000 + b"]" * 100_000)),
        (
            "100k-deep object",
            with_member(valid, "config.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ),
        (
            "NaN in JSON",
            with_member(
                valid,
                "config.json",
                members["config.json"].replace(b'"learning_rate": 0.01', b'"learning_rate": NaN'),
            ),
        ),
        ("not JSON", with_member(valid, "config.json", b"\xff\xfe garbage")),
        ("pickle renamed", pickle.dumps(os.system, protocol=4)),
        (
            "pickle in a member",
            with_member(valid, "weights.safetensors", pickle.dumps({"w": np.ones(3)})),
        ),
    ]
    for target in ("os.system", "builtins.eval", "subprocess.Popen", "__import__", "dense;rm"):
        files.append(
            (
                f"class {target}",
                with_config(
                    valid, lambda c, t=target: c["model"]["layers"][0].__setitem__("class", t)
                ),
            )
        )
        files.append(
            (
                f"loss {target}",
                with_config(
                    valid, lambda c, t=target: c["compile"]["loss"].__setitem__("class", t)
                ),
            )
        )
    return files


def hostile_fields(valid: bytes) -> list[tuple[str, bytes]]:
    """Configs whose fields are of the wrong type, size or value."""

    def layer(index: int) -> Callable[[dict], dict]:
        return lambda c: c["model"]["layers"][index]["config"]

    changes: dict[str, Callable[[dict], object]] = {
        "huge Dense": lambda c: layer(0)(c).__setitem__("n_neurons", 10**12),
        "huge BatchNorm": lambda c: layer(1)(c).__setitem__("n_features", 10**9),
        "negative size": lambda c: layer(0)(c).__setitem__("n_inputs", -4),
        "string size": lambda c: layer(0)(c).__setitem__("n_inputs", "4"),
        "unknown argument": lambda c: layer(0)(c).__setitem__("exec", 1),
        "no layers": lambda c: c["model"].__setitem__("layers", []),
        "layers not a list": lambda c: c["model"].__setitem__("layers", "dense"),
        "format version 99": lambda c: c.__setitem__("format_version", 99),
        "not a lamina file": lambda c: c.__setitem__("format", "keras"),
        "bad dtype": lambda c: c["model"].__setitem__("dtype", "object"),
        "bad rng": lambda c: c["training"]["rng"].__setitem__("shuffle", {"bit_generator": "MT"}),
        "bad trainable": lambda c: c["model"].__setitem__("trainable", [1, 2]),
        "negative iterations": lambda c: c["compile"]["optimizer"].__setitem__("iterations", -1),
        "bad optimizer arg": lambda c: c["compile"]["optimizer"]["config"].__setitem__(
            "learning_rate", -1
        ),
        "huge seed": lambda c: c["model"].__setitem__("seed", 10**100),
        "ANSI escape in a layer name": lambda c: layer(0)(c).__setitem__("name", "\x1b[31mred"),
        "slash in a layer name": lambda c: layer(0)(c).__setitem__("name", "a/b"),
        "metadata input_shape of strings": lambda c: c["metadata"].__setitem__(
            "input_shape", ["a", "b", 1]
        ),
        "metadata huge input_shape": lambda c: c["metadata"].__setitem__(
            "input_shape", [100_000, 100_000, 3]
        ),
        "metadata fewer class_names than outputs": lambda c: c["metadata"].__setitem__(
            "class_names", ["a"]
        ),
        "metadata class_names not strings": lambda c: c["metadata"].__setitem__(
            "class_names", [1, 2, 3]
        ),
        "metadata bad data record": lambda c: c["metadata"].__setitem__("data", ["spiral"]),
        "metadata not a dict": lambda c: c.__setitem__("metadata", [1]),
        "epochs_done a string": lambda c: c["training"].__setitem__("epochs_done", "3"),
        "unknown callback state": lambda c: c["training"].__setitem__(
            "callbacks", [{"class": "os.system", "state": {}}]
        ),
        "version 1 with a History of strings": lambda c: (
            c.__setitem__("format_version", 1),
            c["training"].__setitem__(
                "history", {"epoch": [0], "history": {"loss": ["x"]}, "steps": {}}
            ),
        ),
    }
    return [(label, with_config(valid, change)) for label, change in changes.items()]


def amplified(valid: bytes) -> list[tuple[str, bytes]]:
    """Small files whose configs or headers would cost seconds and gigabytes if trusted."""
    members = members_of(valid)
    config = json.loads(members["config.json"])
    files = []

    def with_layers(specs: list[dict]) -> bytes:
        changed = json.loads(members["config.json"])
        changed["model"]["layers"] = specs
        changed["model"]["trainable"] = [True] * len(specs)
        state = config["training"]["rng"]["layers"][0]
        changed["training"]["rng"]["layers"] = [state] * len(specs)
        changed["metadata"] = {}
        return lamina_zip({**members, "config.json": json.dumps(changed).encode()})

    dense = [
        {"class": "dense", "config": {"name": f"dense_{i}", "n_inputs": 4096, "n_neurons": 4096}}
        for i in range(8)
    ]
    files.append(("8 × Dense(4096, 4096)", with_layers(dense)))
    conv = {"name": "conv", "in_channels": 1024, "filters": 1024, "kernel_size": 16}
    files.append(("Conv2D(1024, 1024, 16)", with_layers([{"class": "conv2d", "config": conv}])))
    for count in (5_000, 10_000):
        relus = [{"class": "relu", "config": {"name": f"relu_{i}"}} for i in range(count)]
        files.append((f"{count:,} activation layers", with_layers(relus)))
    for shape in ([100_000, 100_000], [10**12, 10**12]):
        header = json.dumps(
            {
                "dense/weights": {
                    "dtype": "F32",
                    "shape": shape,
                    "data_offsets": [0, 4 * shape[0] * shape[1]],
                }
            }
        ).encode()
        tensor = len(header).to_bytes(8, "little") + header + bytes(16)
        files.append(
            (f"header declaring {shape}", with_member(valid, "weights.safetensors", tensor))
        )
    lying = json.dumps(
        {"dense/weights": {"dtype": "F32", "shape": [4, 16], "data_offsets": [0, 16]}}
    )
    files.append(
        (
            "header whose offsets do not fit its shape",
            with_member(
                valid,
                "weights.safetensors",
                len(lying).to_bytes(8, "little") + lying.encode() + bytes(16),
            ),
        )
    )
    files.append(
        (
            "header length beyond the member",
            with_member(valid, "weights.safetensors", (10**15).to_bytes(8, "little") + b"{}"),
        )
    )
    empties = b"[" + b"{}," * (16 * 1024 * 1024 // 3) + b"{}]"
    files.append(("16 MB of [{},{},…] deflated", with_member(valid, "config.json", empties)))
    lists = b"[" + b"[]," * (1024 * 1024 // 3) + b"[]]"
    files.append(("1 MB of [[],[],…] deflated", with_member(valid, "config.json", lists)))
    v1 = json.loads(members["config.json"])
    v1["format_version"] = 1
    v1["training"]["history"] = {"epoch": [0], "history": {}, "steps": {"loss": [0.5] * 7_500_000}}
    files.append(
        (
            "version 1, a 7.5-million-entry History in JSON",
            with_member(valid, "config.json", json.dumps(v1).encode()),
        )
    )
    steps = {"epoch": np.zeros(1, np.int64), "steps/loss": np.zeros(7_500_000)}
    files.append(
        ("a 7.5-million-entry History", with_member(valid, "history.safetensors", encode(steps)))
    )
    beyond = {"epoch": np.arange(50, dtype=np.int64), "history/loss": np.zeros(50)}
    files.append(
        (
            "a History of more epochs than done",
            with_member(valid, "history.safetensors", encode(beyond)),
        )
    )
    files.append(("a central directory repeating one entry 400,000 times", repeated_entry(valid)))
    files.append(("an end record declaring 65,535 entries", end_record_claiming(valid, 65_535)))
    return files


def bad_optimizer_state(model: lm.Model) -> list[tuple[str, bytes]]:
    """Files whose optimizer slots would make the first resumed step NaN."""
    from lamina.saving.model_file import encode_model, optimizer_tensors

    valid = encode_model(model)
    slots = {name: array.copy() for name, array in optimizer_tensors(model).items()}
    files = []
    for label, name, value in (
        ("a NaN optimizer slot", next(n for n in slots if n.endswith("/momentum")), np.nan),
        ("an inf second moment", next(n for n in slots if n.endswith("/cache")), np.inf),
        ("a negative second moment", next(n for n in slots if n.endswith("/cache")), -1.0),
    ):
        changed = {**slots, name: slots[name].copy()}
        changed[name].flat[0] = value
        files.append((label, with_member(valid, "optimizer.safetensors", encode(changed))))
    weights = dict(lm.io.model_tensors(model))
    poisoned = {**weights, "dense/weights": weights["dense/weights"].copy()}
    poisoned["dense/weights"][0, 0] = np.nan
    files.append(("a NaN weight", with_member(valid, "weights.safetensors", encode(poisoned))))
    return files


def repeated_entry(valid: bytes) -> bytes:
    """The valid file with its first central-directory entry repeated 400,000 times."""
    end = valid.rfind(b"PK\x05\x06")
    fields = list(struct.unpack_from("<4s4H2LH", valid, end))
    size, offset = fields[5], fields[6]
    first = valid[offset : offset + 46 + sum(struct.unpack_from("<3H", valid, offset + 28))]
    directory = first * 400_000
    fields[3] = fields[4] = 0xFFFF
    fields[5] = len(directory)
    return (
        valid[:offset] + directory + struct.pack("<4s4H2LH", *fields) + valid[offset + size + 22 :]
    )


def end_record_claiming(valid: bytes, entries: int) -> bytes:
    end = valid.rfind(b"PK\x05\x06")
    fields = list(struct.unpack_from("<4s4H2LH", valid, end))
    fields[3] = fields[4] = entries
    return valid[:end] + struct.pack("<4s4H2LH", *fields) + valid[end + 22 :]


def all_files(model: lm.Model) -> list[tuple[str, bytes]]:
    from lamina.saving.model_file import encode_model

    valid = encode_model(model)
    assert zlib.crc32(valid)  # a real file to start from
    return (
        corruptions(valid)
        + hostile_entries(valid)
        + hostile_fields(valid)
        + amplified(valid)
        + bad_optimizer_state(model)
    )


def special_paths(folder: Path) -> list[tuple[str, Path]]:
    """Paths that are not regular files, or are too large to be a model."""
    fifo = folder / "fifo.lamina"
    os.mkfifo(fifo)
    sparse = folder / "sparse.lamina"
    with open(sparse, "wb") as file:
        file.truncate(6 * 1024**3)  # 6 GB that take no disk space
    directory = folder / "directory.lamina"
    directory.mkdir()
    to_zero = folder / "zero-link.lamina"
    to_zero.symlink_to("/dev/zero")
    loop = folder / "loop.lamina"
    loop.symlink_to(loop)
    return [
        ("/dev/zero", Path("/dev/zero")),
        ("/dev/null", Path("/dev/null")),
        ("a FIFO", fifo),
        ("a 6 GB sparse file", sparse),
        ("a directory", directory),
        ("a symlink to /dev/zero", to_zero),
        ("a symlink loop", loop),
        ("a missing file", folder / "missing.lamina"),
    ]
