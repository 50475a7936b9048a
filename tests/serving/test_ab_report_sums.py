"""The A/B report from per-arm sums folded in past a watermark (opsloop.serving.ab_arm_sums)
equals the report made from every row, on SQLite and PostgreSQL: on randomized histories
written in rounds with a report between them (several arms, a shadow, a retired variant,
failed answers, corrected and late feedback, feedback before its answer, request ids reused
by a later answer of another arm), for the outcomes ``reward``, ``label`` and ``correct``.

The reference is computed here from the rows: per request its newest feedback and newest
primary answer, per arm the mean and variance as exact fractions, rounded once; and the
report's own row-by-row path (``_outcomes_from_frame``). On PostgreSQL two connections
commit ids out of order around reports."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring import log_labels
from opsloop.serving import ab_arm_sums
from opsloop.serving.ab_arm_sums import arm_sums, forget_kept_sums
from opsloop.serving.ab_report import _outcomes_from_frame, ab_report
from opsloop.serving.deployment_records import Deployment, Variant
from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
from opsloop.serving.prediction_feedback import insert_feedback, record_feedback
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.migrate import alembic_config, current_revision, upgrade_to_head

LIVE = ["a", "b", "c"]
DEFINITION = Deployment(
    "ab-api",
    "ab",
    "full_automation",
    (
        Variant("a", "m", version=1, weight=0.4),
        Variant("b", "m", version=2, role="candidate", weight=0.3),
        Variant("c", "m", version=3, role="candidate", weight=0.3),
        Variant("s", "m", version=4, role="shadow"),
    ),
    None,
    0,
    "ana",
    {"a": 1, "b": 2, "c": 3, "s": 4},
)


def _event(variant, role, request_id, at_ms, *, failed=False, deployment="ab-api"):
    return PredictionEvent(
        deployment, variant, role, "m", 1, request_id, None, [{"x": 1.0}],
        None if failed else {"predictions": [at_ms % 2]},
        "RuntimeError: boom" if failed else None, 1.0, at_ms,
    )  # fmt: skip


def _round(db, rng, start, n, reward_of, label_of, *, reuse=()):
    """Requests ``start`` to ``start + n`` routed at random (a retired variant ``old``
    among the arms), a third mirrored to the shadow, some failed, plus a new answer of
    another arm for each request id in ``reuse``; per request 0-3 rewards and at most one
    label, in shuffled order, half written before some answers are."""
    variants = rng.choice(["a", "b", "c", "old"], size=n, p=[0.35, 0.3, 0.25, 0.1])
    events, late_events = [], []
    for i, variant in zip(range(start, start + n), variants, strict=True):
        request = f"r{i}"
        primary = _event(str(variant), "primary", request, 1000 + i, failed=rng.random() < 0.05)
        (late_events if rng.random() < 0.1 else events).append(primary)
        if rng.random() < 0.33:
            # The shadow answers the same request id: never an arm's outcome.
            events.append(_event("s", "shadow", request, 1000 + i))
    for request in reuse:
        events.append(_event(str(rng.choice(LIVE)), "primary", request, 7 + len(events)))
    # Another deployment's rows between this one's, with the same request ids.
    events += [
        _event("a", "primary", f"r{i}", 3, deployment="other") for i in range(start, start + 5)
    ]
    sink = StoreEventSink(db)
    sink.write(events)
    feedback = []
    for i in [*range(start, start + n), *(int(r[1:]) for r in reuse)]:
        feedback += [("reward", f"r{i}", reward_of(rng)) for _ in range(rng.integers(0, 4))]
        if rng.random() < 0.6:
            feedback.append(("label", f"r{i}", label_of(rng)))
    order = rng.permutation(len(feedback))
    with db.write() as connection:
        for position in order[: len(order) // 2]:
            kind, request, value = feedback[position]
            label = json.dumps(value) if kind == "label" else None
            reward = value if kind == "reward" else None
            insert_feedback(connection, "ab-api", request, label, reward, "queue", 5)
        insert_feedback(connection, "other", f"r{start}", "1", 1.0, "queue", 5)
    sink.write(late_events)  # answers written after their feedback
    for position in order[len(order) // 2 :]:
        kind, request, value = feedback[position]
        if kind == "label":
            log_labels(db, "ab-api", [request], [value])
        else:
            record_feedback(db, "ab-api", request, reward=value, actor="ana")


def _values(label_json, reward, output_json):
    """The outcomes of a request, by the rules the report documents."""
    label = None if label_json is None else json.loads(label_json)
    if label is not None and isinstance(label, float) and math.isnan(label):
        label = None
    guess = None if output_json is None else json.loads(output_json)["predictions"][0]
    return {
        "reward": reward,
        "label": None if label is None else float(label),
        "correct": None if label is None else float(label == guess),
    }


def _reference(db):
    """Per outcome and arm the outcomes of every request, and per arm the requests
    answered, read from every row."""
    f, e = tables.prediction_feedback, tables.prediction_events
    with db.read() as connection:
        feedback = connection.execute(
            sa.select(f.c.request_id, f.c.label_json, f.c.reward)
            .where(f.c.deployment == "ab-api")
            .order_by(f.c.id)
        ).all()
        answers = connection.execute(
            sa.select(e.c.request_id, e.c.variant, e.c.output_json, e.c.error)
            .where(e.c.deployment == "ab-api", e.c.role == "primary")
            .order_by(e.c.id)
        ).all()
    newest_feedback = {row.request_id: row for row in feedback}
    newest_answer = {row.request_id: row for row in answers}
    outcomes: dict[str, dict[str, list[float]]] = {k: {} for k in ("reward", "label", "correct")}
    for request, row in newest_feedback.items():
        answer = newest_answer.get(request)
        if answer is None:
            continue
        for kind, value in _values(row.label_json, row.reward, answer.output_json).items():
            if value is not None:
                outcomes[kind].setdefault(answer.variant, []).append(value)
    requests: dict[str, set] = {}
    for row in answers:
        if row.error is None:
            requests.setdefault(row.variant, set()).add(row.request_id)
    return outcomes, {variant: len(ids) for variant, ids in requests.items()}


def _exact(values):
    """The mean and sample variance of ``values`` as exact fractions, rounded once."""
    n = len(values)
    mean = sum(map(Fraction, values), Fraction(0)) / n if n else None
    var = sum(((Fraction(x) - mean) ** 2 for x in values), Fraction(0)) / (n - 1) if n > 1 else None
    return (math.nan if mean is None else float(mean)), (math.nan if var is None else float(var))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _check(db, outcomes=("reward", "label", "correct")):
    """The report from the sums against the references, per outcome."""
    reference, requests = _reference(db)
    for outcome in outcomes:
        report = ab_report(db, DEFINITION, outcome=outcome)
        frame_outcome, frame = _outcomes_from_frame(db, "ab-api", outcome, LIVE)
        assert (report.outcome, frame_outcome) == (outcome, outcome)
        for arm in report.arms:
            values = reference[outcome].get(arm.variant, [])
            mean, var = _exact(values)
            assert arm.requests == requests.get(arm.variant, 0)
            assert arm.outcomes == len(values) == frame[arm.variant].n
            ones = set(values) <= {0.0, 1.0}
            if ones:
                # 0/1 outcomes: the count of ones over n, as the row-by-row path has it.
                assert arm.mean == sum(values) / len(values) if values else math.isnan(arm.mean)
                assert frame[arm.variant].successes == int(sum(values))
            else:
                assert _same(arm.mean, mean), (outcome, arm.variant)
                assert _same(arm.std, math.sqrt(var)), (outcome, arm.variant)
            assert arm.mean == pytest.approx(frame[arm.variant].mean, rel=1e-12, nan_ok=True)
            want_std = math.sqrt(frame[arm.variant].var) if len(values) > 1 else math.nan
            assert arm.std == pytest.approx(want_std, rel=1e-12, nan_ok=True)
        kind = "proportion" if all(frame[n].successes is not None for n in LIVE) else "mean"
        assert report.kind == kind
        # Made from no kept sums at all, the report is the same; the kept row is then put
        # back, so that the next round folds onto the sums kept over the earlier rounds.
        assert json.dumps(_from_no_kept_sums(db, outcome).to_dict()) == json.dumps(report.to_dict())


def _from_no_kept_sums(db, outcome):
    """The report made with no kept sums, the kept row left as it was."""
    kept = _kept(db)
    with db.write() as connection:
        connection.execute(tables.ab_report_sums.delete())
    forget_kept_sums(db)
    report = ab_report(db, DEFINITION, outcome=outcome)
    with db.write() as connection:
        connection.execute(tables.ab_report_sums.delete())
        if kept is not None:
            connection.execute(tables.ab_report_sums.insert().values(**kept._mapping))
    return report


def _kept(db):
    with db.read() as connection:
        return connection.execute(sa.select(tables.ab_report_sums)).first()


def test_real_valued_rewards_folded_in_rounds_equal_the_rows(database):
    rng = np.random.default_rng(11)
    # A large mean and a small spread: the sums of squares about zero keep every digit here.
    reward = lambda r: float(1000.0 + r.normal(0.0, 0.01))  # noqa: E731
    label = lambda r: [0, 1, 2.5, -3, 1e16, True][int(r.integers(0, 6))]  # noqa: E731
    start = 0
    for size in (150, 40, 1, 60):
        reuse = [f"r{int(i)}" for i in rng.choice(start, size=5, replace=False)] if start else []
        _round(database, rng, start, size, reward, label, reuse=reuse)
        start += size
        report = ab_report(database, DEFINITION)
        assert report.outcome == "reward" and report.kind == "mean"
        kept = _kept(database)
        assert kept is not None
        _check(database, ("reward", "label"))
    _check(database, ("correct",))


def test_conversions_labels_and_correct_folded_in_rounds_equal_the_rows(database):
    rng = np.random.default_rng(5)
    labels = [0, 1, 1.0, 0.0, True, False, float("nan")]
    start = 0
    for size in (120, 30, 30):
        reuse = [f"r{int(i)}" for i in rng.choice(start, size=8, replace=False)] if start else []
        _round(database, rng, start, size, lambda r: float(r.integers(0, 2)),
               lambda r: labels[int(r.integers(0, len(labels)))], reuse=reuse)  # fmt: skip
        start += size
        _check(database)
        report = ab_report(database, DEFINITION)
        assert report.kind == "proportion"


def test_a_report_after_new_rows_reads_only_those(database, monkeypatch):
    """After the first report, a report's statements read the feedback and the answers by
    the range of their ids past the watermark and by the request ids those rows name."""
    rng = np.random.default_rng(3)
    _round(database, rng, 0, 100, lambda r: float(r.normal()), lambda r: 1)
    ab_report(database, DEFINITION)
    kept = _kept(database)
    _round(database, rng, 100, 3, lambda r: float(r.normal()), lambda r: 0, reuse=["r7"])
    statements = []

    def catch(connection, cursor, statement, parameters, context, executemany):
        if "prediction_" in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    from opsloop.serving import ab_arm_sums

    driver_rows = ab_arm_sums._driver_rows

    def caught_rows(connection, query):
        # The fold's rows come from the driver's cursor, past SQLAlchemy's events.
        compiled = query.compile(dialect=connection.dialect)
        parameters = [compiled.params[name] for name in compiled.positiontup or ()]
        statements.append((compiled.string, tuple(parameters)))
        return driver_rows(connection, query)

    monkeypatch.setattr(ab_arm_sums, "_driver_rows", caught_rows)
    sa.event.listen(database.engine, "before_cursor_execute", catch)
    try:
        ab_report(database, DEFINITION)
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", catch)
    assert any("newest_feedback" in statement for statement, _ in statements)
    after = _kept(database)
    assert (after.feedback_id, after.event_id) > (kept.feedback_id, kept.event_id)
    assert after.version == kept.version + 1
    if database.dialect == "sqlite":
        for statement, parameters in statements:
            with database.read() as connection:
                plan = "\n".join(
                    row[-1]
                    for row in connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                )
            # No table read whole, nor all of the deployment's rows: by the primary key's
            # range, or by request id.
            assert not re.search(r"SCAN (prediction_\w+|f0|f1|e0|e1|new|old)\b", plan), plan
            assert "(deployment=?)" not in plan, plan
    _check(database)


def test_a_request_id_reused_moves_its_outcome_to_the_newest_answer(database):
    sink = StoreEventSink(database)
    sink.write([_event("a", "primary", "r1", 1), _event("b", "primary", "r2", 2)])
    record_feedback(database, "ab-api", "r1", reward=2.0, actor="ana")
    record_feedback(database, "ab-api", "r2", reward=4.0, actor="ana")
    first = ab_report(database, DEFINITION, outcome="reward")
    assert [(arm.requests, arm.outcomes, arm.mean) for arm in first.arms[:2]] == [
        (1, 1, 2.0),
        (1, 1, 4.0),
    ]
    # A client reuses r1; its answer now comes from b, and its outcome counts there.
    sink.write([_event("b", "primary", "r1", 3)])
    second = ab_report(database, DEFINITION, outcome="reward")
    assert [(arm.requests, arm.outcomes) for arm in second.arms[:2]] == [(1, 0), (2, 2)]
    assert second.arms[1].mean == 3.0 and second.arms[1].std == math.sqrt(2.0)
    record_feedback(database, "ab-api", "r1", reward=8.0, actor="ana")  # replaces 2.0
    third = ab_report(database, DEFINITION, outcome="reward")
    assert (third.arms[1].outcomes, third.arms[1].mean) == (2, 6.0)


def test_sums_start_again_when_the_deployment_is_retired(registry):
    from opsloop.serving import Deployments

    db = registry.db
    registry.register("m", b"a", flavor="onnx")
    registry.register("m", b"b", flavor="onnx")
    deployments = Deployments(db)
    variants = [Variant("a", "m", version=1, weight=0.5),
                Variant("b", "m", version=2, role="candidate", weight=0.5)]  # fmt: skip
    deployments.deploy("ab-api", variants, strategy="ab")
    sink = StoreEventSink(db)
    sink.write([_event("a", "primary", "r1", 1), _event("b", "primary", "r2", 2)])
    record_feedback(db, "ab-api", "r1", reward=1.0, actor="ana")
    assert [arm.outcomes for arm in deployments.ab_report("ab-api").arms] == [1, 0]
    deployments.retire("ab-api")
    deployments.deploy("ab-api", variants, strategy="ab")
    sink.write([_event("b", "primary", "r9", 3)])
    record_feedback(db, "ab-api", "r9", reward=5.0, actor="ana")
    report = deployments.ab_report("ab-api")
    assert [(arm.requests, arm.outcomes) for arm in report.arms] == [(0, 0), (1, 1)]
    assert report.arms[1].mean == 5.0
    history = arm_sums(db, "ab-api/retired-1")
    assert history.requests == {"a": 1, "b": 1}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_labels_the_sums_cannot_take_are_left_to_the_rows(database):
    rng = np.random.default_rng(2)
    _round(database, rng, 0, 60, lambda r: 1.0, lambda r: int(r.integers(0, 2)))
    _check(database, ("label",))
    StoreEventSink(database).write([_event("a", "primary", "odd", 5000)])
    # An infinite label: the rows' path answers (arm a's mean is infinite, and its test
    # refuses the value).
    with database.write() as connection:
        insert_feedback(connection, "ab-api", "odd", "Infinity", None, "queue", 9)
    assert arm_sums(database, "ab-api").outcomes["label"]["a"].infinite == 1
    with pytest.raises(InvalidArgumentError, match=r"values_a\[\d+\] = inf is not finite"):
        ab_report(database, DEFINITION, outcome="label")
    # A text label: the rows' path names it in its error.
    with database.write() as connection:
        insert_feedback(connection, "ab-api", "odd", '"yes"', None, "queue", 10)
    with pytest.raises(InvalidArgumentError, match=r"labels must be numbers.*'yes'"):
        ab_report(database, DEFINITION, outcome="label")
    # The reward and correct outcomes do not read labels as numbers.
    assert ab_report(database, DEFINITION, outcome="reward").kind == "proportion"
    # Replaced by a number, the label is one again.
    with database.write() as connection:
        insert_feedback(connection, "ab-api", "odd", "1", None, "queue", 11)
    _check(database, ("label",))


def test_two_reports_keeping_their_sums_at_once_keep_one(database):
    rng = np.random.default_rng(4)
    _round(database, rng, 0, 40, lambda r: float(r.normal()), lambda r: 1)
    ab_report(database, DEFINITION)
    stale = _kept(database)
    _round(database, rng, 40, 10, lambda r: float(r.normal()), lambda r: 1)
    from opsloop.serving import ab_arm_sums

    # A report that read the kept sums before this one wrote them loses its write.
    ab_report(database, DEFINITION)
    newer = _kept(database)
    ab_arm_sums._keep(database, "ab-api", stale, stale.retires, (1, 1), None, stale.sums_json)
    assert _kept(database) == newer
    # And one that found no row, when another report inserted it meanwhile.
    ab_arm_sums._keep(database, "ab-api", None, 0, (1, 1), None, stale.sums_json)
    assert _kept(database) == newer
    _check(database)


@pytest.fixture
def postgres(database):
    if database.dialect != "postgresql":
        pytest.skip("a real PostgreSQL server")
    return database


def _open_insert(db: Database, table: sa.Table, **values):
    """A connection whose open transaction inserted one row; the row's id."""
    connection = db.engine.connect()
    transaction = connection.begin()
    row_id = connection.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()
    return connection, transaction, row_id


