"""Deep ensembles (lamina.ensemble, issue 14 must-show 4): k members from k seeds give the
same bits serially, in joblib processes and on a 2-worker Dask LocalCluster; the mean and
std follow the formulas; an ensemble saves as a folder of model files and loads back."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.ensemble import Ensemble
from lamina.errors import ConfigError, ModelFileError, NotCompiledError
from lamina.layers.stack import named_tensors
from lamina.losses import GaussianNLL
from lamina.model_selection import fold_seed

L = lm.layers


def build_gaussian(seed: int) -> lm.Model:
    """A small mean-and-variance regressor (module level, so workers can unpickle it)."""
    model = lm.Model(
        [L.Dense(1, 8, activation="tanh", weight_init="glorot_uniform"), L.Dense(8, 2)],
        seed=seed,
    )
    return model.compile(loss=GaussianNLL(), optimizer=lm.optimizers.Adam(0.01), metrics=[])


def build_mse(seed: int) -> lm.Model:
    model = lm.Model([L.Dense(1, 8, activation="tanh"), L.Dense(8, 1)], seed=seed)
    return model.compile(loss="mean_squared_error", metrics=[])


def build_uncompiled(seed: int) -> lm.Model:
    return lm.Model([L.Dense(1, 1)], seed=seed)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (300, 1))
    return x, np.sin(x) + rng.standard_normal((300, 1)) * (0.1 + 0.2 * np.abs(x))


@pytest.fixture(scope="module")
def serial(data: tuple[np.ndarray, np.ndarray]) -> Ensemble:
    return Ensemble(build_gaussian, members=3, seed=0).fit(*data, epochs=5, batch_size=32)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A LocalCluster of 2 single-threaded worker processes."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


def assert_identical(one: Ensemble, other: Ensemble, X: np.ndarray) -> None:
    assert one.seeds_ == other.seeds_
    for model, twin in zip(one.models_, other.models_, strict=True):
        tensors, twins = dict(named_tensors(model.layers)), dict(named_tensors(twin.layers))
        assert tensors.keys() == twins.keys()
        for name, array in tensors.items():
            assert np.array_equal(array, twins[name]), name
    for left, right in zip(
        one.predict(X, return_std=True), other.predict(X, return_std=True), strict=True
    ):
        assert np.array_equal(left, right)


# --------------------------------------------------------------------------- where it runs
def test_a_dask_ensemble_equals_the_serial_one_bit_for_bit(
    data: tuple[np.ndarray, np.ndarray], serial: Ensemble, dask_client: Any
) -> None:
    """Must-show 4: on a 2-worker LocalCluster (processes), by Client and by address."""
    options: dict[str, Any] = {"epochs": 5, "batch_size": 32, "backend": "dask"}
    on_dask = Ensemble(build_gaussian, members=3, seed=0).fit(
        *data, scheduler=dask_client, **options
    )
    assert_identical(serial, on_dask, data[0])
    by_address = Ensemble(build_gaussian, members=3, seed=0).fit(
        *data, scheduler=dask_client.scheduler.address, **options
    )
    assert_identical(serial, by_address, data[0])


def test_joblib_processes_and_a_cluster_of_its_own_give_the_same_bits(
    data: tuple[np.ndarray, np.ndarray], serial: Ensemble
) -> None:
    pytest.importorskip("joblib")
    loky = Ensemble(build_gaussian, members=3, seed=0).fit(*data, n_jobs=2, epochs=5, batch_size=32)
    assert_identical(serial, loky, data[0])
    pytest.importorskip("distributed")
    own = Ensemble(build_gaussian, members=3, seed=0).fit(
        *data, n_jobs=2, backend="dask", epochs=5, batch_size=32
    )
    assert_identical(serial, own, data[0])


def test_members_come_from_their_own_seeds(serial: Ensemble) -> None:
    assert serial.seeds_ == [fold_seed(0, index) for index in range(3)]
    assert [model.seed for model in serial.models_] == serial.seeds_
    first = [model.layers[0].params["weights"] for model in serial.models_]
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    assert all(model.epochs_done == 5 for model in serial.models_)


# --------------------------------------------------------------------------- predictions
def test_gaussian_members_give_the_mixture_mean_and_std(
    data: tuple[np.ndarray, np.ndarray], serial: Ensemble
) -> None:
    """μ* = mean μᵢ, σ*² = mean(σᵢ² + μᵢ²) − μ*² (the mixture's moments, written the
    textbook way here; the ensemble computes the form without cancellation)."""
    X = data[0][:50]
    pairs = []
    for model in serial.models_:
        assert isinstance(model.loss, GaussianNLL)
        pairs.append(model.loss.mean_std(model.predict(X)))
    mu = np.array([pair[0] for pair in pairs], dtype=np.float64)
    sigma = np.array([pair[1] for pair in pairs], dtype=np.float64)
    expected_mean = mu.mean(axis=0)
    expected_var = (sigma**2 + mu**2).mean(axis=0) - expected_mean**2
    mean, std = serial.predict(X, return_std=True)
    assert mean.shape == std.shape == (50, 1)
    assert mean == pytest.approx(expected_mean, rel=1e-5, abs=1e-6)
    assert std**2 == pytest.approx(expected_var, rel=1e-4, abs=1e-6)
    assert np.array_equal(serial.predict(X), mean)


def test_other_members_give_the_mean_and_spread_of_their_outputs(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    ensemble = Ensemble(build_mse, members=4, seed=3).fit(X, y, epochs=2)
    outputs = np.stack([model.predict(X) for model in ensemble.models_])
    mean, std = ensemble.predict(X, return_std=True)
    assert np.allclose(mean, outputs.mean(axis=0)) and np.allclose(std, outputs.std(axis=0))
    assert (std > 0).all()


# --------------------------------------------------------------------------- files
def test_save_and_load_keep_every_member(
    data: tuple[np.ndarray, np.ndarray], serial: Ensemble, tmp_path: Path
) -> None:
    folder = tmp_path / "ensemble"
    serial.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "ensemble.json",
        "member_0.lamina",
        "member_1.lamina",
        "member_2.lamina",
    ]
    loaded = Ensemble.load(folder)
    assert_identical(serial, loaded, data[0])
    assert loaded.seed == 0 and loaded.members == 3
    with pytest.raises(NotCompiledError, match="no build function"):
        loaded.fit(*data)
    member = lm.load_model(folder / "member_1.lamina")  # each member is a model file
    assert np.array_equal(member.predict(data[0]), serial.models_[1].predict(data[0]))
    again = Ensemble.load(folder, build=build_gaussian).fit(*data, epochs=5, batch_size=32)
    assert_identical(serial, again, data[0])


def test_loading_refuses_a_folder_that_does_not_match_its_manifest(
    serial: Ensemble, tmp_path: Path
) -> None:
    folder = tmp_path / "ensemble"
    serial.save(folder)
    manifest = json.loads((folder / "ensemble.json").read_text())
    (folder / "member_2.lamina").write_bytes((folder / "member_0.lamina").read_bytes())
    with pytest.raises(ModelFileError, match=r"member_2\.lamina.*SHA-256 differs"):
        Ensemble.load(folder)
    outside = tmp_path / "outside.lamina"
    outside.write_bytes((folder / "member_0.lamina").read_bytes())
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    for entries in (
        [{"file": "../outside.lamina", "sha256": digest}],
        [{"file": "/etc/passwd", "sha256": digest}],
        [{"file": "member_0.lamina", "sha256": digest}] * 2,
        [],
    ):
        (folder / "ensemble.json").write_text(json.dumps({**manifest, "members": entries}))
        with pytest.raises(ModelFileError, match="Fix: use an intact folder"):
            Ensemble.load(folder)
    (folder / "ensemble.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        Ensemble.load(folder)
    with pytest.raises(ModelFileError, match="No ensemble manifest"):
        Ensemble.load(tmp_path / "nowhere")


# --------------------------------------------------------------------------- arguments
def test_arguments_are_checked_where_they_enter(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ConfigError, match=r"`Ensemble\.members`"):
        Ensemble(build_gaussian, members=0)
    with pytest.raises(ConfigError, match=r"`Ensemble\.seed`"):
        Ensemble(build_gaussian, seed=-1)
    with pytest.raises(ConfigError, match="`build`"):
        Ensemble("build_gaussian")  # type: ignore[arg-type]
    ensemble = Ensemble(build_gaussian, members=2)
    with pytest.raises(NotCompiledError, match="no trained members"):
        ensemble.predict(X)
    with pytest.raises(ConfigError, match=r"`Ensemble\.fit\.n_jobs`"):
        ensemble.fit(X, y, n_jobs=0)
    with pytest.raises(ConfigError, match=r"`Ensemble\.fit\.backend`"):
        ensemble.fit(X, y, backend="spark")
    with pytest.raises(ConfigError, match="`scheduler`"):
        ensemble.fit(X, y, scheduler="tcp://localhost:8786")
    with pytest.raises(ConfigError, match=r"unexpected keyword argument .epoch."):
        ensemble.fit(X, y, epoch=3)
    with pytest.raises(ConfigError, match="picklable"):
        Ensemble(lambda seed: build_gaussian(seed), members=2).fit(X, y, n_jobs=2)
    with pytest.raises(ConfigError, match=r"compiled lamina Model.*\(not compiled\)"):
        Ensemble(build_uncompiled, members=1).fit(X, y)
    with pytest.raises(ConfigError, match=r"`Ensemble\.predict\.return_std`"):
        Ensemble(build_mse, members=1).fit(X, y).predict(X, return_std=1)  # type: ignore[arg-type]


def mixed_build(seed: int) -> lm.Model:
    return build_gaussian(seed) if seed == fold_seed(0, 0) else build_mse(seed)


def test_members_must_share_their_loss(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match=r"one loss.*GaussianNLL.*MeanSquaredError"):
        Ensemble(mixed_build, members=2).fit(*data)
