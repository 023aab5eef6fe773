"""A config whose model does not fit its data or its loss stops before training, with one
line naming the file and the line that causes it, and exit status 2 (issue 19;
``lamina.config.fit``). The configs that fit still train, and the check changes nothing of
what they train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import cli
from lamina import config as configs

HIDDEN = """[[layers]]
type = "dense"
n_inputs = 2
n_neurons = 8
activation = "relu"
"""


def config(
    data: str = 'dataset = "spiral"\nsamples = 20',
    output: str = 'n_neurons = 3\nactivation = "softmax"',
    loss: str = '"categorical_crossentropy"',
    before: str = HIDDEN,
    extra: str = "",
) -> str:
    return f"""[data]
{data}

{before}
[[layers]]
type = "dense"
n_inputs = 8
{output}

[compile]
loss = {loss}

[train]
epochs = 2
verbose = 0

{extra}
"""


IMAGES = 'dataset = "fashion_mnist"\nlimit = 64'
FLAT = '[[preprocessing]]\ntype = "flatten"\n'

# name: (config text, the text of the line the error must name, words it must hold)
MISFITS: dict[str, tuple[str, str, list[str]]] = {
    "softmax wider than the classes": (
        config(output='n_neurons = 5\nactivation = "softmax"'),
        "n_neurons = 5",
        ["5 outputs", "3 classes", "n_neurons = 3"],
    ),
    "softmax narrower than the classes": (
        config(output='n_neurons = 2\nactivation = "softmax"'),
        "n_neurons = 2",
        ["2 outputs", "3 classes", "n_neurons = 3"],
    ),
    "relu output for cross-entropy": (
        config(output='n_neurons = 3\nactivation = "relu"'),
        'activation = "relu"\n\n[compile]',
        ["probabilities that sum to 1", 'activation = "softmax"'],
    ),
    "sigmoid output for categorical cross-entropy": (
        config(output='n_neurons = 3\nactivation = "sigmoid"'),
        'activation = "sigmoid"',
        ["sum to 1", "Sigmoid"],
    ),
    "binary cross-entropy for three classes": (
        config(output='n_neurons = 1\nactivation = "sigmoid"', loss='"binary_crossentropy"'),
        "loss =",
        ["3 classes", "categorical_crossentropy"],
    ),
    "binary cross-entropy on an unbounded output": (
        config(
            data='dataset = "spiral"\nsamples = 20\nclasses = 2',
            output='n_neurons = 1\nactivation = "relu"',
            loss='"binary_crossentropy"',
        ),
        'activation = "relu"\n\n[compile]',
        ["probabilities in [0, 1]", 'activation = "sigmoid"'],
    ),
    "regression targets outside a sigmoid": (
        config(
            data='dataset = "sine"\nsamples = 50',
            before=HIDDEN.replace("n_inputs = 2", "n_inputs = 1"),
            output='n_neurons = 1\nactivation = "sigmoid"',
            loss='"mse"',
        ),
        'activation = "sigmoid"',
        ["targets' range [-0.998, 0.998]", "without an activation"],
    ),
    "regression with more outputs than targets": (
        config(
            data='dataset = "sine"\nsamples = 50',
            before=HIDDEN.replace("n_inputs = 2", "n_inputs = 1"),
            output="n_neurons = 3",
            loss='"mse"',
        ),
        "n_neurons = 3",
        ["(n_samples, 3)", "one neuron per target"],
    ),
    "augmentation on flat data": (
        config(extra='[[augmentation]]\ntype = "random_flip"'),
        'type = "random_flip"',
        ["RandomFlip needs images", "shape (2,)"],
    ),
    "augmentation after a flatten step": (
        config(
            data=IMAGES,
            before=FLAT + HIDDEN.replace("n_inputs = 2", "n_inputs = 784"),
            output='n_neurons = 10\nactivation = "softmax"',
            extra='[[augmentation]]\ntype = "random_shift"\nmax_fraction = 0.1',
        ),
        'type = "random_shift"',
        ["flatten step made them flat", 'first [[layers]] type = "flatten"'],
    ),
    "missing n_inputs": (
        config(before=HIDDEN.replace("n_inputs = 2\n", "")),
        '[[layers]]\ntype = "dense"\nn_neurons = 8',
        ["no `n_inputs`", "Fix: add n_inputs = ...", "[model] input_shape"],
    ),
    "first layer's n_inputs is not the data's": (
        config(before=HIDDEN.replace("n_inputs = 2", "n_inputs = 3")),
        "n_inputs = 3",
        ["(batch, 3)", "(batch, 2)"],
    ),
    "conv2d on flat data": (
        config(
            before='[[layers]]\ntype = "conv2d"\nin_channels = 1\nfilters = 8\nkernel_size = 1\n'
            '[[layers]]\ntype = "flatten"\n'
        ),
        "in_channels = 1",
        ["Conv2D", "(batch, 2)"],
    ),
    "flat data through a resize step": (
        config(extra='[[preprocessing]]\ntype = "resize"\nsize = [8, 8]'),
        'type = "resize"',
        ["shape (2,)"],
    ),
    "cosine decay without its rate": (
        config(extra='[[callbacks]]\ntype = "cosine_decay"'),
        '[[callbacks]]\ntype = "cosine_decay"',
        ["missing key `initial_learning_rate`"],
    ),
}


def line_number(text: str, snippet: str) -> int:
    """The 1-based line where ``snippet`` begins (its first line, when it spans more)."""
    start = text.index(snippet)
    return text.count("\n", 0, start) + 1


@pytest.mark.parametrize("case", list(MISFITS))
def test_a_config_that_does_not_fit_stops_before_training(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, at, words = MISFITS[case]
    path = tmp_path / "misfit.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = cli.main(["train", str(path), "--out", str(out)])
    stdout, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err and "--debug" not in line, line
    number = line_number(text, at)
    assert line.startswith(f"lamina: error: {path}:{number}: "), (line, number)
    for word in words:
        assert word in line, (word, line)
    assert not out.exists(), "a config refused before training leaves no run folder"
    assert "Epoch" not in stdout + err


def test_at_least_ten_misfits_are_covered() -> None:
    assert len(MISFITS) >= 10


def test_a_resumed_model_that_does_not_fit_the_data_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spiral = tmp_path / "spiral.toml"
    spiral.write_text(config())
    assert cli.main(["train", str(spiral), "--out", str(tmp_path / "a")]) == 0
    sine = tmp_path / "sine.toml"
    sine.write_text(config(data='dataset = "sine"\nsamples = 50', loss='"mse"'))
    capsys.readouterr()
    out = tmp_path / "resumed"
    resume = ["train", str(sine), "--resume", str(tmp_path / "a" / "model.lamina")]
    code = cli.main([*resume, "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{sine}:2: [data]: the resumed model" in err[0], err[0]
    assert not out.exists()


def test_the_fit_check_changes_nothing_a_run_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fits.toml"
    path.write_text(
        config(
            data='dataset = "spiral"\nsamples = 20\nseed = 0',
            extra='[model]\nseed = 3\n[[callbacks]]\ntype = "early_stopping"\nmonitor = "loss"',
        )
    )
    assert cli.main(["train", str(path), "--out", str(tmp_path / "checked")]) == 0
    monkeypatch.setattr(configs, "check_fit", lambda *args, **kwargs: None)
    assert cli.main(["train", str(path), "--out", str(tmp_path / "unchecked")]) == 0
    capsys.readouterr()
    checked = lm.load_model(tmp_path / "checked" / "model.lamina")
    unchecked = lm.load_model(tmp_path / "unchecked" / "model.lamina")
    for a, b in zip(checked.layers, unchecked.layers, strict=True):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])


@pytest.mark.parametrize(
    "text",
    [
        config(),
        config(
            data='dataset = "sine"\nsamples = 50',
            before=HIDDEN.replace("n_inputs = 2", "n_inputs = 1"),
            output='n_neurons = 1\nactivation = "tanh"',
            loss='"mse"',
        ),
        config(
            data='dataset = "spiral"\nsamples = 20\nclasses = 2',
            output='n_neurons = 1\nactivation = "sigmoid"',
            loss='"binary_crossentropy"',
        ),
        config(
            data=IMAGES,
            before='[[layers]]\ntype = "flatten"\n'
            + HIDDEN.replace("n_inputs = 2", "n_inputs = 784"),
            output='n_neurons = 10\nactivation = "softmax"',
            extra='[[preprocessing]]\ntype = "standard_scaler"\n'
            '[[augmentation]]\ntype = "random_shift"\nmax_fraction = 0.1',
        ),
    ],
    ids=["softmax", "tanh regression", "sigmoid binary", "augmented images"],
)
def test_configs_that_fit_train(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fits.toml"
    path.write_text(text)
    code = cli.main(["train", str(path), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["cv", "--folds", "2", "--jobs", "1"],
        ["search", "--grid", "train.batch_size=8,16", "--folds", "2", "--jobs", "1"],
    ],
)
def test_cv_and_search_run_the_same_check_before_any_fold(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a softmax one wider than the spiral's three classes trained every fold silently
    text = config(output='n_neurons = 4\nactivation = "softmax"')
    path = tmp_path / "wide.toml"
    path.write_text(text)
    code = cli.main([command[0], str(path), *command[1:]])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, err
    number = line_number(text, "n_neurons = 4")
    assert lines[0].startswith(f"lamina: error: {path}:{number}: "), lines[0]
    assert "3 classes" in lines[0] and "fold" not in out + err
