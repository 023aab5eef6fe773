"""Draw the pictures in docs/ from real runs: ``python docs/figures.py``.

history.png and confusion-matrix.png come from the W1 MLP on Fashion-MNIST (3 epochs),
decision-boundary.png from the notes' spiral model, predictions-grid.png from the MLP's
predictions on test images.
"""

from __future__ import annotations

from pathlib import Path

import lamina as lm
from lamina.layers import Dense

DOCS = Path(__file__).resolve().parent


def main() -> None:
    (X, y), (X_test, y_test) = lm.datasets.fashion_mnist()
    pipeline = lm.preprocessing.Pipeline(
        [lm.preprocessing.Flatten(), lm.preprocessing.StandardScaler()]
    )
    model = lm.Model(
        [
            Dense(784, 128, activation="relu"),
            Dense(128, 128, activation="relu"),
            Dense(128, 10, activation="softmax"),
        ],
        seed=0,
        preprocessing=pipeline,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    history = model.fit(X, y, epochs=3, batch_size=128, validation_split=0.1, verbose=0)
    lm.plot.history(history, DOCS / "history.png")
    predicted = model.predict(X_test).argmax(axis=1)
    matrix = lm.metrics.confusion_matrix(y_test, predicted, 10)
    names = lm.datasets.FASHION_MNIST_CLASSES
    lm.plot.confusion_matrix(matrix, class_names=names, path=DOCS / "confusion-matrix.png")
    lm.plot.predictions_grid(
        model, X_test[:16], y_test[:16], class_names=names, path=DOCS / "predictions-grid.png"
    )

    Xs, ys = lm.datasets.spiral(100, 3, seed=0)
    spiral = lm.Model([Dense(2, 64, activation="relu"), Dense(64, 3, activation="softmax")], seed=0)
    spiral.compile(
        loss="categorical_crossentropy",
        optimizer=lm.optimizers.Adam(learning_rate=0.02, decay=1e-5),
    )
    spiral.fit(Xs, ys, epochs=5000, batch_size=None, verbose=0)
    lm.plot.decision_boundary(spiral, Xs, ys, path=DOCS / "decision-boundary.png")
    print("wrote", ", ".join(p.name for p in sorted(DOCS.glob("*.png"))))


if __name__ == "__main__":
    main()
