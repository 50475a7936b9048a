"""The error-stream detector's alarms from the stream to the report, on two variants whose
answers go wrong at a planted row (:mod:`.planted_errors`): ADWIN read directly on the same
error stream (and River's ADWIN with the same parameters) signals where the evaluation says;
the alert's evidence holds exactly those detector positions, its window, its statistic and
the change point at ADWIN's alarm; the HTML report marks the alarm on every metric chart at
exactly that window and draws each variant's throughput as the windows stored it."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from opsloop.detect import ADWIN
from opsloop.detect.presets import preset_params
from opsloop.monitoring.change_point import mean_shift_point
from opsloop.monitoring.evaluation import read_alerts, read_evaluations
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitor_report import monitor_report, window_label
from opsloop.monitoring.windowing import Windowing

from .conftest import HOUR_MS, T0
from .planted_errors import CHANGE, RULE, WINDOWS, populate_planted_errors

WINDOWING = Windowing("1h")


@pytest.fixture
def planted(db, clock):
    planted = populate_planted_errors(Monitoring(db, actor="ana"), "api", T0)
    clock.now_ms = T0 + WINDOWS * HOUR_MS  # every window has closed
    Monitoring(db, actor="ana").evaluate("api", policies=[RULE])
    return planted


def _expected_change_point(errors: np.ndarray, last: int) -> int:
    """The change ADWIN's window holds at its alarm at ``last`` (read from the stream's
    first row, as the evaluation's detector did: no restart), by the mean-shift estimate."""
    detector = ADWIN.preset("monitoring")
    detector.update_many(errors[: last + 1].astype(float))
    first = last - detector.width + 1
    kept = errors[first : last + 1].astype(float)
    return first + mean_shift_point(kept, min_length=detector.min_window_length)


def test_the_detector_reads_the_stream_as_river_and_signals_after_the_planted_change(planted):
    river = pytest.importorskip("river.drift")
    for variant in ("a", "b"):
        reference = river.ADWIN(**preset_params("ADWIN", "monitoring"))
        signalled = []
        for i, error in enumerate(planted.errors[variant].tolist()):
            reference.update(error)
            if reference.drift_detected:
                signalled.append(i)
        assert planted.alarms(variant) == signalled
    # The planted change is found, and nothing before it; the steady variant, nothing.
    assert planted.alarms("a") and min(planted.alarms("a")) >= CHANGE
    assert planted.alarms("b") == []


def test_each_windows_alarms_and_the_alerts_evidence_are_the_detectors_positions(db, planted):
    alerts = read_alerts(db, "api")
    assert set(alerts["rule"]) == {RULE}
    for variant in ("a", "b"):
        alarms = planted.alarms(variant)
        by_window = {k: [p for p in alarms if planted.window_of(variant, p) == k]
                     for k in range(WINDOWS)}  # fmt: skip
        evaluations = read_evaluations(db, "api", WINDOWING, variant=variant)
        assert [e.start_ms for e in evaluations] == [
            planted.window_start(k) for k in range(WINDOWS)
        ]
        for k, e in enumerate(evaluations):
            assert e.metrics["error_drift_positions"] == by_window[k]
            assert e.metrics["error_drift"] == len(by_window[k])
        # The rule fires in a window with alarms after one without (once per streak).
        fired = [k for k in range(WINDOWS) if by_window[k] and (k == 0 or not by_window[k - 1])]
        found = alerts[alerts["variant"] == variant]
        assert found["start_ms"].tolist() == [planted.window_start(k) for k in fired]
        for k, evidence in zip(fired, found["evidence"], strict=True):
            start = planted.window_start(k)
            assert evidence["signal"] == "error_drift"
            assert evidence["start_ms"] == start and evidence["window_ms"] == HOUR_MS
            assert evidence["windows"] == [{"start_ms": start, "value": len(by_window[k])}]
            detector = evidence["detector"]
            assert (detector["name"], detector["preset"]) == ("ADWIN", "monitoring")
            assert detector["positions"] == by_window[k]
            assert detector["restarts"] == []
            point = _expected_change_point(planted.errors[variant], by_window[k][-1])
            assert detector["change_point"] == point
            assert evidence["change_point_ms"] == int(planted.times[variant][point])
    # The planted change: one alert, for variant a, in the window after the change's row at
    # the latest (ADWIN needs rows after it), with the change point estimated at it.
    (alert,) = alerts.to_dict("records")
    assert alert["variant"] == "a"
    assert alert["start_ms"] in (planted.window_start(2), planted.window_start(3))
    assert alert["evidence"]["detector"]["change_point"] == CHANGE  # on this stream, exactly


def _plotted(page: str, div_id: str) -> tuple[list, dict]:
    """The data and layout the report passes to ``Plotly.newPlot`` for one figure."""
    call = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",', page)
    assert call, div_id
    decoder = json.JSONDecoder()
    text = page[call.end() :].lstrip()
    data, end = decoder.raw_decode(text)
    layout, _ = decoder.raw_decode(text[end:].lstrip().removeprefix(",").lstrip())
    return data, layout


def _values(value) -> list:
    """A plotly data array as a list: plain JSON, or base64 typed bytes (``bdata``)."""
    if isinstance(value, dict) and "bdata" in value:
        raw = base64.b64decode(value["bdata"])
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).tolist()
    return list(value)


def test_the_report_marks_the_alarm_at_its_window_and_draws_each_variants_throughput(db, planted):
    report = monitor_report(db, "api", WINDOWING)
    html = report.to_html(plotly="beside")
    alarmed = sorted(
        (planted.window_start(planted.window_of(v, p)), v)
        for v in ("a", "b")
        for p in planted.alarms(v)
    )
    # Two variants: each window's label names its variant.
    expected = list(dict.fromkeys(f"{window_label(start)} {v}" for start, v in alarmed))
    assert expected and report.alarms == expected
    figures = re.findall(r'Plotly\.newPlot\(\s*"(monitoring-\d+)"', html)
    assert len(figures) >= 10  # one per metric with a value: requests, error rate, ...
    titles = []
    for div_id in figures:
        data, layout = _plotted(html, div_id)
        titles.append(layout["title"]["text"])
        marks = [s["x0"] for s in layout.get("shapes", []) if s["line"]["color"] == "#b00020"]
        assert marks == expected, div_id
        assert all(s["x0"] == s["x1"] for s in layout["shapes"])
    assert "error_drift" in titles and "error_rate" in titles
    # The error_drift chart draws the alarms' count at their windows.
    data, _ = _plotted(html, figures[titles.index("error_drift")])
    drawn = dict(zip(_values(data[0]["x"]), _values(data[0]["y"]), strict=True))
    counts = {label: 0 for label in drawn}
    for start, v in alarmed:
        counts[f"{window_label(start)} {v}"] += 1
    assert drawn == counts

    # Throughput: a line per variant, each window's stored requests per second, which is
    # its requests over the hour.
    data, _ = _plotted(html, "monitoring-throughput")
    assert [trace["name"] for trace in data] == ["a", "b"]
    for trace in data:
        variant = trace["name"]
        stored = read_evaluations(db, "api", WINDOWING, variant=variant)
        assert _values(trace["x"]) == [window_label(e.start_ms) for e in stored]
        assert _values(trace["y"]) == [e.metrics["requests_per_second"] for e in stored]
        assert _values(trace["y"]) == [n / 3600 for n in planted.requests[variant]]
    assert '<section id="throughput">' in html
