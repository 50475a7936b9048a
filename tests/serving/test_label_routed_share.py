"""A canary's task-metric gate reads a labelled request at the share it was routed at, kept
on its prediction event (``routed_share``), as the request counts read it: with two serving
workers on one store (SQLite and PostgreSQL), one still routing at 5% after the other took
the ramp to 25%, the lagging worker's labelled answer is read at 5% and counts toward no
step, while one routed at 25% counts toward the 25% step. Events without the share (logged
from Python, or kept before migration 0029 added it) are read at the share of the step when
they were answered, as before."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from pydantic_core import to_jsonable_python
from tests.clock import FakeClock
from tests.server.running import running_server
from tests.serving.canary_scenarios import metric_gate_after, routing_keys
from tests.serving.served_models import Constant, deploy_canary, routed_to_canary
from typing_extensions import TypedDict

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring import log_predictions
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, ServingRuntime
from opsloop.serving.control_plane_sink import ControlPlaneSink
from opsloop.serving.deployment_service import EventDocument
from opsloop.serving.prediction_events import PredictionEvent, read_prediction_events
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store import ArtifactStore, tables
from opsloop.store.database import Database
from opsloop.store.migrate import alembic_config, current_revision, head_revision

RECORD = {"x": 1.0}
STEPS = [0.05, 0.25, 1.0]
MIN_REQUESTS = 2
GATES = {"metric": {}}
POLICY = RolloutPolicy(steps=STEPS, min_requests=MIN_REQUESTS, gates=GATES)


def test_a_lagging_workers_label_routed_at_5_percent_does_not_count_toward_the_25_percent_step(
    registry,
):
    clock = registry.db.clock = FakeClock()
    # The canary answers 1, the stable variant 0; every label is 0: the canary is wrong.
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=MIN_REQUESTS, gates=GATES)
    at_5 = routing_keys(lambda k: routed_to_canary(k, 0.05), 3)
    at_25 = routing_keys(lambda k: routed_to_canary(k, 0.25) and not routed_to_canary(k, 0.05), 2)
    primary = routing_keys(lambda k: not routed_to_canary(k, 0.25), 1)
    # A worker that reads definitions once an hour keeps routing at 5%; the other follows.
    lagging = ServingRuntime(registry.db, registry.artifacts, trust=True, check_interval_s=3600)
    follows = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        assert lagging.served("api").routed_share == 0.05
        for key in at_5[:2]:
            clock.advance()
            assert follows.predict("api", [RECORD], routing_key=key).variant == "canary"
        assert [v.weight for v in deployments.get("api").variants] == [0.75, 0.25]
        step_ms = deployments.rollout("api")["state"]["steps_taken"][1]["at_ms"]
        clock.advance()
        late = lagging.predict("api", [RECORD], routing_key=at_5[2])  # routed at 5%
        clock.advance()
        on_time = follows.predict("api", [RECORD], routing_key=at_25[0])  # routed at 25%
        clock.advance()
        stable = follows.predict("api", [RECORD], routing_key=primary[0])
        named = follows.predict("api", [RECORD], variant="canary")  # no split routed it
        assert [a.variant for a in (late, on_time, stable)] == ["canary", "canary", "stable"]
        lagging.feedback("api", late.request_id, label=0, actor="ana")
        for answer in (on_time, stable):
            follows.feedback("api", answer.request_id, label=0, actor="ana")
        follows.recorder.flush(5.0)
        events = read_prediction_events(registry.db, "api").set_index("request_id")
        assert events.loc[late.request_id, "at_ms"] > step_ms
        shares = [events.loc[a.request_id, "routed_share"] for a in (late, on_time, stable)]
        assert shares == [0.05, 0.25, 0.25]
        assert pd.isna(events.loc[named.request_id, "routed_share"])
        state = deployments.rollout("api")["state"]
        # Read at the shares they were routed at; the answer time would have read the late
        # one at 25% (the step decided before it was answered), which is another gate.
        assert state["gates"]["metric"] == metric_gate_after(
            POLICY, [(True, True, 0.05), (True, True, 0.25), (False, False, 0.25)]
        )
        assert state["gates"]["metric"] != metric_gate_after(
            POLICY, [(True, True, 0.25), (True, True, 0.25), (False, False, 0.25)]
        )
        metric = state["gates"]["metric"]["state"]
        assert (metric["n_candidate"], metric["events_candidate"], metric["n_primary"]) == (2, 2, 1)
        assert (state["step"], state["step_labels"], state["left_share_labels"]) == (1, 1, 1)
        assert (state["step_requests"], state["left_share_requests"]) == (1, 1)
        # One more candidate request at 25% completes the ramp, on one label of its share.
        clock.advance()
        assert follows.predict("api", [RECORD], routing_key=at_25[1]).variant == "canary"
        decision = deployments.rollout("api")["state"]["decision"]
        assert decision["action"] == "complete"
        assert decision["candidate_requests_at_previous_step"] == 2
        assert decision["candidate_labels_at_previous_step"] == 1
    finally:
        lagging.close()
        follows.close()


def _ramp_at_25(registry) -> tuple[Deployments, int]:
    """A canary ramp taken to its 25% step by two candidate requests; its deployments and
    the step's time."""
    registry.db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=MIN_REQUESTS, gates=GATES)
    observer = RolloutObserver(registry.db, deployments)
    request = {"candidate": True, "failed": False, "latency_ms": 1.0, "share": 0.05,
               "disagrees": None, "anomalous": None}  # fmt: skip
    for _ in range(MIN_REQUESTS):
        registry.db.clock.advance()
        observer.record("api", [], dict(request))
    state = deployments.rollout("api")["state"]
    assert (state["step"], state["share"]) == (1, 0.25)
    return deployments, state["steps_taken"][1]["at_ms"]


