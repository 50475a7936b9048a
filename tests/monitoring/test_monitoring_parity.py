"""The monitoring contract: the local class and the HTTP client give the same answers for
every operation of the table, on SQLite and PostgreSQL, and both have the Protocol's
signatures; refusals are the same errors on both sides, and every route declares its
answer in the OpenAPI document."""

from __future__ import annotations

import inspect

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.server.running import running_server
from tests.store.databases import postgres_store_database, store_uri

from opsloop.contract.operation import ACTOR
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitoring_service import (
    MAX_LOGGED_ROWS,
    MONITORING_OPERATIONS,
    MonitoringService,
)
from opsloop.monitoring.reference import stored_reference
from opsloop.monitoring.window_store import read_window, update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import add_user
from opsloop.registry.users import PermissionDenied
from opsloop.server import create_app
from opsloop.store import ArtifactStore, Database
from opsloop.tracking.limits import INT32_MAX, MAX_TIME_MS, MIN_TIME_MS

from .conftest import HOUR_MS, T0

__all__ = ["postgres_store_database", "store_uri"]

_rng = np.random.default_rng(7)
REFERENCE = [{"x": float(v), "c": c} for v, c in zip(_rng.normal(size=120), "ab" * 60, strict=True)]
REFERENCE_PREDICTIONS = [int(v) for v in _rng.integers(0, 2, 120)]
# The first 40 rows of the live traffic moved by 3: their window drifts.
LIVE = [{"x": float(v) + (3.0 if i < 40 else 0.0), "c": "ab"[i % 2]} for i, v in
        enumerate(_rng.normal(size=70))]  # fmt: skip
PREDICTIONS = [int(v) for v in _rng.integers(0, 2, 70)]
IDS = [f"r{i}" for i in range(70)]
LABELS = [int(v) for v in _rng.integers(0, 2, 70)]
# The labels as the model answers them: text classes for the first 40 answers, numbers after.
KIND_LABELS = [["no", "yes"][v] for v in LABELS[:40]] + LABELS[40:]
REFERENCE_LABELS = [int(v) for v in _rng.integers(0, 2, 120)]
REFERENCE_SCORES = [float(v) for v in _rng.random(120)]
SCORES = [[1.0 - v, v] for v in _rng.random(70).tolist()]
RULES = [
    "drift_share > 0.3 -> alert",
    "task_metric < 0.99 -> alert",
    "estimated_accuracy_low < 0.9 -> alert",
    # A streak that has not reached its length, and an action that fails (no deployment
    # of that name to roll back): the actions operation has a streak and an outcome to show.
    "drift_share > 0.3 for 2 windows -> alert",
    "drift_share > 0.3 -> rollback",
    # Queued for a follower: no training runs where the monitoring runs.
    "drift_share > 0.3 -> retrain(train=tests.monitoring.training_functions:fit_logistic)",
]
# The claims of each side's retrain request, by deployment name.
CLAIMS: dict[str, dict] = {}
# What differs between two claims of the same request: the token and the caller's name.
_PER_CLAIM = ("claim", "claimed_by")


def _claimed(monitoring, name):
    claimed = monitoring.claim_retrain(
        name, train=RULES[5].split("train=")[1][:-1], label="label", follower="f", lease_s=60
    )
    CLAIMS[name] = claimed
    return {k: v for k, v in claimed.items() if k not in _PER_CLAIM}


#: Each operation, called as a user would, in an order that gives every call something to
#: find. A new operation without a case here fails the coverage test.
def _newest(last: list, whole: list) -> list:
    """``last``, checked to be the newest entry of ``whole`` (which holds older ones)."""
    assert len(whole) > 1 and last == whole[-1:]
    return last


