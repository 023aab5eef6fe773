"""The gradient-check cases of every registered component (layers, activations, losses).

Each registry name maps to a function building one or more :class:`Case` objects. The
contract test (tests/test_contracts.py) and ``lamina gradcheck`` run them all, and fail
when a registered component has no case here. Inputs are drawn away from kinks (ReLU and
MAE at 0, L1's |θ| at 0), where a numerical derivative is meaningless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lamina import layers as L
from lamina import losses
from lamina.gradcheck import GradcheckReport, gradcheck
from lamina.layers.base import Layer
from lamina.layers.recurrent_base import Recurrent
from lamina.losses import Loss
from lamina.model import Model

Array = np.ndarray


@dataclass
class Case:
    name: str
    target: Layer | Loss | Model
    inputs: Array
    targets: Array | None = None
    mask: Array | None = None  # a padding mask, for a layer that uses_mask

    def run(self, tolerance: float = 1e-6) -> GradcheckReport:
        return gradcheck(
            self.target,
            self.inputs,
            self.targets,
            tolerance=tolerance,
            raise_on_failure=False,
            mask=self.mask,
        )


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.05) -> Array:
    """Standard normal draws pushed at least ``margin`` away from 0."""
    values = rng.standard_normal(shape)
    return np.sign(values) * (np.abs(values) + margin)


def _dense_cases(rng: np.random.Generator) -> list[Case]:
    x = away_from_zero(rng, (6, 5))
    regularized = L.Dense(5, 4, weight_l1=0.01, weight_l2=0.02, bias_l1=0.03, bias_l2=0.04)
    regularized.params["weights"] = away_from_zero(rng, (5, 4), 0.1)
    regularized.params["biases"] = away_from_zero(rng, (4,), 0.1)
    activated = L.Dense(5, 4, activation="tanh", weight_init="glorot_uniform")
    return [
        Case("dense", L.Dense(5, 4, weight_init="glorot_uniform"), x),
        Case("dense+l1/l2", regularized, x),
        Case("dense+tanh", activated, x),
        Case("dense on a sequence (every step)", L.Dense(3, 4), rng.standard_normal((3, 5, 3))),
        Case("dense tagger, a label per step", _tagger(), *_tagged(rng)),
    ]


def _tagger() -> Model:
    model = Model([L.Dense(3, 4, activation="tanh"), L.Dense(4, 3, activation="softmax")], seed=1)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=[])
    return model


def _tagged(rng: np.random.Generator) -> tuple[Array, Array]:
    """3 sequences of 4 steps and a class per step, for a sequence output."""
    return rng.standard_normal((3, 4, 3)), rng.integers(0, 3, (3, 4))


def _activation_case(
    cls: Callable[..., Layer], **kwargs: float
) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        return [Case(cls.__name__.lower(), cls(**kwargs), away_from_zero(rng, (4, 5)))]

    return build


def _gelu_cases(rng: np.random.Generator) -> list[Case]:
    x = rng.normal(0, 2, (4, 5))  # both tails and the curved middle; GELU has no kink
    return [
        Case("gelu (erf)", L.GELU(), x),
        Case("gelu (tanh approximation)", L.GELU(approximate="tanh"), x),
    ]


def _conv_cases(rng: np.random.Generator) -> list[Case]:
    regularized = L.Conv2D(
        2, 2, 3, stride=2, padding="same", activation="tanh", weight_l1=0.01, weight_l2=0.02
    )
    regularized.params["weights"] = away_from_zero(rng, (3, 3, 2, 2), 0.1)
    return [
        Case("conv2d 3x3 stride 1 valid", L.Conv2D(2, 3, 3), rng.standard_normal((2, 5, 5, 2))),
        Case(
            "conv2d 3x2 stride 2 same",
            L.Conv2D(3, 2, (3, 2), stride=2, padding="same"),
            rng.standard_normal((2, 6, 5, 3)),
        ),
        Case(
            "conv2d 2x2 stride (2,1) valid",
            L.Conv2D(1, 4, 2, stride=(2, 1)),
            rng.standard_normal((2, 5, 4, 1)),
        ),
        Case("conv2d odd same + tanh + l1/l2", regularized, rng.standard_normal((2, 5, 5, 2))),
        Case(  # ≥ 16 channels, 3×3, stride 1: by Winograd's F(2×2, 3×3), odd output sizes
            "conv2d 3x3 winograd same",
            L.Conv2D(16, 3, 3, padding="same"),
            rng.standard_normal((2, 5, 3, 16)),
        ),
    ]


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Values 0.1 apart in random order: no two inputs tie, so max pooling has a derivative."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


def _max_pool_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("max_pool2d 2x2 (reshape path)", L.MaxPool2D(2), distinct(rng, (2, 4, 4, 3))),
        Case(
            "max_pool2d 3x3 stride 2 (overlapping)",
            L.MaxPool2D(3, stride=2),
            distinct(rng, (2, 5, 5, 2)),
        ),
        Case("max_pool2d 2x1 on 5x3", L.MaxPool2D((2, 1)), distinct(rng, (2, 5, 3, 2))),
    ]


def _avg_pool_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("avg_pool2d 2x2 (reshape path)", L.AvgPool2D(2), rng.standard_normal((2, 4, 4, 3))),
        Case(
            "avg_pool2d 3x3 stride 2", L.AvgPool2D(3, stride=2), rng.standard_normal((2, 5, 5, 2))
        ),
        Case("avg_pool2d 2x2 on 5x5", L.AvgPool2D(2), rng.standard_normal((2, 5, 5, 2))),
    ]


def _batch_norm_cases(rng: np.random.Generator) -> list[Case]:
    dense_layout, image_layout = L.BatchNorm(4), L.BatchNorm(3, momentum=0.5)
    for layer in (dense_layout, image_layout):
        layer.params["gamma"] = rng.uniform(0.5, 1.5, layer.n_features)
        layer.params["beta"] = rng.standard_normal(layer.n_features)
    return [
        Case("batch_norm (N, F), training", dense_layout, rng.standard_normal((6, 4)) * 2 + 1),
        Case("batch_norm NHWC, training", image_layout, rng.standard_normal((2, 3, 3, 3))),
    ]


def _flatten_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("flatten", L.Flatten(), rng.standard_normal((2, 3, 3, 2)))]


def _dropout_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("dropout", L.Dropout(0.3), rng.standard_normal((8, 6)))]


def _class_targets(rng: np.random.Generator, n: int, k: int) -> tuple[Array, Array]:
    logits = rng.standard_normal((n, k))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, rng.integers(0, k, n)


def _cce_cases(rng: np.random.Generator) -> list[Case]:
    y_pred, labels = _class_targets(rng, 6, 4)
    one_hot = np.eye(4)[labels]
    fused = Model([L.Dense(5, 4, activation="softmax", weight_init="glorot_uniform")], seed=0)
    fused.compile(loss="categorical_crossentropy", optimizer="sgd")
    separate = Model([L.Dense(5, 4, weight_init="glorot_uniform"), L.Softmax()], seed=1)
    separate.compile(loss="categorical_crossentropy", optimizer="sgd")
    smoothed = Model([L.Dense(5, 4, activation="softmax", weight_init="glorot_uniform")], seed=2)
    smoothed.compile(loss=losses.CategoricalCrossentropy(label_smoothing=0.2), optimizer="sgd")
    x = rng.standard_normal((6, 5))
    smoothing = losses.CategoricalCrossentropy(label_smoothing=0.1)
    return [
        Case("cce/labels", losses.CategoricalCrossentropy(), y_pred, labels),
        Case("cce/one-hot", losses.CategoricalCrossentropy(), y_pred, one_hot),
        Case("cce/labels, label smoothing", smoothing, y_pred, labels),
        Case("cce/one-hot, label smoothing", smoothing, y_pred, one_hot),
        Case("softmax+cce fused (Dense activation)", fused, x, labels),
        Case("softmax+cce fused (Softmax layer)", separate, x, labels),
        Case("softmax+cce fused, label smoothing", smoothed, x, labels),
    ]


def _bce_cases(rng: np.random.Generator) -> list[Case]:
    y_pred = rng.uniform(0.05, 0.95, (6, 3))
    return [Case("bce", losses.BinaryCrossentropy(), y_pred, rng.integers(0, 2, (6, 3)))]


def _regression_case(cls: type[Loss]) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        y_true = rng.standard_normal((6, 2))
        y_pred = y_true + away_from_zero(rng, (6, 2), 0.05)
        return [Case(cls.__name__, cls(), y_pred, y_true)]

    return build


def _gaussian_nll_cases(rng: np.random.Generator) -> list[Case]:
    """μ and s of two targets (s from −3 to 3: softplus in its curved part and near linear),
    one target, and through a model whose 1-D targets go through ``prepare_targets``."""
    loss = losses.GaussianNLL()
    y_true = rng.standard_normal((6, 2))
    y_pred = np.concatenate([y_true + rng.normal(0, 0.5, (6, 2)), rng.uniform(-3, 3, (6, 2))], 1)
    model = Model([L.Dense(3, 2, weight_init="glorot_uniform")], seed=3)
    model.compile(loss=losses.GaussianNLL(epsilon=1e-3), optimizer="sgd", metrics=[])
    return [
        Case("gaussian_nll, 2 targets", loss, y_pred, y_true),
        Case("gaussian_nll, 1 target", loss, y_pred[:, ::2], y_true[:, :1]),
        Case("gaussian_nll through a Dense head", model, rng.standard_normal((6, 3)), y_true[:, 0]),
    ]


LAYER_CASES: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "dense": _dense_cases,
    "conv2d": _conv_cases,
    "max_pool2d": _max_pool_cases,
    "avg_pool2d": _avg_pool_cases,
    "batch_norm": _batch_norm_cases,
    "flatten": _flatten_cases,
    "dropout": _dropout_cases,
    "linear": _activation_case(L.Linear),
    "relu": _activation_case(L.ReLU),
    "leaky_relu": _activation_case(L.LeakyReLU, alpha=0.1),
    "sigmoid": _activation_case(L.Sigmoid),
    "tanh": _activation_case(L.Tanh),
    "softmax": _activation_case(L.Softmax),
    "gelu": _gelu_cases,
}

LOSS_CASES: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "categorical_crossentropy": _cce_cases,
    "binary_crossentropy": _bce_cases,
    "mean_squared_error": _regression_case(losses.MeanSquaredError),
    "mean_absolute_error": _regression_case(losses.MeanAbsoluteError),
    "gaussian_nll": _gaussian_nll_cases,
}


def all_cases(seed: int = 0) -> list[Case]:
    """Every case of every registered layer and loss, built from one seed."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for table in (LAYER_CASES, LOSS_CASES):
        for build in table.values():
            cases.extend(build(rng))
    return cases


