"""lamina: neural networks on NumPy that show every formula of the notes they implement.

The public API::

    import lamina as lm
    model = lm.Model([lm.layers.Dense(784, 128, activation="relu"),
                      lm.layers.Dense(128, 10, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer=lm.optimizers.Adam())
    model.fit(X, y, epochs=10, batch_size=128)
"""

from lamina import (
    augmentation,
    callbacks,
    datasets,
    ensemble,
    errors,
    initializers,
    io,
    layers,
    losses,
    metrics,
    model_selection,
    onnx,
    optimizers,
    plot,
    preprocessing,
    registration,
    regularizers,
)
from lamina._version import __version__
from lamina.gradcheck import GradcheckReport, gradcheck
from lamina.io import load_model
from lamina.lr_finder import LRFinderResult, lr_finder
from lamina.model import Model
from lamina.registration import register
from lamina.system import show_versions, system_info
from lamina.threads import blas_threads

__all__ = [
    "GradcheckReport",
    "LRFinderResult",
    "Model",
    "__version__",
    "augmentation",
    "blas_threads",
    "callbacks",
    "datasets",
    "ensemble",
    "errors",
    "gradcheck",
    "initializers",
    "io",
    "layers",
    "load_model",
    "losses",
    "lr_finder",
    "metrics",
    "model_selection",
    "onnx",
    "optimizers",
    "plot",
    "preprocessing",
    "register",
    "registration",
    "regularizers",
    "show_versions",
    "system_info",
]
