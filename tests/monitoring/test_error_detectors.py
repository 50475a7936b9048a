"""The error-stream detector a deployment's policy chooses: each choice signals at the items
River's detector (the class itself for CUSUM, which River lacks) signals at on the windows'
errors read as one stream, a rule on its alarms fires, the choice and the detector's state
survive a new process, and a change of choice starts the new detector afresh at the next
window, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from river import drift
from tests.store.databases import postgres_store_database, store_uri

from opsloop.monitoring.error_stream import ERROR_DETECTORS, error_detector
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.retrain_queue import retrain_requests
from opsloop.monitoring.stored_policy import set_policy
from opsloop.monitoring.windowing import Windowing
from opsloop.registry.audit import audit_entries, verify_audit_log
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

__all__ = ["postgres_store_database", "store_uri"]

WINDOWING = Windowing("1h", sample_size=100, seed=3)
PER_WINDOW = 400
WINDOWS = 10
CHANGE_AT = 4  # the first window whose error rate rose
#: Each window's error rate: 10%, then 40% from window CHANGE_AT.
RATES = (0.1,) * CHANGE_AT + (0.4,) * (WINDOWS - CHANGE_AT)
RULE = "error_drift > 0 -> alert"


def _errors(k: int, rates=RATES) -> np.ndarray:
    """Window ``k``'s 0/1 errors, in event order, at its rate of ``rates``."""
    return (np.random.default_rng(50 + k).random(PER_WINDOW) < rates[k]).astype(float)


def _log(db: Database, k: int, *, numbers: bool = False, rates=RATES) -> np.ndarray:
    """Window ``k``'s answers and their labels (wrong where ``_errors`` says), one row a
    second apart; with ``numbers``, a regression's answers off by a drawn amount."""
    errors = _errors(k, rates)
    times = T0 + k * HOUR_MS + 1_000 * np.arange(PER_WINDOW)
    ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
    if numbers:
        labels = np.random.default_rng(k).normal(size=PER_WINDOW)
        predictions = labels + errors * 3.0 + 0.25
    else:
        labels = np.random.default_rng(k).integers(0, 2, PER_WINDOW)
        predictions = np.where(errors == 1.0, 1 - labels, labels)
    records = pd.DataFrame({"x": np.random.default_rng(200 + k).normal(size=PER_WINDOW)})
    log_predictions(db, "api", records, predictions, at_ms=times, request_ids=ids)
    log_labels(db, "api", ids, labels, windowing=WINDOWING)
    return errors


def _run(db: Database, clock, windows: range, rules=None, rates=RATES) -> list:
    found = []
    for k in windows:
        _log(db, k, rates=rates)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        found += evaluate(db, "api", windowing=WINDOWING, policies=rules)
    return found


def _river(name: str, errors: np.ndarray) -> list[int]:
    """The items River's detector of the same parameters signals at."""
    made = {
        "ADWIN": lambda: drift.ADWIN(delta=0.0003, clock=4),
        "PageHinkley": lambda: drift.PageHinkley(
            min_instances=30, delta=0.075, threshold=11.0, alpha=1.0
        ),
        "DDM": drift.binary.DDM,
    }[name]()
    found = []
    for i, x in enumerate(errors.tolist()):
        made.update(x)
        if made.drift_detected:
            found.append(i)
    return found


@pytest.fixture
def store(store_uri, clock):
    db = Database(store_uri, clock=clock)
    set_reference(db, "api", pd.DataFrame({"x": np.random.default_rng(9).normal(size=300)}))
    yield db
    db.dispose()


