"""Infinite values on scikit-learn's diabetes data: left out of the tests and counted, in the
result, its JSON and the HTML report."""

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes

from opsloop.reports import drift_report


@pytest.fixture(scope="module")
def halves():
    frame = load_diabetes(as_frame=True, scaled=False).frame
    reference, current = frame.iloc[:200].copy(), frame.iloc[200:].copy()
    reference.loc[reference.index[:3], "bmi"] = -np.inf
    current.loc[current.index[:5], "bmi"] = np.inf
    # sex has two levels: a discrete column, compared by counts.
    current.loc[current.index[-4:], "sex"] = np.inf
    return reference, current


def test_infinite_values_are_counted_beside_the_scipy_statistic(halves):
    reference, current = halves
    report = drift_report(reference, current)
    bmi = report["bmi"]
    finite_ref = reference["bmi"].to_numpy()[np.isfinite(reference["bmi"])]
    finite_cur = current["bmi"].to_numpy()[np.isfinite(current["bmi"])]
    expected = stats.ks_2samp(finite_ref, finite_cur)
    assert (bmi.statistic, bmi.p_value) == (expected.statistic, expected.pvalue)
    assert (bmi.n_reference, bmi.n_current) == (197, 237)
    assert (bmi.missing_reference, bmi.missing_current, bmi.invalid_current) == (0.0, 0.0, 0)
    assert (bmi.nonfinite_reference, bmi.nonfinite_current) == (3, 5)
    sex = report["sex"]
    assert sex.kind == "discrete"
    assert (sex.n_current, sex.nonfinite_current, sex.nonfinite_reference) == (238, 4, 0)
    assert report["age"].nonfinite_current == 0
    as_dict = bmi.to_dict()
    assert (as_dict["nonfinite_reference"], as_dict["nonfinite_current"]) == (3, 5)


def test_report_section_shows_the_infinite_counts(halves):
    report = drift_report(*halves)
    text = report.render_html()
    position = [c.column for c in report.columns].index("bmi")
    start = text.index(f'id="column-{position}"')
    section = text[start : text.index("</section>", start)]
    assert "<dt>Values compared</dt><dd>197 reference, 237 current</dd>" in section
    assert "<dt>Infinite, left out</dt><dd>3 reference, 5 current</dd>" in section


def test_a_column_left_with_no_value_says_what_its_rows_held(halves):
    reference, current = halves
    current = current.copy()
    current["bmi"] = np.inf
    current.loc[current.index[:12], "bmi"] = np.nan
    current["bp"] = "n/a"
    report = drift_report(reference, current)
    assert dict(report.skipped) == {
        "bmi": "no valid values in current (242 rows: 12 missing, 230 infinite)",
        "bp": "no valid values in current (242 rows: 242 invalid)",
    }
    empty = drift_report(reference, current.iloc[:0])
    assert dict(empty.skipped)["age"] == "no valid values in current (no rows)"
    text = report.render_html()
    assert "no valid values in current (242 rows: 12 missing, 230 infinite)" in text
