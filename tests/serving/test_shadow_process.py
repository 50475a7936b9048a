"""Shadows answered in a process of their own: the same answers and events as in-process
scoring, a bound on the copies under way, and a crashing or hanging child restarted and
counted while the primary answers every request."""

from __future__ import annotations

import dataclasses
import gc
import os
from types import SimpleNamespace

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from tests.serving.served_models import ExitsOn, HangsOn, classifier, poll

from opsloop.errors import InvalidArgumentError
from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
from opsloop.serving.shadow_agreement import shadow_agreement
from opsloop.serving.shadow_process import ChildShadow, ShadowHost, ShadowProcess
from opsloop.store import Database

# Each test starts at least one fresh interpreter that imports scikit-learn and pandas.
pytestmark = pytest.mark.slow

RECORD = {"age": 40, "income": 52_000.0}
CRASH = {"age": 99, "income": 10_000.0}  # ExitsOn(age=99) ends its process on this one


@pytest.fixture
def models(registry):
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    return {1: first, 2: second}


def _runtime(registry, isolation: str, **options) -> ServingRuntime:
    return ServingRuntime(
        registry.db, registry.artifacts, trust=True, shadow_isolation=isolation, **options
    )


def test_a_shadow_process_records_what_in_process_scoring_answers(registry, models):
    Deployments(registry.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "credit", version=2, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    requests = [[{"age": 18 + 3 * n, "income": 20_000.0 + 1_500.0 * n}] for n in range(20)]
    requests.append([RECORD, {"age": 70, "income": 90_000.0}])  # two records in one copy
    served = _runtime(registry, "process")
    try:
        answers = [served.predict("api", records) for records in requests]
        poll(lambda: served.shadow_counts("api")["copy"]["answered"] == len(requests), 120.0)
        assert served.shadow_counts("api") == {
            "copy": {"answered": len(requests), "failed": 0, "dropped": 0, "sampled_out": 0}
        }
        answered = served.metrics.registry.get_sample_value(
            "opsloop_predictions_total", {"deployment": "api", "variant": "copy", "role": "shadow"}
        )
        assert answered == len(requests)
    finally:
        served.close()
    events = read_prediction_events(registry.db, "api", role="shadow")
    assert sorted(events["request_id"]) == sorted(a.request_id for a in answers)
    assert set(events["model"]) == {"credit"} and set(events["version"]) == {2}
    by_request = dict(zip(events["request_id"], events["output"], strict=True))
    # The agreement report reads the child's events beside the primary's.
    agreed = sum(
        models[1].predict(pd.DataFrame(r)).tolist() == models[2].predict(pd.DataFrame(r)).tolist()
        for r in requests
    )
    report = shadow_agreement(
        registry.db, "api", since_ms=0, until_ms=registry.db.clock() + 1
    ).variants[0]
    assert (report.copies, report.answered, report.unanswered) == (21, 21, 0)
    assert report.agreed == agreed
    # In-process scoring of the same variant (the thread mode's path), and scikit-learn.
    local = _runtime(registry, "thread")
    try:
        for records, answer in zip(requests, answers, strict=True):
            expected = local.predict("api", records, variant="copy").answer.to_dict()
            assert by_request[answer.request_id] == expected
            frame = pd.DataFrame(records)
            assert expected["predictions"] == models[2].predict(frame).tolist()
            assert expected["probabilities"] == models[2].predict_proba(frame).tolist()
    finally:
        local.close()


def test_the_serving_process_holds_no_model_of_a_shadow_its_child_answers(registry):
    """A 100-tree forest in shadow, answered by its child process: the serving process
    keeps its model version only (no forest object anywhere in it) while the shadow's
    answers are recorded; a request that names the shadow loads it here, then."""
    primary, frame = classifier()
    labels = primary.predict(frame)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(frame, labels)
    expected = forest.predict(pd.DataFrame([RECORD])).tolist()
    registry.register("credit", primary, input_schema=frame)
    registry.register("forest", forest, input_schema=frame)
    del forest
    gc.collect()
    # Forests other tests in this process left alive are not the runtime's.
    before = {id(o) for o in gc.get_objects() if type(o) is RandomForestClassifier}
    Deployments(registry.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "forest", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    served = _runtime(registry, "process")
    try:
        answers = [served.predict("api", [RECORD]) for _ in range(5)]
        poll(lambda: served.shadow_counts("api")["copy"]["answered"] == 5, 120.0)
        deployment = served.served("api")
        assert set(deployment.loaded) == {"stable"}
        # Its input columns are read from the version's signature, not its model.
        columns = frozenset(frame.columns)
        assert deployment.child_shadows == {"copy": ChildShadow("copy", "forest", 1, columns)}
        gc.collect()
        # type(), not isinstance(): isinstance reads __class__, which a lazily imported module's
        # object answers by importing (matplotlib, where it is not installed).
        assert not [
            o for o in gc.get_objects() if type(o) is RandomForestClassifier and id(o) not in before
        ]
        # Named by a request, the shadow is loaded here and answers as its child does.
        named = served.predict("api", [RECORD], variant="copy")
        assert named.answer.predictions == expected
        assert isinstance(served.served("api").loaded["copy"].model, RandomForestClassifier)
    finally:
        served.close()
    events = read_prediction_events(registry.db, "api", role="shadow")
    assert sorted(events["request_id"]) == sorted(a.request_id for a in answers)
    assert set(events["model"]) == {"forest"} and set(events["version"]) == {1}
    assert [output["predictions"] for output in events["output"]] == [expected] * 5


def test_a_crashing_shadow_process_is_restarted_and_counted(registry, models):
    registry.register("exits", ExitsOn(age=99))
    Deployments(registry.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "exits", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    served = _runtime(registry, "process")
    try:
        first = served.predict("api", [RECORD])
        mirror = served._mirrors["api", "copy"]
        poll(lambda: mirror.answered == 1, 120.0)
        crash = served.predict("api", [CRASH])
        poll(lambda: mirror.restarts == 1, 120.0)
        assert crash.variant == "stable"
        assert crash.predictions == models[1].predict(pd.DataFrame([CRASH])).tolist()
        later = [served.predict("api", [{"age": 30 + n, "income": 40_000.0}]) for n in range(3)]
        poll(lambda: mirror.answered == 4, 120.0)
        assert served.shadow_counts("api") == {
            "copy": {"answered": 4, "failed": 1, "dropped": 0, "sampled_out": 0}
        }
        sample = served.metrics.registry.get_sample_value
        assert (
            sample("opsloop_shadow_restarts_total", {"deployment": "api", "variant": "copy"}) == 1
        )
        lost = {"deployment": "api", "variant": "copy", "role": "shadow", "kind": "process_ended"}
        assert sample("opsloop_prediction_errors_total", lost) == 1
    finally:
        served.close()
    assert mirror._child.poll() is not None  # closing ended the child
    events = read_prediction_events(registry.db, "api", role="shadow")
    expected = [first, *later]
    assert sorted(events["request_id"]) == sorted(a.request_id for a in expected)
    # ExitsOn answers age % 2: 40 before the crash, 30, 31 and 32 after the restart.
    by_request = dict(zip(events["request_id"], events["output"], strict=True))
    assert [by_request[a.request_id]["predictions"] for a in expected] == [[0], [0], [1], [0]]
    report = shadow_agreement(
        registry.db, "api", since_ms=0, until_ms=registry.db.clock() + 1
    ).variants[0]
    assert (report.copies, report.answered, report.unanswered) == (5, 4, 1)


def _copy(age: int, request_id: str):
    """A copy as the runtime offers it (the variant's model version, the request)."""
    variant = SimpleNamespace(model_name="stuck", version=1)
    return SimpleNamespace(
        variant=variant,
        request_id=request_id,
        routing_key=None,
        records=[{"age": age, "income": 50_000.0}],
    )


def test_a_hanging_shadow_process_is_bounded_stopped_and_restarted(registry):
    registry.register("stuck", HangsOn(age=77))
    host = ShadowHost.of(registry.db, registry, trust=True)
    drops = []
    mirror = ShadowProcess(
        "api/slow",
        "api",
        "slow",
        host,
        capacity=2,
        hang_timeout_s=1.0,
        on_drop=lambda: drops.append(1),
    )
    try:
        # The first copy hangs the child; the second waits behind it; with two copies
        # under way every further one is dropped, however long the child takes.
        accepted = [mirror.offer(_copy(77 if n == 0 else 20 + n, f"r{n}")) for n in range(10)]
        assert accepted == [True, True] + [False] * 8
        assert (mirror.dropped, len(drops)) == (8, 8)
        poll(lambda: mirror.restarts == 1, 120.0)
        assert (mirror.answered, mirror.failed) == (0, 2)
        assert mirror.offer(_copy(31, "after"))
        poll(lambda: mirror.answered == 1, 120.0)
        assert mirror.offer(_copy(77, "hangs-again"))
        assert mirror.offer(_copy(32, "queued"))
    finally:
        mirror.close(timeout_s=0.5)
    # Closing gave up on the hung child: both copies it held are dropped, none vanished.
    assert (mirror.answered, mirror.failed, mirror.dropped) == (1, 2, 10)
    assert mirror.answered + mirror.failed + mirror.dropped == 13  # every copy offered
    events = read_prediction_events(registry.db, "api", role="shadow")
    assert events["request_id"].tolist() == ["after"]
    assert events["output"].tolist() == [
        {"predictions": [1], "probabilities": None, "classes": None}  # 31 % 2, no classes
    ]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_a_shadow_process_runs_under_sched_idle_at_its_niceness(registry):
    idle = ShadowHost.of(registry.db, registry)
    assert (idle.scheduling, idle.niceness) == ("idle", 19)  # the defaults
    hosts = {
        "idle": idle,
        "normal": dataclasses.replace(idle, scheduling="normal", niceness=5),
    }
    mirrors = {name: ShadowProcess(f"api/{name}", "api", name, h) for name, h in hosts.items()}
    try:
        # The child sets its policy and niceness before it imports anything, and says it is
        # ready once it has opened the store.
        poll(lambda: all(m._ready for m in mirrors.values()), 120.0)
        children = {name: m._child.pid for name, m in mirrors.items()}
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.sched_getscheduler(children["idle"]) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, children["idle"]) == min(own + 19, 19)
        assert os.sched_getscheduler(children["normal"]) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, children["normal"]) == min(own + 5, 19)
    finally:
        for mirror in mirrors.values():
            mirror.close()


def test_a_shadow_host_refuses_an_unknown_scheduling():
    with pytest.raises(InvalidArgumentError, match="scheduling must be 'idle' or 'normal'"):
        ShadowHost("sqlite:///x.db", "/a", scheduling="realtime")
    with pytest.raises(InvalidArgumentError, match="niceness must be an integer from 0 to 19"):
        ShadowHost("sqlite:///x.db", "/a", niceness=20)


def test_process_isolation_needs_a_store_another_process_can_open():
    with pytest.raises(InvalidArgumentError, match="shadow_isolation: 'process' needs a store"):
        ServingRuntime(Database("sqlite://"), None, shadow_isolation="process")
    with pytest.raises(InvalidArgumentError, match="'thread', 'process' or 'auto', got 'fork'"):
        ServingRuntime(Database("sqlite://"), None, shadow_isolation="fork")
    # "auto" falls back to threads where no other process can open the store.
    ServingRuntime(Database("sqlite://"), None, shadow_isolation="auto").close()
