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


def test_a_name_twice_outside_the_compared_columns_is_no_obstacle():
    iris = load_iris(as_frame=True).frame
    twice = iris.set_axis(["length", "length", "width", "petal", "target"], axis=1)
    result = drift.compare(twice.iloc[:75], twice.iloc[75:], columns=["width"])
    expected = stats.ks_2samp(iris.iloc[:75, 2], iris.iloc[75:, 2])
    assert [c.column for c in result.columns] == ["width"]
    assert result["width"].statistic == pytest.approx(expected.statistic, rel=1e-12)
    # Asked for by name, the doubled column is still refused.
    with pytest.raises(ValueError, match=r"reference has more than one column named \['length'\]"):
        drift.compare(twice.iloc[:75], twice.iloc[75:], columns=["length"])