def test_events_logged_without_a_routed_share_are_read_at_the_step_of_their_answer(registry):
    deployments, step_ms = _ramp_at_25(registry)
    # As a caller logs answers from Python: no split routed them, so no share is kept.
    ids = log_predictions(
        registry.db, "api", [RECORD, RECORD, RECORD], [1, 1, 0],
        variant="canary", request_ids=["before", "after", "primary"],
        at_ms=[step_ms - 1, step_ms + 1, step_ms + 1], sample_process=False,
    )  # fmt: skip
    with registry.db.write() as connection:  # the last one is the stable variant's answer
        events = tables.prediction_events
        connection.execute(
            events.update().where(events.c.request_id == "primary").values(variant="stable")
        )
    assert read_prediction_events(registry.db, "api")["routed_share"].isna().all()
    for request_id in ids:
        deployments.feedback("api", request_id, label=0)
    state = deployments.rollout("api")["state"]
    assert state["gates"]["metric"] == metric_gate_after(
        POLICY, [(True, True, 0.05), (True, True, 0.25), (False, False, 0.25)]
    )
    assert (state["step_labels"], state["left_share_labels"]) == (1, 1)


def test_migration_0029_keeps_older_events_with_no_share_and_their_labels_still_read(
    store_uri, tmp_path
):
    db = Database(store_uri, clock=FakeClock())
    try:
        registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"), actor="owner")
        deployments, step_ms = _ramp_at_25(registry)
        with db.write() as connection:
            command.downgrade(alembic_config(connection), "0028")
            assert current_revision(connection) == "0028"
            columns = {c["name"] for c in sa.inspect(connection).get_columns("prediction_events")}
            assert "routed_share" not in columns
            # A row as a worker before 0029 wrote it: no share column to fill.
            kept = sa.table("prediction_events", *(sa.column(name) for name in sorted(columns)))
            connection.execute(
                kept.insert(),
                [
                    {"deployment": "api", "variant": "canary", "role": "primary", "model": "m",
                     "version": 1, "request_id": request_id, "inputs_json": "[]",
                     "output_json": '{"predictions": [1]}', "latency_ms": 1.0, "at_ms": at_ms}
                    for request_id, at_ms in (("old-before", step_ms - 1), ("old-after", step_ms))
                ],
            )  # fmt: skip
        db.migrate()
        with db.read() as connection:
            assert current_revision(connection) == head_revision()
        events = read_prediction_events(db, "api").set_index("request_id")
        assert events.loc[["old-before", "old-after"], "routed_share"].isna().all()
        for request_id in ("old-before", "old-after"):
            deployments.feedback("api", request_id, label=0)
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(
            POLICY, [(True, True, 0.05), (True, True, 0.25)]
        )
        assert (state["step_labels"], state["left_share_labels"]) == (1, 1)
    finally:
        db.dispose()