def test_ids_committed_out_of_order_on_postgresql_are_folded_in(postgres):
    db = postgres
    sink = StoreEventSink(db)
    sink.write([_event("a", "primary", f"r{i}", i) for i in range(4)])
    record_feedback(db, "ab-api", "r0", reward=1.0, actor="ana")
    assert ab_report(db, DEFINITION, outcome="reward").arms[0].outcomes == 1
    # Transaction A draws the lower feedback id and the lower event id, and stays open...
    a, a_transaction, a_feedback = _open_insert(
        db, tables.prediction_feedback, deployment="ab-api", request_id="r1", reward=10.0,
        created_ms=1, created_by="ana",
    )  # fmt: skip
    a_event = a.execute(
        tables.prediction_events.insert()
        .values(_event("b", "primary", "r0", 9).to_row())
        .returning(tables.prediction_events.c.id)
    ).scalar_one()
    try:
        # ...while B commits higher ids: a corrected reward for r0 and a new answer.
        record_feedback(db, "ab-api", "r0", reward=3.0, actor="ana")
        record_feedback(db, "ab-api", "r2", reward=5.0, actor="ana")
        sink.write([_event("c", "primary", "r5", 10)])
        record_feedback(db, "ab-api", "r5", reward=7.0, actor="ana")
        report = ab_report(db, DEFINITION, outcome="reward")
        assert [(arm.outcomes, arm.mean) for arm in report.arms[::2]] == [(2, 4.0), (1, 7.0)]
        assert report.arms[1].outcomes == 0 and math.isnan(report.arms[1].mean)
        kept = _kept(db)
        # Kept only below A's ids; the ids read are pending until A ends.
        assert kept.feedback_id < a_feedback and kept.event_id < a_event
        assert json.loads(kept.pending_json)["ids"][0] > a_feedback
        # A second report while A is still open folds nothing more in for good.
        ab_report(db, DEFINITION, outcome="reward")
        assert (_kept(db).feedback_id, _kept(db).event_id) == (kept.feedback_id, kept.event_id)
        a_transaction.commit()
    finally:
        a.close()
    # A's rows, lower than what the reports saw: r1's reward counts, r0 moves to b.
    report = ab_report(db, DEFINITION, outcome="reward")
    assert [(arm.requests, arm.outcomes, arm.mean) for arm in report.arms] == [
        (4, 2, 7.5),
        (1, 1, 3.0),
        (1, 1, 7.0),
    ]
    kept = _kept(db)
    assert kept.feedback_id > a_feedback and kept.event_id > a_event
    assert kept.pending_json is None
    _check(db)


