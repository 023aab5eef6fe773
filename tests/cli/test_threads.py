"""``--threads N`` pins the BLAS threads of ``train``, ``evaluate`` and ``predict``
(``lamina.blas_threads``): the same N, seed and data give bit-identical weights, and the
model file records N beside the seed (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lamina as lm
from lamina import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notes' MLP (W1) on 1,000 images for one epoch: products large enough for BLAS
    to split them between threads."""
    text = (ROOT / "examples" / "fashion_mnist_mlp.toml").read_text()
    path = tmp_path_factory.mktemp("threads") / "mlp.toml"
    path.write_text(
        text.replace('dataset = "fashion_mnist"', 'dataset = "fashion_mnist"\nlimit = 1000')
    )
    return path


def trained(config: Path, out: Path, threads: int) -> lm.Model:
    argv = ["train", str(config), "--epochs", "1", "--verbose", "0", "--out", str(out)]
    assert cli.main([*argv, "--threads", str(threads)]) == 0
    return lm.load_model(out / "model.lamina")


@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_thread_count_gives_bit_identical_weights(
    threads: int, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = trained(config, tmp_path / "a", threads)
    second = trained(config, tmp_path / "b", threads)
    capsys.readouterr()
    for a, b in zip(first.layers, second.layers, strict=True):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])
    assert first.blas_threads == second.blas_threads == threads


def test_evaluate_and_predict_take_threads(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = trained(config, tmp_path / "run", 1)
    path = str(tmp_path / "run" / "model.lamina")
    assert cli.main(["evaluate", path, "--threads", "1"]) == 0
    assert "accuracy" in capsys.readouterr().out
    _, (X_test, _) = lm.datasets.fashion_mnist()
    from PIL import Image

    Image.fromarray(X_test[0]).save(tmp_path / "image.png")
    assert cli.main(["predict", path, str(tmp_path / "image.png"), "--threads", "2"]) == 0
    assert "image.png" in capsys.readouterr().out
    assert model.blas_threads == 1
    assert cli.main(["train", str(config), "--threads", "0"]) == 2
    assert "--threads: expected an integer >= 1" in capsys.readouterr().err
    # a count no machine has: one line naming the bound, no traceback, nothing trained
    assert cli.main(["train", str(config), "--threads", str(2**70)]) == 2
    err = capsys.readouterr().err
    assert "threads must be a whole number of BLAS threads from 1 to 1024" in err
    assert "Traceback" not in err
