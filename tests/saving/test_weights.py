"""Parameter files: round trip, atomic writes, and clear errors (notes §1.10 "State")."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

L = lm.layers


def model(seed: int = 0, head: int = 3) -> lm.Model:
    m = lm.Model(
        [L.Dense(4, 8, activation="relu"), L.Dense(8, head, activation="softmax")], seed=seed
    )
    m.compile(loss="categorical_crossentropy", optimizer="adam")
    return m


def test_save_and_load_weights_round_trip(tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    a, b = model(seed=1), model(seed=2)
    a.fit(X, np.array([0, 1, 2, 0, 1]), epochs=2, verbose=0)
    a.save_weights(tmp_path / "w.safetensors")
    loaded = b.load_weights(tmp_path / "w.safetensors")
    assert sorted(loaded) == ["dense/biases", "dense/weights", "dense_1/biases", "dense_1/weights"]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary left


def test_load_lists_missing_unexpected_and_misshaped(tmp_path: Path) -> None:
    model(head=5).save_weights(tmp_path / "w.safetensors")
    target = model(head=3)
    with pytest.raises(lm.errors.ModelFileError) as excinfo:
        target.load_weights(tmp_path / "w.safetensors")
    message = str(excinfo.value)
    assert "mis-shaped" in message and "dense_1/weights: file (8, 5), model (8, 3)" in message
    assert "strict=False" in message


def test_non_strict_load_takes_the_matching_tensors(tmp_path: Path) -> None:
    source = model(seed=1, head=5)
    source.save_weights(tmp_path / "w.safetensors")
    target = model(seed=2, head=3)
    head_before = target.layers[1].params["weights"].copy()
    loaded = target.load_weights(tmp_path / "w.safetensors", strict=False)
    assert loaded == ["dense/weights", "dense/biases"]
    np.testing.assert_array_equal(
        target.layers[0].params["weights"], source.layers[0].params["weights"]
    )
    np.testing.assert_array_equal(target.layers[1].params["weights"], head_before)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file", b"\x80\x04pickle"])
def test_corrupt_weights_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(lm.errors.ModelFileError, match="safetensors"):
        model().load_weights(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(lm.errors.ModelFileError, match="No weights file"):
        model().load_weights(tmp_path / "nope.safetensors")


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.safetensors"
    model(seed=1).save_weights(path)
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        model(seed=2).save_weights(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