def _windows_before_the_newest(m, n) -> list:
    """The page of one window before the newest (by its start and variant), checked
    against the whole list; every window before a variant named after the newest's at its
    start (so the newest too); and every window starting before the newest's start."""
    whole = m.evaluations(n)
    newest = whole[-1]
    page = m.evaluations(n, last=1, before_ms=newest.start_ms, before_variant=newest.variant)
    assert len(whole) >= 2 and page == whole[-2:-1]
    # A start as a frame gives it back (a NumPy integer) is the same cursor.
    start = m.windows(n)["start_ms"].max()
    assert isinstance(start, np.integer) and start == newest.start_ms
    assert m.evaluations(n, last=1, before_ms=start, before_variant=newest.variant) == page
    after_it = m.evaluations(n, before_ms=newest.start_ms, before_variant=f"{newest.variant}~")
    assert after_it == whole
    earlier = m.evaluations(n, before_ms=newest.start_ms)
    assert earlier == [e for e in whole if e.start_ms < newest.start_ms] != []
    return page + after_it + earlier


def _alerts_before_the_newest(m, n) -> pd.DataFrame:
    """The two alerts raised before the newest (by its id), checked against the whole
    list."""
    whole = m.alerts(n)
    # The id as the frame gives it back (a NumPy integer) asks for the page before it.
    newest = whole["id"].iloc[-1]
    assert isinstance(newest, np.integer)
    page = m.alerts(n, last=2, before_id=newest)
    assert len(whole) > 3 and page.to_dict("records") == whole.iloc[-3:-1].to_dict("records")
    return page


