"""Paging through a claimed retrain request's rows: every page is the slice of the training
window that :func:`training_window` builds (what each page was cut from when every page
built it again), the window is built once, at the claim, and a process that did not build
it builds it again with the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.monitoring.claimed_windows import forget_window
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.retrain_queue import claim_retrain, queue_retrain, retrain_rows
from opsloop.monitoring.training_window import training_window

from .conftest import HOUR_MS, T0

RULE = Policy.parse(
    "error_rate > 0.2 -> retrain(train=tests.monitoring.training_functions:fit_logistic, "
    "reference_share=0.25)"
)


@pytest.fixture
def claimed(db, clock):
    """95 answers in the first hour, 90 of them labelled, one input missing a value; a
    labelled reference of 40 rows; a claimed request to retrain on the hour."""
    rng = np.random.default_rng(12)
    inputs = pd.DataFrame({"x": rng.normal(size=95), "c": rng.choice(["a", "b"], 95)})
    inputs.loc[7, "x"] = np.nan
    ids = [f"r{i}" for i in range(95)]
    times = T0 + np.sort(rng.integers(0, HOUR_MS, 95))
    log_predictions(db, "api", inputs, [0] * 95, at_ms=times, request_ids=ids)
    log_labels(db, "api", ids[:90], rng.integers(0, 2, 90).tolist())
    reference = pd.DataFrame({"x": rng.normal(size=40), "c": rng.choice(["a", "b"], 40)})
    set_reference(db, "api", reference, labels=rng.integers(0, 2, 40))
    evidence = {"signal": "error_rate", "windows": [], "change_point_ms": T0, "start_ms": T0,
                "window_ms": HOUR_MS}  # fmt: skip
    queue_retrain(db, "api", "default", RULE, evidence, actor="eda")
    clock.now_ms = T0 + 2 * HOUR_MS
    return claim_retrain(
        db, "api", train=RULE.option("train"), label="label", follower="f", actor="eda"
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _statements(db) -> list[str]:
    """The SQL sent on ``db`` from now on."""
    sent: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    return sent


def test_pages_are_the_slices_of_the_window_built_once(db, claimed):
    window = training_window(
        db, "api", start_ms=T0, end_ms=T0 + HOUR_MS, label="label", reference_share=0.25
    )
    assert (window.new_rows, window.reference_rows, len(window.frame)) == (90, 10, 100)
    assert claimed["window"] == window.to_dict()
    sent = _statements(db)
    rows, offset = [], 0
    while offset < len(window.frame):
        page = retrain_rows(db, "api", claimed["id"], claim=claimed["claim"], offset=offset,
                            limit=30)  # fmt: skip
        assert page["rows"] == _records(window.frame.iloc[offset : offset + 30])
        assert (page["total"], page["offset"], page["window"]) == (100, offset, window.to_dict())
        assert page["columns"] == ["x", "c", "label"]
        rows += page["rows"]
        offset += 30
    assert rows == _records(window.frame) and rows[7]["x"] is None
    # Four pages, and not one read of the events or the labels: each page read only the
    # request's own row (to check the claim).
    assert len([s for s in sent if "monitoring_state" in s]) == 4
    assert not [s for s in sent if "prediction_events" in s or "feedback" in s]


def test_a_process_that_did_not_build_the_window_builds_the_same_rows(db, claimed):
    first = retrain_rows(db, "api", claimed["id"], claim=claimed["claim"], limit=40)
    forget_window(db.uri, "api", claimed["id"], claimed["claim"])
    sent = _statements(db)
    again = retrain_rows(db, "api", claimed["id"], claim=claimed["claim"], limit=40)
    assert [s for s in sent if "prediction_events" in s]  # built from the store again
    assert again == first
    sent.clear()
    rest = retrain_rows(db, "api", claimed["id"], claim=claimed["claim"], offset=40, limit=100)
    assert not [s for s in sent if "prediction_events" in s]  # and kept from then on
    assert len(rest["rows"]) == 60 and rest["window"] == claimed["window"]
