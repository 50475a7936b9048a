"""An analysis without tag columns, on scikit-learn's iris data: the error tree measured
every prediction, so the headline, the page and the logged metrics give its error rate; and
data with missing labels or no rows (diabetes), refused with the column and the rows."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from opsloop.reports import analyze_model


@pytest.fixture(scope="module")
def analysed():
    frame = load_iris(as_frame=True).frame
    # Two sepal features only: the model confuses versicolor and virginica.
    features = ["sepal length (cm)", "sepal width (cm)"]
    model = LogisticRegression(max_iter=1000).fit(frame[features], frame["target"])
    errors = int(np.sum(model.predict(frame[features]) != frame["target"]))
    report = analyze_model(model, frame[[*features, "target"]], "target", explain=False)
    return report, errors


def test_headline_gives_the_error_rate_without_tags(analysed):
    report, errors = analysed
    assert report.errors is None and report.tree is not None
    assert 0 < errors < 150
    share = f"{100 * errors / 150:.3g}%"
    assert report.headline() == f"{share} of 150 predictions are wrong."
    assert (report.tree.n, report.tree.errors) == (150, errors)


def test_page_and_metrics_give_the_error_rate_without_tags(analysed):
    report, errors = analysed
    page = report.render_html()
    assert "Nothing analysed." not in page
    assert f"<dt>Errors</dt><dd>{errors}</dd>" in page.replace("\n", "")
    assert report.metrics() == {"analysis.n": 150.0, "analysis.error_rate": errors / 150}


def test_missing_labels_are_refused_naming_the_column_and_rows():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    frame = load_diabetes(as_frame=True, scaled=False).frame
    model = Ridge().fit(frame.drop(columns="target"), frame["target"])
    gaps = frame.copy()
    gaps.loc[[3, 40, 41, 100, 200, 300, 400], "target"] = np.nan
    with pytest.raises(ValueError) as caught:
        analyze_model(model, gaps, "target", explain=False, data_name="diabetes.csv")
    assert str(caught.value) == (
        "diabetes.csv: the label column 'target' holds missing values in 7 of 442 rows "
        "(rows 3, 40, 41, 100, 200, ...); drop or label them"
    )
    with pytest.raises(ValueError, match=r"^diabetes\.csv has no rows to analyse$"):
        analyze_model(model, frame.iloc[:0], "target", explain=False, data_name="diabetes.csv")