# -- sequences: 1-D convolution and pooling, global pooling, Embedding, Masking -------------


def _conv1d_cases(rng: np.random.Generator) -> list[Case]:
    regularized = L.Conv1D(2, 3, 3, padding="causal", dilation=2, weight_l1=0.01, weight_l2=0.02)
    regularized.params["weights"] = away_from_zero(rng, (3, 2, 3), 0.1)
    return [
        Case("conv1d k3 stride 1 valid", L.Conv1D(2, 3, 3), rng.standard_normal((2, 7, 2))),
        Case(
            "conv1d k3 stride 2 same + tanh",
            L.Conv1D(3, 2, 3, stride=2, padding="same", activation="tanh"),
            rng.standard_normal((2, 8, 3)),
        ),
        Case("conv1d k3 dilation 2 causal + l1/l2", regularized, rng.standard_normal((2, 7, 2))),
        Case(
            "conv1d k2 stride 2 dilation 3 same",
            L.Conv1D(1, 2, 2, stride=2, padding="same", dilation=3),
            rng.standard_normal((3, 9, 1)),
        ),
    ]


def _pool1d_cases(
    cls: type[L.MaxPool1D] | type[L.AvgPool1D],
) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        name = cls.__name__.lower()
        return [
            Case(f"{name} 2", cls(2), distinct(rng, (2, 7, 3))),
            Case(f"{name} 3 stride 2 (overlapping)", cls(3, stride=2), distinct(rng, (2, 8, 2))),
            Case(
                f"{name} 3 stride 2 same",
                cls(3, stride=2, padding="same"),
                distinct(rng, (2, 8, 2)),
            ),
        ]

    return build


