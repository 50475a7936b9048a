"""The reports' charts as a reader sees them: share axes whose tick labels are distinct and
in percent, numeric levels on a numeric axis, and an axis spanning the body of the data."""

import json
import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LinearRegression

from opsloop.analysis import error_analysis, explain
from opsloop.reports.analysis import AnalysisReport
from opsloop.reports.drift import column_figure, drift_report


def tick_labels(axis, top: float) -> list[str]:
    """The labels plotly draws on a linear share axis with a fixed step, from 0 to ``top``
    (d3's ``.N%`` format is the value times 100 to N decimals)."""
    assert axis.dtick is not None and axis.tick0 == 0, "the share axis needs a fixed step"
    fmt = axis.tickformat
    assert fmt.startswith(".") and fmt.endswith("%"), fmt
    decimals = int(fmt[1:-1])
    count = math.floor(top / axis.dtick + 1e-9)
    return [f"{k * axis.dtick * 100:.{decimals}f}%" for k in range(count + 1)]


def credit_like(seed: int = 0, n: int = 20_000):
    """Ages 20-80 against 25-85 with 1% of the current ages planted far outside (as the demo
    plants them), and application times spread evenly over seven weeks."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    seconds = 49 * 86_400
    reference = pd.DataFrame(
        {
            "age": rng.integers(20, 81, n),
            "applied_at": start + pd.to_timedelta(rng.integers(0, seconds, n), unit="s"),
            "device": rng.choice(["mobile", "desktop", "tablet"], n, p=[0.2, 0.5, 0.3]),
        }
    )
    age = rng.integers(25, 86, n)
    planted = rng.choice(n, n // 100, replace=False)
    age[planted[: n // 200]] = rng.integers(-35, 0, n // 200)
    age[planted[n // 200 :]] = rng.integers(91, 146, n // 100 - n // 200)
    current = pd.DataFrame(
        {
            "age": age,
            "applied_at": start + pd.to_timedelta(rng.integers(0, seconds, n), unit="s"),
            "device": rng.choice(["mobile", "desktop", "tablet"], n, p=[0.7, 0.2, 0.1]),
        }
    )
    return reference, current


@pytest.fixture(scope="module")
def frames():
    return credit_like()


@pytest.fixture(scope="module")
def report(frames):
    return drift_report(*frames)


@pytest.mark.parametrize("column", ["age", "applied_at", "device"])
def test_share_axis_tick_labels_are_distinct(report, column):
    figure = column_figure(report[column])
    top = max(max(trace.y) for trace in figure.data)
    labels = tick_labels(figure.layout.yaxis, top)
    assert len(labels) >= 3  # enough ticks to read the axis
    assert len(set(labels)) == len(labels), labels


def test_small_shares_get_decimals():
    # Ages 20-80: about 1.6% per age; whole percents would read "0%, 1%, 1%, 2%".
    figure = column_figure(drift_report(*credit_like())["age"])
    assert figure.layout.yaxis.tickformat == ".1%" and figure.layout.yaxis.dtick == 0.005


def test_discrete_levels_sit_on_a_numeric_axis_in_value_order(report):
    figure = column_figure(report["age"])
    assert report["age"].kind == "discrete"
    assert figure.layout.xaxis.type == "linear"
    assert figure.layout.xaxis.title.text == "value"  # not "most frequent first"
    x = list(figure.data[0].x)
    assert x == sorted(x) and all(isinstance(v, float) for v in x)


def test_categories_keep_their_frequency_order_and_say_so(report):
    figure = column_figure(report["device"])
    assert figure.layout.xaxis.title.text == "value (most frequent first)"
    assert list(figure.data[1].x) == ["mobile", "desktop", "tablet"]


def test_discrete_axis_spans_the_body_and_folds_the_planted_tails(frames, report):
    reference, current = frames
    figure = column_figure(report["age"])
    x = list(figure.data[0].x)
    # Ages run 20-85 on the two sides; the 1% planted from -35 to 145 must not set the span.
    assert (x[0], x[-1]) == (20.0, 85.0)
    assert list(figure.layout.xaxis.range) == [19.5, 85.5]  # the outer bars drawn whole
    ref, cur = figure.data[0], figure.data[1]
    # Every share is still shown: the tails are counted in the outer bars.
    assert sum(ref.y) == pytest.approx(1.0) and sum(cur.y) == pytest.approx(1.0)
    assert cur.y[0] == pytest.approx(float(np.mean(current["age"] <= 20)))
    assert cur.y[-1] == pytest.approx(float(np.mean(current["age"] >= 85)))
    assert cur.y[1] == pytest.approx(float(np.mean(current["age"] == 21)))
    assert ref.y[0] == pytest.approx(float(np.mean(reference["age"] == 20)))
    assert (cur.customdata[0], cur.customdata[-1]) == ("up to 20", "85 and above")
    # The drift numbers are the data's, untouched by the plot.
    assert report["age"].drifted


def test_discrete_levels_without_stray_values_are_all_shown():
    ref = pd.DataFrame({"n": [1, 2, 3] * 100})
    cur = pd.DataFrame({"n": [1, 2, 2, 3] * 75})
    figure = column_figure(drift_report(ref, cur)["n"])
    assert list(figure.data[0].x) == [1.0, 2.0, 3.0]
    assert list(figure.data[1].y) == pytest.approx([0.25, 0.5, 0.25])
    assert list(figure.data[1].customdata) == ["1", "2", "3"]


def test_analysis_room_axis_reads_in_percent_as_its_table():
    rng = np.random.default_rng(0)
    n = 5_000
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    truth = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(group == "d", 0.12, 0.1)
    table = error_analysis(truth, truth ^ wrong, {"g": group}, hlp=0.1)
    page = AnalysisReport(errors=table).render_html()
    data, layout = plotted(page, "errors-room")
    rooms = [r.room for r in table.rows if r.room is not None and not r.small]
    assert sorted(data[0]["x"]) == sorted(rooms)
    assert 0 < max(rooms) < 0.01  # shares below 1%: 0.002 on a bare axis
    axis = go.Figure(layout=layout).layout.xaxis
    labels = tick_labels(axis, max(rooms))
    assert len(set(labels)) == len(labels) >= 3


def plotted(page: str, div_id: str) -> tuple[list, dict]:
    """The data and layout a page passes to ``Plotly.newPlot`` for one figure."""
    call = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",', page)
    decoder = json.JSONDecoder()
    text = page[call.end() :].lstrip()
    data, end = decoder.raw_decode(text)
    text = text[end:].lstrip().removeprefix(",").lstrip()
    layout, _ = decoder.raw_decode(text)
    return data, layout


def test_every_element_id_in_the_analysis_page_is_unique():
    # plotly draws into the first element with a figure's id: a section with the same id
    # took the importance chart and drew it over the tables below.
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = 2 * x["a"] + rng.normal(0, 0.5, 300)
    model = LinearRegression().fit(x, y)
    truth = rng.integers(0, 2, 300)
    page = AnalysisReport(
        errors=error_analysis(truth, truth ^ (rng.random(300) < 0.2), {"g": x["a"] > 0}, hlp=0.1),
        explanation=explain(model, x, y, top=2, shapley_rows=0),
    ).render_html()
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert "importance-plot" in ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