def test_a_rolled_back_id_does_not_hold_the_watermark_on_postgresql(postgres):
    db = postgres
    StoreEventSink(db).write([_event("a", "primary", "r1", 1)])
    record_feedback(db, "ab-api", "r1", reward=1.0, actor="ana")
    a, a_transaction, _ = _open_insert(
        db, tables.prediction_feedback, deployment="ab-api", request_id="r1", reward=10.0,
        created_ms=1, created_by="ana",
    )  # fmt: skip
    record_feedback(db, "ab-api", "r1", reward=2.0, actor="ana")
    assert ab_report(db, DEFINITION, outcome="reward").arms[0].mean == 2.0
    a_transaction.rollback()
    a.close()
    assert ab_report(db, DEFINITION, outcome="reward").arms[0].mean == 2.0
    with db.read() as connection:
        largest = connection.execute(sa.select(sa.func.max(tables.prediction_feedback.c.id)))
        assert _kept(db).feedback_id == largest.scalar_one()


def test_migration_0032_goes_down_and_up_with_feedback_in_the_store(database):
    rng = np.random.default_rng(8)
    _round(database, rng, 0, 50, lambda r: float(r.normal()), lambda r: 1)
    before = ab_report(database, DEFINITION).to_dict()
    assert _kept(database) is not None
    with database.write() as connection:
        command.downgrade(alembic_config(connection), "0031")
        assert current_revision(connection) == "0031"
        assert "ab_report_sums" not in sa.inspect(connection).get_table_names()
    with database.write() as connection:
        upgrade_to_head(connection)
    assert _kept(database) is None  # empty: the first report fills it
    assert json.dumps(ab_report(database, DEFINITION).to_dict()) == json.dumps(before)


