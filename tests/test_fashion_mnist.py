"""The benchmark workloads (DESIGN §8) learn real Fashion-MNIST: W1, the notes' MLP, reaches
≥ 0.88 test accuracy in 10 epochs. W2, the CNN of notes §1.11, ≥ 0.90 in 5 epochs and W2
with BatchNorm ≥ 0.915, each on average over seeds, are checked by ``benchmarks/claims.py``
(minutes a seed); the suite runs that script on a small subset so that it keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import lamina as lm
from lamina.layers import Dense


def test_w1_reaches_088_test_accuracy_in_10_epochs() -> None:
    (X_train, y_train), (X_test, y_test) = lm.datasets.fashion_mnist()
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32)
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32)
    # standardisation fitted on the training images only (notes §1.5, §1.9)
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0) + 1e-3
    X_train = (X_train - mean) / scale
    X_test = (X_test - mean) / scale

    model = lm.Model(
        [
            Dense(784, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 128, activation="relu", weight_init="glorot_uniform"),
            Dense(128, 10, activation="softmax", weight_init="glorot_uniform"),
        ],
        seed=1,
    )
    model.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    history = model.fit(X_train, y_train, epochs=10, batch_size=128, verbose=0)
    result = model.evaluate(X_test, y_test)
    print(f"W1 test accuracy {result['accuracy']:.4f}")
    assert result["accuracy"] >= 0.88
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_the_slow_claims_script_runs() -> None:
    # W2 ≥ 0.90 and W2 + BatchNorm ≥ 0.915 on average over three seeds (issue 3) are claims
    # about means of 5-epoch runs (~1.5 min each here), so benchmarks/claims.py checks them,
    # not the suite (measured: see benchmarks/README.md); the suite keeps the script working
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "claims.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()[2:]}
    assert sorted(rows) == ["w2", "w2-batchnorm"]
    for row in rows.values():
        accuracies = [float(value) for value in row.split("|")[2].split(",")]
        assert len(accuracies) == 2 and all(0.5 < accuracy <= 1.0 for accuracy in accuracies)
        assert "completed" in row