SCENARIO = [
    (
        "set_reference",
        lambda m, n: m.set_reference(
            n,
            REFERENCE,
            predictions=REFERENCE_PREDICTIONS,
            labels=np.array(["no", "yes"])[REFERENCE_LABELS],
            probabilities=REFERENCE_SCORES,
            classes=["no", "yes"],
            sample_size=100,
            seed=3,
        ),
    ),
    ("reference", lambda m, n: m.reference(n)),
    (
        "log_predictions",
        lambda m, n: m.log_predictions(
            n,
            LIVE[:40],
            np.array(["no", "yes"])[PREDICTIONS[:40]],
            request_ids=IDS[:40],
            at_ms=T0 + 1_000,
            latency_ms=2.5,
            probabilities=np.array(SCORES[:40]),
            classes=np.array(["no", "yes"]),
        ),
    ),
    (
        "log_predictions",
        lambda m, n: m.log_predictions(
            n,
            LIVE[40:],
            PREDICTIONS[40:],
            variant="canary",
            request_ids=IDS[40:],
            at_ms=[T0 + HOUR_MS + 1_000 * i for i in range(30)],
            latency_ms=[0.5 * i for i in range(30)],
            model="credit",
            version=2,
        ),
    ),
    ("log_labels", lambda m, n: m.log_labels(n, [*IDS[:50], "zz"], [*KIND_LABELS[:50], 1])),
    ("log_labels", lambda m, n: m.log_labels(n, IDS[:2], ["no", "no"], window="30min")),
    ("windows", lambda m, n: m.windows(n)),
    ("windows", lambda m, n: m.windows(n, window="1d")),
    # The per-feature detectors on, for the first feature: the evaluations hold their alarms.
    (
        "set_feature_detectors",
        lambda m, n: m.set_feature_detectors(n, enabled=True, max_features=1),
    ),
    # Then CUSUM on its scores: the setting says which, the windows' alarms name it.
    (
        "set_feature_detectors",
        lambda m, n: m.set_feature_detectors(n, enabled=True, max_features=1, detector="CUSUM"),
    ),
    # A stored policy (DDM on the error stream, with its warning); the rules given to the
    # evaluations below win over its rule.
    (
        "set_policy",
        lambda m, n: m.set_policy(
            n, rules=["error_rate > 0.99 -> alert"], error_detector="DDM", reason="watch"
        ),
    ),
    ("policy", lambda m, n: m.policy(n)),
    ("evaluate", lambda m, n: m.evaluate(n, policies=RULES)),
    ("evaluate", lambda m, n: m.evaluate(n, policies=RULES, alpha=0.01)),
    ("evaluations", lambda m, n: m.evaluations(n)),
    ("evaluations", lambda m, n: m.evaluations(n, variant="canary")),
    # The newest window alone: the tail of the whole list.
    ("evaluations", lambda m, n: _newest(m.evaluations(n, last=1), m.evaluations(n))),
    # A page before a cursor: the newest window's start and variant.
    ("evaluations", _windows_before_the_newest),
    ("status", lambda m, n: m.status(n, last=5)),
    ("gauges", lambda m, n: m.gauges(deployment=n)),
    ("alerts", lambda m, n: m.alerts(n)),
    ("alerts", lambda m, n: m.alerts(n, variant="canary")),
    (
        "alerts",
        lambda m, n: pd.DataFrame(
            _newest(m.alerts(n, last=1).to_dict("records"), m.alerts(n).to_dict("records"))
        ),
    ),
    # A page before a cursor: the newest alert's id.
    ("alerts", _alerts_before_the_newest),
    ("actions", lambda m, n: m.actions(n)),
    ("actions", lambda m, n: m.actions(n, variant="canary", last=1)),
    ("actions", lambda m, n: m.actions(n, window="1d")),
    (
        "feature_distribution",
        lambda m, n: m.feature_distribution(n, "x", start_ms=T0, variant="default", bins=7),
    ),
    (
        "feature_distribution",
        lambda m, n: m.feature_distribution(n, "c", start_ms=T0 + HOUR_MS, variant="canary"),
    ),
    # The model's output, drawn like a feature: the reference keeps its predictions.
    (
        "feature_distribution",
        lambda m, n: m.feature_distribution(n, "prediction", start_ms=T0, variant="default"),
    ),
    # A DataFrame and numpy arrays, as a batch job has them.
    (
        "log_predictions",
        lambda m, n: m.log_predictions(
            n,
            pd.DataFrame(LIVE[:5]).assign(k=np.arange(5), when=pd.Timestamp("2024-01-02")),
            np.array(PREDICTIONS[:5]),
            variant="frame",
            request_ids=np.array([f"f{i}" for i in range(5)]),
            at_ms=np.full(5, T0 + 2 * HOUR_MS + 1),
            latency_ms=np.linspace(0.0, 1.0, 5),
        ),
    ),
    ("windows", lambda m, n: m.windows(n)),
    ("retrain_requests", lambda m, n: m.retrain_requests(n)),
    ("retrain_requests", lambda m, n: m.retrain_requests(n, state="done")),
    ("claim_retrain", _claimed),
    ("claim_retrain", lambda m, n: m.claim_retrain(n, train="other.fit:train", label="label")),
    ("retrain_rows", lambda m, n: m.retrain_rows(n, 1, claim=CLAIMS[n]["claim"], limit=25)),
    ("retrain_rows", lambda m, n: m.retrain_rows(n, 1, claim=CLAIMS[n]["claim"], offset=25)),
    (
        "report_retrain",
        lambda m, n: {
            k: v
            for k, v in m.report_retrain(
                n, 1, claim=CLAIMS[n]["claim"], status="blocked", reason="gate", details={"v": 2}
            ).items()
            if k not in _PER_CLAIM
        },
    ),
]


def test_every_operation_has_a_parity_case():
    assert {method for method, _ in SCENARIO} == {
        operation.method for operation in MONITORING_OPERATIONS.operations
    }


