"""Tests for cross-validation and hyper-parameter search in lamina.model_selection (notes §1.5).

Per-fold results must not depend on where a fold runs (DESIGN §1): the serial path, a joblib
process pool and Dask workers give bit-identical metrics for the same seed.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import pickle
import signal
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lamina as lm
from lamina.errors import ConfigError, InputError
from lamina.model_selection import (
    BLAS_THREADS,
    CVResult,
    GridSearch,
    RandomSearch,
    SearchResult,
    apply_params,
    cross_validate,
    fold_seed,
    parse_distributions,
    parse_grid,
    parse_value,
    set_config_value,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPIRAL_TOML = EXAMPLES / "spiral.toml"
SINE_TOML = EXAMPLES / "sine_regression.toml"
L = lm.layers


def build_spiral(seed: int) -> lm.Model:
    """A small spiral classifier (module level, so worker processes can unpickle it)."""
    model = lm.Model(
        [L.Dense(2, 16, activation="relu"), L.Dense(16, 3, activation="softmax")], seed=seed
    )
    return model.compile(
        loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(learning_rate=0.02)
    )


def build_fixed() -> lm.Model:
    """A zero-argument build: its model seeds itself."""
    return build_spiral(7)


def flaky_build(marker: str, seed: int) -> lm.Model:
    """Raises the first time it is called anywhere (a marker file records that), then builds."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once\n")
        raise OSError("transient failure on the first call")
    return build_spiral(seed)


def failing_build(seed: int) -> lm.Model:
    raise ValueError(f"this build always fails (seed {seed})")


@pytest.fixture(scope="module")
def spiral() -> tuple[np.ndarray, np.ndarray]:
    return lm.datasets.spiral(60, 3, seed=0)


@pytest.fixture
def spiral_config() -> dict[str, Any]:
    with SPIRAL_TOML.open("rb") as file:
        return tomllib.load(file)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A LocalCluster of 2 single-threaded worker processes, shared by this module's tests."""
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


def fold_metrics(result: CVResult) -> list[dict[str, float]]:
    return [fold.metrics for fold in result.folds]


# --------------------------------------------------------------------------- cross_validate


def test_folds_give_identical_metrics_serially_in_processes_and_on_dask(
    spiral: tuple[np.ndarray, np.ndarray], dask_client: Any
) -> None:
    X, y = spiral
    options: dict[str, Any] = {"cv": 3, "seed": 5, "epochs": 30, "batch_size": 16}
    serial = cross_validate(build_spiral, X, y, n_jobs=1, **options)
    loky = cross_validate(build_spiral, X, y, n_jobs=2, **options)
    dask = cross_validate(build_spiral, X, y, backend="dask", scheduler=dask_client, **options)
    address = dask_client.scheduler.address
    by_address = cross_validate(build_spiral, X, y, backend="dask", scheduler=address, **options)

    assert serial.status == "ok" and len(serial.folds) == 3
    for other in (loky, dask, by_address):
        assert fold_metrics(other) == fold_metrics(serial)  # exact equality of the floats
        assert [f.seed for f in other.folds] == [f.seed for f in serial.folds]
        assert other.mean == serial.mean and other.std == serial.std
    assert [r.backend for r in (serial, loky, dask)] == ["serial", "loky", "dask"]
    for result in (serial, loky, dask, by_address):
        assert result.blas_threads == BLAS_THREADS == 1
        assert all(fold.blas_threads == 1 for fold in result.folds)
    here = f":{os.getpid()}"
    assert all(fold.worker.endswith(here) for fold in serial.folds)
    assert not any(fold.worker.endswith(here) for fold in loky.folds + dask.folds)
    assert [f.seed for f in serial.folds] == [fold_seed(5, fold) for fold in range(3)]