def test_sums_of_many_values_at_once_equal_the_exact_sums():
    """Doubles of every magnitude and sign (random bit patterns: subnormals, the largest,
    0/1 among them): the vectorised sums equal the sums of their exact fractions."""
    from opsloop.serving.ab_arm_sums import OutcomeSums

    rng = np.random.default_rng(21)
    bits = rng.integers(0, 2**63 - 1, size=3000, dtype=np.int64) * rng.choice([1, -1], size=3000)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)].tolist() + [0.0, 1.0, 1.0, -0.0, 5e-324, 1e308] * 3
    many = OutcomeSums()
    many.add_many(values)
    exact_total = sum(map(Fraction, values), Fraction(0))
    exact_squares = sum((Fraction(x) ** 2 for x in values), Fraction(0))
    assert Fraction(many.total, 2**1074) == exact_total
    assert Fraction(many.squares, 2**2148) == exact_squares
    assert (many.n, many.ones, many.other) == (len(values), 6, len(values) - 12)
    one = OutcomeSums()
    for x in values:
        one.add(x, 1)
    assert one == many
    for x in values[:100]:
        many.add(x, -1)
    rest = values[100:]
    assert Fraction(many.total, 2**1074) == sum(map(Fraction, rest), Fraction(0))
    assert many.mean() == float(sum(map(Fraction, rest), Fraction(0)) / len(rest))


