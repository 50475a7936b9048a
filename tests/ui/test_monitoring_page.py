"""A deployment's monitoring page over HTTP against a real server on loopback, holding
breast cancer answers pushed through the monitoring service's HTTP client with a planted
concept drift and a planted data drift: every number in its tables and charts is the
service's answer, the drift tests equal scipy's and statsmodels' on the same rows, and a
caller's mistake is a page naming the field."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score
from statsmodels.stats.multitest import multipletests
from tests.server.running import running_server
from tests.ui.monitoring_data import (
    CONCEPT,
    FEATURES,
    HOUR_MS,
    NAME,
    REFERENCE_ROWS,
    SHIFT,
    SHIFTED,
    START_MS,
    WINDOW_ROWS,
    WINDOWS,
    populate_monitoring,
)
from tests.ui.test_pages import session
from tests.ui.test_results_page import rows

from opsloop.analysis.performance_estimation import PerformanceEstimator
from opsloop.monitoring.evaluation import _evaluate_window
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.reference import get_reference
from opsloop.monitoring.window_store import update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant


@pytest.fixture
def served(database, artifacts, isolated_home):
    app = create_app(database, artifacts)
    with running_server(app) as url:
        token = app.state.installation_token
        monitoring = HttpMonitoring(url, token=token)
        monitored = populate_monitoring(database, artifacts, monitoring)
        with session(url, token) as client:
            yield client, monitoring, monitored


def pct(x) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def num(x) -> str:
    return "" if x is None else f"{x:.4g}"


def estimate_of(estimate) -> str:
    accuracy = estimate["metrics"]["accuracy"]
    text = f"{num(accuracy['value'])} [{num(accuracy['low'])}, {num(accuracy['high'])}]"
    return text if estimate["trusted"] else f"{text} not trusted"


def alarm_cell(metrics: dict) -> str:
    """The outputs table's error-rate alarms: their count, and the error stream's rows."""
    positions = metrics["error_drift_positions"]
    if not positions:
        return str(metrics["error_drift"])
    rows = "rows" if len(positions) > 1 else "row"
    return f"{metrics['error_drift']} ({rows} {', '.join(map(str, positions))})"


def time_of(start_ms: int) -> str:
    import pandas as pd

    return pd.Timestamp(start_ms, unit="ms").strftime("%Y-%m-%d %H:%M:%S")


def figures(page: str) -> list[dict]:
    """The page's charts in its order, as figure documents: plotly's as they are sent, and
    those drawn on the server as SVG from the numbers their elements carry (a trace's
    ``data-trace``; a heatmap row's ``data-z``, its cells' links and hover texts, and the
    alarms' crosses)."""
    found = [
        (m.start(), json.loads(m.group(1)))
        for m in re.finditer(
            r'<script type="application/json" id="figure-\d+">(.*?)</script>', page, re.S
        )
    ]
    for m in re.finditer(r'<svg class="(window-chart|bar-chart|heatmap)"(.*?)</svg>', page, re.S):
        kind, body = m.groups()
        title = html.unescape(re.search(r'<text class="title"[^>]*>(.*?)</text>', body)[1])
        if kind != "heatmap":
            traces = [
                json.loads(html.unescape(t)) for t in re.findall(r'data-trace="([^"]*)"', body)
            ]
            found.append((m.start(), {"data": traces, "layout": {"title": {"text": title}}}))
            continue
        cells: dict = {"type": "heatmap", "y": [], "z": [], "text": [], "customdata": []}
        for feature, z, row in re.findall(
            r'<g class="row" data-feature="([^"]*)" data-z="([^"]*)">(.*?)</g>', body, re.S
        ):
            linked = re.findall(r'<a href="([^"]*)" tabindex="-1"><title>(.*?)</title>', row)
            cells["y"].append(html.unescape(feature))
            cells["z"].append(json.loads(html.unescape(z)))
            cells["customdata"].append([html.unescape(link) for link, _ in linked])
            cells["text"].append([html.unescape(text) for _, text in linked])
        marks = re.findall(
            r'<a class="alarm" href="([^"]*)" data-column="([^"]*)" data-feature="([^"]*)"'
            r"[^>]*><title>(.*?)</title>",
            body,
        )
        data = [cells]
        if marks:
            data.append({
                key: [html.unescape(mark[i]) for mark in marks]
                for i, key in enumerate(("customdata", "x", "y", "text"))
            })  # fmt: skip
        found.append((m.start(), {"data": data, "layout": {"title": {"text": title}}}))
    return [figure for _, figure in sorted(found, key=lambda pair: pair[0])]


def test_the_windows_tables_hold_the_services_numbers(served):
    client, monitoring, _ = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    assert page.status_code == 200
    evaluations = monitoring.evaluations(NAME)[::-1]
    assert len(evaluations) == WINDOWS
    # Each row logged is a request of one record; no text feature, no anomaly detector and the
    # per-feature detectors off: those cells are empty.
    assert rows(page.text, "inputs") == [
        [time_of(e.start_ms), "stable", str(WINDOW_ROWS), pct(e.metrics["missing_share"]),
         pct(e.metrics["out_of_schema_rate"]), pct(e.metrics["drift_share"]),
         pct(e.metrics["previous_drift_share"]), "1", "1", "", "", "", ""]
        for e in evaluations
    ]  # fmt: skip
    assert 'class="feature-alarms"' not in page.text and 'class="residuals"' not in page.text
    kinds = {
        "none": "no decay",
        "concept_drift": "concept drift (inputs stable, error rose or stays above what the "
        "reference expects)",
        "data_drift_and_error_rise": "data drift and error rise (both at once, cannot tell "
        "whether the move explains it)",
    }
    outputs = rows(page.text, "outputs")
    for row, e in zip(outputs, evaluations, strict=True):
        m, o = e.metrics, e.metrics["output_drift"]
        decay = kinds[m["decay"]["kind"]] if m["decay"]["kind"] else "no labels or history yet"
        assert row == [
            time_of(e.start_ms), "stable", o["test"], num(o["statistic"]), num(o["p_value"]),
            "drifted" if o["drifted"] else "no drift", str(WINDOW_ROWS),
            f"accuracy {num(m['task_metric'])}", estimate_of(m["estimate"]),
            alarm_cell(m), decay,
        ]  # fmt: skip
    # The planted drifts, as the page reads them (newest first: window 4 is the first row).
    assert outputs[0][10] == kinds["data_drift_and_error_rise"]
    assert outputs[WINDOWS - 1 - CONCEPT][10] == kinds["concept_drift"]
    assert rows(page.text, "software") == [
        [time_of(e.start_ms), "stable", str(WINDOW_ROWS), num(WINDOW_ROWS / 3600),
         str(WINDOW_ROWS), "0", "0.0%",
         num(e.metrics["latency_mean_ms"]), num(e.metrics["latency_p50_ms"]),
         num(e.metrics["latency_p95_ms"])]
        for e in evaluations
    ]  # fmt: skip
    # By hand: latencies 2 + (i mod 7) ms over 60 rows: 8 full cycles of 2..8 and 2..5.
    latencies = 2.0 + np.arange(WINDOW_ROWS) % 7
    assert evaluations[0].metrics["latency_mean_ms"] == pytest.approx(latencies.mean(), rel=1e-12)
    # The charts draw the same numbers.
    drawn = figures(page.text)
    heatmap, inputs, outputs_figure, _, _, software, throughput, length = drawn
    assert length["data"][0]["y"] == [1.0] * WINDOWS
    oldest_first = evaluations[::-1]
    assert heatmap["data"][0]["y"] == FEATURES
    assert heatmap["data"][0]["z"][0] == [
        e.metrics["drift"][FEATURES[0]]["p_adjusted"] for e in oldest_first
    ]
    assert inputs["data"][2]["y"] == [e.metrics["drift_share"] for e in oldest_first]
    assert outputs_figure["data"][0]["y"] == [e.metrics["task_metric"] for e in oldest_first]
    alarm = outputs_figure["data"][-1]
    assert alarm["x"] == [time_of(e.start_ms) for e in oldest_first if e.metrics["error_drift"]]
    assert software["data"][0]["y"] == [WINDOW_ROWS] * WINDOWS
    # An hour's window of 60 requests: 60 / 3600 requests per second, as stored.
    assert throughput["data"][0]["y"] == [e.metrics["requests_per_second"] for e in oldest_first]
    assert throughput["data"][0]["y"] == [WINDOW_ROWS / 3600] * WINDOWS


def test_the_estimated_accuracy_equals_the_estimator_on_the_same_rows(served):
    client, _, monitored = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    # The estimator fitted on the reference's labels, scores and inputs, applied to each
    # window's scores and inputs, outside the service: the page shows its numbers.
    direct = PerformanceEstimator().fit(
        monitored.reference_labels, monitored.reference_scores, inputs=monitored.reference_inputs
    )
    newest_first = range(WINDOWS - 1, -1, -1)
    for row, k in zip(rows(page.text, "outputs"), newest_first, strict=True):
        found = direct.estimate(
            monitored.scores[k], y_pred=monitored.predictions[k], inputs=monitored.windows[k]
        )
        accuracy = found.metrics["accuracy"]
        expected = f"{num(accuracy.value)} [{num(accuracy.low)}, {num(accuracy.high)}]"
        assert row[8] == (expected if found.trusted else f"{expected} not trusted")
        assert accuracy.low <= accuracy.value <= accuracy.high


def test_the_accuracy_chart_draws_the_estimate_the_realised_accuracy_and_the_error_rate(served):
    client, monitoring, monitored = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    accuracy = figures(page.text)[3]
    assert accuracy["layout"]["title"]["text"].startswith("Accuracy")
    estimated, realised, error_rate, alarms = accuracy["data"]
    # The estimate is the service's (its agreement with the estimator is tested above).
    evaluations = monitoring.evaluations(NAME)
    found = [e.metrics["estimate"]["metrics"]["accuracy"] for e in evaluations]
    assert estimated["y"] == [a["value"] for a in found]
    assert estimated["error_y"]["array"] == pytest.approx([a["high"] - a["value"] for a in found])
    assert estimated["error_y"]["arrayminus"] == pytest.approx(
        [a["value"] - a["low"] for a in found]
    )
    assert all(0 <= a["low"] <= a["value"] <= a["high"] <= 1 for a in found)
    by_sklearn = [
        accuracy_score(monitored.labels[k], monitored.predictions[k]) for k in range(WINDOWS)
    ]
    assert realised["y"] == pytest.approx(by_sklearn, rel=1e-12)
    assert error_rate["y"] == pytest.approx([1 - a for a in by_sklearn], rel=1e-12)
    # The planted concept drift: a third of window 2's labels flipped.
    assert by_sklearn[CONCEPT] < min(by_sklearn[:CONCEPT])
    alarmed = [k for k, e in enumerate(evaluations) if e.metrics["error_drift"]]
    assert alarms["x"] == [time_of(evaluations[k].start_ms) for k in alarmed]
    assert alarms["y"] == pytest.approx([1 - by_sklearn[k] for k in alarmed], rel=1e-12)


def test_the_latest_windows_predictions_are_drawn_against_the_references(served):
    client, monitoring, monitored = served
    page = client.get(f"/deployments/{NAME}/monitoring")
    drawn = figures(page.text)[4]
    window = monitored.predictions[WINDOWS - 1].astype(float)
    reference = monitored.reference_predictions.astype(float)
    edges = np.histogram_bin_edges(np.concatenate([window, reference]), bins=20)
    window_counts = np.histogram(window, edges)[0].tolist()
    reference_counts = np.histogram(reference, edges)[0].tolist()
    window_bars, reference_bars = drawn["data"]
    assert window_bars["customdata"] == window_counts
    assert window_bars["y"] == [c / WINDOW_ROWS for c in window_counts]
    assert reference_bars["y"] == [c / REFERENCE_ROWS for c in reference_counts]
    start = monitoring.evaluations(NAME)[-1].start_ms
    assert drawn["layout"]["title"]["text"] == (
        f"Predictions in the window of {time_of(start)} UTC (stable) against the reference"
    )
    table = rows(page.text, "output-distribution")
    assert [(int(w), int(r)) for _, w, r in table] == list(
        zip(window_counts, reference_counts, strict=True)
    )
    # Both classes are answered in the window and in the reference.
    assert (table[0][1:], table[-1][1:]) == (
        [str(int((window == 0).sum())), str(int((reference == 0).sum()))],
        [str(int((window == 1).sum())), str(int((reference == 1).sum()))],
    )


def test_a_windows_feature_tables_equal_scipy_and_statsmodels(served):
    client, monitoring, monitored = served
    evaluations = monitoring.evaluations(NAME)
    shifted = evaluations[SHIFT]
    page = client.get(
        f"/deployments/{NAME}/monitoring?start={shifted.start_ms}&start_variant=stable"
    ).text
    table = rows(page, "drift")
    # The reference sample keeps all 250 rows and the window's sample all 60: the tests
    # run on exactly the rows sent.
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame[FEATURES]
    order = np.random.default_rng(0).permutation(len(data))
    reference = data.iloc[order].iloc[:REFERENCE_ROWS]
    window = monitored.windows[SHIFT]
    found = [stats.ks_2samp(reference[f], window[f]) for f in FEATURES]
    adjusted = multipletests([r.pvalue for r in found], method="holm")[1]
    by_feature = {row[0]: row for row in table}
    assert list(by_feature) == SHIFTED + [f for f in FEATURES if f not in SHIFTED]
    for feature, result, p_adjusted in zip(FEATURES, found, adjusted, strict=True):
        served_drift = shifted.metrics["drift"][feature]
        assert served_drift["statistic"] == pytest.approx(result.statistic, abs=1e-12)
        assert served_drift["p_value"] == pytest.approx(result.pvalue, rel=1e-9, abs=1e-300)
        assert served_drift["p_adjusted"] == pytest.approx(p_adjusted, rel=1e-9, abs=1e-300)
        verdict = "drifted" if feature in SHIFTED else "no drift"
        assert by_feature[feature] == [
            feature, "ks", num(served_drift["statistic"]), num(served_drift["p_value"]),
            num(served_drift["p_adjusted"]), verdict, str(REFERENCE_ROWS), str(WINDOW_ROWS),
        ]  # fmt: skip
    # Against the previous window (window 3), the same test on the two windows' rows.
    previous = {row[0]: row for row in rows(page, "previous-drift")}
    before = monitored.windows[SHIFT - 1]
    for feature in FEATURES:
        result = stats.ks_2samp(before[feature], window[feature])
        assert previous[feature][2] == num(result.statistic)
        assert previous[feature][3] == num(result.pvalue)
    assert f"of {time_of(evaluations[SHIFT - 1].start_ms)} UTC" in page
    # The decay's test: Fisher's exact test against the history ADWIN kept.
    error = shifted.metrics["decay"]["error"]
    assert error["test"] == "fisher_exact"
    assert f"p-value {num(error['p_value'])} (rose)" in page
    # The newest window is shown when none is chosen.
    newest = client.get(f"/deployments/{NAME}/monitoring").text
    assert f"Features in the window of {time_of(evaluations[-1].start_ms)} UTC" in newest


def test_the_alerts_show_the_rules_and_their_evidence(served):
    client, monitoring, _ = served
    page = client.get(f"/deployments/{NAME}/monitoring").text
    alerts = monitoring.alerts(NAME).to_dict("records")[::-1]
    evaluations = monitoring.evaluations(NAME)
    table = rows(page, "alerts")
    # By hand: accuracy falls below 0.8 in the concept window and in the shifted one; the
    # shifted one also has 3 of 5 features drifted (0.6 > 0.5).
    assert [(row[2], row[4]) for row in table] == [
        ("task_metric < 0.8 -> alert", time_of(evaluations[SHIFT].start_ms)),
        ("drift_share > 0.5 -> alert", time_of(evaluations[SHIFT].start_ms)),
        ("task_metric < 0.8 -> alert", time_of(evaluations[CONCEPT].start_ms)),
    ]
    assert [row[2] for row in table] == [a["rule"] for a in alerts]
    drift_alert = table[1]
    assert drift_alert[5] == f"drift_share: 0.6 ({time_of(evaluations[SHIFT].start_ms)})"
    for feature in SHIFTED:
        d = alerts[1]["evidence"]["drifted"][feature]
        assert (
            f"{feature} (ks {num(d['statistic'])}, adjusted p {num(d['p_adjusted'])})"
            in (drift_alert[6])
        )
    task = monitoring.evaluations(NAME)[CONCEPT].metrics["task_metric"]
    assert table[2][5] == f"task_metric: {num(task)} ({time_of(evaluations[CONCEPT].start_ms)})"


def test_a_deployment_without_monitoring_and_the_mistakes(served, database):
    client, _, _ = served
    Deployments(database).deploy("quiet", [Variant("stable", "cancer", version=1)])
    page = client.get("/deployments/quiet/monitoring").text
    assert "No reference is set" in page and 'id="no-windows"' in page
    assert "No alert." in page
    listing = client.get("/monitoring").text
    assert f'href="/deployments/{NAME}/monitoring"' in listing
    assert 'href="/deployments/quiet/monitoring"' in listing
    deployment = client.get(f"/deployments/{NAME}").text
    assert f'href="/deployments/{NAME}/monitoring"' in deployment
    for path, status, message in [
        (f"/deployments/{NAME}/monitoring?window=2weeks", 422, "window: a duration like"),
        (f"/deployments/{NAME}/monitoring?start=5", 404, "start: no evaluated window starts at 5"),
        (f"/deployments/{NAME}/monitoring?start=-1", 422, "start:"),
        ("/deployments/nope/monitoring", 404, "no deployment named &#39;nope&#39;"),
        ("/monitoring?page=9", 404, "page: there is no page 9"),
    ]:
        response = client.get(path)
        assert response.status_code == status and message in response.text, path
    # Another window length has no evaluations yet; nor has a variant that never answered.
    assert 'id="no-windows"' in client.get(f"/deployments/{NAME}/monitoring?window=5min").text
    gone = client.get(f"/deployments/{NAME}/monitoring?variant=gone").text
    assert "No evaluated window of length 1h for variant gone yet" in gone
    assert '<option value="gone" selected>gone</option>' in gone


def test_a_regressions_task_metric_is_its_mean_absolute_error(served, database):
    client, monitoring, _ = served
    Deployments(database).deploy("prices", [Variant("stable", "cancer", version=1)])
    monitoring.set_reference("prices", [{"x": float(i)} for i in range(40)])
    ids = monitoring.log_predictions(
        "prices", [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}], [1.5, 2.0, 4.0], at_ms=1_000
    )
    monitoring.log_labels("prices", ids, [1.0, 3.0, 4.0])
    monitoring.evaluate("prices")
    # By hand: |1.5 - 1| + |2 - 3| + |4 - 4| = 1.5 over 3 rows.
    (row,) = rows(client.get("/deployments/prices/monitoring").text, "outputs")
    assert row[6:8] == ["3", "mean absolute error 0.5"]


