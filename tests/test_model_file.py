"""The .lamina model file (DESIGN §6, notes §1.10): exact round trips, exact resumption,
crash safety, and safety against hostile files."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def bn_dropout_model(seed: int = 0) -> lm.Model:
    model = lm.Model(
        [
            L.Dense(4, 16, activation="relu"),
            L.BatchNorm(16),
            L.Dropout(0.3),
            L.Dense(16, 3, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(1e-2))
    return model


def w1_model() -> lm.Model:
    model = lm.Model(
        [
            L.Dense(784, 128, activation="relu"),
            L.Dense(128, 128, activation="relu"),
            L.Dense(128, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def w2_model() -> lm.Model:
    model = lm.Model(
        [
            L.Conv2D(1, 8, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Conv2D(8, 16, 3, activation="relu"),
            L.MaxPool2D(2),
            L.Flatten(),
            L.Dense(5 * 5 * 16, 32, activation="relu"),
            L.Dropout(0.5),
            L.Dense(32, 10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def small_data(shape: tuple[int, ...], classes: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, classes, n)


CASES: dict[str, tuple[Callable[[], lm.Model], tuple[int, ...], int]] = {
    "w1": (w1_model, (784,), 10),
    "w2": (w2_model, (28, 28, 1), 10),
    "batchnorm+dropout": (bn_dropout_model, (4,), 3),
}


def weights(model: lm.Model) -> list[np.ndarray]:
    return [
        value for layer in model.layers for value in (*layer.params.values(), *layer.state.values())
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_save_load_predict_is_bitwise_and_training_continues_identically(
    name: str, tmp_path: Path
) -> None:
    build, shape, classes = CASES[name]
    X, y = small_data(shape, classes)
    original = build()
    original.fit(X, y, epochs=2, batch_size=16, verbose=0)
    original.save(tmp_path / "model.lamina")
    loaded = lm.load_model(tmp_path / "model.lamina")
    np.testing.assert_array_equal(original.predict(X), loaded.predict(X))
    original.fit(X, y, epochs=3, batch_size=16, initial_epoch=2, verbose=0)
    loaded.fit(X, y, epochs=3, batch_size=16, initial_epoch=2, verbose=0)
    for a, b in zip(weights(original), weights(loaded), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_equals_uninterrupted_training(tmp_path: Path) -> None:
    X, y = small_data((4,), 3, n=200)
    interrupted = bn_dropout_model()
    interrupted.fit(X, y, epochs=2, batch_size=32, verbose=0)
    interrupted.save(tmp_path / "checkpoint.lamina")
    resumed = lm.load_model(tmp_path / "checkpoint.lamina")
    assert resumed.epochs_done == 2
    history = resumed.fit(X, y, epochs=4, batch_size=32, initial_epoch=2, verbose=0)
    straight = bn_dropout_model()
    expected = straight.fit(X, y, epochs=4, batch_size=32, verbose=0)
    for a, b in zip(weights(resumed), weights(straight), strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == expected.epoch == [0, 1, 2, 3]
    assert history.history == expected.history and history.steps == expected.steps


def test_the_same_model_gives_the_same_bytes(tmp_path: Path) -> None:
    X, y = small_data((4,), 3)
    model = bn_dropout_model()
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "a.lamina")
    model.save(tmp_path / "b.lamina")
    assert (tmp_path / "a.lamina").read_bytes() == (tmp_path / "b.lamina").read_bytes()


def test_unregistered_components_cannot_be_saved(tmp_path: Path) -> None:
    class MyLoss(lm.losses.MeanSquaredError):
        pass

    model = lm.Model([L.Dense(2, 1)], seed=0)
    model.compile(loss=MyLoss(), optimizer="sgd")
    with pytest.raises(lm.errors.ModelFileError, match="save_weights"):
        model.save(tmp_path / "m.lamina")
    assert not list(tmp_path.iterdir())


# -- crash safety ------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import lamina as lm
    L = lm.layers
    model = lm.Model([L.Dense(64, 256, activation="relu"), L.Dense(256, 10, activation="softmax")],
                     seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    X = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    y = np.arange(64) % 10
    path = sys.argv[1]
    model.save(path)
    print("ready", flush=True)
    while True:
        model.fit(X, y, epochs=1, batch_size=64, verbose=0)
        model.save(path)
""")


def test_killing_a_writer_never_leaves_an_unloadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.lamina"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(15):
        process = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.15)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        model = lm.load_model(path)  # the previous or the new model, never a broken one
        assert model.layers[0].params["weights"].shape == (64, 256)
    assert kills == 15


# -- hostile files ---------------------------------------------------------------------------
def valid_file(tmp_path: Path) -> bytes:
    X, y = small_data((4,), 3)
    model = bn_dropout_model()
    model.fit(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "valid.lamina")
    return (tmp_path / "valid.lamina").read_bytes()


