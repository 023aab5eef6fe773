"""scikit-learn estimators for lamina networks: :class:`LaminaClassifier`, :class:`LaminaRegressor`.

They follow the estimator protocol, so a lamina network works wherever scikit-learn
expects an estimator — ``Pipeline([("scale", StandardScaler()), ("net", LaminaClassifier())])``,
``GridSearchCV``, ``cross_val_score``, ``clone``::

    from lamina.sklearn import LaminaClassifier
    net = LaminaClassifier(hidden_layer_sizes=(64,), epochs=50, learning_rate=1e-2)
    net.fit(X_train, y_train).score(X_test, y_test)

The constructor stores its arguments unchanged (``get_params``/``set_params``/``clone``);
``fit`` checks the data (``validate_data``), builds a fresh network and trains it. The
default network is scikit-learn's ``MLPClassifier``/``MLPRegressor``'s: Dense layers of
``hidden_layer_sizes`` with ReLU, then a Softmax output and categorical cross-entropy for
classes (notes §1.2, §1.3; softmax over two outputs for a binary problem) or a linear output
and mean squared error for values (notes §1.8). ``build(n_features, n_outputs, seed)`` may
return any compiled :class:`lamina.Model` instead.

Every ``sklearn.utils.estimator_checks`` check passes for both estimators except the ones
in :data:`EXPECTED_FAILED_CHECKS`, each with its reason (give
:func:`expected_failed_checks` to ``parametrize_with_checks``/``check_estimator``). None
are excluded today: float32 networks seeded from ``seed`` give identical predictions on
refitting, on any subset or order of the rows, and after pickling; ten epochs reach the
checks' accuracy (> 0.83) and R² (> 0.5) bars. scikit-learn itself skips two checks when
their dependencies are missing: ``check_array_api_input`` (unless ``SCIPY_ARRAY_API=1``)
and ``check_*_data_not_an_array`` (without pandas; they pass with it).

Needs scikit-learn: ``pip install 'lamina[sklearn]'``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "lamina.sklearn needs scikit-learn. Fix: pip install 'lamina[sklearn]'"
    ) from error

from lamina.errors import ConfigError, invalid

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "LaminaClassifier",
    "LaminaRegressor",
    "expected_failed_checks",
]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "LaminaClassifier": {},
    "LaminaRegressor": {},
}
"""Common checks each estimator is known to fail, by class name, with the reason."""


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The ``expected_failed_checks`` of ``parametrize_with_checks`` for our estimators."""
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