@pytest.mark.parametrize("name", list(ERROR_DETECTORS))
def test_each_detector_signals_where_river_does_and_its_rule_fires(store, clock, name):
    set_policy(store, "api", [RULE], error_detector=name, actor="ana")
    evaluations = _run(store, clock, range(WINDOWS))
    stream = np.concatenate([_errors(k) for k in range(WINDOWS)])
    found = [p for e in evaluations for p in e.metrics["error_drift_positions"]]
    # The wiring: the alarms are the class's own on the windows' errors read as one stream.
    expected = error_detector(name).update_many(stream).stream_positions().tolist()
    assert found == expected
    if name != "CUSUM":  # River has no CUSUM; the class is checked against the formula
        assert found == _river(name, stream)
    # The rise is found, after it happened (none of these false-alarmed on the quiet part).
    assert found and min(found) >= CHANGE_AT * PER_WINDOW
    assert [e.metrics["error_drift"] for e in evaluations] == [
        sum(1 for p in found if k * PER_WINDOW <= p < (k + 1) * PER_WINDOW) for k in range(WINDOWS)
    ]
    assert {e.metrics["error_detector"]["name"] for e in evaluations} == {name}
    assert {e.metrics["policy"]["from"] for e in evaluations} == {"stored"}
    # The stored rule on the detector's alarms fired in the first window with one, with the
    # detector and its positions in the evidence.
    alerts = read_alerts(store, "api")
    first = next(k for k, e in enumerate(evaluations) if e.metrics["error_drift"])
    assert alerts["start_ms"].tolist()[0] == T0 + first * HOUR_MS
    evidence = alerts["evidence"].iloc[0]["detector"]
    assert (evidence["name"], evidence["preset"]) == (name, ERROR_DETECTORS[name])
    assert evidence["positions"] == evaluations[first].metrics["error_drift_positions"]
    # ADWIN, reading the stream whichever detector signals, places the change in it.
    assert CHANGE_AT * PER_WINDOW - 200 <= evidence["change_point"] <= evidence["positions"][-1]


@pytest.mark.parametrize("name", ["CUSUM", "DDM"])
def test_the_choice_and_its_state_survive_a_new_process(tmp_path, clock, name):
    """Evaluated by one process to window 3 (before the rise), by another from there: the
    same alarms as one process reading every window (CUSUM's estimate from its warm-up and
    DDM's minimum carried over)."""
    reference = pd.DataFrame({"x": np.random.default_rng(9).normal(size=300)})
    whole = Database(f"sqlite:///{tmp_path / 'whole.db'}", clock=clock)
    set_reference(whole, "api", reference)
    set_policy(whole, "api", [RULE], error_detector=name, actor="ana")
    uninterrupted = _run(whole, clock, range(WINDOWS))
    whole.dispose()
    path = f"sqlite:///{tmp_path / 'restarted.db'}"
    first = Database(path, clock=clock)
    set_reference(first, "api", reference)
    set_policy(first, "api", [RULE], error_detector=name, actor="ana")
    before = _run(first, clock, range(3))
    first.dispose()
    second = Database(path, clock=clock)  # a new process on the same file
    after = _run(second, clock, range(3, WINDOWS))
    restarted = before + after
    assert [e.metrics["error_drift_positions"] for e in restarted] == [
        e.metrics["error_drift_positions"] for e in uninterrupted
    ]
    assert [e.alerts for e in restarted] == [e.alerts for e in uninterrupted]
    assert any(e.alerts for e in after)
    assert {e.metrics["error_detector"]["name"] for e in after} == {name}
    second.dispose()


