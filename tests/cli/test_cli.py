"""The ``lamina`` command, run as a user runs it: a subprocess (issue 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def lamina(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spiral")
    result = lamina("train", EXAMPLES / "spiral.toml", "--epochs", "300", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "trained 300 epoch(s)" in result.stdout
    return out


def test_train_writes_model_history_and_curves(spiral_run: Path) -> None:
    assert {p.name for p in spiral_run.iterdir()} >= {"model.lamina", "history.csv", "curves.png"}
    assert len((spiral_run / "history.csv").read_text().splitlines()) == 301


def test_info_evaluate_and_gradcheck(spiral_run: Path) -> None:
    info = lamina("info", spiral_run / "model.lamina")
    assert info.returncode == 0 and "epochs trained: 300" in info.stdout
    assert "Total params: 387" in info.stdout
    evaluate = lamina("evaluate", spiral_run / "model.lamina")
    assert evaluate.returncode == 0, evaluate.stderr
    assert "accuracy" in evaluate.stdout and "per-class accuracy" in evaluate.stdout
    assert (spiral_run / "confusion_matrix.png").exists()
    gradcheck = lamina("gradcheck")
    assert gradcheck.returncode == 0 and "checks passed" in gradcheck.stdout


def test_predict_of_png_files_agrees_with_model_predict(tmp_path: Path) -> None:
    run = tmp_path / "mlp"
    trained = lamina(
        "train",
        EXAMPLES / "fashion_mnist_mlp.toml",
        "--epochs",
        "1",
        "--out",
        run,
        "--verbose",
        "0",
    )
    assert trained.returncode == 0, trained.stderr
    assert "test: loss" in trained.stdout
    _, (X_test, _) = lm.datasets.fashion_mnist()
    images = X_test[:6]
    files = lm.datasets.to_image_folder(images, np.zeros(6, int), tmp_path / "pngs")
    result = lamina("predict", run / "model.lamina", *files, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    model = lm.load_model(run / "model.lamina")
    expected = model.predict(images[..., None])
    names = lm.datasets.FASHION_MNIST_CLASSES
    assert [row["class"] for row in rows] == [names[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([row["confidence"] for row in rows], expected.max(axis=1), rtol=1e-6)
    assert len(rows[0]["top"]) == 3
    exported = lamina("export", run / "model.lamina", "--onnx", tmp_path / "mlp.onnx")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "mlp.onnx").stat().st_size > 400_000


BAD_CONFIGS = {
    "unknown key": (
        '[optimizer]\ntype = "adam"\nlearnin_rate = 0.1\n',
        ["unknown key `learnin_rate`", "did you mean `learning_rate`", ":"],
    ),
    "wrong type": (
        '[optimizer]\ntype = "adam"\nlearning_rate = "fast"\n',
        ["learning_rate", "fast"],
    ),
    "unknown layer": ('[[layers]]\ntype = "dense2"\n', ["unknown type 'dense2'", "dense"]),
    "unknown optimizer": ('[optimizer]\ntype = "lion"\n', ["unknown type 'lion'", "adam"]),
    "missing data path": (None, ["no-such-folder"]),
    "unknown table": ("[trainer]\nepochs = 3\n", ["unknown table [trainer]", "train"]),
    "not TOML": ("[compile\n", ["not valid TOML"]),
}

BASE = """
[data]
dataset = "spiral"

[[layers]]
type = "dense"
n_inputs = 2
n_neurons = 3
activation = "softmax"

[compile]
loss = "categorical_crossentropy"

[train]
epochs = 1
"""


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_config_errors_exit_2_with_one_line(case: str, tmp_path: Path) -> None:
    extra, words = BAD_CONFIGS[case]
    if extra is None:
        text = BASE.replace(
            'dataset = "spiral"', 'dataset = "image_folder"\npath = "no-such-folder"'
        )
    elif extra.startswith("[[layers]]"):
        text = BASE.replace('type = "dense"', 'type = "dense2"')
    else:
        text = BASE + extra
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = lamina("train", path, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    debug = lamina("--debug", "train", path, "--out", tmp_path / "out")
    assert "Traceback" in debug.stderr


def test_unknown_key_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + '[optimizer]\ntype = "adam"\nlearnin_rate = 0.1\n')
    result = lamina("train", path)
    line = BASE.count("\n") + 3
    assert f"bad.toml:{line}:" in result.stderr


@pytest.mark.parametrize("config", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_config_runs(config: str, tmp_path: Path) -> None:
    slow = "fashion" in config or config in ("adding_problem.toml", "sine_forecast.toml")
    epochs = "1" if slow else "20"  # an epoch of those takes seconds, not milliseconds
    result = lamina(
        "train", EXAMPLES / config, "--epochs", epochs, "--out", tmp_path, "--verbose", "0"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.lamina").exists()


def test_cv_and_search_commands(tmp_path: Path) -> None:
    cv = lamina(
        "cv",
        EXAMPLES / "spiral.toml",
        "--folds",
        "3",
        "--epochs",
        "50",
        "--jobs",
        "2",
        "--csv",
        tmp_path / "cv.csv",
    )
    assert cv.returncode == 0, cv.stderr
    assert "3-fold cross-validation" in cv.stdout and "mean" in cv.stdout
    assert len((tmp_path / "cv.csv").read_text().splitlines()) >= 4
    search = lamina(
        "search",
        EXAMPLES / "spiral.toml",
        "--grid",
        "optimizer.learning_rate=0.005,0.02",
        "--folds",
        "2",
        "--epochs",
        "50",
        "--refit",
        tmp_path / "best.lamina",
    )
    assert search.returncode == 0, search.stderr
    assert "learning_rate" in search.stdout and (tmp_path / "best.lamina").exists()
    bad = lamina("search", EXAMPLES / "spiral.toml", "--grid", "optimizer.learnin_rate=0.1")
    assert bad.returncode == 2 and "learning_rate" in bad.stderr


def test_train_resume_continues_the_epochs(tmp_path: Path) -> None:
    first = lamina("train", EXAMPLES / "spiral.toml", "--epochs", "30", "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    resumed = lamina(
        "train",
        EXAMPLES / "spiral.toml",
        "--epochs",
        "20",
        "--out",
        tmp_path / "a",
        "--resume",
        tmp_path / "a" / "model.lamina",
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = lamina("train", EXAMPLES / "spiral.toml", "--epochs", "50", "--out", tmp_path / "b")
    assert straight.returncode == 0, straight.stderr
    rows = (tmp_path / "a" / "history.csv").read_text().splitlines()
    assert len(rows) == 51 and rows == (tmp_path / "b" / "history.csv").read_text().splitlines()
    a = lm.load_model(tmp_path / "a" / "model.lamina")
    b = lm.load_model(tmp_path / "b" / "model.lamina")
    assert a.epochs_done == b.epochs_done == 50
    np.testing.assert_array_equal(a.layers[0].params["weights"], b.layers[0].params["weights"])
