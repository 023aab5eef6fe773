"""``Model.fit(threads=N)`` pins the BLAS threads of the whole fit (``lamina.blas_threads``,
issue 19): each count gives bit-identical weights run after run, and the model file
records the count the model was trained with, beside its seed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina.errors import ConfigError
from lamina.threads import current_blas_threads

L = lm.layers


def trained(threads: int | None) -> lm.Model:
    rng = np.random.default_rng(0)
    # products large enough that OpenBLAS splits them between threads
    X = rng.standard_normal((512, 256)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    model = lm.Model(
        [L.Dense(256, 256, activation="relu"), L.Dense(256, 10, activation="softmax")], seed=0
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, y, epochs=2, batch_size=256, verbose=0, threads=threads)
    return model


def weights(model: lm.Model) -> list[np.ndarray]:
    return [value.copy() for _, value, _ in model.parameters()]


@pytest.mark.parametrize("threads", [1, 2])
def test_a_thread_count_gives_bit_identical_weights_run_after_run(threads: int) -> None:
    first, second = trained(threads), trained(threads)
    for a, b in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(a, b)
    if current_blas_threads() is not None:  # a BLAS library is loaded: it ran pinned
        assert first.blas_threads == threads


def test_the_file_records_the_fits_count_not_the_count_at_save_time(tmp_path: Path) -> None:
    model = trained(1)
    path = tmp_path / "model.lamina"
    with lm.blas_threads(2):  # saving elsewhere changes nothing
        model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    expected = 1 if current_blas_threads() is not None else None
    assert config["training"]["blas_threads"] == expected and config["model"]["seed"] == 0
    assert lm.load_model(path).blas_threads == expected  # kept through load and save
    untrained = lm.Model([L.Dense(2, 2)], seed=0)
    untrained.save(tmp_path / "untrained.lamina")
    with zipfile.ZipFile(tmp_path / "untrained.lamina") as archive:
        assert json.loads(archive.read("config.json"))["training"]["blas_threads"] is None


def test_a_bad_thread_count_is_refused_before_training() -> None:
    model = lm.Model([L.Dense(2, 2, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    before = weights(model)
    for bad in (0, -1, True, 1.5, "2", 10**6, 2**70):  # 2**70: more than C's int holds
        with pytest.raises(ConfigError, match=r"threads must be a whole number .* from 1 to"):
            model.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), verbose=0, threads=bad)  # type: ignore[arg-type]
    assert model.epochs_done == 0
    for a, b in zip(before, weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_more_threads_than_usable_cores_warns_and_names_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("lamina.threads.usable_cores", lambda: 1)
    with pytest.warns(RuntimeWarning, match=r"threads=2 is more than the 1 cores.*threads=1"):
        with lm.blas_threads(2):
            pass