def zip_of(members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def with_config(data: bytes, change: Callable[[dict], object]) -> bytes:
    members = members_of(data)
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    return zip_of(members)


def hostile_files(valid: bytes) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(2026)
    files: list[tuple[str, bytes]] = []
    for cut in rng.integers(0, len(valid), 400):
        files.append((f"truncated at {cut}", valid[:cut]))
    for index in range(600):
        flipped = bytearray(valid)
        for position in rng.integers(0, len(valid), 1 + index % 8):
            flipped[position] ^= 1 << int(rng.integers(0, 8))
        files.append((f"bit flips #{index}", bytes(flipped)))
    members = members_of(valid)
    for name in [
        "../evil.py",
        "/etc/passwd",
        "weights.safetensors/../x",
        "__init__.py",
        "config.json.bak",
        "a" * 300,
    ]:
        files.append((f"extra entry {name[:20]}", zip_of({**members, name: b"print('pwned')"})))
    files.append(("missing weights", zip_of({"config.json": members["config.json"]})))
    files.append(("empty zip", zip_of({})))
    files.append(
        (
            "config bomb",
            zip_of({**members, "config.json": b" " * (64 * 1024 * 1024)}, zipfile.ZIP_DEFLATED),
        )
    )
    files.append(
        (
            "weights bomb",
            zip_of({**members, "weights.safetensors": bytes(200 << 20)}, zipfile.ZIP_DEFLATED),
        )
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    files.append(("100k-deep JSON", zip_of({**members, "config.json": deep})))
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    files.append(("100k-deep object", zip_of({**members, "config.json": deep_object})))
    files.append(
        (
            "NaN in JSON",
            zip_of(
                {
                    **members,
                    "config.json": members["config.json"].replace(
                        b'"learning_rate": 0.01', b'"learning_rate": NaN'
                    ),
                }
            ),
        )
    )
    files.append(("not JSON", zip_of({**members, "config.json": b"\xff\xfe garbage"})))
    files.append(("pickle renamed", pickle.dumps(os.system, protocol=4)))
    files.append(
        (
            "pickle in a member",
            zip_of({**members, "weights.safetensors": pickle.dumps({"w": np.ones(3)})}),
        )
    )
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
    hostile_configs: dict[str, Callable[[dict], object]] = {
        "huge Dense": lambda c: c["model"]["layers"][0]["config"].__setitem__("n_neurons", 10**12),
        "huge BatchNorm": lambda c: c["model"]["layers"][1]["config"].__setitem__(
            "n_features", 10**9
        ),
        "negative size": lambda c: c["model"]["layers"][0]["config"].__setitem__("n_inputs", -4),
        "string size": lambda c: c["model"]["layers"][0]["config"].__setitem__("n_inputs", "4"),
        "unknown argument": lambda c: c["model"]["layers"][0]["config"].__setitem__("exec", 1),
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
        "history of strings": lambda c: c["training"]["history"]["history"].__setitem__(
            "loss", ["x"]
        ),
        "huge seed": lambda c: c["model"].__setitem__("seed", 10**100),
    }
    for label, change in hostile_configs.items():
        files.append((label, with_config(valid, change)))
    huge_shape = (
        b'{"dense/weights":{"dtype":"F32","shape":[1000000000,1000000],"data_offsets":[0,16]}}'
    )
    header = len(huge_shape).to_bytes(8, "little") + huge_shape + bytes(16)
    files.append(("huge declared tensor shape", zip_of({**members, "weights.safetensors": header})))
    mismatched = members_of(
        with_config(valid, lambda c: c["model"]["layers"][0]["config"].__setitem__("n_neurons", 15))
    )
    files.append(("tensors that do not fit", zip_of(mismatched)))
    return files


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


def test_a_thousand_hostile_files_fail_cleanly(tmp_path: Path, audit_events: list[str]) -> None:
    valid = valid_file(tmp_path)
    original = lm.load_model(tmp_path / "valid.lamina")
    files = hostile_files(valid)
    assert len(files) >= 1000
    loaded_identical = 0
    path = tmp_path / "hostile.lamina"
    for label, data in files:
        path.write_bytes(data)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            model = lm.load_model(path)
        except lm.errors.ModelFileError as error:
            assert str(error), label
        else:
            for a, b in zip(weights(model), weights(original), strict=True):
                np.testing.assert_array_equal(a, b, err_msg=label)
            loaded_identical += 1
        finally:
            seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert seconds < 1.0, f"{label}: {seconds:.2f} s"
        assert peak <= 64 * 1024 * 1024 + 2 * len(data), f"{label}: {peak} bytes"
    assert audit_events == []
    assert loaded_identical < len(files) // 2  # most corruptions are caught, not ignored


def test_missing_file_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(lm.errors.ModelFileError, match="No model file"):
        lm.load_model(tmp_path / "nothing.lamina")