def test_the_reference_names_the_version_whose_predictions_it_keeps(served, database):
    client, monitoring, _ = served
    Deployments(database).deploy("scored", [Variant("stable", "cancer", version=1)])
    monitoring.set_reference("scored", [{"x": 1.0}, {"x": 2.0}], predictions=[0, 1])
    page = client.get("/deployments/scored/monitoring").text
    assert "<dt>predicted by</dt><dd>not said (taken to be the version serving)</dd>" in page
    monitoring.set_reference(
        "scored", [{"x": 1.0}, {"x": 2.0}], predictions=[0, 1], predicted_by=("cancer", 1)
    )
    page = client.get("/deployments/scored/monitoring").text
    assert "<dt>predicted by</dt><dd>cancer version 1</dd>" in page
    # Without predictions there is nothing to attribute.
    monitoring.set_reference("scored", [{"x": 1.0}, {"x": 2.0}])
    assert "predicted by" not in client.get("/deployments/scored/monitoring").text


def test_the_policies_streaks_pending_actions_and_outcomes_are_the_services(
    served, database, artifacts
):
    """A deployment whose inputs leave the reference's range from its second window: a
    rule of 3 windows is 2 windows into its streak, a rollback rule of 1 window fired in
    the second window and rolled the deployment back; then a window evaluated by a
    process that stopped before acting leaves its action pending."""
    client, monitoring, _ = served
    ModelRegistry(database, artifacts, actor="ana").register("cancer", b"m2", flavor="onnx")
    deployments = Deployments(database, actor="ana")
    deployments.deploy("loop-api", [Variant("stable", "cancer", version=1)])
    deployments.deploy("loop-api", [Variant("stable", "cancer", version=2)])
    monitoring.set_reference("loop-api", [{"x": i * 0.37} for i in range(200)])
    waiting = "drift_share > 0.5 for 3 windows -> rollback"
    acting = "drift_share > 0.5 -> rollback"

    def log(k: int, offset: float) -> None:
        records = [{"x": offset + 1.11 * i} for i in range(60)]
        at = [START_MS + k * HOUR_MS + 1_000 * i for i in range(60)]
        monitoring.log_predictions("loop-api", records, [0] * 60, variant="stable", at_ms=at)

    for k, offset in enumerate([0.05, 100.0, 100.0]):
        log(k, offset)
    monitoring.evaluate("loop-api", policies=[waiting, acting])
    answer = monitoring.actions("loop-api")
    page = client.get("/deployments/loop-api/monitoring").text
    # By hand: window 0 is spread like the reference; windows 1 and 2 lie above all of it
    # (KS statistic 1, one feature of one drifted), so both rules hold in windows 1 and 2.
    first, second = START_MS + HOUR_MS, START_MS + 2 * HOUR_MS
    streak = f"1 ({time_of(first)}), 1 ({time_of(second)})"
    # A streak keeps its latest windows that held, as many as the rule needs, and counts
    # the rest: the 1-window rule lists window 2, the latest, and counts 2 since window 1.
    latest = f"the latest 1 of 2 since {time_of(first)}: 1 ({time_of(second)})"
    assert rows(page, "policies") == [
        ["stable", waiting, "2", "3", streak, "0", "", ""],
        ["stable", acting, "2", "1", latest, "1",
         time_of(answer["policies"][1]["last_fired_ms"]), time_of(first)],
    ]  # fmt: skip
    assert answer["policies"][1]["streak_windows"] == [{"start_ms": second, "value": 1.0}]
    assert answer["policies"][1]["streak_start_ms"] == first
    assert [(p["rule"], p["streak"], p["fired"]) for p in answer["policies"]] == [
        (waiting, 2, 0),
        (acting, 2, 1),
    ]
    (outcome,) = answer["outcomes"]
    assert (outcome["action"], outcome["status"]) == ("rollback", "done")
    assert Deployments(database).get("loop-api").serving == {"stable": 1}
    assert rows(page, "actions") == [
        [time_of(outcome["at_ms"]), "stable", acting, "rollback", "done", outcome["reason"],
         f"{outcome['why']}action_id: {outcome['evidence']['action_id']}"
         f"from: {{\"stable\": 2}}to: {{\"stable\": 1}}"],
    ]  # fmt: skip
    # START_MS is 2026-01-01T00:00:00Z; the window an hour later.
    assert outcome["why"] == (
        f"policy {acting!r} held: drift_share 1 in the window from 2026-01-01T01:00:00Z"
    )
    assert 'id="no-pending"' in page
    # Window 3 completes the 3-window streak and is committed; the process stops before
    # its rollback runs: the page shows it pending.
    log(3, 100.0)
    third = START_MS + 3 * HOUR_MS
    update_windows(database, "loop-api")
    reference = get_reference(database, "loop-api")
    rules = [Policy.parse(waiting), Policy.parse(acting)]
    _evaluate_window(database, "loop-api", "stable", third, Windowing(), reference, rules, 0.05)
    page = client.get("/deployments/loop-api/monitoring").text
    assert rows(page, "pending") == [["stable", waiting, "rollback", time_of(third)]]
    assert monitoring.actions("loop-api")["pending"][0]["start_ms"] == third
    assert rows(page, "policies")[0][2:4] == ["3", "3"]
    assert rows(page, "policies")[0][5] == "1"
    # Another window length has no streaks; a variant filter keeps only its outcomes.
    assert 'id="no-policies"' in client.get("/deployments/loop-api/monitoring?window=1d").text
    other = client.get("/deployments/loop-api/monitoring?variant=canary").text
    assert 'id="no-actions"' in other and "No action was taken for variant canary" in other