def _lengths_mask(rng: np.random.Generator, n: int, steps: int) -> Array:
    """A padding mask of sequences of random lengths 1 … steps, one of them full."""
    lengths = rng.integers(1, steps + 1, n)
    lengths[0] = steps
    return np.arange(steps) < lengths[:, None]


def _global_pool1d_cases(cls: type[Layer]) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        name = cls.__name__
        return [
            Case(name, cls(), distinct(rng, (3, 5, 4))),
            Case(f"{name}, masked", cls(), distinct(rng, (4, 6, 3)), mask=_lengths_mask(rng, 4, 6)),
        ]

    return build


def _global_pool2d_cases(cls: type[Layer]) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        return [Case(cls.__name__, cls(), distinct(rng, (2, 3, 4, 3)))]

    return build


def _embedding_cases(rng: np.random.Generator) -> list[Case]:
    ids = rng.integers(0, 6, (4, 5))
    ids[0, :3] = 2  # an id repeated within a sample, and across samples below
    ids[1, 0] = 2
    regularized = L.Embedding(7, 3, mask_zero=True, weight_l1=0.01, weight_l2=0.05)
    regularized.params["weights"] = away_from_zero(rng, (7, 3), 0.1)
    return [
        Case("embedding, repeated ids", L.Embedding(6, 3), ids),
        Case("embedding mask_zero + l1/l2, float ids", regularized, ids.astype(np.float64)),
    ]