def _plain(value, name: str):
    """A result as plain data, with the deployment's name and actions' ids replaced."""
    if isinstance(value, pd.DataFrame):
        if "id" in value.columns:
            # Alerts' ids count every deployment's alerts: the two sides' alerts interleave,
            # so they are compared by their order (oldest first, increasing).
            assert value["id"].is_monotonic_increasing and value["id"].is_unique
            value = value.assign(id=range(len(value)))
        return {
            "columns": list(value.columns),
            "dtypes": [str(t) for t in value.dtypes],
            "rows": _plain(value.to_dict("records"), name),
        }
    if isinstance(value, list | tuple):
        return [_plain(item, name) for item in value]
    if isinstance(value, dict):
        # An action's id is drawn at random for each action run: compared by its presence.
        return {
            key: "ID" if key == "action_id" and item else _plain(item, name)
            for key, item in value.items()
        }
    if hasattr(value, "__dataclass_fields__"):
        return {"type": type(value).__name__, **_plain(vars(value), name)}
    if isinstance(value, str):
        return value.replace(name, "NAME")
    return value


@pytest.fixture
def store(store_uri, tmp_path):
    db = Database(store_uri, clock=lambda: T0 + 2 * HOUR_MS)
    yield db, ArtifactStore(tmp_path / "artifacts")
    db.dispose()