def test_windows_evaluated_before_throughput_was_kept_still_show(served, database):
    # Windows evaluated by an older opsloop hold no requests_per_second; the page shows
    # them with that cell empty rather than failing.
    import sqlalchemy as sa

    from opsloop.store import tables

    client, _, _ = served
    table = tables.metadata.tables["monitoring_evaluations"]
    with database.write() as connection:
        for row in connection.execute(sa.select(table.c.id, table.c.metrics_json)).all():
            metrics = json.loads(row.metrics_json)
            metrics.pop("requests_per_second", None)
            connection.execute(
                table.update().where(table.c.id == row.id).values(metrics_json=json.dumps(metrics))
            )
    page = client.get(f"/deployments/{NAME}/monitoring")
    assert page.status_code == 200, page.text[-300:]
    software = rows(page.text, "software")
    assert len(software) == WINDOWS and all(row[3] == "" for row in software)


def test_a_streak_shows_the_windows_without_labels_it_passed_over(served, database):
    """A rule judged on labels: window 0 is labelled and every answer is wrong (accuracy 0,
    so ``task_metric < 0.8`` holds); windows 1 and 2 have no labels, so the rule has no
    verdict there. By hand: a streak of 1 window, with 2 windows passed over."""
    client, monitoring, _ = served
    Deployments(database).deploy("sparse", [Variant("stable", "cancer", version=1)])
    monitoring.set_reference("sparse", [{"x": float(i)} for i in range(40)])
    rule = "task_metric < 0.8 for 3 windows -> alert"
    ids = []
    for k in range(3):
        at = [START_MS + k * HOUR_MS + 1_000 * i for i in range(4)]
        records = [{"x": float(i)} for i in range(4)]
        ids.append(monitoring.log_predictions("sparse", records, [1] * 4, at_ms=at))
    monitoring.log_labels("sparse", ids[0], [0] * 4)
    monitoring.evaluate("sparse", policies=[rule])
    (policy,) = monitoring.actions("sparse")["policies"]
    assert (policy["streak"], policy["fired"]) == (1, 0)
    assert policy["streak_skipped"] == [START_MS + HOUR_MS, START_MS + 2 * HOUR_MS]
    (row,) = rows(client.get("/deployments/sparse/monitoring").text, "policies")
    assert row[2:5] == [
        "1",
        "3",
        f"0 ({time_of(START_MS)}); 2 windows without a value passed over",
    ]