def test_a_data_plane_sends_the_routed_share_through_the_control_plane_checked(registry):
    event = {"deployment": "api", "variant": "canary", "role": "primary", "model": "m",
             "version": 1, "request_id": "r1", "inputs": [RECORD],
             "output": {"predictions": [1]}, "latency_ms": 0.5, "at_ms": 1_000,
             "routed_share": 0.25}  # fmt: skip
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        try:
            assert client.record_events([event]) == 1
            for share in (1.5, 0.0, "0.25"):
                with pytest.raises(InvalidArgumentError, match="routed_share"):
                    client.record_events([{**event, "request_id": "r2", "routed_share": share}])
        finally:
            client.close()
    events = read_prediction_events(registry.db, "api")
    assert events[["request_id", "routed_share"]].values.tolist() == [["r1", 0.25]]


def test_labels_of_requests_that_named_their_variant_leave_the_gate_untouched(registry):
    # Quality probes name the canary: it answers them whatever the split, so they say
    # nothing of the split's candidate, and no gate reads them (the request gates neither).
    clock = registry.db.clock = FakeClock()
    deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.05)
    deployments.set_rollout("api", steps=STEPS, min_requests=50, gates=GATES)
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True)
    try:
        probes = []
        for _ in range(6):
            clock.advance()
            probes.append(runtime.predict("api", [RECORD], variant="canary").request_id)
        clock.advance()
        routed = runtime.predict("api", [RECORD], routing_key=routing_keys(
            lambda k: routed_to_canary(k, 0.05), 1)[0])  # fmt: skip
        assert routed.variant == "canary"
        runtime.recorder.flush(5.0)
        events = read_prediction_events(registry.db, "api").set_index("request_id")
        assert events.loc[probes, "routed"].tolist() == [False] * 6
        assert events.loc[probes, "routed_share"].isna().all()
        assert events.loc[routed.request_id, ["routed", "routed_share"]].tolist() == [True, 0.05]
        # Six wrong labels read at 5% would fail the gate (by the third): a rollback. Not
        # read, they leave it as it was.
        assert metric_gate_after(POLICY, [(True, True, 0.05)] * 6)["state"]["verdict"] == "fail"
        for request_id in probes:
            deployments.feedback("api", request_id, label=0)
        state = deployments.rollout("api")["state"]
        assert state["status"] == "ramping"
        assert state["gates"]["metric"] == metric_gate_after(POLICY, [])
        assert state.get("step_labels", 0) == 0
        # The label of the request the split routed is read, at its share.
        deployments.feedback("api", routed.request_id, label=0)
        state = deployments.rollout("api")["state"]
        assert state["gates"]["metric"] == metric_gate_after(POLICY, [(True, True, 0.05)])
        assert state["step_labels"] == 1
    finally:
        runtime.close()


def test_only_a_label_at_a_share_the_ramp_left_reads_the_live_share(registry):
    # The deployment's live share decides only where a label routed at a share the ramp has
    # left counts: one at the current share reads no definition inside the rollout's lock.
    deployments, step_ms = _ramp_at_25(registry)
    log_predictions(
        registry.db, "api", [RECORD, RECORD], [1, 1], variant="canary",
        request_ids=["at-25", "at-5"], at_ms=[step_ms + 1, step_ms + 1], sample_process=False,
    )  # fmt: skip
    with registry.db.write() as connection:  # as the runtime keeps routed requests' events
        events = tables.prediction_events
        for request_id, share in (("at-25", 0.25), ("at-5", 0.05)):
            connection.execute(
                events.update()
                .where(events.c.request_id == request_id)
                .values(routed_share=share, routed=True)
            )

    def live_share_reads(request_id: str) -> int:
        statements: list[str] = []

        def seen(_conn, _cursor, statement, *_args) -> None:
            statements.append(" ".join(statement.split()))

        sa.event.listen(registry.db.engine, "before_cursor_execute", seen)
        try:
            deployments.feedback("api", request_id, label=0)
        finally:
            sa.event.remove(registry.db.engine, "before_cursor_execute", seen)
        marker = "SELECT deployments.strategy, deployment_variants.weight FROM deployments JOIN"
        return sum(statement.startswith(marker) for statement in statements)

    assert live_share_reads("at-25") == 0
    state = deployments.rollout("api")["state"]
    assert (state["step_labels"], state.get("left_share_labels", 0)) == (1, 0)
    assert live_share_reads("at-5") == 1
    state = deployments.rollout("api")["state"]
    assert (state["step_labels"], state["left_share_labels"]) == (1, 1)