def _validate_data(estimator: Any, X: Any, y: Any = "no_validation", **options: Any) -> Any:
    """scikit-learn's ``validate_data`` (1.6+), or the estimator method it replaced."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn < 1.6
        return estimator._validate_data(X, y, **options)
    return validate_data(estimator, X, y, **options)


Build = Callable[[int, int, int | None], Any]


class _LaminaEstimator(BaseEstimator):
    """What both estimators share: the arguments, building the network, training it."""

    _output_activation: str | None = None
    _loss = ""
    _metrics: tuple[str, ...] = ()

    def __init__(
        self,
        build: Build | None = None,
        *,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        epochs: int = 10,
        batch_size: int | None = 32,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        weight_l2: float = 0.0,
        shuffle: bool = True,
        seed: int | None = 0,
        verbose: int = 0,
        class_weight: str | dict[Any, float] | None = None,
        dtype: str = "auto",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.build = build
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_l2 = weight_l2
        self.shuffle = shuffle
        self.seed = seed
        self.verbose = verbose
        self.class_weight = class_weight
        self.dtype = dtype
        self.random_state = random_state

    def _seed(self) -> int | None:
        """The seed of this fit: ``random_state`` where given (scikit-learn's name: an int,
        or a ``RandomState`` that gives a new seed every fit), else ``seed``."""
        state = self.random_state
        if state is None:
            return self.seed
        if self.seed not in (0, None) and self.seed != state:
            raise ConfigError(
                invalid(
                    "random_state",
                    "one seed: random_state or seed, not two different ones",
                    f"random_state={state!r} and seed={self.seed!r}",
                    "pass only one of them",
                )
            )
        if isinstance(state, np.random.RandomState):
            return int(state.randint(np.iinfo(np.int32).max))
        if isinstance(state, int | np.integer) and not isinstance(state, bool) and state >= 0:
            return int(state)
        raise ConfigError(
            invalid(
                "random_state",
                "None, an int >= 0 or a numpy.random.RandomState",
                repr(state),
                "pass e.g. random_state=0",
            )
        )

    def _new_model(self, n_features: int, n_outputs: int, dtype: np.dtype, seed: int | None) -> Any:
        if self.build is not None:
            if not callable(self.build):
                raise ConfigError(
                    invalid(
                        "build",
                        "None or a callable build(n_features, n_outputs, seed) -> compiled Model",
                        type(self.build).__name__,
                    )
                )
            model = self.build(n_features, n_outputs, seed)
            if getattr(model, "loss", None) is None:
                raise ConfigError(
                    invalid(
                        "build",
                        "a callable returning a compiled lamina Model",
                        f"it returned {type(model).__name__}",
                        "call model.compile(loss=..., optimizer=...) before returning it",
                    )
                )
            return model
        from lamina import optimizers
        from lamina.layers import Dense
        from lamina.model import Model

        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, int | np.integer) else list(sizes)
        if not all(isinstance(s, int | np.integer) and s >= 1 for s in sizes):
            raise ConfigError(
                invalid(
                    "hidden_layer_sizes",
                    "a tuple of positive ints (one per hidden layer)",
                    repr(self.hidden_layer_sizes),
                    "pass e.g. hidden_layer_sizes=(100,)",
                )
            )
        widths = [n_features, *(int(s) for s in sizes)]
        layers = [
            Dense(n_in, n_out, activation=self.activation, weight_l2=self.weight_l2)
            for n_in, n_out in itertools.pairwise(widths)
        ]
        layers.append(
            Dense(
                widths[-1], n_outputs, activation=self._output_activation, weight_l2=self.weight_l2
            )
        )
        optimizer = optimizers.OPTIMIZERS.lookup(self.optimizer)(learning_rate=self.learning_rate)
        model = Model(layers, seed=seed, dtype=dtype)
        return model.compile(loss=self._loss, optimizer=optimizer, metrics=self._metrics)

    def _train(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        n_outputs: int,
        sample_weight: Any,
        class_weight: Any = None,
    ) -> None:
        if self.dtype == "auto":  # as scikit-learn's MLP: float32 data stays float32
            dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        else:
            dtype = np.dtype(self.dtype)
        model = self._new_model(X.shape[1], n_outputs, dtype, self._seed())
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        model.fit(
            X,
            targets,
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            verbose=self.verbose,
            sample_weight=sample_weight,
            class_weight=class_weight,
        )
        self.model_ = model

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        outputs = np.asarray(self.model_.predict(X), dtype=np.float64)
        split = getattr(self.model_.loss, "mean_std", None)  # a mean-and-variance head
        return outputs if split is None else split(outputs)[0]


class LaminaClassifier(ClassifierMixin, _LaminaEstimator):
    """A lamina network as a scikit-learn classifier (notes §1.2, §1.3, §1.10).

    Labels of any type (ints, strings, ...) are encoded as ``0 … K−1`` in the order of
    ``classes_`` (sorted); the network has K Softmax outputs and is trained with categorical
    cross-entropy, ``predict_proba`` returns its confidences and ``predict`` the class of
    the largest one. ``score`` is the accuracy.

    Args:
        build: None for the default network, or ``build(n_features, n_classes, seed)``
            returning a compiled Model whose outputs are class probabilities.
        hidden_layer_sizes: neurons of each hidden Dense layer, as ``MLPClassifier``'s.
        activation: the hidden layers' activation (``"relu"``, ``"tanh"``, ...).
        epochs, batch_size, shuffle, verbose: passed to ``Model.fit``.
        learning_rate, optimizer: the optimizer by name (``"adam"``, ``"sgd"``, ...) and
            its learning rate.
        weight_l2: L2 penalty on every Dense layer's weights (notes §1.6).
        seed: seeds the initial weights, shuffling and dropout; None for fresh entropy.
        random_state: scikit-learn's name for it: an int, or a ``RandomState`` that
            gives each fit a new seed; when given, it is the seed (a different ``seed``
            beside it is an error).
        class_weight: ``"balanced"`` or ``{label: weight}`` (labels as in ``y``), as
            ``Model.fit`` takes it; classifiers only.
        dtype: the network's float type: ``"auto"`` (X's: float32 data trains in float32,
            anything else in float64, as scikit-learn's MLP), ``"float32"`` or ``"float64"``.

    Attributes:
        classes_: the class labels. n_features_in_: features seen in ``fit``.
        model_: the trained :class:`lamina.Model`.
    """

    _output_activation = "softmax"
    _loss = "categorical_crossentropy"
    _metrics = ("accuracy",)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LaminaClassifier:
        """Encode the labels and train a fresh network on (X, y), each sample weighted by
        ``sample_weight`` and ``class_weight``; returns self."""
        X, y = _validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        class_weight = self.class_weight
        if isinstance(class_weight, dict):  # keyed by label: by the label's code instead
            codes_of = {label: code for code, label in enumerate(self.classes_.tolist())}
            class_weight = {codes_of[k]: w for k, w in class_weight.items() if k in codes_of}
        n_classes = len(self.classes_)
        self._train(X, codes.reshape(-1).astype(np.int64), n_classes, sample_weight, class_weight)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class confidences, shape (n_samples, n_classes), rows summing to 1."""
        outputs = self._outputs(X)
        return outputs / outputs.sum(axis=1, keepdims=True)  # exact sums in float64

    def predict(self, X: Any) -> np.ndarray:
        """The most confident class of each sample, as one of ``classes_``."""
        outputs = self._outputs(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(outputs, axis=1)]


