"""``lamina.sklearn``: scikit-learn estimators; the code lives in :mod:`lamina.interop.sklearn`."""

from lamina.interop.sklearn import (
    EXPECTED_FAILED_CHECKS,
    LaminaClassifier,
    LaminaRegressor,
    expected_failed_checks,
)

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "LaminaClassifier",
    "LaminaRegressor",
    "expected_failed_checks",
]