def _before_0029() -> TypeAdapter:
    """The event document of a control plane before 0029: the same fields less
    ``routed_share`` and ``routed``, and no other field allowed."""
    fields = get_type_hints(EventDocument, include_extras=True)
    older = {k: v for k, v in fields.items() if k not in ("routed_share", "routed")}
    document = with_config(ConfigDict(extra="forbid"))(
        TypedDict("EventDocument", older, total=False)  # type: ignore[operator]
    )
    return TypeAdapter(list[document])


def test_an_event_that_says_nothing_new_is_kept_by_a_control_plane_before_0029():
    served = PredictionEvent("api", "stable", "primary", "m", 1, "r1", None, [RECORD],
                             {"predictions": [0]}, None, 0.5, 1_000, generation=3,
                             routed=True)  # fmt: skip
    document = served.to_document()
    assert set(document) == {"deployment", "variant", "role", "model", "version",
                             "request_id", "inputs", "output", "latency_ms", "at_ms",
                             "generation"}  # fmt: skip
    older = _before_0029()
    assert older.validate_python([document]) == [document]
    # Every field of the event's dataclass, as sent before: an older control plane refuses it.
    with pytest.raises(ValidationError, match="routed_share"):
        older.validate_python([to_jsonable_python(served)])
    # What is new travels when said, and only then.
    probe = dataclasses.replace(served, routed=False).to_document()
    routed = dataclasses.replace(served, routed_share=0.25).to_document()
    assert (probe["routed"], "routed_share" in probe) == (False, False)
    assert (routed["routed_share"], "routed" in routed) == (0.25, False)


def test_a_data_plane_sends_whether_a_request_was_routed_through_the_control_plane(registry):
    served = PredictionEvent("api", "canary", "primary", "m", 1, "routed", None, [RECORD],
                             {"predictions": [1]}, None, 0.5, 1_000, routed_share=0.25,
                             routed=True)  # fmt: skip
    named = dataclasses.replace(served, request_id="named", routed_share=None, routed=False)
    logged = dataclasses.replace(served, request_id="logged", routed_share=None, routed=None)
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        try:
            ControlPlaneSink(client).write([served, named, logged])
            with pytest.raises(InvalidArgumentError, match="routed"):
                client.record_events([{**named.to_document(), "routed": "no"}])
        finally:
            client.close()
    events = read_prediction_events(registry.db, "api").set_index("request_id")
    kept = events.loc[["routed", "named", "logged"], ["routed_share", "routed"]]
    assert kept.astype(object).where(kept.notna(), None).values.tolist() == [
        [0.25, None],  # a routed request's share says it: the flag stays unsaid
        [None, False],
        [None, None],
    ]


def test_a_routed_request_without_a_share_is_read_alike_kept_here_or_sent_by_a_worker(tmp_path):
    # A stable answer routed by a definition that was no canary split (before the ramp
    # began): routed, with no share. In process its event says routed; sent by a worker it
    # says nothing (``routed`` travels only when false). Its label is read alike: at the
    # share of the step when it was answered, as an event kept before 0029 is.
    gates = []
    for sent in (False, True):
        db = Database("sqlite://", clock=FakeClock())
        registry = ModelRegistry(db, ArtifactStore(tmp_path / f"sent-{sent}"), actor="owner")
        deployments = deploy_canary(registry, Constant(0), Constant(1), share=0.1)
        deployments.set_rollout("api", steps=STEPS, min_requests=50, gates=GATES)
        db.clock.advance()
        event = PredictionEvent("api", "stable", "primary", "stable-model", 1, "r1", None,
                                [RECORD], {"predictions": [0]}, None, 0.5, db.clock(),
                                routed=True)  # fmt: skip
        deployments.record_events([event.to_document() if sent else event])
        kept = read_prediction_events(db, "api").loc[0, "routed"]
        assert pd.isna(kept) if sent else kept
        deployments.feedback("api", "r1", label=1)  # the stable model answered 0: wrong
        gates.append(deployments.rollout("api")["state"]["gates"]["metric"])
    assert gates[0] == gates[1] == metric_gate_after(POLICY, [(False, True, STEPS[0])])
