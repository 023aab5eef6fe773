import os

# scikit-learn's estimator checks include array-API inputs only when SciPy is told to expect
# them before it is imported (tests/interop/test_sklearn.py)
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
