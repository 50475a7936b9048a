"""The data-window policies a retraining names: the policy options, and "keep the data that
is still correct" on a concept that changes in one region only."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate, read_alerts, read_evaluations
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.monitoring_service import RetrainRequestDocument
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.retrain_follower import follow_retrains
from opsloop.monitoring.retrain_queue import queue_retrain, retrain_requests
from opsloop.monitoring.retrain_request import retrain_on_request
from opsloop.monitoring.still_correct import still_correct
from opsloop.monitoring.training_window import training_window, window_start
from opsloop.monitoring.windowing import Windowing
from opsloop.serving import Deployments, Variant
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0
from .test_evaluation import PER_WINDOW, WINDOWING, Traffic
from .test_loop_over_http import _follower_context, server
from .test_policy_actions import FIT, FLIP_AT, _run, loop

__all__ = ["loop", "server"]

RETRAIN = "concept_drift > 0 -> retrain(train=credit.fit:train"


def test_a_policy_names_its_data_window_and_its_parameter():
    rule = Policy.parse(f"{RETRAIN}, window=since_date, since=2027-01-15T08:00:00Z)")
    assert (rule.option("window"), rule.option("since")) == ("since_date", 1_800_000_000_000)
    # A date alone is midnight UTC; a zone is honoured.
    assert Policy.parse(f"{RETRAIN}, window=since_date, since=2027-01-15)").option("since") == (
        1_800_000_000_000 - 8 * HOUR_MS
    )
    assert Policy.parse(f"{RETRAIN})").option("window") == "since_change_point"
    assert Policy.parse(f"{RETRAIN}, window=new_only)").option("window") == "new_only"
    keep = Policy.parse(f"{RETRAIN}, window=keep_correct, neighbours=3)")
    assert (keep.option("window"), keep.option("neighbours")) == ("keep_correct", 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("window=since_date, since=15/01/2027", "retrain option since: an ISO 8601 date"),
        ("window=since_date", "retrain option since: window=since_date needs since=DATE"),
        ("since=2027-01-15", "retrain option since: only with window=since_date"),
        ("window=latest", "retrain option window: one of since_change_point, since_date"),
        ("window=new_only, reference_share=0.2", "option reference_share: window=new_only"),
        ("window=keep_correct, neighbours=0", "retrain option neighbours: a whole number >= 1"),
        ("neighbours=3", "retrain option neighbours: only with window=keep_correct"),
    ],
)
def test_a_bad_data_window_names_the_option_and_the_rule(options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        Policy.parse(f"{RETRAIN}, {options})")


def test_each_policy_starts_the_range_where_it_says():
    evidence = {
        "change_point_ms": T0 + 2 * HOUR_MS,
        "windows": [{"start_ms": T0 + 3 * HOUR_MS}, {"start_ms": T0 + 4 * HOUR_MS}],
    }
    assert window_start("since_change_point", evidence) == T0 + 2 * HOUR_MS
    assert window_start("keep_correct", evidence) == T0 + 2 * HOUR_MS
    assert window_start("new_only", evidence) == T0 + 3 * HOUR_MS
    assert window_start("since_date", evidence, T0 + HOUR_MS) == T0 + HOUR_MS
    # A request names no window of a streak: its change point.
    assert window_start("new_only", {"change_point_ms": 7, "windows": []}) == 7


# The concept: y = x1 > 0.5, until it flips where x2 > 0.6. Rows sit on a grid of cells with
# gaps around both boundaries (x1 in 0.4..0.6, x2 in 0.5..0.7), so a row's nearest rows are
# in its own quadrant and the rows kept can be told by hand.
X1 = [0.05, 0.15, 0.25, 0.35, 0.65, 0.75, 0.85, 0.95]
X2 = [0.05, 0.15, 0.25, 0.35, 0.45, 0.75, 0.85, 0.95]
CELLS = np.array([(a, b) for a in X1 for b in X2])


def old_concept(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] > 0.5).astype(int)


def new_concept(x: np.ndarray) -> np.ndarray:
    return old_concept(x) ^ (x[:, 1] > 0.6)


def frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})


def test_keep_correct_keeps_exactly_the_older_rows_outside_the_changed_region(db):
    # Three older rows a cell, the old concept: two in the labelled reference, one answered
    # live before the change; one new row a cell, at its centre, the new concept.
    offsets = [(0.01, 0.01), (-0.01, 0.01), (0.0, -0.01)]
    older = [CELLS + np.array(o) for o in offsets]
    reference = np.vstack(older[:2])
    set_reference(db, "api", frame(reference), labels=old_concept(reference), sample_size=10_000)
    change = T0 + 2 * HOUR_MS
    before = older[2]
    ids = log_predictions(
        db, "api", frame(before), [0] * len(before), at_ms=np.full(len(before), T0 + HOUR_MS)
    )
    log_labels(db, "api", ids, old_concept(before).tolist())
    ids = log_predictions(
        db, "api", frame(CELLS), [0] * len(CELLS), at_ms=np.full(len(CELLS), change + HOUR_MS)
    )
    log_labels(db, "api", ids, new_concept(CELLS).tolist())

    window = training_window(
        db,
        "api",
        start_ms=change,
        end_ms=change + 2 * HOUR_MS,
        label="y",
        policy="keep_correct",
        keep_correct=True,
        neighbours=5,
    )
    # By hand: 64 cells, 24 of them (x2 > 0.6, 3 of 8 rows of the grid) flipped; the older
    # rows kept are the 3 x 40 outside the flipped region, of the 3 x 64 judged.
    assert (window.new_rows, window.older_rows, window.reference_rows) == (64, 192, 120)
    kept = window.frame.iloc[window.new_rows :]
    assert (kept["x2"] < 0.6).all()
    everything_old = frame(np.vstack(older))
    expected = everything_old[everything_old["x2"] < 0.6]
    assert sorted(map(tuple, kept[["x1", "x2"]].round(6).to_numpy())) == sorted(
        map(tuple, expected.round(6).to_numpy())
    )
    assert (kept["y"].to_numpy() == old_concept(kept[["x1", "x2"]].to_numpy())).all()
    assert window.to_dict()["policy"] == "keep_correct"

    # Trained on the window, a 5-nearest-neighbour model is right on every post-change cell;
    # trained on everything, the three older rows of each flipped cell outvote its new row:
    # wrong on the 24 flipped cells, 40 of 64 right.
    def accuracy(rows: pd.DataFrame) -> float:
        model = KNeighborsClassifier(n_neighbors=5).fit(rows[["x1", "x2"]], rows["y"])
        return float((model.predict(frame(CELLS)) == new_concept(CELLS)).mean())

    everything = pd.concat(
        [everything_old.assign(y=old_concept(np.vstack(older))), window.frame.iloc[:64]],
        ignore_index=True,
    )
    assert accuracy(window.frame) == 1.0
    assert accuracy(everything) == 40 / 64


def test_still_correct_compares_categories_by_equality():
    recent = pd.DataFrame({"city": ["a", "a", "b", "b"], "y": [1, 1, 0, 0]})
    older = pd.DataFrame({"city": ["a", "b", "a"], "y": [1, 1, 0]})
    assert still_correct(older, recent, "y", neighbours=2).tolist() == [True, False, False]


EVALUATOR_SCRIPT = """
import sys
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database
db = Database(sys.argv[1], clock=lambda: int(sys.argv[2]))
print("evaluating", flush=True)
evaluate(db, "api", windowing=Windowing("1h"), policies=[sys.argv[3]])
print("done", flush=True)
"""

WINDOWS = 12


def _error_traffic(db) -> None:
    """Twelve hourly windows of 100 labelled rows: the model is wrong 5% of the time, 60%
    in windows 4 to 7, then 5% again."""
    rng = np.random.default_rng(11)
    rows = pd.DataFrame({"x": np.arange(100.0)})
    set_reference(db, "api", rows, predictions=[0] * 100, labels=(rng.random(100) < 0.05) * 1)
    for k in range(WINDOWS):
        wrong = rng.random(100) < (0.6 if 4 <= k <= 7 else 0.05)
        ids = [f"w{k}-{i}" for i in range(100)]
        at = T0 + k * HOUR_MS + np.arange(100) * 1000
        log_predictions(db, "api", [{"x": float(i)} for i in range(100)], [0] * 100,
                        at_ms=at, request_ids=ids)  # fmt: skip
        log_labels(db, "api", ids, wrong.astype(int).tolist())


class _BlockingHook(BaseHTTPRequestHandler):
    """Records each alert posted; while ``server.hold`` is not set, answers none, so the
    evaluator posting it waits there until the test kills it."""

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(payload["windows"][-1]["start_ms"])
        self.server.keys.append(self.headers["Idempotency-Key"])
        self.server.posted.set()
        self.server.hold.wait(timeout=120)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_process_killed_during_evaluation_loses_nothing_and_resends_its_webhook(tmp_path, clock):
    import os
    import signal
    import subprocess
    import sys

    server = ThreadingHTTPServer(("127.0.0.1", 0), _BlockingHook)
    server.received, server.posted, server.hold = [], threading.Event(), threading.Event()
    server.keys = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rule = (
        f"error_drift > 0 -> webhook(url=http://127.0.0.1:{server.server_port}/a, "
        "retries=0, timeout_s=60)"
    )
    clock.now_ms = T0 + (WINDOWS + 1) * HOUR_MS
    windowing = Windowing("1h")

    # The run nobody stops, on a store of its own with the same traffic.
    whole = Database(f"sqlite:///{tmp_path / 'whole.db'}", clock=clock)
    _error_traffic(whole)
    server.hold.set()
    evaluate(whole, "api", windowing=windowing, policies=[rule])
    expected_posts, server.received[:], server.keys[:] = list(server.received), [], []
    server.hold.clear()
    server.posted.clear()
    expected = [
        (e.start_ms, e.metrics["error_drift"]) for e in read_evaluations(whole, "api", windowing)
    ]
    alarms = [start for start, drift in expected if drift]
    # ADWIN on the error stream alarms when the errors rise and again when they fall back.
    assert len(expected) == WINDOWS and len(alarms) >= 2 and expected_posts == alarms

    # The run killed while its first alarm's webhook is in flight: the windows before it are
    # evaluated and committed, those after it are not.
    path = tmp_path / "killed.db"
    db = Database(f"sqlite:///{path}", clock=clock)
    _error_traffic(db)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", EVALUATOR_SCRIPT, f"sqlite:///{path}", str(clock.now_ms), rule],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout.readline().strip() == "evaluating"
    assert server.posted.wait(timeout=120)  # the evaluator is inside the first action
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    server.hold.set()
    assert server.received == alarms[:1]
    # The webhook in flight has no outcome, and says so: it is running, in the dead process.
    stopped = read_actions(db, "api", windowing)
    assert stopped["outcomes"] == [] and stopped["pending"] == []
    (running,) = stopped["running"]
    assert (running["action"], running["rule"]) == ("webhook", rule)
    assert running["worker"].endswith(f":{child.pid}")
    assert running["action_id"] == server.keys[0]
    done_before = [e.start_ms for e in read_evaluations(db, "api", windowing)]
    assert done_before == [start for start, _ in expected if start <= alarms[0]]

    # Reopened, the store evaluates the rest: every window once, the detector where it was.
    db.dispose()
    db = Database(f"sqlite:///{path}", clock=clock)
    resumed = evaluate(db, "api", windowing=windowing, policies=[rule])
    assert [e.start_ms for e in resumed] == [s for s, _ in expected if s > alarms[0]]
    again = [(e.start_ms, e.metrics["error_drift"]) for e in read_evaluations(db, "api", windowing)]
    assert again == expected
    alerts = read_alerts(db, "api")
    fired = alerts[alerts["action"] == "webhook"]
    assert sorted(fired["evidence"].map(lambda e: e["windows"][-1]["start_ms"])) == alarms
    # The webhook in flight when the process died is recorded as interrupted (an alert, as
    # every action that did not do its work) and sent again with the same Idempotency-Key;
    # every later alarm's webhook was posted once.
    (failed,) = alerts[alerts["action"] == "alert"]["evidence"]
    assert failed["failed_action"]["status"] == "interrupted"
    assert failed["windows"][-1]["start_ms"] == alarms[0]
    assert server.received == [alarms[0], *expected_posts]
    assert server.keys[0] == server.keys[1] == running["action_id"]
    assert len(set(server.keys)) == len(alarms)
    actions = read_actions(db, "api", windowing)
    assert actions["pending"] == [] and actions["running"] == []
    # Oldest first: the interrupted try, its second try delivered, then each later alarm's.
    outcomes = actions["outcomes"][::-1]
    assert [o["status"] for o in outcomes] == ["interrupted"] + ["done"] * len(alarms)
    assert outcomes[0]["evidence"]["action_id"] == outcomes[1]["evidence"]["action_id"]
    assert f"{child.pid}" in outcomes[0]["reason"] and "sent again" in outcomes[0]["reason"]
    assert len(read_actions(whole, "api", windowing)["outcomes"]) == len(alarms)
    server.shutdown()
    server.server_close()
    whole.dispose()
    db.dispose()


def test_a_policy_retrains_on_the_window_it_names(db, clock, loop):
    traffic, _, _, context = loop
    rule = f"concept_drift > 0 -> retrain(train={FIT}, window=keep_correct, neighbours=7)"
    evaluations, _ = _run(db, clock, traffic, rule, context)
    (outcome,) = [a for e in evaluations for a in e.actions]
    # The labels flipped everywhere at FLIP_AT: the rows since then, and of the 300 labelled
    # reference rows and FLIP_AT earlier windows, those the flipped rows still agree with.
    start = T0 + FLIP_AT * HOUR_MS
    end = outcome["window"]["end_ms"]
    window = training_window(
        db, "cancer", start_ms=start, end_ms=end, label="label", policy="keep_correct",
        keep_correct=True, neighbours=7,
    )  # fmt: skip
    assert outcome["window"] == window.to_dict()
    assert window.older_rows == 300 + FLIP_AT * PER_WINDOW
    assert window.reference_rows < window.older_rows
    assert outcome["window"]["policy"] == "keep_correct"


def test_a_queued_retrain_keeps_its_window_policy(db):
    rule = Policy.parse(
        f"error_drift > 0 -> retrain(train={FIT}, window=since_date, since=2027-01-15T07:00:00Z)"
    )
    evidence = {"change_point_ms": T0, "start_ms": T0, "window_ms": HOUR_MS, "windows": []}
    queue_retrain(db, "api", "default", rule, evidence, actor="ana")
    (request,) = retrain_requests(db, "api")
    assert (request["window_policy"], request["start_ms"]) == ("since_date", T0 - HOUR_MS)
    assert RetrainRequestDocument(**request).window_policy == "since_date"


def test_a_requested_retrain_can_keep_the_correct_rows(db, clock, loop):
    traffic, _, _, context = loop
    _run(db, clock, traffic, "concept_drift > 0 -> alert", context)
    outcome = retrain_on_request(
        context, "cancer", train=FIT, windowing=WINDOWING, keep_correct=True
    )
    assert outcome["window"]["policy"] == "keep_correct"
    assert outcome["window"]["older_rows"] == 300 + FLIP_AT * PER_WINDOW
    dated = retrain_on_request(
        context, "cancer", train=FIT, windowing=WINDOWING, since_ms=T0 + (FLIP_AT + 1) * HOUR_MS
    )
    assert (dated["window"]["policy"], dated["window"]["new_rows"]) == ("since_date", PER_WINDOW)


def test_a_window_policy_travels_over_rest_to_the_follower(db, clock, server, cancer):
    url, registry, token = server
    monitoring = HttpMonitoring(url, token=token)
    bad = f"concept_drift > 0 -> retrain(train={FIT}, window=since_date, since=yesterday)"
    with pytest.raises(InvalidArgumentError, match="retrain option since: an ISO 8601 date"):
        monitoring.evaluate("cancer", policies=[bad])
    rule = f"concept_drift > 0 -> retrain(train={FIT}, window=keep_correct, neighbours=7)"
    traffic = Traffic(cancer, flip_at=FLIP_AT)
    registry.register("cancer-model", traffic.model, input_schema=traffic.train)
    Deployments(db).deploy("cancer", [Variant("live", "cancer-model", version=1)])
    predictions = traffic.model.predict(traffic.train)
    set_reference(db, "cancer", traffic.train, predictions=predictions, labels=traffic.train_y)
    for k in range(FLIP_AT + 2):
        traffic.log(db, k, with_labels=True)
        clock.now_ms = T0 + (k + 1) * HOUR_MS
        monitoring.evaluate("cancer", policies=[rule])
    (request,) = monitoring.retrain_requests("cancer")
    assert (request["window_policy"], request["neighbours"]) == ("keep_correct", 7)
    context = _follower_context(url, token)
    (outcome,) = follow_retrains(monitoring, "cancer", context, train=FIT, once=True)
    start, end = T0 + FLIP_AT * HOUR_MS, T0 + (FLIP_AT + 1) * HOUR_MS
    window = training_window(
        db, "cancer", start_ms=start, end_ms=end, label="label", policy="keep_correct",
        keep_correct=True, neighbours=7,
    )  # fmt: skip
    assert outcome["window"] == window.to_dict()
    assert window.older_rows == 300 + FLIP_AT * PER_WINDOW