def test_local_and_http_give_the_same_answers(store):
    db, artifacts = store
    _, token = add_user(db, "eda", "editor")
    local = Monitoring(db, actor="eda")
    with running_server(create_app(db, artifacts)) as url:
        remote = HttpMonitoring(url, token=token)
        answers = {}
        for method, call in SCENARIO:
            mine, theirs = call(local, "credit-local"), call(remote, "credit-http")
            assert type(mine) is type(theirs), method
            assert _plain(mine, "credit-local") == _plain(theirs, "credit-http"), method
            answers.setdefault(method, []).append(theirs)
        remote.close()
    # The scenario finds what it should, so the comparison above compares something.
    first, again = answers["evaluate"]
    assert [(e.variant, e.start_ms) for e in first] == [("canary", T0 + HOUR_MS), ("default", T0)]
    # The stored policy crossed the wire, and its detector read the windows' errors.
    (stored,) = answers["set_policy"]
    assert (stored.rules, stored.error_detector, stored.revision, stored.updated_by) == (
        ("error_rate > 0.99 -> alert",), "DDM", 1, "eda"
    )  # fmt: skip
    assert stored.warning.startswith("DDM has no calibrated preset") and answers["policy"] == [
        stored
    ]
    assert all(e.metrics["error_detector"]["name"] == "DDM" for e in first)
    assert all(
        e.metrics["policy"] == {"from": "call", "revision": None, "detector_revision": 1}
        for e in first
    )
    assert again == []
    assert [e.alerts for e in first] == [(RULES[1],), (*RULES[:3], *RULES[4:])]
    # The action's outcome crosses the wire with its window (it was dropped before), with
    # the id each action run draws.
    assert all(len(outcome.pop("action_id")) == 32 for outcome in first[1].actions)
    assert first[1].actions == (
        {
            "action": "rollback",
            "rule": RULES[4],
            "status": "failed",
            "reason": "UnknownDeploymentError: no deployment named 'credit-http'",
        },
        {
            "action": "retrain",
            "rule": RULES[5],
            "status": "queued",
            "reason": "retrain request 1 queued for a follower that runs "
            "tests.monitoring.training_functions:fit_logistic",
            "request_id": 1,
        },
    )
    # The request, its claim and its rows: the default variant's 40 labelled rows of the
    # window that fired, in two pages.
    (queued,), finished = answers["retrain_requests"]
    assert (queued["state"], queued["start_ms"], queued["end_ms"]) == ("queued", T0, T0 + HOUR_MS)
    assert finished == []
    claimed, nothing = answers["claim_retrain"]
    assert nothing is None
    assert (claimed["state"], claimed["follower"], claimed["label"]) == ("claimed", "f", "label")
    assert claimed["expires_ms"] == T0 + 2 * HOUR_MS + 60_000
    assert (claimed["window"]["new_rows"], claimed["window"]["reference_rows"]) == (40, 0)
    first_page, second_page = answers["retrain_rows"]
    assert (len(first_page["rows"]), len(second_page["rows"]), first_page["total"]) == (25, 15, 40)
    assert first_page["columns"] == ["x", "c", "label"]
    rows = first_page["rows"] + second_page["rows"]
    assert [r["x"] for r in rows] == [r["x"] for r in LIVE[:40]]
    assert [r["label"] for r in rows] == KIND_LABELS[:40]
    (reported,) = answers["report_retrain"]
    assert (reported["state"], reported["outcome"]["v"]) == ("blocked", 2)
    standing, canary, day = answers["actions"]
    by_rule = {(p["variant"], p["rule"]): p for p in standing["policies"]}
    assert len(by_rule) == 2 * len(RULES)
    # The drifted window (x moved, c did not: half the features) starts a streak of 1 of
    # the 2 windows the rule needs; the rule of 1 window fired in it.
    waiting = by_rule[("default", RULES[3])]
    assert (waiting["streak"], waiting["windows"], waiting["fired"]) == (1, 2, 0)
    assert waiting["streak_windows"] == [{"start_ms": T0, "value": 0.5}]
    assert waiting["last_fired_ms"] is None
    fired = by_rule[("default", RULES[4])]
    assert (fired["signal"], fired["op"], fired["threshold"], fired["action"]) == (
        "drift_share", ">", 0.3, "rollback"
    )  # fmt: skip
    assert (fired["fired"], fired["last_fired_start_ms"]) == (1, T0)
    assert fired["last_fired_ms"] == T0 + 2 * HOUR_MS
    assert by_rule[("canary", RULES[4])]["streak"] == 0
    queued_outcome, outcome = standing["outcomes"]
    assert standing["outcomes_total"] == 2 and standing["pending"] == []
    assert (queued_outcome["action"], queued_outcome["status"]) == ("retrain", "queued")
    assert (outcome["variant"], outcome["action"], outcome["status"]) == (
        "default", "rollback", "failed"
    )  # fmt: skip
    assert outcome["why"] == (
        f"policy {RULES[4]!r} held: drift_share 0.5 in the window from 2027-01-15T08:00:00Z"
    )
    assert (canary["outcomes"], canary["outcomes_total"]) == ([], 0)
    assert {p["variant"] for p in canary["policies"]} == {"canary"}
    assert day["policies"] == [] and day["window_ms"] == 24 * HOUR_MS
    # The estimate from the probabilities sent over HTTP, calibrated on the reference's.
    assert first[0].metrics["estimate"] is None
    assert first[1].metrics["estimate"]["rows"] == 40
    assert answers["reference"][0].scored_rows == 120
    receipt, duplicates = answers["log_labels"]
    assert (receipt.accepted, receipt.unknown, receipt.unknown_ids) == (50, 1, ("zz",))
    assert (duplicates.accepted, duplicates.duplicate) == (0, 2)
    assert answers["log_predictions"][0] == IDS[:40]
    assert answers["alerts"][1]["rule"].tolist() == [RULES[1]]
    # The clock is two hours on: every label came after its window closed.
    labels = {"accepted": 50, "late": 50, "duplicate": 2, "unknown": 1}
    assert answers["status"][0]["labels"] == labels
    # The gauges: the latest window of each variant, and the alerts counted per variant.
    (gauges,) = answers["gauges"]
    assert [(w["variant"], w["start_ms"]) for w in gauges["windows"]] == [
        ("canary", T0 + HOUR_MS), ("default", T0)
    ]  # fmt: skip
    default = gauges["windows"][1]["metrics"]
    assert default["drift_share"] == first[1].metrics["drift_share"] == 0.5
    assert default["task_metric"] == first[1].metrics["task_metric"]
    raised = answers["alerts"][0]["variant"].value_counts()
    assert [(a["variant"], a["count"]) for a in gauges["alerts"]] == [
        ("canary", raised["canary"]), ("default", raised["default"])
    ]  # fmt: skip
    assert raised["default"] == 6  # five rules fired and the failed rollback
    # The frame's rows reached both stores alike (dates as their text, as locally).
    samples = []
    for name in ("credit-local", "credit-http"):
        update_windows(db, name)
        samples.append(read_window(db, name, "frame", Windowing(), T0 + 2 * HOUR_MS).sample.rows)
    pd.testing.assert_frame_equal(*samples, check_exact=True)
    assert samples[0]["when"].tolist() == ["2024-01-02 00:00:00"] * 5
    assert sorted(samples[0]["k"].tolist()) == [0, 1, 2, 3, 4]