def test_a_pending_watermark_is_final_only_once_its_writers_ended_on_postgresql(
    postgres, monkeypatch
):
    """Two reports at once: R2 probes before W1 begins, W1 draws feedback id N and stays
    open, U commits N + 1, R1 probes (W1 writing) and keeps N + 1 as pending on W1; then R2
    goes on with its older probe, which never saw W1. R2 must not take R1's pending
    watermark as final: W1's row N, committed after, is folded in by a later report."""
    from opsloop.serving import ab_arm_sums

    db = postgres
    StoreEventSink(db).write([_event(v, "primary", f"r{i}", i) for i, v in enumerate("abab")])
    record_feedback(db, "ab-api", "r0", reward=1.0, actor="ana")
    ab_report(db, DEFINITION, outcome="reward")
    r2_probe = ab_arm_sums._probe(db)  # R2 probes: no writer
    w1, w1_transaction, n = _open_insert(
        db, tables.prediction_feedback, deployment="ab-api", request_id="r1", reward=100.0,
        created_ms=1, created_by="w1",
    )  # fmt: skip
    try:
        record_feedback(db, "ab-api", "r2", reward=3.0, actor="ana")  # U commits N + 1
        ab_report(db, DEFINITION, outcome="reward")  # R1
        pending = json.loads(_kept(db).pending_json)
        assert pending["ids"][0] == n + 1 and len(pending["writing"]) == 1
        with monkeypatch.context() as replay:
            replay.setattr(ab_arm_sums, "_probe", lambda _db: r2_probe)
            r2 = ab_report(db, DEFINITION, outcome="reward")  # R2, with its probe
        # R2's own report is exact for its snapshot (W1's row not in it)...
        assert (r2.arms[0].outcomes, r2.arms[0].mean, r2.arms[1].outcomes) == (2, 2.0, 0)
        # ...and what is kept for good stays below W1's id.
        assert _kept(db).feedback_id < n
        w1_transaction.commit()
    finally:
        w1.close()
    for _ in range(2):
        report = ab_report(db, DEFINITION, outcome="reward")
        assert [(arm.outcomes, arm.mean) for arm in report.arms[:2]] == [(2, 2.0), (1, 100.0)]
    assert _kept(db).feedback_id >= n + 1 and _kept(db).pending_json is None
    # A corrected reward then replaces W1's, and a new answer moves r1 to a: no count
    # goes below zero.
    record_feedback(db, "ab-api", "r1", reward=50.0, actor="ana")
    report = ab_report(db, DEFINITION, outcome="reward")
    assert [(arm.outcomes, arm.mean) for arm in report.arms[:2]] == [(2, 2.0), (1, 50.0)]
    StoreEventSink(db).write([_event("a", "primary", "r1", 9)])
    report = ab_report(db, DEFINITION, outcome="reward")
    assert report.arms[0].outcomes == 3 and report.arms[0].mean == 18.0
    assert report.arms[1].outcomes == 0
    _check(db)


