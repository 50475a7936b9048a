"""The monitoring page's server-drawn charts place each number where its axes say, carry
the numbers they draw, and turn each heatmap cell into a link to its distributions."""

from __future__ import annotations

import html
import json
import re

import pytest

from opsloop.monitoring.evaluation import WindowEvaluation
from opsloop.ui.monitoring_charts import drift_heatmap, output_figure, window_time
from opsloop.ui.svg_window_charts import bar_chart, heatmap, line_chart, p_colour

HOUR_MS = 3_600_000


def _figure(traces: list[dict], **layout) -> dict:
    return {"data": traces, "layout": {"title": {"text": "t"}, **layout}}


def test_a_line_is_drawn_through_its_values_at_their_windows():
    traces = [{"name": "a", "x": [window_time(0), window_time(HOUR_MS)], "y": [0.0, 1.0]}]
    svg = line_chart(_figure(traces, yaxis={"range": [0, 1]}))
    # By hand: a legend of one line leaves the plot 36 to 340 - 44 - 18 = 278 high, and
    # 72 to 1200 - 24 = 1176 wide; 0 lands at the bottom left, 1 an hour later top right.
    assert '<path class="line" d="M72.0,278.0L1176.0,36.0"/>' in svg
    assert '<path class="dots" d="M72.0,278.0h0M1176.0,36.0h0"/>' in svg
    (carried,) = re.findall(r'data-trace="([^"]*)"', svg)
    assert json.loads(html.unescape(carried)) == {"name": "a", **traces[0]}


def test_a_missing_value_breaks_the_line_and_draws_no_dot():
    x = [window_time(k * HOUR_MS) for k in range(3)]
    svg = line_chart(
        _figure([{"name": "a", "x": x, "y": [0.0, None, 1.0]}], yaxis={"range": [0, 1]})
    )
    line = re.search(r'<path class="line" d="([^"]*)"', svg)[1]
    assert line == "M72.0,278.0M1176.0,36.0"
    assert re.search(r'<path class="dots" d="([^"]*)"', svg)[1].count("M") == 2


def test_the_alarm_crosses_sit_at_exactly_the_alarmed_windows():
    evaluations = [
        WindowEvaluation(
            "a",
            k * HOUR_MS,
            {
                "task_metric": 0.5 + k / 10,
                "error_drift": k % 2,
                "error_drift_positions": [10 * k] * (k % 2),
            },
            (),
        )
        for k in range(4)
    ]
    svg = line_chart(output_figure(evaluations))
    crosses = re.findall(
        r'<path class="cross" d="M([\d.]+),([\d.]+)[^"]*"><title>([^<]*)</title>', svg
    )
    # Windows 1 and 3 alarmed: x at a third and the whole of 72..1176, the cross centred.
    assert [round(float(x) + 6, 1) for x, _, _ in crosses] == [72 + 1104 / 3, 1176.0]
    assert [t for _, _, t in crosses] == [
        f"a: ADWIN alarm at row {row} of the error stream" for row in (10, 30)
    ]


def test_error_bars_span_the_interval():
    traces = [
        {
            "name": "m",
            "x": [window_time(0), window_time(HOUR_MS)],
            "y": [0.5, 0.5],
            "error_y": {"array": [0.5, None], "arrayminus": [0.25, None]},
        }
    ]
    svg = line_chart(_figure(traces, yaxis={"range": [0, 1]}))
    # 1.0 at the top (36), 0.25 a quarter up from the bottom: 278 - 0.25 * 242 = 217.5.
    assert '<path class="error" d="M72.0,36.0V217.5"/>' in svg


def test_bars_are_as_high_as_their_share_and_say_their_rows():
    figure = _figure(
        [{"type": "bar", "name": "w", "x": ["a", "b"], "y": [0.25, 0.75], "customdata": [1, 3]}]
    )
    svg = bar_chart(figure)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    # Heights are written to a tenth of a unit.
    assert heights[1] == pytest.approx(3 * heights[0], abs=0.2)
    assert re.findall(r"<title>([^<]*)</title>", svg) == ["a: 1 rows (25.0%)", "b: 3 rows (75.0%)"]


def test_each_heatmap_cell_links_to_its_features_distribution_and_marks_its_alarm():
    drift = {
        "x": {"p_adjusted": 0.0, "drifted": True, "statistic": 0.5, "test": "ks"},
        "y": {"p_adjusted": 1.0, "drifted": False, "statistic": 0.1, "test": "ks"},
    }
    alarm = {"feature": "y", "detector": "adwin", "position": 40, "change_point": None}
    evaluations = [
        WindowEvaluation("a", 0, {"drift": drift}, ()),
        WindowEvaluation("a", HOUR_MS, {"drift": drift, "feature_stream": {"alarms": [alarm]}}, ()),
    ]
    figure = drift_heatmap(evaluations, lambda e, f: f"/d?feature={f}&start={e.start_ms}")
    svg = heatmap(figure)
    cells = re.findall(
        r'<a href="([^"]*)" tabindex="-1"><title>[^<]*</title><rect [^>]*fill="(#\w+)"', svg
    )
    assert [(html.unescape(link), fill) for link, fill in cells] == [
        ("/d?feature=x&start=0", p_colour(0.0)), (f"/d?feature=x&start={HOUR_MS}", p_colour(0.0)),
        ("/d?feature=y&start=0", p_colour(1.0)), (f"/d?feature=y&start={HOUR_MS}", p_colour(1.0)),
    ]  # fmt: skip
    assert re.findall(r'data-z="([^"]*)"', svg) == ["[0.0,0.0]", "[1.0,1.0]"]
    # A cell's hover text: its window and numbers (the row names the feature), and the
    # alarm of its feature's detector there.
    titles = re.findall(r'tabindex="-1"><title>([^<]*)</title>', svg)
    assert titles == [
        f"{window_time(0)}: p 0, ks 0.5, drifted", f"{window_time(HOUR_MS)}: p 0, ks 0.5, drifted",
        f"{window_time(0)}: p 1, ks 0.1",
        f"{window_time(HOUR_MS)}: p 1, ks 0.1; adwin alarm at value 40 of the feature",
    ]  # fmt: skip
    # Each cell writes only what is its own: no feature's name, no place on the y axis.
    assert len(re.findall(r'<rect x="[\d.]+" width="[\d.]+" height="20" fill="#\w+"/>', svg)) == 4
    (mark,) = re.findall(
        r'<a class="alarm" href="([^"]*)" data-column="([^"]*)" data-feature="y"', svg
    )
    assert (html.unescape(mark[0]), mark[1]) == (
        f"/d?feature=y&start={HOUR_MS}",
        window_time(HOUR_MS),
    )
