import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from opsloop.analysis.comparison import ALL, compare_models


def test_paired_counts_and_mcnemar_equal_statsmodels(loans):
    df, _, before = loans
    truth = df["default"].to_numpy()
    rng = np.random.default_rng(11)
    # the new model fixes most mobile errors and breaks a few rows on desktop
    mobile = df["device"].astype(str).to_numpy() == "mobile"
    after = np.where(mobile & (rng.random(len(df)) < 0.7), truth, before)
    after = np.where(~mobile & (rng.random(len(df)) < 0.05), 1 - truth, after)
    tags = df[["device", "gender"]]
    result = compare_models(truth, before, after, tags, intersections=True)
    frame = result.to_frame()
    wb, wa = before != truth, after != truth
    keys = {
        ALL: pd.Series([ALL] * len(df)),
        "device": df["device"].astype(str),
        "gender": df["gender"].astype(str),
    }
    keys["device × gender"] = keys["device"] + " × " + keys["gender"]
    for tag, key in keys.items():
        got = frame[frame["tag"] == tag].set_index("value")
        for value, rows in pd.Series(np.arange(len(df))).groupby(key.to_numpy()):
            idx = rows.to_numpy()
            table = [
                [np.sum(~wb[idx] & ~wa[idx]), np.sum(~wb[idx] & wa[idx])],
                [np.sum(wb[idx] & ~wa[idx]), np.sum(wb[idx] & wa[idx])],
            ]
            row = got.loc[value]
            assert (row["n"], row["errors_before"], row["errors_after"]) == (
                len(idx),
                wb[idx].sum(),
                wa[idx].sum(),
            )
            assert (row["fixed"], row["broken"]) == (table[1][0], table[0][1])
            assert row["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-12)
    # adjusted p-values are Benjamini-Hochberg over all rows, in row order
    np.testing.assert_allclose(
        frame["p_adjusted"], stats.false_discovery_control(frame["p_value"]), atol=1e-12
    )
    assert ("device", "mobile") in {(r.tag, r.value) for r in result.better()}
    assert all(r.p_adjusted < 0.05 and r.fixed > r.broken for r in result.better())
    assert all(r.p_adjusted < 0.05 and r.broken > r.fixed for r in result.worse())


def test_hand_computed_exact_p_value():
    # 6 fixed, 1 broken: two-sided exact p = 2 * P(X <= 1), X ~ Bin(7, 1/2) = 2 * 8/128
    truth = np.ones(7, dtype=int)
    before = np.array([0, 0, 0, 0, 0, 0, 1])
    after = np.array([1, 1, 1, 1, 1, 1, 0])
    result = compare_models(truth, before, after, {"g": ["a"] * 7}, min_size=1)
    row = result.rows[1]
    assert (row.fixed, row.broken) == (6, 1)
    assert row.p_value == pytest.approx(16 / 128, abs=1e-15)
    assert row.verdict == "no significant change"


def test_bad_input():
    with pytest.raises(ValueError, match="y_pred_after has 1 rows but y_true has 2"):
        compare_models([1, 1], [1, 1], [1], {"g": ["a", "b"]})
    with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1"):
        compare_models([1], [1], [1], {"g": ["a"]}, alpha=0)
