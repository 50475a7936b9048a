"""A shadow's agreement with its primary from what the serving runtime recorded: agreement
equal to the two models' predictions compared record by record, and the copies a full
shadow queue dropped counted as unanswered, as many as the runtime counted."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from tests.serving import served_models
from tests.serving.served_models import Hanging, classifier, loan_table

from opsloop.serving import Deployments, ServingRuntime, Variant
from opsloop.store.database import now_ms

LATER_MS = 60_000


@pytest.fixture
def models(registry):
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    return {1: first, 2: second}


@pytest.fixture
def runtime(registry, models):
    served = ServingRuntime(registry.db, registry.artifacts, trust=True, shadow_capacity=2)
    yield served
    served.close()


def _wait(runtime, shadow: str, copies: int) -> None:
    """Poll until the shadow has answered or failed ``copies`` copies."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = runtime.shadow_counts("api").get(shadow, {})
        if counts.get("answered", 0) + counts.get("failed", 0) >= copies:
            return
        time.sleep(0.001)
    raise TimeoutError(f"shadow {shadow} did not answer {copies} copies")


def test_agreement_is_the_share_of_equal_predictions(runtime, models):
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("live", "credit", version=1),
            Variant("copy", "credit", version=2, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    frame, _ = loan_table(n=40, seed=5)
    started = now_ms()
    for sent, record in enumerate(frame.to_dict("records"), start=1):
        runtime.predict("api", [record])
        _wait(runtime, "copy", sent)  # one copy at a time: the queue never fills
    assert runtime.recorder.flush(30.0)
    expected = int((models[1].predict(frame) == models[2].predict(frame)).sum())
    assert 0 < expected < len(frame)  # the two models differ on some records, not all
    report = Deployments(runtime.db).shadow_agreement(
        "api", since_ms=started, until_ms=now_ms() + LATER_MS
    )
    (shadow,) = report.variants
    assert (shadow.variant, shadow.copies, shadow.answered, shadow.failed) == ("copy", 40, 40, 0)
    assert (shadow.unanswered, shadow.agreed) == (0, expected)
    assert shadow.agreement == expected / 40


def test_copies_a_full_queue_dropped_are_unanswered(runtime, registry, models):
    registry.register("stuck", Hanging())
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("slow", "stuck", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    record = {"age": 30, "income": 20_000.0}
    served_models.STARTED.clear()
    served_models.RELEASE.clear()
    try:
        runtime.predict("api", [record])
        assert served_models.STARTED.wait(10)
        for _ in range(9):
            runtime.predict("api", [record])
    finally:
        served_models.RELEASE.set()
    _wait(runtime, "slow", 3)  # the stuck one and the two queued
    assert runtime.recorder.flush(30.0)
    dropped = runtime.shadow_counts("api")["slow"]["dropped"]
    assert dropped == 7
    report = Deployments(runtime.db).shadow_agreement(
        "api", since_ms=0, until_ms=now_ms() + LATER_MS
    )
    (shadow,) = report.variants
    assert (shadow.copies, shadow.answered, shadow.unanswered) == (10, 3, dropped)
    # The stuck shadow answers 0; the primary answers what version 1 predicts.
    primary = int(models[1].predict(pd.DataFrame([record]))[0])
    assert shadow.agreed == (3 if primary == 0 else 0)


def test_agreement_is_counted_per_request_and_per_record(runtime, registry):
    # The primary answers 0 on every record, the shadow 1 where x > 0.7. Requests of 1, 5
    # and 10 records, with x = 0.9 where the two differ:
    #   1 record:   0.1                     -> agrees on 1 of 1; the request agrees
    #   5 records:  0.9, 0.1, 0.1, 0.9, 0.1 -> 3 of 5; the request does not
    #   10 records: 0.9, then 0.1 x 9       -> 9 of 10; the request does not
    # Per request 1 of 3 agree (33%); per record 13 of 16 (81.25%).
    registry.register("zero", served_models.Constant(0))
    registry.register("cut", served_models.AboveCut(0.7))
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("live", "zero", version=1),
            Variant("copy", "cut", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    started = now_ms()
    bodies = [[0.1], [0.9, 0.1, 0.1, 0.9, 0.1], [0.9] + [0.1] * 9]
    for sent, xs in enumerate(bodies, start=1):
        runtime.predict("api", [{"x": x} for x in xs])
        _wait(runtime, "copy", sent)
    assert runtime.recorder.flush(30.0)
    report = Deployments(runtime.db).shadow_agreement(
        "api", since_ms=started, until_ms=now_ms() + LATER_MS
    )
    (shadow,) = report.variants
    assert (shadow.copies, shadow.answered, shadow.agreed) == (3, 3, 1)
    assert shadow.agreement == 1 / 3
    assert (shadow.records, shadow.records_agreed) == (16, 13)
    assert shadow.record_agreement == 13 / 16