def test_refusals_are_the_same_on_both_sides(store):
    db, artifacts = store
    _, editor = add_user(db, "eda", "editor")
    _, viewer = add_user(db, "vic", "viewer")
    with running_server(create_app(db, artifacts)) as url:
        remote = HttpMonitoring(url, token=editor)
        messages: list[list[str]] = [[], []]
        for number, side in enumerate((Monitoring(db, actor="eda"), remote)):
            # The model version whose predictions the reference keeps crosses the wire;
            # a version that is not a whole number >= 0 is refused, naming the field.
            made = side.set_reference(
                f"by-{number}", [{"x": 1.0}], predictions=[0], predicted_by=("m", 2)
            )
            assert stored_reference(db, f"by-{number}").predicted_by == ("m", 2)
            # Both the answer and a later read say whose predictions the reference keeps.
            read = side.reference(f"by-{number}")
            assert (made.predicted_model, made.predicted_version) == ("m", 2)
            assert (read.predicted_model, read.predicted_version) == ("m", 2)
            with pytest.raises(InvalidArgumentError, match="predicted_by"):
                side.set_reference("by", [{"x": 1.0}], predictions=[0], predicted_by=("m", -1))
            # A NUL in the name, a version beyond the store's 32-bit column: refused by the
            # wire's rule before anything is stored, with the same message on both sides.
            for by in (("a\x00b", 1), ("m", 2**31), ("m", 2**40), ("m", True), ("m", 2.0)):
                with pytest.raises(InvalidArgumentError) as refused:
                    side.set_reference("by", [{"x": 1.0}], predictions=[0], predicted_by=by)
                messages[number].append(str(refused.value))
                assert str(refused.value).startswith(
                    "predicted_by: a (model name, version) pair with a name of 1 to 250 "
                    "characters without NUL and a whole version from 0 to 2147483647, got "
                )
            # Any integer type is the version it is.
            side.set_reference(
                f"np-{number}", [{"x": 1.0}], predictions=[0], predicted_by=("m", np.int64(3))
            )
            assert stored_reference(db, f"np-{number}").predicted_by == ("m", 3)
            with pytest.raises(NotFoundError, match="'nowhere' has no monitoring reference"):
                side.reference("nowhere")
            # A misspelled name is not an empty status, in Python as over the wire.
            with pytest.raises(NotFoundError, match=r"^unknown deployment 'plian'; known: "):
                side.status("plian")
            with pytest.raises(InvalidArgumentError, match="window: a duration like"):
                side.windows("api", window="1 week")
            side.set_reference("plain", [{"x": 1.0}, {"x": 2.0}])  # without predictions
            assert side.reference("plain").predicted_model is None
            with pytest.raises(NotFoundError, match="no feature 'prediction' and holds no"):
                side.feature_distribution("plain", "prediction", start_ms=T0, variant="a")
            with pytest.raises(InvalidArgumentError, match="predictions: 2 values for 1 input"):
                side.log_predictions("api", [{"x": 1.0}], [0, 1])
            with pytest.raises(InvalidArgumentError, match="latency_ms: 2 values for 1 rows"):
                side.log_predictions("api", [{"x": 1.0}], [0], latency_ms=[1.0, 2.0])
            with pytest.raises(InvalidArgumentError, match="unknown signal 'accuracy'"):
                side.evaluate("api", policies=["accuracy < 0.9 -> alert"])
            # A stored rule is checked before anything is stored, named by its position.
            with pytest.raises(InvalidArgumentError, match=r"^rules\.1: policy 'x > 1 -> alert'"):
                side.set_policy("api", rules=["error_drift > 0 -> alert", "x > 1 -> alert"])
            with pytest.raises(
                InvalidArgumentError,
                match=r"error_detector: (Value error, )?must be one of ADWIN, CUSUM, PageHinkley",
            ):
                side.set_policy("api", rules=[], error_detector="EDDM")
            assert side.policy("api").revision == 0
            # The library's rule, or the same rule as the wire's request model states it.
            with pytest.raises(
                InvalidArgumentError,
                match=r"records: (the reference needs|Value should have at least 1 item)",
            ):
                side.set_reference("api", [])
            with pytest.raises(
                InvalidArgumentError,
                match=r"max_features: (must be an integer of at least 1|Input should be greater)",
            ):
                side.set_feature_detectors("api", enabled=True, max_features=0)
            with pytest.raises(
                InvalidArgumentError,
                match=r"detector: (must be one of ADWIN, CUSUM|Input should be)",
            ):
                side.set_feature_detectors("api", enabled=True, detector="KSWIN")
            # A page's cursor: a window's variant goes with its start.
            with pytest.raises(InvalidArgumentError, match=r"^before_variant: needs before_ms"):
                side.evaluations("api", before_variant="default")
            with pytest.raises(
                InvalidArgumentError,
                match=r"before_id: (must be a whole number|Input should be a valid integer)",
            ):
                side.alerts("api", before_id="7 or 1=1")
            # The cursors' bounds, as the wire states them: the same values refused with
            # the same message on both sides, before the store is asked.
            for cursor, low, high in (
                ({"before_id": 0}, 1, INT32_MAX),
                ({"before_id": -5}, 1, INT32_MAX),
                ({"before_id": 2**31}, 1, INT32_MAX),
                ({"before_id": 2**40}, 1, INT32_MAX),
                ({"before_id": True}, 1, INT32_MAX),
                ({"before_ms": 2**64}, MIN_TIME_MS, MAX_TIME_MS),
                ({"before_ms": -(2**70)}, MIN_TIME_MS, MAX_TIME_MS),
                ({"before_ms": MAX_TIME_MS + 1}, MIN_TIME_MS, MAX_TIME_MS),
                ({"before_ms": 1.5}, MIN_TIME_MS, MAX_TIME_MS),
            ):
                ((field, value),) = cursor.items()
                read = side.alerts if field == "before_id" else side.evaluations
                with pytest.raises(InvalidArgumentError) as refused:
                    read("api", **cursor)
                assert str(refused.value) == (
                    f"{field}: must be a whole number from {low} to {high}, got {value!r}"
                )
                messages[number].append(str(refused.value))
            for variant in ("a\x00b", "v" * 251):
                with pytest.raises(InvalidArgumentError, match=r"^before_variant: a name of at"):
                    side.evaluations("api", before_ms=T0, before_variant=variant)
            # Within the bounds a cursor reads: nothing before the first alert or window.
            assert side.alerts("api", before_id=INT32_MAX).empty
            assert side.alerts("api", before_id=np.int64(1)).empty
            assert side.evaluations("api", before_ms=MIN_TIME_MS) == []
            assert side.evaluations("api", before_ms=np.int64(MAX_TIME_MS)) == []
        assert messages[0] == messages[1] != []
        unknown = httpx.get(
            f"{url}/api/v1/monitoring/plian/status", headers={"Authorization": f"Bearer {viewer}"}
        )
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("unknown deployment 'plian'; known: ")
        # Bounds the wire states: a 422 naming the field, before anything is read.
        for path, query in (
            ("evaluations", {"before_ms": "soon"}),
            ("evaluations", {"before_ms": str(2**63)}),
            ("evaluations", {"before_ms": "1", "before_variant": "x" * 300}),
            ("alerts", {"before_id": "0"}),
            ("alerts", {"before_id": str(2**31)}),
        ):
            refused = httpx.get(
                f"{url}/api/v1/monitoring/api/{path}",
                params=query,
                headers={"Authorization": f"Bearer {viewer}"},
            )
            assert refused.status_code == 422, (path, query)
            assert refused.json()["detail"][0]["loc"][-1] == list(query)[-1], (path, query)
        # A NUL anywhere in the URL is refused before the route, naming the parameter.
        refused = httpx.get(
            f"{url}/api/v1/monitoring/api/evaluations",
            params={"before_ms": "1", "before_variant": "a\x00b"},
            headers={"Authorization": f"Bearer {viewer}"},
        )
        assert refused.status_code == 422 and "'before_variant'" in refused.json()["detail"]
        for by in (["a\x00b", 1], ["m", 2**31]):
            refused = httpx.put(
                f"{url}/api/v1/monitoring/by/reference",
                json={"records": [{"x": 1.0}], "predictions": [0], "predicted_by": by},
                headers={"Authorization": f"Bearer {editor}"},
            )
            assert refused.status_code == 422, by
            assert "predicted_by" in refused.json()["detail"][0]["loc"], by
        too_many = [{"x": 1.0}] * (MAX_LOGGED_ROWS + 1)
        sent = httpx.post(
            f"{url}/api/v1/monitoring/api/predictions",
            json={"records": too_many, "predictions": [0] * (MAX_LOGGED_ROWS + 1)},
            headers={"Authorization": f"Bearer {editor}"},
        )
        assert sent.status_code == 422 and sent.json()["detail"][0]["loc"][-1] == "records"
        # The client sends such a batch in parts, and checks it whole first.
        with pytest.raises(InvalidArgumentError, match="predictions: 1 values for 10001 input"):
            remote.log_predictions("api", too_many, [0])
        ids = remote.log_predictions("big", too_many, np.zeros(MAX_LOGGED_ROWS + 1), at_ms=T0)
        assert len(set(ids)) == MAX_LOGGED_ROWS + 1
        assert update_windows(db, "big") == MAX_LOGGED_ROWS + 1
        with pytest.raises(InvalidArgumentError, match="request_ids"):
            remote.log_labels("api", ["x" * 65], [1])
        with pytest.raises(PermissionDenied, match="editor"):
            HttpMonitoring(url, token=viewer).log_predictions("api", [{"x": 1.0}], [0])
        assert HttpMonitoring(url, token=viewer).windows("api").empty
        remote.close()


def _parameters(function) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)
    return [(n, p.kind, p.default) for n, p in signature.parameters.items()]


@pytest.mark.parametrize("implementation", [Monitoring, HttpMonitoring])
def test_implementations_have_the_protocols_signatures(implementation):
    for operation in MONITORING_OPERATIONS.operations:
        wanted = getattr(MonitoringService, operation.method)
        found = getattr(implementation, operation.method)
        assert _parameters(found) == _parameters(wanted), operation.method
        if ACTOR in inspect.signature(wanted).parameters:
            assert inspect.signature(found).parameters[ACTOR].default is None


def test_the_openapi_document_has_a_response_schema_for_every_monitoring_route(tmp_path):
    db = Database("sqlite://")
    document = create_app(db, ArtifactStore(tmp_path / "artifacts")).openapi()
    routes = [
        (verb, path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/monitoring")
        for verb, operation in item.items()
    ]
    assert len(routes) == len(MONITORING_OPERATIONS.operations)
    for verb, path, operation in routes:
        status, answer = next(iter(operation["responses"].items()))
        schema = answer["content"]["application/json"]["schema"]
        assert status in ("200", "201") and schema != {}, (verb, path)