def test_a_streak_saved_with_its_first_windows_is_not_shown_as_the_latest(served, database):
    """A streak an earlier version saved with counts and its first windows that held (2
    listed of 5 that held, no start kept): the page and the service say the 2 listed are
    its first, not known to be the latest until 2 more hold, rather than "the latest 2"."""
    from opsloop.monitoring.monitor_state import put_state

    client, monitoring, _ = served
    Deployments(database).deploy("saved", [Variant("stable", "cancer", version=1)])
    rule = "drift_share > 0.5 for 2 windows -> alert"
    first, second = START_MS, START_MS + HOUR_MS
    saved = {
        "windows": [{"start_ms": first, "value": 0.75}, {"start_ms": second, "value": 0.875}],
        "held": 5,
        "skipped": 0,
    }
    with database.write() as connection:
        put_state(connection, "saved", f"policies:stable:{HOUR_MS}", {rule: saved})
    (standing,) = monitoring.actions("saved")["policies"]
    assert (standing["streak"], standing["streak_first_listed"]) == (5, 2)
    assert standing["streak_start_ms"] == first
    page = client.get("/deployments/saved/monitoring").text
    assert rows(page, "policies")[0][4] == (
        f"2 of 5 since {time_of(first)}, the first 2 as an earlier version saved the streak "
        "(its first windows, not known to be the latest until 2 more hold): "
        f"0.75 ({time_of(first)}), 0.875 ({time_of(second)})"
    )
