import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis.baseline import HumanLevel, hlp


def test_hlp_overall_and_per_tag_equal_groupby(loans):
    df, human, _ = loans
    tags = df[["gender", "device"]]
    result = hlp(human, df["default"], tags)
    wrong = human != df["default"].to_numpy()
    assert result.n == 2000
    assert result.errors == int(wrong.sum())
    assert result.error_rate == pytest.approx(wrong.mean(), abs=1e-12)
    low, high = proportion_confint(wrong.sum(), 2000, alpha=0.05, method="wilson")
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-12)
    frame = result.to_frame()
    for tag in ["gender", "device"]:
        expected = pd.Series(wrong).groupby(df[tag].astype(str).to_numpy()).agg(["size", "sum"])
        got = frame[frame["tag"] == tag].set_index("value")
        assert got["n"].to_dict() == expected["size"].to_dict()
        assert got["errors"].to_dict() == expected["sum"].to_dict()
        np.testing.assert_allclose(
            got["error_rate"].to_numpy(),
            (expected["sum"] / expected["size"]).to_numpy(),
            atol=1e-12,
        )


def test_error_rate_for_falls_back_to_overall():
    result = hlp([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], {"d": ["pc", "pc", "tv", "tv", "tv"]})
    assert result.error_rate_for("d", "pc") == 0.5
    assert result.error_rate_for("d", "tv") == pytest.approx(1 / 3)
    assert result.error_rate_for("d", "radio") == 0.4
    assert result.error_rate_for("other", "pc") == 0.4


def test_to_dict_is_plain():
    d = hlp(["a", "b"], ["a", "a"], {"g": [1, 2]}).to_dict()
    assert d["errors"] == 1 and type(d["errors"]) is int
    assert d["by_tag"][1] == {
        "tag": "g",
        "value": "2",
        "n": 1,
        "errors": 1,
        "error_rate": 1.0,
        "ci_low": pytest.approx(0.2065493143772375),
        "ci_high": 1.0,
    }
    assert isinstance(HumanLevel(**{**d, "by_tag": ()}), HumanLevel)


def test_bad_input():
    with pytest.raises(ValueError, match="human_labels has 1 rows but ground_truth has 2"):
        hlp([1], [1, 0])
    with pytest.raises(ValueError, match="ground_truth holds missing values"):
        hlp([1, 0], [1, None])
    with pytest.raises(ValueError, match="ground_truth is empty"):
        hlp([], [])