def test_a_change_of_detector_starts_it_afresh_at_the_next_window(store, clock):
    """PageHinkley for windows 0-3, DDM for 4-6, ADWIN for 7-9 (each part's error rate
    rising from 10% to 40% in it): each reads from the window after its choice as a new
    detector would, each switch recorded and audited."""
    rates = (0.1, 0.1, 0.4, 0.4, 0.1, 0.4, 0.4, 0.1, 0.4, 0.4)
    set_policy(store, "api", [RULE], error_detector="PageHinkley", actor="ana")
    evaluations = _run(store, clock, range(4), rates=rates)
    set_policy(store, "api", [RULE], error_detector="DDM", actor="ana")
    evaluations += _run(store, clock, range(4, 7), rates=rates)
    set_policy(store, "api", [RULE], error_detector="ADWIN", actor="ana", reason="calibrated")
    evaluations += _run(store, clock, range(7, WINDOWS), rates=rates)
    stream = np.concatenate([_errors(k, rates) for k in range(WINDOWS)])
    expected = []
    for name, begin, end in (("PageHinkley", 0, 4), ("DDM", 4, 7), ("ADWIN", 7, WINDOWS)):
        part = stream[begin * PER_WINDOW : end * PER_WINDOW]
        expected += [begin * PER_WINDOW + p for p in _river(name, part)]
    found = [p for e in evaluations for p in e.metrics["error_drift_positions"]]
    assert found == expected
    # Each of the three signalled in its part.
    assert [any(b * PER_WINDOW <= p < e * PER_WINDOW for p in found) for b, e in
            ((0, 4), (4, 7), (7, WINDOWS))] == [True, True, True]  # fmt: skip
    switches = {k: e.metrics["error_detector_switch"] for k, e in enumerate(evaluations)}
    assert {k for k, s in switches.items() if s is not None} == {4, 7}
    assert {k: (s["from"], s["to"], s["position"], s["rows_read"]) for k, s in switches.items()
            if s is not None} == {
        4: ("PageHinkley", "DDM", 4 * PER_WINDOW, 4 * PER_WINDOW),
        7: ("DDM", "ADWIN", 7 * PER_WINDOW, 3 * PER_WINDOW),
    }  # fmt: skip
    assert switches[4]["at_ms"] == T0 + 4 * HOUR_MS
    assert "old detector's state is dropped" in switches[7]["reason"]
    # ADWIN restarted at window 7; that window's decay is still judged against the
    # history it held (the same model's errors), the next ones against the new history.
    assert evaluations[7].metrics["decay"]["error"]["history_rows"] > 0
    assert evaluations[8].metrics["decay"]["error"]["history_rows"] <= PER_WINDOW
    audit = audit_entries(store, entity="monitor:api")
    assert audit["action"].tolist().count("set_policy") == 3
    restarts = audit[audit["action"] == "detector_restart"]
    assert restarts["reason"].str.contains("was PageHinkley, after 1600 rows").tolist() == [
        True,
        False,
    ]
    assert (
        "ADWIN reads the error stream of variant 'default' from row 2800"
        in (restarts["reason"].iloc[1])
    )
    assert verify_audit_log(store).ok


def test_a_regression_s_errors_are_not_read_by_the_detectors_of_0_1_errors(store, clock):
    set_policy(store, "api", [RULE], error_detector="DDM", actor="ana")
    for k in range(2):
        _log(store, k, numbers=True)
    clock.now_ms = T0 + 2 * HOUR_MS
    evaluations = evaluate(store, "api", windowing=WINDOWING)
    assert [e.metrics["task"] for e in evaluations] == ["mae", "mae"]
    for e in evaluations:
        assert e.metrics["error_drift"] is None and e.alerts == ()
        assert e.metrics["error_detector"]["read"] is False
        assert "DDM reads 0/1 errors" in e.metrics["error_detector"]["reason"]
    # ADWIN still reads them: the stream goes on, and the decay has its history.
    assert [e.metrics["error_stream_start"] for e in evaluations] == [0, PER_WINDOW]
    assert evaluations[1].metrics["decay"]["error"]["history_rows"] > 0
    # CUSUM reads any errors: chosen next, it reads the next window's.
    set_policy(store, "api", [RULE], error_detector="CUSUM", actor="ana")
    _log(store, 2, numbers=True)
    clock.now_ms = T0 + 3 * HOUR_MS
    (third,) = evaluate(store, "api", windowing=WINDOWING)
    assert third.metrics["error_drift"] == 0 and third.metrics["error_detector"]["read"]


def test_ddm_on_the_error_stream_queues_a_retrain(store, clock):
    """The issue's rule, 'DDM drift on the error stream -> retrain', stored once and applied
    by the monitoring's evaluation, which queues the retrain for a follower."""
    rule = "error_drift > 0 -> retrain(train=tests.monitoring.training_functions:fit_logistic)"
    monitoring = Monitoring(store, actor="ana")
    setting = monitoring.set_policy("api", rules=[rule], error_detector="DDM")
    assert setting.warning.startswith("DDM has no calibrated preset")
    for k in range(WINDOWS):
        _log(store, k)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        monitoring.evaluate("api", window="1h")
    (request,) = [r for r in retrain_requests(store, "api") if r["state"] == "queued"][:1]
    assert request["rule"] == rule
    assert request["evidence"]["detector"]["name"] == "DDM"


