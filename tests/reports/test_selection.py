"""The feature selection HTML report: counts, drop tables, escaping, determinism."""

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from opsloop.data.selection import (
    FeatureFunnel,
    NearZeroVariance,
    NullFraction,
    NumericRedundancy,
    SelectionReport,
)
from opsloop.reports.selection import (
    FunnelReport,
    funnel_figure,
    funnel_text,
    headline,
    selection_report,
)

HOSTILE = "<script>alert('x')</script>"


class Tables(HTMLParser):
    """Every table's rows of cell texts, keyed by the id of the section holding it."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.scripts = 0
        self._section = None
        self._row = None
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        elif tag == "table":
            self.tables.setdefault(self._section, [])
        elif tag == "tr":
            self._row = []
            self.tables[self._section].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    holes = np.where(rng.random(400) < 0.95, np.nan, 1.0)
    x = rng.normal(size=400)
    frame = pd.DataFrame(
        {
            "x": x,
            HOSTILE: x * 3,
            "holes": holes,
            "flat": 2.0,
            "other": rng.normal(size=400),
        }
    )
    steps = [NullFraction(), NearZeroVariance(), NumericRedundancy()]
    return FeatureFunnel(steps=steps).fit(frame)


def test_page_lists_counts_drops_and_reasons(fitted):
    report = selection_report(fitted)
    page = report.render_html()
    tables = Tables(page).tables
    steps = tables["funnel"]
    assert steps[0] == ["step", "rule", "in", "dropped", "out", "seconds"]
    assert [row[:1] + row[2:5] for row in steps[1:]] == [
        ["null_fraction", "5", "1", "4"],
        ["near_zero_variance", "4", "1", "3"],
        ["numeric_redundancy", "3", "1", "2"],
    ]
    nulls = tables["dropped-null_fraction"]
    missing = np.isnan(np.where(np.random.default_rng(0).random(400) < 0.95, np.nan, 1.0))
    assert nulls[1][:5] == ["holes", "numeric", "null_fraction", f"{missing.mean():.4g}", "0.8"]
    redundant = tables["dropped-numeric_redundancy"][1]
    assert redundant[0] == HOSTILE and redundant[5] == "x" and redundant[3] == "1"
    every = tables["columns"]
    assert [row[0] for row in every[1:]] == list(fitted.feature_names_in_)
    assert every[1][2] == "kept" and every[3][2] == "dropped"
    assert "5 → 4 → 3 → 2" in page
    assert headline(report) == "Kept 2 of 5 columns (40%)."


def test_column_names_are_escaped_and_page_is_deterministic(fitted):
    page = selection_report(fitted).render_html()
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(" in page
    assert page == selection_report(fitted.report_).render_html()


def test_funnel_figure_and_notebook_table(fitted):
    report = selection_report(fitted)
    figure = funnel_figure(report)
    assert list(figure.data[0].x) == [5, 4, 3, 2]
    assert list(figure.data[0].y) == [
        "input",
        "null_fraction",
        "near_zero_variance",
        "numeric_redundancy",
    ]
    assert report._repr_html_().count("<tr>") == 4
    assert funnel_text(report) == "5 → 4 → 3 → 2"


def test_to_html_writes_one_offline_file(fitted, tmp_path):
    out = selection_report(fitted).to_html(tmp_path / "selection.html", title="Credit funnel")
    text = out.read_text(encoding="utf-8")
    assert "<title>Credit funnel</title>" in text
    assert "plotly.js v" in text and 'id="funnel-plot"' in text
    assert Tables(text).scripts >= 3  # plotly.js, the figure, the table sorter
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        selection_report(fitted).to_html(3)


def test_report_without_steps_has_no_figure():
    empty = FunnelReport.from_result(SelectionReport((), (), 0))
    assert funnel_figure(empty) is None
    page = empty.render_html()
    assert "plotly.js v" not in page and "No column passed every step." in page
    with pytest.raises(TypeError, match="report must be a SelectionReport, got dict"):
        FunnelReport.from_result({})
