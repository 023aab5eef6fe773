"""Where a run reads and writes when the command line does not say (issue 19): data paths
from the config's folder, outputs under ``runs/``, a resumed run in its model's folder, and
callbacks' epoch counts that follow ``--epochs``."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import cli
from lamina import config as configs

SPIRAL = """[data]
dataset = "spiral"
samples = 20
seed = 0

[[layers]]
type = "dense"
n_inputs = 2
n_neurons = 3
activation = "softmax"

[compile]
loss = "categorical_crossentropy"

[optimizer]
type = "adam"

[train]
epochs = {epochs}
verbose = 0
"""
COSINE = '[[callbacks]]\ntype = "cosine_decay"\ninitial_learning_rate = 0.01\n'


def callback_epochs(text: str, epochs: int, tmp_path: Path) -> int:
    run = configs.from_dict(tomllib.loads(text), tmp_path / "c.toml", text)
    model = configs.build_model(run)
    (callback,) = configs.build_callbacks(run, tmp_path, model, epochs=epochs)
    return int(callback.epochs)


def test_cosine_decay_follows_the_runs_epochs(tmp_path: Path) -> None:
    base = SPIRAL.format(epochs=5)
    assert callback_epochs(base + COSINE, 2, tmp_path) == 2  # left out: the run's
    assert callback_epochs(base + COSINE + "epochs = 5\n", 2, tmp_path) == 2  # = [train]'s
    assert callback_epochs(base + COSINE + "epochs = 8\n", 2, tmp_path) == 8  # its own


def test_the_cnn_example_anneals_over_epochs_given_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spiral.toml"
    path.write_text(SPIRAL.format(epochs=50) + COSINE)
    assert cli.main(["train", str(path), "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    resume = ["--resume", str(tmp_path / "a" / "model.lamina"), "--epochs", "2"]
    assert cli.main(["train", str(path), *resume]) == 0
    capsys.readouterr()
    model = lm.load_model(tmp_path / "a" / "model.lamina")  # resumed into its own folder
    assert model.epochs_done == 4
    # the decay spans the 4 epochs the model has at the end: η = 0.01 · ½(1 + cos(π e/4))
    assert model.optimizer is not None
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.005 * (1 + np.cos(np.pi * 3 / 4)))


def test_data_paths_are_read_from_the_configs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "project"
    rows = ["x1,x2,label", *(f"{i % 7},{i % 3},{i % 2}" for i in range(40))]
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text("\n".join(rows) + "\n")
    text = (
        SPIRAL.format(epochs=2)
        .replace(
            'dataset = "spiral"\nsamples = 20\nseed = 0',
            'dataset = "csv"\npath = "data/train.csv"\ntarget = "label"',
        )
        .replace("n_neurons = 3", "n_neurons = 2")
    )
    (folder / "run.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["train", str(folder / "run.toml"), "--out", "out"]) == 0
    model = lm.load_model(elsewhere / "out" / "model.lamina")
    assert model.metadata["data"]["path"] == str(folder / "data" / "train.csv")  # absolute
    capsys.readouterr()
    os.chdir(tmp_path)  # the model's record finds its data from anywhere
    assert cli.main(["evaluate", str(elsewhere / "out" / "model.lamina")]) == 0
    capsys.readouterr()
    (folder / "missing.toml").write_text(text.replace("data/train.csv", "data/test.csv"))
    assert cli.main(["train", str(folder / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert str(folder / "data" / "test.csv") in err, err
    assert f"read from its folder, {folder}" in err


def test_outputs_go_under_runs_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spiral.toml").write_text(SPIRAL.format(epochs=3))
    assert cli.main(["train", "spiral.toml"]) == 0
    assert cli.main(["export", "runs/spiral/model.lamina"]) == 0
    grid = ["--grid", "optimizer.learning_rate=0.01,0.1", "--folds", "2"]
    assert cli.main(["search", "spiral.toml", *grid, "--csv", "--refit"]) == 0
    assert cli.main(["cv", "spiral.toml", "--folds", "2", "--csv"]) == 0
    out = capsys.readouterr().out
    written = {"model.lamina", "model.onnx", "trials.csv", "best.lamina", "cv.csv"}
    assert written <= {p.name for p in (tmp_path / "runs" / "spiral").iterdir()}, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "spiral.toml"]