def test_a_detector_s_alarms_keep_their_stream_positions_across_rows_it_did_not_read():
    """PageHinkley reads 0/1 errors only: a window of absolute errors between two of 0/1
    errors is not read by it, and its alarm in the third window is at the position of the
    rows it read there, counted over the whole stream (ADWIN read every row)."""
    from opsloop.monitoring.error_stream import read_errors

    rng = np.random.default_rng(3)
    windows = [
        (rng.random(500) < 0.05).astype(float),  # 0/1 errors, 5%
        rng.gamma(2.0, 1.0, 300),  # absolute errors: a regression's window
        np.r_[(rng.random(200) < 0.05), (rng.random(400) < 0.6)].astype(float),
    ]
    state = source = alarm = None
    start = 0
    for k, errors in enumerate(windows):
        read = read_errors(
            state, source, errors, [("m", 1)] * len(errors),
            list(range(start, start + len(errors))), detector="PageHinkley", alarm=alarm,
            zero_one=k != 1,
        )  # fmt: skip
        assert read.start == start
        state, source, alarm = read.state, read.source, read.alarm
        start += len(errors)
    # By hand: a fresh detector on the third window's rows (its state was dropped with the
    # rows it could not read), placed where that window starts in the stream.
    fresh = error_detector("PageHinkley")
    expected = [800 + int(p) for p in fresh.update_many(windows[2]).stream_positions()]
    assert expected and read.positions == expected


class _PolicyHook(BaseHTTPRequestHandler):
    """A webhook receiver that, on its first alert, sets the deployment's policy on its own
    store object (as another process would): CUSUM and another rule, revision 2."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.received += 1
        if server.received == 1:
            db = Database(server.uri, clock=server.clock, migrate=False)
            try:
                set_policy(db, "api", [AFTER], error_detector="CUSUM", actor="ana")
            finally:
                db.dispose()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


AFTER = "requests > 0 -> alert"


def test_a_policy_set_during_a_call_applies_from_the_next_window_and_each_records_its_own(
    store, store_uri, clock
):
    """One call evaluates three windows; window 0's rule calls a webhook whose receiver
    sets a new policy (CUSUM, another rule) before the call reads window 1. Each window
    applies the rules and the detector of one revision, read when it is evaluated, and
    records that revision: window 0 the first, windows 1 and 2 the second."""
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _PolicyHook)
    hook.received, hook.uri, hook.clock = 0, store_uri, clock
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    try:
        before = f"requests > 0 -> webhook(url=http://127.0.0.1:{hook.server_port}/, retries=0)"
        set_policy(store, "api", [before], actor="ana")
        for k in range(3):
            _log(store, k)
        clock.now_ms = T0 + 3 * HOUR_MS
        evaluations = evaluate(store, "api", windowing=WINDOWING)
    finally:
        hook.shutdown()
        hook.server_close()
    assert hook.received == 1
    assert [e.metrics["policy"] for e in evaluations] == [
        {"from": "stored", "revision": 1, "detector_revision": 1},
        {"from": "stored", "revision": 2, "detector_revision": 2},
        {"from": "stored", "revision": 2, "detector_revision": 2},
    ]
    assert [e.metrics["error_detector"]["name"] for e in evaluations] == [
        "ADWIN",
        "CUSUM",
        "CUSUM",
    ]
    switch = evaluations[1].metrics["error_detector_switch"]
    assert (switch["from"], switch["to"], switch["position"]) == ("ADWIN", "CUSUM", PER_WINDOW)
    # The rules of each revision: the webhook rule fired in window 0 (its outcome reported
    # with it), the new rule in window 1, where its streak began.
    assert [e.alerts for e in evaluations] == [(before,), (AFTER,), ()]
    assert [o["status"] for o in evaluations[0].actions] == ["done"]
    assert read_alerts(store, "api")["rule"].tolist() == [before, AFTER]
