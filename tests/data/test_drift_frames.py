"""What compare refuses of the frames it is given, on scikit-learn's iris data."""

import pytest
from scipy import stats
from sklearn.datasets import load_iris

from opsloop.data import drift


def test_a_column_name_twice_is_refused_naming_it_and_the_side():
    iris = load_iris(as_frame=True).frame
    twice = iris.set_axis(["length", "length", "width", "petal", "target"], axis=1)
    with pytest.raises(ValueError, match=r"reference has more than one column named \['length'\]"):
        drift.compare(twice, iris)
    with pytest.raises(ValueError, match=r"current has more than one column named \['length'\]"):
        drift.compare(iris.set_axis(list(twice.columns), axis=1).iloc[:, 1:], twice)
    # Distinct names compare as before: the iris halves' target counts by chi-square.
    result = drift.compare(iris.iloc[:75], iris.iloc[75:], columns=["target"])
    expected = stats.chi2_contingency([[50, 25, 0], [0, 25, 50]], correction=False)
    assert result["target"].test == "chi2"
    assert result["target"].statistic == pytest.approx(expected.statistic, rel=1e-12)