def _masking_cases(rng: np.random.Generator) -> list[Case]:
    """No padded step: perturbing one feature of a padded step makes it real, so the mask
    jumps and a numerical derivative there means nothing (tests/layers cover those steps)."""
    x = rng.standard_normal((3, 5, 2))
    x[1, 3, 0] = 0.5  # one feature at mask_value does not make a step padded
    return [Case("masking (no padded step)", L.Masking(mask_value=0.5), x)]


LAYER_CASES.update(
    {
        "conv1d": _conv1d_cases,
        "max_pool1d": _pool1d_cases(L.MaxPool1D),
        "avg_pool1d": _pool1d_cases(L.AvgPool1D),
        "global_average_pooling1d": _global_pool1d_cases(L.GlobalAveragePooling1D),
        "global_max_pooling1d": _global_pool1d_cases(L.GlobalMaxPooling1D),
        "global_average_pooling2d": _global_pool2d_cases(L.GlobalAveragePooling2D),
        "global_max_pooling2d": _global_pool2d_cases(L.GlobalMaxPooling2D),
        "embedding": _embedding_cases,
        "masking": _masking_cases,
    }
)


# -- recurrent layers and Bidirectional -----------------------------------------------------


def _ragged_mask() -> Array:
    """4 sequences of 6 steps: one fully real, two post-padded (lengths 4 and 2), and one of
    length 5 with an interior masked step."""
    mask = np.arange(6) < np.array([6, 4, 5, 2])[:, None]
    mask[2, 2] = False
    return mask


def _recurrent_cases(cls: type[Recurrent]) -> Callable[[np.random.Generator], list[Case]]:
    def build(rng: np.random.Generator) -> list[Case]:
        name, mask = cls.__name__, _ragged_mask()
        learned = cls(2, 3, return_sequences=True, trainable_initial_state=True)
        for key in ("initial_state", "initial_cell"):
            if key in learned.params:
                learned.params[key] = rng.uniform(-0.8, 0.8, 3)
        sequences = cls(2, 3, return_sequences=True)
        return [
            Case(f"{name} last state", cls(2, 3), rng.standard_normal((3, 5, 2))),
            Case(f"{name} sequences", sequences, rng.standard_normal((3, 5, 2))),
            Case(
                f"{name} last state, masked", cls(2, 3), rng.standard_normal((4, 6, 2)), mask=mask
            ),
            Case(f"{name} sequences, masked", sequences, rng.standard_normal((4, 6, 2)), mask=mask),
            Case(f"{name} learned h0, masked", learned, rng.standard_normal((4, 6, 2)), mask=mask),
        ]

    return build


def _bidirectional_cases(rng: np.random.Generator) -> list[Case]:
    mask = _ragged_mask()
    return [
        Case(
            "bidirectional GRU concat", L.Bidirectional(L.GRU(2, 3)), rng.standard_normal((3, 5, 2))
        ),
        Case(
            "bidirectional LSTM concat, masked",
            L.Bidirectional(L.LSTM(2, 3)),
            rng.standard_normal((4, 6, 2)),
            mask=mask,
        ),
        Case(
            "bidirectional GRU sequences sum, masked",
            L.Bidirectional(L.GRU(2, 3, return_sequences=True), merge_mode="sum"),
            rng.standard_normal((4, 6, 2)),
            mask=mask,
        ),
        Case(
            "bidirectional SimpleRNN sequences mul, masked",
            L.Bidirectional(L.SimpleRNN(2, 3, return_sequences=True), merge_mode="mul"),
            rng.standard_normal((4, 6, 2)),
            mask=mask,
        ),
    ]


LAYER_CASES.update(
    {
        "simple_rnn": _recurrent_cases(L.SimpleRNN),
        "gru": _recurrent_cases(L.GRU),
        "lstm": _recurrent_cases(L.LSTM),
        "bidirectional": _bidirectional_cases,
    }
)
