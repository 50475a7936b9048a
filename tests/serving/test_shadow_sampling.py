"""A shadow's ``shadow_sample``: the share of request copies it answers, chosen by a hash of
the request id. The share answered stays within binomial bounds, the choice is the same in
every process and isolation, copies left out are counted apart from drops (exactly), the
agreement report says how many copies it rests on, and the setting is checked (422 naming
it), audited, kept in the store and shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from tests.server.running import running_server
from tests.serving.served_models import classifier, loan_table, poll

from opsloop.errors import InvalidArgumentError
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
from opsloop.serving.shadow_sampling import in_shadow_sample
from opsloop.store import ArtifactStore, Database
from opsloop.store.migrate import alembic_config, upgrade_to_head

SAMPLE = 0.25
PROBE = "/v2/health/live"


@pytest.fixture
def models(registry):
    first, frame = classifier(c=1.0)
    second, _ = classifier(c=0.001, seed=1)
    registry.register("credit", first, input_schema=frame)
    registry.register("credit", second, input_schema=frame)
    return {1: first, 2: second}


def _sampled(sample: float = SAMPLE, *, also: Variant | None = None) -> list[Variant]:
    variants = [
        Variant("stable", "credit", version=1),
        Variant("copy", "credit", version=2, role="shadow", weight=0, shadow_sample=sample),
    ]
    return variants + ([also] if also is not None else [])


def _serve(runtime: ServingRuntime, n: int) -> list[str]:
    """Answer ``n`` one-record requests; their request ids."""
    frame, _ = loan_table(n=n, seed=3)
    return [runtime.predict("api", [record]).request_id for record in frame.to_dict("records")]


def _answered_by(runtime: ServingRuntime, shadow: str) -> set[str]:
    assert runtime.recorder.flush(30.0)
    events = read_prediction_events(runtime.db, "api", role="shadow")
    return set(events.loc[events["variant"] == shadow, "request_id"])


def _check_sample(runtime: ServingRuntime, ids: list[str], sample: float) -> None:
    """The shadow answered exactly the requests the rule picks, and counted the others."""
    chosen = {r for r in ids if in_shadow_sample(r, sample)}
    poll(lambda: runtime.shadow_counts("api")["copy"]["answered"] == len(chosen), 120.0)
    assert runtime.shadow_counts("api")["copy"] == {
        "answered": len(chosen),
        "failed": 0,
        "dropped": 0,
        "sampled_out": len(ids) - len(chosen),
    }
    assert _answered_by(runtime, "copy") & set(ids) == chosen


def test_the_share_answered_is_within_binomial_bounds_and_counted_exactly(registry, models):
    Deployments(registry.db).deploy("api", _sampled(), strategy="shadow")
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True, shadow_capacity=2000)
    try:
        ids = _serve(runtime, 1200)
        _check_sample(runtime, ids, SAMPLE)
        answered = runtime.shadow_counts("api")["copy"]["answered"]
        low, high = stats.binom.interval(1 - 1e-6, len(ids), SAMPLE)
        assert low <= answered <= high
        metric = runtime.metrics.registry.get_sample_value
        labels = {"deployment": "api", "variant": "copy"}
        assert metric("opsloop_shadow_sampled_out_total", labels) == len(ids) - answered
        assert metric("opsloop_shadow_dropped_total", labels) == 0.0
        shadow_answers = {**labels, "role": "shadow"}
        assert metric("opsloop_predictions_total", shadow_answers) == answered
    finally:
        runtime.close()


def test_the_agreement_report_states_the_copies_it_rests_on(registry, models):
    Deployments(registry.db).deploy("api", _sampled(), strategy="shadow")
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True, shadow_capacity=500)
    try:
        ids = _serve(runtime, 200)
        _check_sample(runtime, ids, SAMPLE)
    finally:
        runtime.close()
    frame, _ = loan_table(n=200, seed=3)
    chosen = [n for n, r in enumerate(ids) if in_shadow_sample(r, SAMPLE)]
    rows = frame.iloc[chosen]
    agreed = int((models[1].predict(rows) == models[2].predict(rows)).sum())
    report = Deployments(registry.db).shadow_agreement("api", since_ms=0)
    (shadow,) = report.variants
    assert (shadow.copies, shadow.sampled_out, shadow.sample) == (
        len(chosen),
        200 - len(chosen),
        0.25,
    )
    assert (shadow.answered, shadow.unanswered, shadow.agreed) == (len(chosen), 0, agreed)
    assert shadow.agreement == agreed / len(chosen)


@pytest.mark.slow  # a shadow process starts an interpreter with scikit-learn
def test_two_runtimes_in_thread_and_process_isolation_sample_by_the_same_rule(registry, models):
    Deployments(registry.db).deploy("api", _sampled(), strategy="shadow")
    for isolation in ("thread", "process"):
        runtime = ServingRuntime(
            registry.db, registry.artifacts, trust=True, shadow_isolation=isolation
        )
        try:
            ids = _serve(runtime, 60)
            _check_sample(runtime, ids, SAMPLE)
        finally:
            runtime.close()


def test_the_rule_is_the_same_in_another_interpreter(tmp_path):
    ids = [f"{n:032x}" for n in range(0, 4000, 7)]
    script = (
        "import json, sys\n"
        "from opsloop.serving.shadow_sampling import in_shadow_sample\n"
        "ids = json.loads(sys.stdin.read())\n"
        "print(json.dumps([in_shadow_sample(r, 0.25) for r in ids]))\n"
    )
    # Another string hash seed: Python's own hash() would choose other requests there.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    here = [in_shadow_sample(r, 0.25) for r in ids]
    assert json.loads(done.stdout) == here
    assert 0 < sum(here) < len(ids)


def test_a_change_of_the_sample_is_followed_and_the_count_goes_on(registry, models):
    deployments = Deployments(registry.db)
    deployments.deploy("api", _sampled(1.0), strategy="shadow")
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True, shadow_capacity=500)
    try:
        first = _serve(runtime, 40)
        poll(lambda: runtime.shadow_counts("api")["copy"]["answered"] == 40, 60.0)
        assert runtime.shadow_counts("api")["copy"]["sampled_out"] == 0
        deployments.deploy("api", _sampled(0.1), strategy="shadow")
        second = _serve(runtime, 200)
        chosen = {r for r in second if in_shadow_sample(r, 0.1)}
        total = 40 + len(chosen)
        poll(lambda: runtime.shadow_counts("api")["copy"]["answered"] == total, 60.0)
        assert runtime.shadow_counts("api")["copy"]["sampled_out"] == 200 - len(chosen)
        assert _answered_by(runtime, "copy") == set(first) | chosen
    finally:
        runtime.close()


def test_two_shadows_at_different_samples_answer_nested_sets(registry, models):
    wide = Variant("wide", "credit", version=2, role="shadow", weight=0, shadow_sample=0.5)
    Deployments(registry.db).deploy("api", _sampled(0.2, also=wide), strategy="shadow")
    runtime = ServingRuntime(registry.db, registry.artifacts, trust=True, shadow_capacity=500)
    try:
        ids = _serve(runtime, 150)
        narrow = {r for r in ids if in_shadow_sample(r, 0.2)}
        broad = {r for r in ids if in_shadow_sample(r, 0.5)}
        poll(lambda: runtime.shadow_counts("api")["wide"]["answered"] == len(broad), 60.0)
        poll(lambda: runtime.shadow_counts("api")["copy"]["answered"] == len(narrow), 60.0)
        assert _answered_by(runtime, "copy") == narrow < broad == _answered_by(runtime, "wide")
    finally:
        runtime.close()


def test_sampled_out_copies_are_on_the_data_planes_metrics(registry, models):
    Deployments(registry.db).deploy("api", _sampled(), strategy="shadow")
    app = create_data_plane_app(registry.db, registry.artifacts, trust=True)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    frame, _ = loan_table(n=80, seed=4)
    try:
        with (
            running_server(app, health_path=PROBE) as url,
            httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        ):
            ids = [
                client.post("/v1/deployments/api/predict", json=[record]).json()["request_id"]
                for record in frame.to_dict("records")
            ]
            left_out = sum(not in_shadow_sample(r, SAMPLE) for r in ids)
            text = client.get("/metrics").text
    finally:
        app.state.runtime.close()
    values = {
        (sample.name, sample.labels.get("variant")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert 0 < left_out < 80
    assert values[("opsloop_shadow_sampled_out_total", "copy")] == left_out


def test_the_sample_is_audited_kept_and_shown(registry, models, tmp_path):
    deployments = Deployments(registry.db)
    deployments.deploy("api", _sampled(0.3), strategy="shadow", reason="cap the shadow")
    after = deployments.history("api")["after"].iloc[-1]
    after = json.loads(after) if isinstance(after, str) else after
    assert [v["shadow_sample"] for v in after["variants"]] == [1.0, 0.3]
    # A new connection to the same store (a restart) reads it back.
    again = Deployments(Database(registry.db.uri))
    assert again.get("api").variants[1].shadow_sample == 0.3
    assert again.get("api").to_frame()["shadow_sample"].tolist() == [1.0, 0.3]
    assert "copy=credit/2 (shadow, 0, sample 0.3)" in again.list()["variants"].iloc[0]
    # A rollback restores the sample it replaced, as the rest of the definition.
    deployments.deploy("api", _sampled(0.6), strategy="shadow")
    assert deployments.rollback("api").variants[1].shadow_sample == 0.3


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        (Variant("copy", "credit", version=2, role="shadow", weight=0, shadow_sample=0), "(0, 1]"),
        (
            Variant("copy", "credit", version=2, role="shadow", weight=0, shadow_sample=1.5),
            "(0, 1]",
        ),
        (
            Variant("copy", "credit", version=2, role="candidate", weight=0.1, shadow_sample=0.5),
            "applies to shadows only",
        ),
    ],
)
def test_a_broken_sample_is_refused_naming_the_field(registry, models, variant, rule):
    stable = Variant("stable", "credit", version=1, weight=1.0 if variant.role == "shadow" else 0.9)
    strategy = "shadow" if variant.role == "shadow" else "canary"
    with pytest.raises(
        InvalidArgumentError, match=rf"variant 'copy': shadow_sample.*{re.escape(rule)}"
    ):
        Deployments(registry.db).deploy("api", [stable, variant], strategy=strategy)


@pytest.mark.parametrize(
    ("sample", "role", "message"),
    [
        (0, "shadow", "greater than 0"),
        (1.5, "shadow", "less than or equal to 1"),
        ("half", "shadow", "valid number"),
        (True, "shadow", "valid number"),
        (0.5, "candidate", "shadow_sample applies to shadows only"),
    ],
)
def test_over_http_a_broken_sample_is_a_422_naming_the_field(
    registry, models, sample, role, message
):
    weight = 0 if role == "shadow" else 0.1
    body = {
        "variants": [
            {"name": "stable", "model": "credit", "version": 1, "weight": 1 - weight},
            {
                "name": "copy",
                "model": "credit",
                "version": 2,
                "role": role,
                "weight": weight,
                "shadow_sample": sample,
            },
        ],
        "strategy": "shadow" if role == "shadow" else "canary",
    }
    app = create_app(registry.db, registry.artifacts)
    headers = {"Authorization": f"Bearer {app.state.installation_token}"}
    with running_server(app) as url, httpx.Client(headers=headers) as http:
        answer = http.put(f"{url}/api/v1/deployments/api", json=body)
        assert answer.status_code == 422
        assert "shadow_sample" in answer.text and message in answer.text
        body["variants"][1].update(role="shadow", weight=0, shadow_sample=0.5)
        body["variants"][0]["weight"] = 1
        body["strategy"] = "shadow"
        assert http.put(f"{url}/api/v1/deployments/api", json=body).status_code == 200
        shown = http.get(f"{url}/api/v1/deployments/api").json()
    assert [v["shadow_sample"] for v in shown["variants"]] == [1.0, 0.5]


def test_shadows_stored_before_migration_0019_answer_every_copy(tmp_path):
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(uri)
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
    for _ in range(2):
        registry.register("credit", b"onnx bytes", flavor="onnx")
    Deployments(db).deploy("api", _sampled(0.3), strategy="shadow")
    db.dispose()
    engine = sa.create_engine(uri)
    with engine.begin() as connection:  # the store as 0018 left it, then upgraded
        command.downgrade(alembic_config(connection), "0018")
        upgrade_to_head(connection)
        stored = connection.exec_driver_sql("SELECT shadow_sample FROM deployment_variants")
        assert stored.scalars().all() == [None, None]
    engine.dispose()
    found = Deployments(Database(uri)).get("api")
    assert [v.shadow_sample for v in found.variants] == [1.0, 1.0]
