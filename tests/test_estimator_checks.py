"""Every scikit-learn estimator opsloop exposes passes scikit-learn's own estimator checks.

The estimators are found, not listed: every public class (a name without a leading
underscore) in the compute packages that derives from scikit-learn's ``BaseEstimator``, so a
new one is checked the day it is added. Private adapters that only hand a model to
scikit-learn's tools inside one module (a gate's view of a torch module as a classifier)
are not estimators a user fits, and are left out. An estimator
that legitimately cannot pass a check lists it in ``EXPECTED_FAILURES`` with the reason
(scikit-learn's ``expected_failed_checks``); none needs to today.
"""

import importlib
import inspect
import pkgutil

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import opsloop

COMPUTE_PACKAGES = ("opsloop.data", "opsloop.detect", "opsloop.analysis", "opsloop.learn")
#: ``{class name: {check name: reason}}`` for checks an estimator cannot pass by design.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {}


def opsloop_estimators() -> list[type]:
    found: dict[str, type] = {}
    for package_name in COMPUTE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseEstimator)
                    and value.__module__.startswith(opsloop.__name__ + ".")
                    and not inspect.isabstract(value)
                    and not value.__name__.startswith("_")
                ):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


ESTIMATORS = opsloop_estimators()


def test_the_search_finds_the_feature_funnel():
    from opsloop.data.selection import FeatureFunnel

    assert FeatureFunnel in ESTIMATORS


@parametrize_with_checks(
    [estimator() for estimator in ESTIMATORS],
    expected_failed_checks=lambda e: EXPECTED_FAILURES.get(type(e).__name__, {}),
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_funnel_errors_are_sklearns():
    import numpy as np
    import scipy.sparse

    from opsloop.data.selection import FeatureFunnel

    funnel = FeatureFunnel()
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(12, 0\)\) while a minimum"):
        funnel.fit(np.empty((12, 0)), np.arange(12) % 2)
    with pytest.raises(ValueError, match="X has 1 sample: the steps that read the target"):
        funnel.fit(np.ones((1, 3)), [1])
    with pytest.raises(TypeError, match="FeatureFunnel does not accept sparse input"):
        funnel.fit(scipy.sparse.csr_matrix(np.eye(10)), np.arange(10) % 2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    fitted = FeatureFunnel(steps=[opsloop.data.selection.NullFraction()]).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but FeatureFunnel is expecting 3"):
        fitted.transform(X[:, :2])
    assert not hasattr(fitted, "feature_names_in_") and fitted.n_features_in_ == 3
