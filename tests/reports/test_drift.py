import dataclasses
import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from opsloop.data.drift.compare import DriftResult, compare
from opsloop.reports import DriftReport, drift_report
from opsloop.reports.drift import column_figure, rule_text, verdict_text

HOSTILE = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Tags, script bodies and table cells of a page, as a browser's tokenizer sees them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.tables: list[dict] = []
        self._in_script = False
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._ids: dict[str, str] = {}
        self._section: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "section":
            self._section = attrs.get("id")
        elif tag == "table":
            self.tables.append(
                {"class": attrs.get("class", ""), "section": self._section, "rows": []}
            )
        elif tag == "tr":
            self._row = []
            self.tables[-1]["rows"].append((attrs.get("class"), self._row))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell.append(data)

    def table(self, cls: str, section: str | None = None) -> list[tuple[str | None, list[str]]]:
        found = [
            t
            for t in self.tables
            if cls in t["class"].split() and (section is None or t["section"] == section)
        ]
        assert len(found) == 1, (cls, section, len(found))
        return found[0]["rows"]


def frames(seed: int = 7, n: int = 600):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "shifted": rng.normal(size=n),
            "stable": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "only_ref": rng.normal(size=n),
        }
    )
    # 60 missing and 12 unreadable values in the current side of the unchanged column.
    stable = pd.Series(rng.normal(size=n), dtype=object)
    stable[:60] = np.nan
    stable[60:72] = "oops"
    cur = pd.DataFrame(
        {
            "shifted": rng.normal(0.8, size=n),
            "stable": stable,
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    return ref, cur


@pytest.fixture(scope="module")
def result() -> DriftResult:
    ref, cur = frames()
    return compare(ref, cur, columns=list(ref.columns))


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "drift.html"
    out = DriftReport.from_result(result).to_html(path)
    return path, out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(written) -> Page:
    return Page(written[2])


def p_text(p: float | None) -> str:
    """The p-value as the tables show it, derived here independently of the formatter."""
    if p is None:
        return "—"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4g}"


def test_fixture_has_the_intended_drift(result):
    assert [(c.column, c.kind, c.test, c.drifted) for c in result.columns] == [
        ("shifted", "numeric", "ks", True),
        ("stable", "numeric", "ks", False),
        ("colour", "categorical", "chi2", False),
    ]
    assert result.skipped == (("only_ref", "missing from current"),)


def test_report_is_the_result(result):
    report = DriftReport.from_result(result)
    assert isinstance(report, DriftResult)
    assert report.to_dict() == result.to_dict()
    assert report.to_json() == result.to_json()
    pd.testing.assert_frame_equal(report.to_frame(), result.to_frame())
    assert report["shifted"] is result["shifted"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.alpha = 0.1


def test_from_result_rejects_other_objects(result):
    with pytest.raises(TypeError, match="result must be a DriftResult, got dict"):
        DriftReport.from_result(result.to_dict())


def test_drift_report_passes_arguments_to_compare():
    ref, cur = frames()
    report = drift_report(ref, cur, alpha=0.01, correction="bh", drift_share=0.5)
    assert type(report) is DriftReport
    expected = compare(ref, cur, alpha=0.01, correction="bh", drift_share=0.5)
    assert report.to_dict() == expected.to_dict()
    assert report.to_dict()["dataset"]["alpha"] == 0.01


def test_to_html_writes_one_file(written):
    path, out, text = written
    assert out == path and path.is_file()
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")
    assert list(path.parent.iterdir()) == [path]


def test_page_uses_no_external_resources(page, written):
    text = written[2]
    for tag, attrs in page.tags:
        assert tag != "link", attrs
        if tag == "script":
            assert "src" not in attrs
        for name, value in attrs.items():
            assert not re.match(r"\s*(https?:)?//", value or ""), (tag, name, value)
    styles = [attrs for tag, attrs in page.tags if tag == "style"]
    assert len(styles) == 1
    css = text[text.index("<style>") : text.index("</style>")]
    assert "url(" not in css and "@import" not in css


def test_plotly_js_is_inlined_exactly_once(page, written):
    text = written[2]
    assert text.count(get_plotlyjs()) == 1
    large = [s for s in page.scripts if len(s) > 100_000]
    assert len(large) == 1 and large[0] == get_plotlyjs()
    # One figure per compared column, all drawn by that single copy.
    # (counted outside plotly.js, whose own source may contain the call)
    assert len(re.findall(r"Plotly\.newPlot\(", text.replace(get_plotlyjs(), ""))) == 3
    assert len(text) - len(get_plotlyjs()) < 150_000


def test_header_states_the_dataset_verdict(result, page, written):
    text = written[2]
    assert verdict_text(result) == "Drift detected: 1 of 3 columns drifted (33.3%)."
    assert rule_text(result) == "The dataset drifts when any column drifts."
    assert '<header class="verdict drifted">' in text
    assert '<p class="headline">Drift detected: 1 of 3 columns drifted (33.3%).</p>' in text
    assert "<dt>Columns drifted</dt><dd>1 / 3 (33.3%)</dd>" in text
    assert "<dt>Significance level (alpha)</dt><dd>0.05</dd>" in text
    assert "<dt>Multiple-testing correction</dt><dd>Holm</dd>" in text
    assert "<dt>Dataset rule</dt><dd>The dataset drifts when any column drifts.</dd>" in text


def test_summary_table_shows_every_column_as_formatted(result, page):
    rows = page.table("summary")
    header, body = rows[0], rows[1:]
    assert header[1] == [
        "column",
        "kind",
        "test",
        "statistic",
        "p-value",
        "adjusted p-value",
        "threshold",
        "effect",
        "effect size",
        "verdict",
    ]
    expected = [
        (
            "drifted" if c.drifted else "stable",
            [
                c.column,
                c.kind,
                c.test,
                f"{c.statistic:.4g}",
                p_text(c.p_value),
                p_text(c.p_adjusted),
                f"{c.threshold:.4g}",
                c.effect_name,
                f"{c.effect:.4g}",
                "drifted" if c.drifted else "stable",
            ],
        )
        for c in result.columns
    ]
    assert body == expected
    # The shifted column, written out by hand from the values compare returned.
    assert body[0][1][3:7] == ["0.4283", "9.04e-50", "2.71e-49", "0.05"]


def test_summary_cells_carry_sort_keys(result, written):
    text = written[2]
    c = result["shifted"]
    assert f'<td class="num" data-sort="{c.p_value!r}">{p_text(c.p_value)}</td>' in text
    assert f'<td class="num" data-sort="{c.statistic!r}">{c.statistic:.4g}</td>' in text
    assert '<table class="sortable summary">' in text


def test_each_column_has_a_section_with_its_statistics(result, page, written):
    text = written[2]
    for index, c in enumerate(result.columns):
        state = "drifted" if c.drifted else "stable"
        assert f'<section class="column {state}" id="column-{index}">' in text
        assert f"<h3>{c.column}</h3>" in text
        assert f'<a href="#column-{index}">{c.column}</a>' in text
        assert f'id="plot-{index}"' in text
        rows = page.table("statistics", section=f"column-{index}")
        assert rows[0][1] == [
            "test",
            "statistic",
            "p-value",
            "adjusted p-value",
            "threshold",
            "drifted",
        ]
        assert [cells for _, cells in rows[1:]] == [
            [
                s.test + (" (decides)" if s.test == c.test else ""),
                f"{s.statistic:.4g}",
                p_text(s.p_value),
                p_text(s.p_adjusted),
                f"{s.threshold:.4g}",
                "yes" if s.drifted else "no",
            ]
            for s in c.statistics
        ]
        assert [cls for cls, _ in rows[1:]] == [
            "drifted" if s.drifted else "stable" for s in c.statistics
        ]
    assert [s.test for s in result["colour"].statistics] == [
        "chi2",
        "psi",
        "js",
        "hellinger",
        "linf",
    ]


def test_sections_show_missing_fractions_and_invalid_counts(result, written):
    text = written[2]
    stable = result["stable"]
    assert (stable.missing_current, stable.invalid_current, stable.n_current) == (0.1, 12, 528)
    start = text.index('id="column-1"')
    section = text[start : text.index("</section>", start)]
    assert "<dt>Values compared</dt><dd>600 reference, 528 current</dd>" in section
    assert "<dt>Missing (reference)</dt><dd>0%</dd>" in section
    assert "<dt>Missing (current)</dt><dd>10%</dd>" in section
    assert "<dt>Invalid (current)</dt><dd>12</dd>" in section
    assert f"<dt>Effect</dt><dd>wasserstein {stable.effect:.4g}</dd>" in section


def test_skipped_columns_are_listed_with_reasons(page, written):
    assert '<dt>Columns skipped</dt><dd><a href="#skipped">1</a></dd>' in written[2]
    skipped = [t for t in page.tables if t["section"] == "skipped"]
    assert len(skipped) == 1
    assert [cells for _, cells in skipped[0]["rows"]] == [
        ["column", "reason"],
        ["only_ref", "missing from current"],
    ]


def test_hostile_column_name_is_escaped(tmp_path):
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({HOSTILE: rng.normal(size=200), "c": rng.choice(["<b>x</b>", "y"], 200)})
    cur = pd.DataFrame({HOSTILE: rng.normal(size=200), "c": rng.choice(["<b>x</b>", "y"], 200)})
    report = drift_report(ref, cur)
    text = report.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    page = Page(text)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    assert "<b>x</b>" not in text
    # Only the page's own scripts exist: plotly.js, one per figure, and the table sorter.
    assert len(page.scripts) == 1 + 2 + 1
    assert page.table("summary")[1][1][0] == HOSTILE
    notebook = report._repr_html_()
    assert HOSTILE not in notebook
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in notebook


def test_title_is_escaped(result):
    text = DriftReport.from_result(result).render_html(title="<i>Q3</i>")
    assert "<title>&lt;i&gt;Q3&lt;/i&gt;</title>" in text
    assert "<i>Q3</i>" not in text


def test_repr_html_is_a_compact_table(result):
    out = DriftReport.from_result(result)._repr_html_()
    page = Page(out)
    assert len(page.tables) == 1
    rows = [cells for _, cells in page.tables[0]["rows"]]
    assert rows[0] == [
        "column",
        "kind",
        "test",
        "statistic",
        "p-value",
        "adjusted p-value",
        "effect",
        "verdict",
    ]
    assert rows[1:] == [
        [
            c.column,
            c.kind,
            c.test,
            f"{c.statistic:.4g}",
            p_text(c.p_value),
            p_text(c.p_adjusted),
            f"{c.effect_name} {c.effect:.4g}",
            "drifted" if c.drifted else "stable",
        ]
        for c in result.columns
    ]
    assert "Drift detected: 1 of 3 columns drifted (33.3%)." in out
    assert "<script" not in out and len(out) < 10_000


def test_rendering_is_deterministic(result):
    report = DriftReport.from_result(result)
    assert report.render_html() == report.render_html()


def test_without_plot_data_the_page_omits_plotly():
    ref, cur = frames()
    report = drift_report(ref, cur, plots=False)
    text = report.render_html()
    assert "Plotly.newPlot" not in text
    assert get_plotlyjs()[:2000] not in text
    assert text.count("No distribution plot was computed for this column.") == 3
    assert len(text) < 100_000


def test_rule_and_correction_follow_the_settings():
    ref, cur = frames()
    report = drift_report(ref, cur, correction="bh", drift_share=0.5)
    text = report.render_html()
    assert rule_text(report) == "The dataset drifts when at least 50% of its columns drift."
    assert "<dd>The dataset drifts when at least 50% of its columns drift.</dd>" in text
    assert "<dt>Multiple-testing correction</dt><dd>Benjamini-Hochberg</dd>" in text
    assert verdict_text(report) == "No drift detected: 1 of 3 columns drifted (33.3%)."
    assert '<header class="verdict stable">' in text


def test_min_effect_is_explained():
    ref, cur = frames()
    report = drift_report(ref, cur, min_effect=0.25)
    assert report["shifted"].min_effect == 0.25
    assert "requires an effect of at least 0.25" in report.render_html()


def test_histogram_figure_overlays_shares_per_bin(result):
    column = result["shifted"]
    fig = column_figure(column)
    edges = np.asarray(column.plot["edges"])
    assert [t.name for t in fig.data] == ["reference", "current"]
    assert fig.layout.barmode == "overlay"
    for trace, key in zip(fig.data, ("reference", "current"), strict=True):
        np.testing.assert_allclose(trace.x, (edges[:-1] + edges[1:]) / 2, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(trace.y, column.plot[key])
        assert math.isclose(trace.width, edges[1] - edges[0], rel_tol=1e-9)
        assert math.isclose(sum(trace.y), 1.0, rel_tol=1e-12)
        assert trace.customdata[0] == f"up to {edges[1]:.6g}"
        assert trace.customdata[-1] == f"{edges[-2]:.6g} and above"
        assert trace.customdata[1] == f"{edges[1]:.6g} to {edges[2]:.6g}"


def test_bar_figure_groups_top_values_and_escapes_labels():
    ref = pd.DataFrame({"c": ["<b>x</b>"] * 30 + ["y"] * 70})
    cur = pd.DataFrame({"c": ["<b>x</b>"] * 60 + ["y"] * 40})
    fig = column_figure(compare(ref, cur)["c"])
    assert fig.layout.barmode == "group"
    # Sorted by the summed shares: y = 0.7 + 0.4, x = 0.3 + 0.6.
    assert list(fig.data[0].x) == ["y", "&lt;b&gt;x&lt;/b&gt;"]
    assert list(fig.data[0].y) == [0.7, 0.3]
    assert list(fig.data[1].y) == [0.4, 0.6]


def test_datetime_histogram_uses_a_date_axis():
    start = pd.Timestamp("2024-01-01")
    ref = pd.DataFrame({"t": start + pd.to_timedelta(np.arange(300) * 3600, unit="s")})
    cur = pd.DataFrame({"t": start + pd.to_timedelta(np.arange(300) * 3600 + 86400, unit="s")})
    column = compare(ref, cur)["t"]
    assert column.kind == "datetime"
    fig = column_figure(column)
    edges = np.asarray(column.plot["edges"])
    assert fig.layout.xaxis.type == "date"
    assert math.isclose(fig.data[0].width, (edges[1] - edges[0]) * 1000, rel_tol=1e-9)
    first = pd.Timestamp((edges[0] + edges[1]) / 2, unit="s")
    assert fig.data[0].x[0] == first.strftime("%Y-%m-%d %H:%M:%S")


def test_column_without_plot_has_no_figure():
    ref, cur = frames()
    column = compare(ref, cur, plots=False)["shifted"]
    assert column_figure(column) is None
