"""The serving runtime on a real store: routing by strategy, sticky keys, following
definition changes, shadows that crash or hang, validation and recorded events."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.serving import served_models
from tests.serving.served_models import Crashing, Hanging, classifier, poll

from opsloop.errors import InvalidArgumentError, UnavailableError
from opsloop.serving import (
    Deployments,
    ServingRuntime,
    UnknownDeploymentError,
    Variant,
    read_prediction_events,
)
from opsloop.serving.routing import routing_share

RECORD = {"age": 40, "income": 52_000.0}


@pytest.fixture
def models(registry):
    """Two versions of ``credit`` (different regularisation), each with its signature."""
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


def _bounds(n: int, p: float) -> tuple[int, int]:
    """Counts a Binomial(n, p) falls outside with probability 2e-6 in all."""
    return int(stats.binom.ppf(1e-6, n, p)), int(stats.binom.isf(1e-6, n, p))


def test_an_answer_is_the_models_own_prediction_and_probabilities(runtime, models):
    deploy = Deployments(runtime.db)
    deploy.deploy("api", [Variant("stable", "credit", version=1)])
    records = [RECORD, {"age": 70, "income": 90_000.0}]
    answer = runtime.predict("api", records)
    frame = pd.DataFrame(records)
    assert answer.variant == "stable" and (answer.model, answer.version) == ("credit", 1)
    assert answer.predictions == models[1].predict(frame).tolist()
    np.testing.assert_allclose(
        answer.answer.probabilities, models[1].predict_proba(frame), rtol=0, atol=1e-15
    )
    assert answer.answer.classes == [0, 1]


def test_canary_traffic_split_is_within_binomial_bounds(runtime):
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1, weight=0.8),
            Variant("canary", "credit", version=2, role="candidate", weight=0.2),
        ],
        strategy="canary",
    )
    n = 1000
    chosen = [runtime.predict("api", [RECORD]).variant for _ in range(n)]
    low, high = _bounds(n, 0.2)
    assert low <= chosen.count("canary") <= high
    assert chosen.count("stable") + chosen.count("canary") == n


def test_ab_assignment_is_sticky_and_follows_the_key_hash(runtime):
    Deployments(runtime.db).deploy(
        "ab-api",
        [
            Variant("a", "credit", version=1, weight=0.5),
            Variant("b", "credit", version=2, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    keys = [f"user-{i}" for i in range(400)]
    first = {key: runtime.predict("ab-api", [RECORD], routing_key=key).variant for key in keys}
    again = {key: runtime.predict("ab-api", [RECORD], routing_key=key).variant for key in keys}
    assert first == again
    # The rule written out here: SHA-256 of "deployment\x1fkey", first 8 bytes over 2**64.
    for key in keys:
        digest = hashlib.sha256(f"ab-api\x1f{key}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        assert share == routing_share("ab-api", key)
        assert first[key] == ("a" if share < 0.5 else "b")
    low, high = _bounds(len(keys), 0.5)
    assert low <= list(first.values()).count("a") <= high


def test_after_deploy_returns_no_request_reaches_a_variant_whose_weight_became_zero(runtime):
    deployments = Deployments(runtime.db)
    blue = Variant("blue", "credit", version=1, weight=1.0)
    green = Variant("green", "credit", version=2, role="candidate", weight=0.0)
    deployments.deploy("bg", [blue, green], strategy="blue_green")
    assert {runtime.predict("bg", [RECORD]).variant for _ in range(50)} == {"blue"}
    # Switch: after deploy returns, every request goes to green at once (no warm-up window).
    deployments.deploy("bg", [blue.with_weight(0.0), green.with_weight(1.0)], strategy="blue_green")
    assert {runtime.predict("bg", [RECORD]).variant for _ in range(50)} == {"green"}
    deployments.deploy("bg", [blue, green], strategy="blue_green")
    assert {runtime.predict("bg", [RECORD]).variant for _ in range(50)} == {"blue"}


def test_a_checking_interval_serves_the_old_definition_until_it_passes(registry, models):
    # The trade-off the interval makes, shown: within it, the old definition still routes.
    deployments = Deployments(registry.db)
    blue = Variant("blue", "credit", version=1, weight=1.0)
    green = Variant("green", "credit", version=2, role="candidate", weight=0.0)
    deployments.deploy("bg", [blue, green], strategy="blue_green")
    lazy = ServingRuntime(registry.db, registry.artifacts, check_interval_s=3600)
    try:
        assert lazy.predict("bg", [RECORD]).variant == "blue"
        deployments.deploy("bg", [blue.with_weight(0), green.with_weight(1)], strategy="blue_green")
        assert lazy.predict("bg", [RECORD]).variant == "blue"
    finally:
        lazy.close()


def test_an_alias_move_is_followed(runtime, registry):
    registry.set_alias("credit", "champion", 1)
    Deployments(runtime.db).deploy("api", [Variant("stable", "credit", alias="champion")])
    assert runtime.predict("api", [RECORD]).version == 1
    registry.set_alias("credit", "champion", 2)
    assert runtime.predict("api", [RECORD]).version == 2


def test_a_retired_deployment_is_not_found(runtime):
    deployments = Deployments(runtime.db)
    deployments.deploy("api", [Variant("stable", "credit", version=1)])
    runtime.predict("api", [RECORD])
    deployments.retire("api")
    with pytest.raises(UnknownDeploymentError, match="no deployment named 'api'"):
        runtime.predict("api", [RECORD])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"age": "forty", "income": 1.0}, "record 0, field 'age': type_mismatch"),
        ({"age": 40}, "record 0, field 'income': missing_field"),
        ({"age": 40, "income": 1.0, "zip": "10115"}, "field 'zip': unexpected_field"),
        ({"age": 400, "income": 50_000.0}, "record 0, field 'age': out_of_range"),
        ({"age": None, "income": 50_000.0}, "record 0, field 'age': null_fraction_exceeded"),
        ({"age": 40, "income": 10**400}, "record 0, field 'income': out_of_range"),
    ],
)
def test_bad_records_are_refused_naming_the_field_and_the_rule(runtime, record, message):
    Deployments(runtime.db).deploy("api", [Variant("stable", "credit", version=1)])
    with pytest.raises(InvalidArgumentError, match=message):
        runtime.predict("api", [RECORD, record] if "record 0" not in message else [record])


def test_a_straggler_within_the_schemas_margin_is_served(runtime, registry):
    Deployments(runtime.db).deploy("api", [Variant("stable", "credit", version=1)])
    schema = runtime.input_schema("api")
    _, high = schema["age"].hard_limits()
    assert schema["age"].max < high  # the margin is real
    answer = runtime.predict("api", [{"age": schema["age"].max + 1, "income": 50_000.0}])
    assert len(answer.predictions) == 1
    with pytest.raises(InvalidArgumentError, match="out_of_range"):
        runtime.predict("api", [{"age": int(high) + 1, "income": 50_000.0}])


def test_a_crashing_shadow_is_invisible_and_its_errors_are_recorded(runtime, registry, models):
    registry.register("broken", Crashing())
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("copy", "broken", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    answers = [runtime.predict("api", [RECORD]) for _ in range(2)]
    assert [a.variant for a in answers] == ["stable", "stable"]
    assert answers[0].predictions == models[1].predict(pd.DataFrame([RECORD])).tolist()
    poll(lambda: runtime.shadow_counts("api")["copy"]["failed"] == 2, 10.0)
    assert runtime.shadow_counts("api") == {
        "copy": {"answered": 0, "failed": 2, "dropped": 0, "sampled_out": 0}
    }
    runtime.recorder.flush()
    events = read_prediction_events(runtime.db, "api", role="shadow")
    assert events["request_id"].tolist() == [a.request_id for a in answers]
    assert events["error"].tolist() == ["RuntimeError: the shadow model crashed"] * 2
    assert events["output"].isna().all()


def test_a_hanging_shadow_never_delays_the_primary_and_its_drops_are_counted(runtime, registry):
    registry.register("stuck", Hanging())
    Deployments(runtime.db).deploy(
        "api",
        [
            Variant("stable", "credit", version=1),
            Variant("slow", "stuck", version=1, role="shadow", weight=0),
        ],
        strategy="shadow",
    )
    served_models.STARTED.clear()
    served_models.RELEASE.clear()
    try:
        runtime.predict("api", [RECORD])
        assert served_models.STARTED.wait(10)  # the shadow's worker is now stuck
        answers = [runtime.predict("api", [RECORD]) for _ in range(9)]
        assert {a.variant for a in answers} == {"stable"}
        # Two copies wait in the queue (capacity 2); the other seven were dropped.
        assert runtime.shadow_counts("api")["slow"]["dropped"] == 7
        sample = runtime.metrics.registry.get_sample_value(
            "opsloop_shadow_dropped_total", {"deployment": "api", "variant": "slow"}
        )
        assert sample == 7.0
    finally:
        served_models.RELEASE.set()


def test_every_answer_becomes_an_event_readable_back(runtime, models):
    Deployments(runtime.db).deploy("api", [Variant("stable", "credit", version=1)])
    records = [[RECORD], [RECORD, {"age": 25, "income": 20_000.0}]]
    answers = [
        runtime.predict("api", batch, routing_key=f"k{i}") for i, batch in enumerate(records)
    ]
    assert runtime.recorder.flush()
    events = read_prediction_events(runtime.db, "api")
    assert events["request_id"].tolist() == [a.request_id for a in answers]
    assert events["inputs"].tolist() == records
    assert [o["predictions"] for o in events["output"]] == [a.predictions for a in answers]
    assert events["routing_key"].tolist() == ["k0", "k1"]
    assert events["role"].tolist() == ["primary", "primary"]
    assert (events["latency_ms"] > 0).all()
    assert events["version"].tolist() == [1, 1]


def test_a_failing_variants_errors_reach_the_events_windows_and_traffic(registry):
    # A request whose model fails is the variant's error: it is recorded (the client got an
    # error, not an answer), so monitoring and the dashboard count it; a request refused
    # for its input is the client's mistake and is not.
    from tests.serving.served_models import FailsOnNegative

    from opsloop.monitoring import Windowing
    from opsloop.monitoring.window_store import read_window, update_windows
    from opsloop.serving.traffic_series import traffic_series

    frame = pd.DataFrame({"x": [-1.0, 1.0]})
    registry.register("doubler", FailsOnNegative(), input_schema=frame)
    Deployments(registry.db).deploy("api", [Variant("live", "doubler", version=1)])
    at = [3_600_000]
    served = ServingRuntime(registry.db, registry.artifacts, trust=True, clock=lambda: at[0])
    try:
        xs = [1.0, -2.0, 3.0, -0.5, -1.0]
        answered, failed = [], 0
        for x in xs:
            try:
                answered.append(served.predict("api", [{"x": x}]))
            except RuntimeError as error:
                assert str(error) == "a negative x"
                failed += 1
        with pytest.raises(InvalidArgumentError):
            served.predict("api", [{"x": "many"}])
        assert served.recorder.flush()
    finally:
        served.close()
    events = read_prediction_events(registry.db, "api")
    assert events["inputs"].tolist() == [[{"x": x}] for x in xs]
    assert [e if isinstance(e, str) else None for e in events["error"]] == [
        None if x > 0 else "RuntimeError: a negative x" for x in xs
    ]
    assert [o is None for o in events["output"]] == [x < 0 for x in xs]
    assert set(events["request_id"]) >= {a.request_id for a in answered}
    assert events["request_id"].nunique() == len(xs)
    windowing = Windowing("1h")
    assert update_windows(registry.db, "api", windowing) == len(xs)
    window = read_window(registry.db, "api", "live", windowing, 3_600_000)
    assert (window.software.requests, window.software.errors) == (5, 3)
    series = traffic_series(registry.db, "api", since_ms=3_600_000, until_ms=3_600_001, buckets=1)
    assert series.variants[0].requests == [5] and series.variants[0].errors == [3]


def test_a_pickled_variant_without_trust_is_not_ready(registry, models):
    registry.register("plain", Crashing())
    Deployments(registry.db).deploy("api", [Variant("stable", "plain", version=1)])
    untrusting = ServingRuntime(registry.db, registry.artifacts)
    try:
        assert not untrusting.ready("api")
        with pytest.raises(UnavailableError, match="is a pickle"):
            untrusting.predict("api", [RECORD])
    finally:
        untrusting.close()


def test_a_model_fitted_on_columns_out_of_name_order_gets_them_in_its_order(registry):
    # The stored signature keeps columns by name; the model was fitted on (income, age).
    model, frame = classifier()
    reordered = frame[["income", "age"]]
    fitted = type(model)(max_iter=1000).fit(reordered, model.predict(frame))
    registry.register("reordered", fitted, input_schema=reordered)
    Deployments(registry.db).deploy("api", [Variant("stable", "reordered", version=1)])
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        answer = runtime.predict("api", [RECORD])
        expected = fitted.predict(pd.DataFrame([RECORD])[["income", "age"]])
        assert answer.predictions == expected.tolist()
        assert runtime.input_schema("api").names == ("income", "age")
    finally:
        runtime.close()


def test_two_workers_on_one_store_agree_after_a_weight_change(registry, models):
    deployments = Deployments(registry.db)
    split = [
        Variant("a", "credit", version=1, weight=0.5),
        Variant("b", "credit", version=2, role="candidate", weight=0.5),
    ]
    deployments.deploy("ab", split, strategy="ab")
    workers = [ServingRuntime(registry.db, registry.artifacts) for _ in range(2)]
    try:
        keys = [f"user-{i}" for i in range(40)]

        def routes(worker):
            return [worker.predict("ab", [RECORD], routing_key=key).variant for key in keys]

        assert routes(workers[0]) == routes(workers[1])
        deployments.deploy(
            "ab", [split[0].with_weight(0.1), split[1].with_weight(0.9)], strategy="ab"
        )
        after = [routes(worker) for worker in workers]
        assert after[0] == after[1]
        assert after[0] == ["a" if routing_share("ab", key) < 0.1 else "b" for key in keys]
    finally:
        for worker in workers:
            worker.close()


def test_an_integer_past_a_floats_range_is_refused_even_without_a_range(registry):
    from sklearn.linear_model import LinearRegression

    from opsloop.data.schema import ColumnSchema, Schema

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(frame, [0.0, 1.0, 2.0])
    registry.register("line", model, input_schema=Schema((ColumnSchema("x", "float"),)))
    Deployments(registry.db).deploy("api", [Variant("stable", "line", version=1)])
    runtime = ServingRuntime(registry.db, registry.artifacts)
    try:
        assert runtime.predict("api", [{"x": 10**20}]).predictions[0] == pytest.approx(1e20)
        with pytest.raises(InvalidArgumentError, match=r"field 'x': out_of_range \(a number past"):
            runtime.predict("api", [{"x": 10**400}])
    finally:
        runtime.close()


def test_a_shadow_taken_out_or_retired_stops_its_worker(runtime, registry):
    registry.register("broken", Crashing())
    deployments = Deployments(runtime.db)
    stable = Variant("stable", "credit", version=1)
    deployments.deploy(
        "api",
        [stable, Variant("copy", "broken", version=1, role="shadow", weight=0)],
        strategy="shadow",
    )
    runtime.predict("api", [RECORD])
    assert set(runtime.shadow_counts("api")) == {"copy"}
    deployments.deploy("api", [stable])
    runtime.predict("api", [RECORD])
    assert runtime.shadow_counts("api") == {}
    deployments.deploy(
        "api",
        [stable, Variant("copy", "broken", version=1, role="shadow", weight=0)],
        strategy="shadow",
    )
    runtime.predict("api", [RECORD])
    deployments.retire("api")
    with pytest.raises(UnknownDeploymentError):
        runtime.predict("api", [RECORD])
    assert runtime.shadow_counts("api") == {}
