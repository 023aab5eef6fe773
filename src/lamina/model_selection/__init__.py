"""Validation (notes §1.5): hold-out splits, k-fold cross-validation, hyper-parameter search.

notes §1.5: withhold *validation data* from the training data to tune hyper-parameters and
to recognise overfitting; when data is scarce, use *k-fold cross-validation*: split the
training data into k parts, train on all but one, validate on the remaining one, and repeat
so that each part is the validation part once; and "loop over different hyper-parameter
sets", training once per set, to choose the best one.

- Splits — :func:`train_test_split`, :class:`KFold`, :class:`StratifiedKFold` — are NumPy
  only. Every random draw comes from ``np.random.default_rng(seed)``: the same seed gives
  the same split on every call, and ``seed=None`` draws fresh entropy each time.
- :func:`cross_validate` trains one fresh model per fold and scores it on the held-out fold.
- :class:`GridSearch` and :class:`RandomSearch` cross-validate one config per set of
  hyper-parameters, named by config keys such as ``optimizer.learning_rate`` or
  ``layers[0].n_neurons`` (:func:`apply_params`; :func:`parse_grid` reads them from the
  command line).

Where folds run: ``n_jobs=1`` in this process, ``n_jobs>1`` in a joblib (loky) process pool,
``backend="dask"`` on a ``dask.distributed`` cluster. Results do not depend on where a fold
runs: each fold's model is seeded by :func:`fold_seed` from ``(seed, fold)`` —
never from global state — and every fold, in-process ones included, runs with its BLAS
pinned to :data:`BLAS_THREADS` thread by ``threadpoolctl`` (1 and 2 OpenBLAS threads give
different bits). So ``n_jobs=1``, ``n_jobs=2`` and Dask give bit-identical per-fold metrics.
"""

from lamina.config.keys import apply_params, set_config_value
from lamina.model_selection.cross_validation import cross_validate
from lamina.model_selection.distributions import parse_distributions, parse_grid, parse_value
from lamina.model_selection.folds import BLAS_THREADS, FoldResult, fold_seed
from lamina.model_selection.results import CVResult, SearchResult, TrialResult
from lamina.model_selection.search import GridSearch, RandomSearch
from lamina.model_selection.splits import KFold, StratifiedKFold, train_test_split

__all__ = [
    "BLAS_THREADS",
    "CVResult",
    "FoldResult",
    "GridSearch",
    "KFold",
    "RandomSearch",
    "SearchResult",
    "StratifiedKFold",
    "TrialResult",
    "apply_params",
    "cross_validate",
    "fold_seed",
    "parse_distributions",
    "parse_grid",
    "parse_value",
    "set_config_value",
    "train_test_split",
]
