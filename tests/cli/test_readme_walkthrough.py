"""The README's command line, as a new user runs it (issue 19): its walkthrough in order on
one model file, and its TOML sample, both read out of README.md by the test itself, so
that the README cannot drift from what runs.

The only change to what the README says: the CNN config's [data] gets ``limit = 2000``
(the first 1,000 training images), so that the walkthrough takes seconds, not minutes.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import lamina as lm
from lamina import cli

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 'dataset = "fashion_mnist"\nlimit = 1000'


def section(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def readme_commands() -> list[list[str]]:
    """The `lamina ...` commands of the README's command-line block, in order, each split
    as the shell splits it (comments dropped, continued lines joined)."""
    block = re.search(r"```sh\n(.*?)```", section("On the command line"), re.DOTALL)
    assert block is not None, "README's 'On the command line' has no sh block"
    text = block.group(1).replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in text.splitlines()]
    return [words for words in commands if words and words[0] == "lamina"]


def lamina(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *words[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_walkthrough_runs_in_order_on_one_model(tmp_path: Path) -> None:
    walkthrough = [
        words
        for words in readme_commands()
        if "examples/fashion_mnist_cnn.toml" in words or any("runs/cnn" in w for w in words)
    ]
    verbs = [words[1] for words in walkthrough]
    assert verbs[:6] == ["train", "evaluate", "predict", "info", "export", "train"], verbs
    assert "--resume" in walkthrough[5]
    (tmp_path / "examples").mkdir()
    config = (ROOT / "examples" / "fashion_mnist_cnn.toml").read_text()
    assert 'dataset = "fashion_mnist"' in config
    (tmp_path / "examples" / "fashion_mnist_cnn.toml").write_text(
        config.replace('dataset = "fashion_mnist"', LIMIT, 1)
    )
    _, (X_test, y_test) = lm.datasets.fashion_mnist()
    images = {"shirt.png": X_test[y_test == 6][0], "boot.jpg": X_test[y_test == 9][0]}
    for name, pixels in images.items():
        Image.fromarray(pixels).save(tmp_path / name)
    run = tmp_path / "runs" / "cnn"
    outputs = {}
    for words in walkthrough:
        result = lamina(words, tmp_path)
        assert result.returncode == 0, (" ".join(words), result.stderr)
        assert "Traceback" not in result.stderr
        outputs.setdefault(words[1], []).append(result.stdout)
    assert (run / "confusion_matrix.png").exists() and (run / "model.onnx").exists()
    rows = json.loads(outputs["predict"][0])
    assert [row["input"] for row in rows] == list(images)
    assert all(len(row["top"]) == 3 for row in rows)
    assert "epochs trained: 1" in outputs["info"][0]
    assert "trained 1 epoch(s)" in outputs["train"][1] and "(epoch 2)" in outputs["train"][1]
    assert lm.load_model(run / "model.lamina").epochs_done == 5  # the last: the config's 5


def test_a_failed_resume_leaves_no_run_folder(tmp_path: Path) -> None:
    config = tmp_path / "spiral.toml"
    shutil.copy(ROOT / "examples" / "spiral.toml", config)
    cnn = tmp_path / "cnn.toml"
    cnn.write_text(
        (ROOT / "examples" / "fashion_mnist_cnn.toml")
        .read_text()
        .replace('dataset = "fashion_mnist"', 'dataset = "fashion_mnist"\nlimit = 200', 1)
    )
    trained = lamina(["lamina", "train", str(cnn), "--epochs", "1", "--out", "a"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "resumed"
    resumed = lamina(
        ["lamina", "train", str(config), "--resume", "a/model.lamina", "--out", str(out)],
        tmp_path,
    )
    assert resumed.returncode == 2 and len(resumed.stderr.splitlines()) == 1, resumed.stderr
    assert "the resumed model a/model.lamina does not fit" in resumed.stderr
    assert not out.exists()


def test_the_toml_sample_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = re.search(r"```toml\n(.*?)```", section("On the command line"), re.DOTALL)
    assert sample is not None, "README's 'On the command line' has no TOML sample"
    text = sample.group(1)
    assert 'dataset = "fashion_mnist"' in text
    path = tmp_path / "sample.toml"
    path.write_text(text.replace('dataset = "fashion_mnist"', LIMIT, 1))
    code = cli.main(["train", str(path), "--epochs", "1", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "trained 1 epoch(s)" in out and "test: loss" in out
    model = lm.load_model(tmp_path / "out" / "model.lamina")
    assert model.augmentation, "the sample's augmentation is part of the model"


def test_version_and_help_are_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lamina {lm.__version__}"
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and "DESIGN" not in text
    parser_commands = re.findall(r"^    ([a-z-]+)", text.split("commands:", 1)[1], re.MULTILINE)
    for command in (
        "train",
        "evaluate",
        "predict",
        "info",
        "cv",
        "search",
        "export",
        "gradcheck",
        "trace",
        "lr-find",
    ):
        assert command in parser_commands, command