def _exact_reference(db, name):
    """Per arm the requests answered and, per outcome, the outcomes of ``name``'s requests
    (newest feedback, counted for the newest primary answer), and the count of newest labels
    that are not numbers, read from every row."""
    f, e = tables.prediction_feedback, tables.prediction_events
    with db.read() as connection:
        answers = connection.execute(
            sa.select(e.c.id, e.c.variant, e.c.request_id, e.c.output_json, e.c.error)
            .where(e.c.deployment == name, e.c.role == "primary")
            .order_by(e.c.id)
        ).all()
        feedback = connection.execute(
            sa.select(f.c.request_id, f.c.label_json, f.c.reward)
            .where(f.c.deployment == name)
            .order_by(f.c.id)
        ).all()
    requests: dict[str, set] = {}
    for row in answers:
        if row.error is None:
            requests.setdefault(row.variant, set()).add(row.request_id)
    newest_answer = {row.request_id: row for row in answers}
    outcomes: dict[str, dict[str, list[float]]] = {k: {} for k in ("reward", "label", "correct")}
    not_number = 0
    for request, row in {row.request_id: row for row in feedback}.items():
        answer = newest_answer.get(request)
        if answer is None:
            continue
        if row.reward is not None and not math.isnan(row.reward):
            outcomes["reward"].setdefault(answer.variant, []).append(row.reward)
        label = None if row.label_json is None else json.loads(row.label_json)
        if label is None or (isinstance(label, float) and math.isnan(label)):
            continue
        if isinstance(label, bool | int | float):
            outcomes["label"].setdefault(answer.variant, []).append(float(label))
        else:
            not_number += 1
        output = None if answer.output_json is None else json.loads(answer.output_json)
        guess = output["predictions"][0] if output else None
        outcomes["correct"].setdefault(answer.variant, []).append(float(label == guess))
    return {v: len(ids) for v, ids in requests.items()}, outcomes, not_number


def _check_sums_exactly(db, name):
    """The kept-and-folded sums of ``name`` against :func:`_exact_reference`: counts equal,
    means and variances the exact fractions rounded once (0/1 outcomes, whose variance is
    computed from the count of ones in doubles, to 1e-12)."""
    sums = arm_sums(db, name)
    requests, outcomes, not_number = _exact_reference(db, name)
    assert {v: n for v, n in sums.requests.items() if n} == requests
    assert sums.not_number == not_number
    for outcome, arms in outcomes.items():
        assert {v for v, s in sums.outcomes[outcome].items() if s.n} == set(arms), outcome
        for variant, values in arms.items():
            got = sums.outcomes[outcome][variant]
            infinite = sum(math.isinf(x) for x in values)
            assert (got.n, got.infinite) == (len(values), infinite), (outcome, variant)
            if infinite:
                continue  # the report refuses the arm's values (see the label test)
            n = len(values)
            total = sum(map(Fraction, values), Fraction(0))
            mean = float(total / n)
            var = math.nan
            if n > 1:
                squares = sum((Fraction(x) ** 2 for x in values), Fraction(0))
                try:
                    var = float((n * squares - total * total) / (n * (n - 1)))
                except OverflowError:
                    var = math.inf
            if set(values) <= {0.0, 1.0}:
                assert got.mean() == mean
                assert got.var() == pytest.approx(var, rel=1e-12, nan_ok=True)
            else:
                assert _same(got.mean(), mean) and _same(got.var(), var), (outcome, variant)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_many_rounds_folded_onto_the_kept_sums_equal_the_exact_sums(database, seed):
    """Twelve rounds of random rows, each folded onto the sums kept by the rounds before
    (never cleared): new and reused request ids, failed answers, a shadow, feedback before
    its answer, corrected rewards of every magnitude (nan, inf, 1e300, the smallest
    subnormal), labels of every kind, rows of a request never answered, and retires that
    start the sums again under new variant names."""
    from opsloop.monitoring.retired_monitoring import history_name, retire_monitoring
    from opsloop.registry.audit import append_audit

    rng = np.random.default_rng(seed)
    db, name, sink = database, "ab-api", StoreEventSink(database)
    variants, known, next_id = ["a", "b", "c"], [], 0
    rewards = [0.0, 1.0, float("nan"), float("inf"), 1e300, 5e-324]
    labels = [0, 1, True, 2.5, "cat", float("nan"), None]
    folded = 0
    for round_number in range(12):
        events = []
        for _ in range(int(rng.integers(0, 31))):
            request, next_id = f"r{next_id}", next_id + 1
            failed = rng.random() < 0.1
            output = None if failed else {"predictions": [[0, 1, "cat"][int(rng.integers(0, 3))]]}
            events.append(PredictionEvent(
                name, variants[int(rng.integers(0, 3))], "primary", "m", 1, request, None,
                [{"x": 1}], output, "boom" if failed else None, 1.0, 1000,
            ))  # fmt: skip
            if rng.random() < 0.3:
                events.append(_event("s", "shadow", request, 1000))
            known.append(request)
        for _ in range(int(rng.integers(0, 5)) if known else 0):
            request = known[int(rng.integers(0, len(known)))]
            events.append(_event(variants[int(rng.integers(0, 3))], "primary", request, 1001))
        late = [event for event in events if rng.random() < 0.2]
        sink.write([event for event in events if event not in late])
        with db.write() as connection:
            for _ in range(int(rng.integers(0, 31))):
                pool = [*known, "nobody"]
                request = pool[int(rng.integers(0, len(pool)))]
                kind, label, reward = rng.random(), None, None
                if kind < 0.3:
                    pick = int(rng.integers(0, len(rewards) + 1))
                    reward = float(rng.normal(5, 2)) if pick == len(rewards) else rewards[pick]
                elif kind < 0.6:
                    label = json.dumps(labels[int(rng.integers(0, len(labels)))])
                else:
                    reward, label = float(rng.random()), json.dumps(int(rng.integers(0, 2)))
                insert_feedback(connection, name, request, label, reward, "ana", 1000)
        sink.write(late)
        if rng.random() < 0.7:
            _check_sums_exactly(db, name)
            folded += 1
        if round_number in (5, 9) and rng.random() < 0.5:
            with db.write() as connection:
                history = history_name(connection, name)
                retire_monitoring(connection, name, history, "ana", None)
                append_audit(connection, "ana", "retire", f"monitor:{name}", None, None, {})
            _check_sums_exactly(db, history)
            variants, known = [v + "2" for v in variants], []
    _check_sums_exactly(db, name)
    assert folded >= 5  # several increments folded in a row onto the same kept row
    assert _kept(db) is not None


