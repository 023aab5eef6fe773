"""Every plot renders to a PNG without a screen (the pictures themselves are in docs/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lamina as lm
from lamina.layers import Dense

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def spiral_model() -> tuple[lm.Model, np.ndarray, np.ndarray]:
    X, y = lm.datasets.spiral(50, 3, seed=0)
    model = lm.Model([Dense(2, 16, activation="relu"), Dense(16, 3, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam(0.05))
    return model, X, y


def test_history_plot(tmp_path: Path) -> None:
    model, X, y = spiral_model()
    history = model.fit(X, y, epochs=5, validation_split=0.2, verbose=0)
    figure = lm.plot.history(history, tmp_path / "history.png")
    assert is_png(tmp_path / "history.png")
    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]
    assert len(figure.axes[0].lines) == 2  # training and validation


def test_confusion_matrix_plot(tmp_path: Path) -> None:
    matrix = lm.metrics.confusion_matrix(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1]), 3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    figure = lm.plot.confusion_matrix(matrix, class_names=["a", "b", "c"], path=tmp_path / "cm.png")
    assert is_png(tmp_path / "cm.png")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts.count("2") == 1 and texts.count("1") == 3


def test_decision_boundary_and_predictions_grid(tmp_path: Path) -> None:
    model, X, y = spiral_model()
    model.fit(X, y, epochs=20, batch_size=None, verbose=0)
    lm.plot.decision_boundary(model, X, y, resolution=50, path=tmp_path / "boundary.png")
    assert is_png(tmp_path / "boundary.png")
    images = np.random.default_rng(0).random((5, 6, 6, 1)).astype(np.float32)
    cnn = lm.Model([lm.layers.Flatten(), Dense(36, 3, activation="softmax")], seed=0)
    figure = lm.plot.predictions_grid(
        cnn,
        images,
        np.array([0, 1, 2, 0, 1]),
        class_names=["x", "y", "z"],
        columns=3,
        path=tmp_path / "grid.png",
    )
    assert is_png(tmp_path / "grid.png")
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert len(titles) == 5 and all("true:" in title for title in titles)