def test_cross_validate_a_callable_reports_folds_means_and_a_table() -> None:
    X, y = lm.datasets.vertical(60, 3, seed=0)  # separable blobs: sane held-out accuracy
    result = cross_validate(build_spiral, X, y, cv=4, epochs=20, batch_size=16)

    assert result.splitter.startswith("StratifiedKFold(n_splits=4, shuffle=True, seed=0")
    assert [fold.n_val for fold in result.folds] == [45] * 4
    assert all(fold.n_train + fold.n_val == len(X) for fold in result.folds)
    assert all(fold.epochs == 20 and fold.status == "ok" for fold in result.folds)
    assert set(result.mean) == {"loss", "accuracy"}
    accuracies = [metrics["accuracy"] for metrics in result.metrics]
    assert result.mean["accuracy"] == pytest.approx(np.mean(accuracies))
    assert result.std["accuracy"] == pytest.approx(np.std(accuracies))
    assert 0.8 < result.mean["accuracy"] <= 1.0  # chance is 1/3
    assert len(result.fit_times) == 4 and all(t > 0 for t in result.fit_times)
    text = str(result)
    assert "4-fold cross-validation" in text and "BLAS threads 1" in text
    assert "mean" in text and "accuracy" in text


def test_cross_validate_a_zero_argument_callable_and_chosen_metrics(
    spiral: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = spiral
    result = cross_validate(build_fixed, X, y, cv=2, epochs=5, metrics=[])
    assert result.metric_names == ["loss"]


def test_cross_validate_a_config_dict_and_a_toml_path(
    spiral: tuple[np.ndarray, np.ndarray], spiral_config: dict[str, Any]
) -> None:
    X, y = spiral
    from_dict = cross_validate(spiral_config, X, y, cv=3, epochs=20)
    assert from_dict.status == "ok" and sum(f.n_val for f in from_dict.folds) == len(X)

    # Without X and y the config's own data (300 spiral points) is used.
    from_path = cross_validate(SPIRAL_TOML, cv=3, epochs=20)
    from_str = cross_validate(str(SPIRAL_TOML), cv=3, epochs=20)
    from_run = cross_validate(lm.config.load_config(SPIRAL_TOML), cv=3, epochs=20)
    from_raw = cross_validate(spiral_config, cv=3, epochs=20)
    assert sum(f.n_val for f in from_path.folds) == 300
    for other in (from_str, from_run, from_raw):
        assert fold_metrics(other) == fold_metrics(from_path)


def test_regression_targets_are_split_by_kfold() -> None:
    result = cross_validate(SINE_TOML, cv=3, epochs=3)
    assert result.splitter.startswith("KFold(n_splits=3, shuffle=True, seed=0")
    assert result.status == "ok"


def test_a_splitter_object_can_be_given(spiral: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = spiral
    splitter = lm.model_selection.KFold(3)
    result = cross_validate(build_spiral, X, y, cv=splitter, epochs=2)
    assert [fold.n_val for fold in result.folds] == [60, 60, 60]


def test_an_unpicklable_callable_is_refused_for_workers_only(
    spiral: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = spiral

    def nested(seed: int) -> lm.Model:
        return build_spiral(seed)

    with pytest.raises(ConfigError, match=r"nested.*module level"):
        cross_validate(nested, X, y, cv=2, n_jobs=2, epochs=1)
    with pytest.raises(ConfigError, match="lambda"):
        cross_validate(lambda seed: build_spiral(seed), X, y, cv=2, n_jobs=2, epochs=1)
    assert cross_validate(nested, X, y, cv=2, n_jobs=1, epochs=1).status == "ok"


def test_errors_in_cross_validate_are_raised(spiral: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = spiral
    with pytest.raises(ValueError, match="always fails"):
        cross_validate(failing_build, X, y, cv=2, epochs=1)
    with pytest.raises(InputError, match="X, y"):
        cross_validate(build_spiral, X, None, cv=2)
    with pytest.raises(ConfigError, match="n_jobs"):
        cross_validate(build_spiral, X, y, n_jobs=0)
    with pytest.raises(ConfigError, match="backend"):
        cross_validate(build_spiral, X, y, backend="ray")
    with pytest.raises(ConfigError, match="scheduler"):
        cross_validate(build_spiral, X, y, scheduler="tcp://localhost:8786")
    with pytest.raises(ConfigError, match="epochs"):
        cross_validate(build_spiral, X, y, epochs=0)
    with pytest.raises(ConfigError, match="build"):
        cross_validate(42, X, y)


def test_a_diverging_fold_is_reported_as_failed() -> None:
    with SINE_TOML.open("rb") as file:
        config = apply_params(
            tomllib.load(file), {"optimizer": {"type": "sgd", "learning_rate": 10.0}}
        )
    result = cross_validate(config, cv=2, epochs=30)
    assert result.status == "failed"
    assert "diverged" in result.error
    assert all(fold.status == "failed" and fold.metrics == {} for fold in result.folds)
    assert all(np.isnan(value) for value in result.mean.values())


# --------------------------------------------------------------------------- config keys


def test_set_config_value_sets_dotted_and_indexed_keys(spiral_config: dict[str, Any]) -> None:
    before = pickle.dumps(spiral_config)
    changed = set_config_value(spiral_config, "optimizer.learning_rate", 0.1)
    assert changed["optimizer"]["learning_rate"] == 0.1
    assert set_config_value(spiral_config, "layers[0].n_neurons", 8)["layers"][0]["n_neurons"] == 8
    assert set_config_value(spiral_config, "layers[1].n_inputs", 8)["layers"][1]["n_inputs"] == 8
    assert set_config_value(spiral_config, "train.batch_size", 16)["train"]["batch_size"] == 16
    # Keys the config leaves out but its tables accept: constructor arguments, [train] keys.
    assert (
        set_config_value(spiral_config, "layers[0].weight_l2", 5e-4)["layers"][0]["weight_l2"]
        == 5e-4
    )
    assert set_config_value(spiral_config, "optimizer.beta_1", 0.8)["optimizer"]["beta_1"] == 0.8
    assert set_config_value(spiral_config, "train.shuffle", False)["train"]["shuffle"] is False
    # A whole table, and two keys linked by "+".
    sgd = set_config_value(spiral_config, "optimizer", {"type": "sgd", "learning_rate": 1.0})
    assert sgd["optimizer"] == {"type": "sgd", "learning_rate": 1.0}
    linked = set_config_value(spiral_config, "layers[0].n_neurons+layers[1].n_inputs", 32)
    assert linked["layers"][0]["n_neurons"] == linked["layers"][1]["n_inputs"] == 32
    assert pickle.dumps(spiral_config) == before  # the input is never modified
    lm.config.from_dict(linked)  # still a valid config


def test_set_config_value_creates_train_and_model_tables(spiral_config: dict[str, Any]) -> None:
    del spiral_config["train"]
    assert set_config_value(spiral_config, "train.epochs", 3)["train"] == {"epochs": 3}
    del spiral_config["model"]
    assert set_config_value(spiral_config, "model.seed", 1)["model"] == {"seed": 1}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "optimizer.learnig_rate",
            r"`optimizer` has no key `learnig_rate`.*use `optimizer.learning_rate`",
        ),
        ("layers[0].n_neuron", r"`layers\[0\]` has no key `n_neuron`.*use `layers\[0\].n_neurons`"),
        (
            "layers[5].n_neurons",
            r"`layers` has 2 item\(s\), indices 0 to 1.*use `layers\[1\].n_neurons`",
        ),
        (
            "optimiser.learning_rate",
            r"the config has no key `optimiser`.*use `optimizer.learning_rate`",
        ),
        ("train.epoch", r"`train` has no key `epoch`.*use `train.epochs`"),
        ("layers.n_neurons", r"`layers` is not a table"),
        ("optimizer[0]", r"`optimizer` is not an array"),
        ("data.sample", r"use `data.samples`"),
    ],
)
def test_bad_config_keys_name_the_key_and_the_nearest_path(
    spiral_config: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        set_config_value(spiral_config, key, 1)
    assert f"Unknown config key `{key}`" in str(error.value)


@pytest.mark.parametrize("key", ["layers[0]x", "", ".train", "layers[-1].n_neurons", "a..b"])
def test_malformed_keys_are_refused(spiral_config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match="key"):
        set_config_value(spiral_config, key, 1)


def test_parse_grid_types_values_like_toml() -> None:
    assert parse_value("32") == 32 and isinstance(parse_value("32"), int)
    assert parse_value("1e-3") == 0.001 and parse_value("-0.5") == -0.5
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("adam") == "adam" and parse_value("'64'") == "64"
    assert parse_grid(["optimizer.learning_rate=0.01,0.1", "layers[0].n_neurons=32, 64"]) == {
        "optimizer.learning_rate": [0.01, 0.1],
        "layers[0].n_neurons": [32, 64],
    }
    assert parse_distributions(
        ["optimizer.learning_rate=log_uniform:1e-4:1e-1", "layers[0].n_neurons=int:16:128", "x=a,b"]
    ) == {
        "optimizer.learning_rate": ("log_uniform", 0.0001, 0.1),
        "layers[0].n_neurons": ("int", 16, 128),
        "x": ["a", "b"],
    }
    for bad in (["train.epochs"], ["=1,2"], ["train.epochs="], ["a=1", "a=2"], ["a=1,,2"]):
        with pytest.raises(ConfigError, match="grid"):
            parse_grid(bad)
    with pytest.raises(ConfigError):
        parse_distributions(["a=log_uniform:0:1"])


# --------------------------------------------------------------------------- searches


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def check_ranked(result: SearchResult, key: str, descending: bool) -> None:
    scores = [row[key] for row in result.rows if row["status"] == "ok"]
    assert scores == sorted(scores, reverse=descending)
    assert [row["rank"] for row in result.rows] == list(range(1, len(result.rows) + 1))


def test_grid_search_ranks_every_combination_and_writes_csv(
    spiral: tuple[np.ndarray, np.ndarray], spiral_config: dict[str, Any], tmp_path: Path
) -> None:
    X, y = spiral
    grid = {
        "optimizer.learning_rate": [0.001, 0.05],
        "layers[0].n_neurons+layers[1].n_inputs": [4, 32],
    }
    search = GridSearch(spiral_config, grid, cv=3, epochs=30, batch_size=16)
    result = search.fit(X, y)

    assert search.results_ is result and search.best_model_ is None
    assert len(result.trials) == 4 and all(t.status == "ok" for t in result.trials)
    in_order = sorted(result.trials, key=lambda t: t.trial)
    combos = [tuple(t.params.values()) for t in in_order]
    assert combos == [(0.001, 4), (0.001, 32), (0.05, 4), (0.05, 32)]  # last key fastest
    check_ranked(result, "mean_accuracy", descending=True)
    best = result.trials[0]
    assert result.best_score == best.mean["accuracy"] == result.rows[0]["mean_accuracy"]
    assert result.best_params == best.params
    assert result.best_config == apply_params(
        set_config_value(
            set_config_value(spiral_config, "train.epochs", 30), "train.batch_size", 16
        ),
        best.params,
    )
    text = str(result)
    assert "4 trial(s) × 3 folds" in text and "best:" in text

    path = result.to_csv(tmp_path / "search.csv")
    rows = read_csv(path)
    assert [row["trial"] for row in rows] == [str(t.trial) for t in result.trials]
    assert set(rows[0]) >= {
        "rank",
        "optimizer.learning_rate",
        "mean_accuracy",
        "std_loss",
        "status",
    }
    assert float(rows[0]["mean_accuracy"]) == result.best_score


def test_grid_search_by_loss_ranks_lowest_first(spiral: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = spiral
    grid = {"optimizer.learning_rate": [0.0001, 0.01, 0.05]}
    result = GridSearch(SPIRAL_TOML, grid, cv=2, metric="loss", mode="min", epochs=20).fit(X, y)
    check_ranked(result, "mean_loss", descending=False)
    assert result.best_score == min(t.mean["loss"] for t in result.trials)


def test_failed_trials_are_reported_and_the_others_complete(
    spiral_config: dict[str, Any],
) -> None:
    grid = {
        "optimizer.learning_rate": [0.02, -1.0],  # negative: the optimizer refuses it
        "layers[0].n_neurons": [64, 8],  # 8 does not fit layers[1].n_inputs = 64
    }
    result = GridSearch(spiral_config, grid, cv=2, epochs=10).fit()
    by_params = {
        (t.params["optimizer.learning_rate"], t.params["layers[0].n_neurons"]): t
        for t in result.trials
    }
    assert by_params[(0.02, 64)].status == "ok"
    assert result.trials[0] is by_params[(0.02, 64)]  # failed trials rank last
    assert "learning_rate" in by_params[(-1.0, 64)].error
    assert "dense" in by_params[(0.02, 8)].error.lower()
    assert all(t.status == "failed" for key, t in by_params.items() if key != (0.02, 64))
    failed_rows = [row for row in result.rows if row["status"] == "failed"]
    assert len(failed_rows) == 3 and all(row["error"] for row in failed_rows)
    assert all(np.isnan(row["mean_accuracy"]) for row in failed_rows)
    assert result.best_params == {"optimizer.learning_rate": 0.02, "layers[0].n_neurons": 64}


def test_a_diverging_trial_is_reported_as_failed() -> None:
    grid = {
        "optimizer": [
            {"type": "sgd", "learning_rate": 10.0},
            {"type": "adam", "learning_rate": 0.01},
        ]
    }
    result = GridSearch(SINE_TOML, grid, cv=2, epochs=30).fit()
    statuses = {t.params["optimizer"]["type"]: t for t in result.trials}
    assert statuses["adam"].status == "ok"
    assert statuses["sgd"].status == "failed" and "diverged" in statuses["sgd"].error


def test_all_trials_failing_warns_and_has_no_best(spiral_config: dict[str, Any]) -> None:
    with pytest.warns(RuntimeWarning, match="every trial"):
        result = GridSearch(spiral_config, {"layers[0].n_neurons": [3, 5]}, cv=2, epochs=1).fit()
    assert result.best_params is None and result.best_config is None and result.best_score is None


def test_search_arguments_are_checked_before_anything_runs(spiral_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"use `optimizer\.learning_rate`"):
        GridSearch(spiral_config, {"optimizer.learnig_rate": [0.1]}).fit()
    with pytest.raises(ConfigError, match="metric"):
        GridSearch(spiral_config, {"train.epochs": [1]}, metric="f1").fit()
    with pytest.raises(ConfigError, match="mode"):
        GridSearch(spiral_config, {"train.epochs": [1]}, mode="best").fit()
    with pytest.raises(ConfigError, match="config"):
        GridSearch(build_spiral, {"train.epochs": [1]}).fit()
    with pytest.raises(ConfigError, match="RandomSearch"):
        GridSearch(spiral_config, {"optimizer.learning_rate": ("log_uniform", 1e-4, 1e-1)}).fit()
    with pytest.raises(ConfigError, match="non-empty list"):
        GridSearch(spiral_config, {"train.epochs": []}).fit()
    with pytest.raises(ConfigError, match="log_uniform"):
        RandomSearch(spiral_config, {"optimizer.learning_rate": ("log_uniform", 0, 1)}).fit()


def test_random_search_draws_reproducible_values_in_their_ranges(
    spiral: tuple[np.ndarray, np.ndarray], spiral_config: dict[str, Any], tmp_path: Path
) -> None:
    X, y = spiral
    distributions = {
        "optimizer.learning_rate": ("log_uniform", 1e-3, 1e-1),
        "optimizer.beta_1": ("uniform", 0.8, 0.95),
        "layers[0].n_neurons+layers[1].n_inputs": ("int", 4, 16),
        "train.batch_size": [16, 32],
    }
    search = RandomSearch(spiral_config, distributions, n_trials=5, cv=2, epochs=10, seed=3)
    candidates = search.candidates()
    assert candidates == RandomSearch(spiral_config, distributions, n_trials=5, seed=3).candidates()
    assert candidates != RandomSearch(spiral_config, distributions, n_trials=5, seed=4).candidates()
    for params in candidates:
        assert 1e-3 <= params["optimizer.learning_rate"] <= 1e-1
        assert 0.8 <= params["optimizer.beta_1"] <= 0.95
        size = params["layers[0].n_neurons+layers[1].n_inputs"]
        assert type(size) is int and 4 <= size <= 16
        assert params["train.batch_size"] in (16, 32)
    result = search.fit(X, y)
    assert len(result.rows) == 5 and all(row["status"] == "ok" for row in result.rows)
    check_ranked(result, "mean_accuracy", descending=True)
    assert len(read_csv(result.to_csv(tmp_path / "random.csv"))) == 5


def test_searches_flatten_trials_and_folds_over_workers(
    spiral: tuple[np.ndarray, np.ndarray], spiral_config: dict[str, Any]
) -> None:
    X, y = spiral
    grid = {"optimizer.learning_rate": [0.005, 0.02], "train.batch_size": [16, 64]}
    serial = GridSearch(spiral_config, grid, cv=3, epochs=20).fit(X, y)
    parallel = GridSearch(spiral_config, grid, cv=3, epochs=20, n_jobs=2).fit(X, y)

    def without_times(result: SearchResult) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "fit_time"} for row in result.rows]

    assert without_times(parallel) == without_times(serial)
    workers = {fold.worker for trial in parallel.trials for fold in trial.cv.folds}
    assert len(workers) == 2  # 4 trials × 3 folds shared by both worker processes


def test_refit_trains_the_best_config_on_all_the_data(
    spiral: tuple[np.ndarray, np.ndarray], spiral_config: dict[str, Any]
) -> None:
    X, y = spiral
    search = GridSearch(
        spiral_config, {"optimizer.learning_rate": [0.001, 0.05]}, cv=2, epochs=30, refit=True
    )
    result = search.fit(X, y)
    model = search.best_model_
    assert isinstance(model, lm.Model) and result.best_model is model
    assert model.epochs_done == 30
    assert model.predict(X).shape == (len(X), 3)
    assert model.layers[0].params["weights"].shape == (2, 64)


# --------------------------------------------------------------------------- Dask failures


def test_dask_retries_a_fold_that_raised(
    spiral: tuple[np.ndarray, np.ndarray], dask_client: Any, tmp_path: Path
) -> None:
    X, y = spiral
    serial = cross_validate(build_spiral, X, y, cv=2, epochs=10)
    with pytest.raises(OSError, match="transient"):  # in-process nothing retries
        cross_validate(
            functools.partial(flaky_build, str(tmp_path / "serial")), X, y, cv=2, epochs=10
        )

    build = functools.partial(flaky_build, str(tmp_path / "dask"))
    result = cross_validate(build, X, y, cv=2, epochs=10, backend="dask", scheduler=dask_client)
    assert (tmp_path / "dask").exists()  # the first attempt did fail
    assert result.status == "ok" and fold_metrics(result) == fold_metrics(serial)


def test_dask_search_completes_when_a_worker_is_killed(spiral_config: dict[str, Any]) -> None:
    distributed = pytest.importorskip("distributed")
    X, y = lm.datasets.spiral(100, 3, seed=1)
    grid = {"optimizer.learning_rate": [0.01, 0.02, 0.03, 0.04]}
    options: dict[str, Any] = {"cv": 2, "epochs": 3000}  # ~0.25 s a fold: killed mid-fold
    serial = GridSearch(spiral_config, grid, **options).fit(X, y)

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        search = GridSearch(spiral_config, grid, backend="dask", scheduler=client, **options)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = search.fit(X, y)
            except BaseException as error:  # handed to the test thread
                outcome["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        busy: list[str] = []
        deadline = time.monotonic() + 60
        while not busy and time.monotonic() < deadline and thread.is_alive():
            busy = [
                worker
                for worker, keys in client.processing().items()
                if any(str(key).startswith("lamina-fold") for key in keys)
            ]
            time.sleep(0.02)
        assert busy, "no fold ever started on the cluster"
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)  # mid-fold; the nanny starts a new worker process
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert pid not in client.run(os.getpid).values()

    result: SearchResult = outcome["result"]
    assert all(trial.status == "ok" for trial in result.trials)
    assert result.rows[0]["mean_accuracy"] == serial.rows[0]["mean_accuracy"]
    assert [t.cv.metrics for t in result.trials] == [t.cv.metrics for t in serial.trials]