def _two_arms(db):
    StoreEventSink(db).write([_event(v, "primary", f"r{i}", i) for i, v in enumerate("abab")])
    for i, reward in enumerate([1.0, 2.0, 3.0, 6.0]):
        record_feedback(db, "ab-api", f"r{i}", reward=reward, actor="ana")


def test_a_report_while_another_connection_holds_the_sqlite_write_lock(
    database, monkeypatch, tmp_path
):
    """The report does not wait out the busy timeout behind a writer, nor fail: it is
    returned, exact, and its sums are kept by a later report."""
    import sqlite3

    from opsloop.store import database as store_database

    if database.dialect != "sqlite":
        pytest.skip("SQLite's write lock")
    # A busy timeout short enough for the report's old wait to fail this test quickly.
    monkeypatch.setattr(store_database, "BUSY_TIMEOUT_MS", 3000)
    now = [1_000_000]
    db = Database(database.uri, clock=lambda: now[0])
    _two_arms(db)
    ab_report(db, DEFINITION, outcome="reward")
    kept = _kept(db)
    record_feedback(db, "ab-api", "r1", reward=10.0, actor="ana")
    writer = sqlite3.connect(str(tmp_path / "store.db"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        report = ab_report(db, DEFINITION, outcome="reward")
        assert [(arm.outcomes, arm.mean) for arm in report.arms[:2]] == [(2, 2.0), (2, 8.0)]
        assert _kept(db) == kept  # not kept this time
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with db.read() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
    # Not tried again until KEEP_RETRY_AFTER_MS later: the process's own sums serve meanwhile.
    again = ab_report(db, DEFINITION, outcome="reward")
    assert again.to_dict() == report.to_dict()
    assert _kept(db) == kept
    now[0] += ab_arm_sums.KEEP_RETRY_AFTER_MS - 1
    ab_report(db, DEFINITION, outcome="reward")
    assert _kept(db) == kept
    now[0] += 1
    again = ab_report(db, DEFINITION, outcome="reward")
    assert again.to_dict() == report.to_dict()
    assert _kept(db).version == kept.version + 1
    db.dispose()


def test_a_report_on_a_read_only_postgresql_session_is_returned(postgres):
    """A read-only role or a standby (``default_transaction_read_only``) cannot keep the
    sums: the report is returned all the same."""
    _two_arms(postgres)
    url = sa.make_url(postgres.uri).update_query_dict(
        {"options": "-c default_transaction_read_only=on"}
    )
    reader = Database(url.render_as_string(hide_password=False), migrate=False)
    try:
        for _ in range(2):
            report = ab_report(reader, DEFINITION, outcome="reward")
            assert [(arm.outcomes, arm.mean) for arm in report.arms[:2]] == [(2, 2.0), (2, 4.0)]
        assert _kept(postgres) is None
    finally:
        reader.dispose()


def test_a_report_does_not_wait_for_a_lock_on_the_kept_row_on_postgresql(postgres):
    """Another transaction holding the kept row: the report's write gives up after
    ``KEEP_LOCK_WAIT_MS`` and the report is returned."""
    _two_arms(postgres)
    ab_report(postgres, DEFINITION, outcome="reward")
    kept = _kept(postgres)
    record_feedback(postgres, "ab-api", "r0", reward=5.0, actor="ana")
    # The sessions' own bound (5 s): a report that waited for the lock fails, not hangs.
    url = sa.make_url(postgres.uri).update_query_dict({"options": "-c lock_timeout=5000"})
    db = Database(url.render_as_string(hide_password=False), migrate=False)
    holder = postgres.engine.connect()
    try:
        transaction = holder.begin()
        holder.execute(sa.select(tables.ab_report_sums).with_for_update())
        report = ab_report(db, DEFINITION, outcome="reward")
        assert [(arm.outcomes, arm.mean) for arm in report.arms[:2]] == [(2, 4.0), (2, 4.0)]
        transaction.rollback()
    finally:
        holder.close()
        db.dispose()
    assert _kept(postgres) == kept
    ab_report(postgres, DEFINITION, outcome="reward")
    assert _kept(postgres).version == kept.version + 1


def _folds_from(monkeypatch) -> list[tuple[int, int]]:
    """The watermarks the reports' folds start from, as they are made."""
    lows: list[tuple[int, int]] = []
    fold = ab_arm_sums._fold

    def caught(connection, deployment, sums, low, high):
        lows.append(low)
        return fold(connection, deployment, sums, low, high)

    monkeypatch.setattr(ab_arm_sums, "_fold", caught)
    return lows


def _from_scratch(uri: str, outcome: str = "reward"):
    """The report of a store opened anew, with no kept row: every row read (the row it
    keeps is taken out again)."""
    fresh = Database(uri, migrate=False)
    try:
        with fresh.write() as connection:
            connection.execute(tables.ab_report_sums.delete())
        report = ab_report(fresh, DEFINITION, outcome=outcome).to_dict()
        with fresh.write() as connection:
            connection.execute(tables.ab_report_sums.delete())
        return report
    finally:
        fresh.dispose()


def test_sums_not_kept_behind_the_sqlite_write_lock_are_resumed_in_the_process(
    database, monkeypatch, tmp_path
):
    """Another connection holds SQLite's write lock at every report: no sums are kept in
    the store, yet each report after the first folds in only the rows since the one
    before, and equals a report made from every row."""
    import sqlite3

    if database.dialect != "sqlite":
        pytest.skip("SQLite's write lock")
    rng = np.random.default_rng(21)
    _round(database, rng, 0, 60, lambda r: float(r.normal(5.0, 2.0)), lambda r: 1)
    writer = sqlite3.connect(str(tmp_path / "store.db"), isolation_level=None)
    lows = _folds_from(monkeypatch)
    start = 60
    try:
        for size in (0, 10, 5):
            # Rows (corrections of earlier requests among them) committed between reports.
            if size:
                _round(database, rng, start, size, lambda r: float(r.normal(5.0, 2.0)),
                       lambda r: 0, reuse=[f"r{int(i)}" for i in rng.choice(start, 4)])  # fmt: skip
                start += size
            writer.execute("BEGIN IMMEDIATE")
            try:
                lows.clear()
                report = ab_report(database, DEFINITION, outcome="reward").to_dict()
            finally:
                writer.execute("ROLLBACK")
            assert _kept(database) is None
            if size:
                # Resumed from the sums of the report before, not from nothing.
                assert lows[0] > (0, 0), lows
            assert report == _from_scratch(database.uri)
    finally:
        writer.close()


def test_a_read_only_sqlite_store_reads_its_whole_history_once(database, monkeypatch, tmp_path):
    """A store opened read-only cannot keep its sums: the process resumes from its own, and
    its reports equal those made from every row, corrections of earlier feedback included."""
    if database.dialect != "sqlite":
        pytest.skip("a read-only SQLite file")
    rng = np.random.default_rng(4)
    _round(database, rng, 0, 50, lambda r: float(r.normal(1.0, 3.0)), lambda r: 1)
    reader = Database(f"sqlite:///file:{tmp_path / 'store.db'}?mode=ro&uri=true", migrate=False)
    lows = _folds_from(monkeypatch)
    try:
        first = ab_report(reader, DEFINITION, outcome="reward").to_dict()
        assert lows[0] == (0, 0) and _kept(database) is None
        assert first == _from_scratch(database.uri)
        for round_number, start in enumerate((50, 58)):
            _round(database, rng, start, 8, lambda r: float(r.normal(1.0, 3.0)), lambda r: 0,
                   reuse=[f"r{int(i)}" for i in rng.choice(start, 3)])  # fmt: skip
            for name in ("r0", "r1"):  # corrected rewards of the first requests
                record_feedback(database, "ab-api", name, reward=float(round_number), actor="ana")
            lows.clear()
            report = ab_report(reader, DEFINITION, outcome="reward").to_dict()
            assert lows[0] > (0, 0) and _kept(database) is None, lows
            assert report == _from_scratch(database.uri)
    finally:
        reader.dispose()


def test_a_read_only_postgresql_session_resumes_its_own_sums_with_late_commits(
    postgres, monkeypatch
):
    """A read-only session cannot keep the sums: the process resumes from its own, pending
    writers included. A transaction holding lower ids commits after higher ones were
    reported; each report equals one made from every row."""
    db = postgres
    rng = np.random.default_rng(9)
    _round(db, rng, 0, 40, lambda r: float(r.normal(3.0, 1.0)), lambda r: 1)
    url = sa.make_url(db.uri).update_query_dict({"options": "-c default_transaction_read_only=on"})
    reader = Database(url.render_as_string(hide_password=False), migrate=False)
    lows = _folds_from(monkeypatch)
    try:
        first = ab_report(reader, DEFINITION, outcome="reward").to_dict()
        assert _kept(db) is None
        assert first == _from_scratch(db.uri)
        # A draws lower ids (a correction of r0 and an answer moving r1 to c) and stays open.
        a, a_transaction, _ = _open_insert(
            db, tables.prediction_feedback, deployment="ab-api", request_id="r0",
            reward=100.0, created_ms=1, created_by="ana",
        )  # fmt: skip
        try:
            a.execute(
                tables.prediction_events.insert().values(_event("c", "primary", "r1", 99).to_row())
            )
            _round(db, rng, 40, 6, lambda r: float(r.normal(3.0, 1.0)), lambda r: 0, reuse=["r2"])
            record_feedback(db, "ab-api", "r3", reward=-4.0, actor="ana")
            lows.clear()
            report = ab_report(reader, DEFINITION, outcome="reward").to_dict()
            assert lows[0] > (0, 0) and _kept(db) is None, lows
            assert report == _from_scratch(db.uri)
            a_transaction.commit()
        finally:
            a.close()
        for _ in range(2):  # A's rows, then nothing new
            lows.clear()
            report = ab_report(reader, DEFINITION, outcome="reward").to_dict()
            assert lows[0] > (0, 0) and _kept(db) is None, lows
            assert report == _from_scratch(db.uri)
    finally:
        reader.dispose()