class LaminaRegressor(RegressorMixin, _LaminaEstimator):
    """A lamina network as a scikit-learn regressor (notes §1.8): linear outputs, trained
    with mean squared error. ``score`` is R². One target (``y`` 1-D, ``predict`` 1-D) or
    several (``y`` of shape (n, k), ``predict`` (n, k)).

    Args:
        build: None for the default network, or ``build(n_features, n_outputs, seed)``
            returning a compiled Model with ``n_outputs`` outputs.
        The other arguments are :class:`LaminaClassifier`'s.

    Attributes:
        n_outputs_: targets per sample. n_features_in_: features seen in ``fit``.
        model_: the trained :class:`lamina.Model`.
    """

    _output_activation = None
    _loss = "mean_squared_error"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LaminaRegressor:
        """Train a fresh network on (X, y), each sample weighted by ``sample_weight``;
        returns self."""
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._one_target = y.ndim == 1
        targets = y.reshape(len(y), -1)
        self.n_outputs_ = targets.shape[1]
        self._train(X, targets, self.n_outputs_, sample_weight, self.class_weight)
        return self

    def predict(
        self, X: Any, return_std: bool = False, samples: int | None = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted targets: shape (n_samples,) if fitted on 1-D y, else (n_samples, k).

        ``return_std=True`` also returns each prediction's standard deviation
        (``Model.predict(..., return_std=True)``): σ of a GaussianNLL network's head, or
        the spread of ``samples`` Monte-Carlo dropout passes (30 by default) for a network
        with Dropout."""
        if not return_std:
            outputs = self._outputs(X)
            return outputs.reshape(-1) if self._one_target else outputs
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        head = getattr(self.model_.loss, "mean_std", None) is not None
        count = samples if samples is not None else (1 if head else 30)
        mean, std = self.model_.predict(X, samples=count, return_std=True)
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        if self._one_target:
            return mean.reshape(-1), std.reshape(-1)
        return mean, std

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": True}
