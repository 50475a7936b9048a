"""What a deployment's feedback and answers come to per arm, for its A/B report, kept as of
a watermark and brought up to date by folding in only the rows written since.

The report (:mod:`.ab_report`) needs, per variant, the requests it answered (distinct
request ids of its ``primary`` events without an error) and, per outcome (``reward``,
``label``, ``correct``), the count, mean and variance of the outcomes of the requests it
answered: a request's outcome is its newest feedback, counted for the variant of its newest
primary answer. These are sums, and a sum can take a row out as well as in, so the
table ``ab_report_sums`` keeps them per deployment as of the last feedback row id and the
last event id folded in (the **watermark**), and each report folds in the rows past it:

* a request whose feedback or answer is new has its old contribution (its newest feedback
  and answer up to the watermark) taken out and its new one put in: a corrected reward
  replaces the first, an answer reusing the request id moves the outcome to its variant;
* a new answer counts for its variant unless that variant answered the request id before.

The sums are exact: every finite double is a whole multiple of 2⁻¹⁰⁷⁴, so each value
is kept as an integer times 2⁻¹⁰⁷⁴ and its square times 2⁻²¹⁴⁸ (Python integers of any
size), and taking a value out leaves no rounding behind. The mean and the variance are
then the exact ones, rounded once.

**Which rows are final.** Folding a row in for good needs every row below it to be there.
On SQLite one transaction writes at a time, so ids commit in order and every id up to the
largest visible one is final. On PostgreSQL an id is drawn from a sequence when a row is
inserted, and a transaction holding a lower id may commit after one holding a higher id. A
report therefore reads the largest ids *first*, then which transactions hold a write lock
on either table (``pg_locks``; an insert holds it from before it draws its id until it
ends), and only then takes its snapshot. With no such writer, every id up to those read is
final; otherwise those ids become the **pending** watermark, kept with those transactions'
virtual ids, and final once all of them have ended. A later report judges that for itself,
whatever its own probe saw: it reads the kept pending writers, then asks ``pg_locks`` whether
each is still there, and only then takes its snapshot; a pending watermark is taken as final
only where every writer it names was seen gone by that check (so ended before the snapshot:
their rows are in it). This rests on the ids
being drawn by the inserts themselves from the tables' own sequences, one at a time (no
cache per session), as the store's tables make them. The rows past the final
watermark are folded into the report's own copy only (the **tail**), so each report is
exact for its snapshot, and the kept sums never miss a row committed late.

A retire moves the deployment's rows to its history (:mod:`.retired_names`): the sums
are kept with the count of retires they were made under, and start again when it changed
(a history's own sums are not kept, :func:`arm_sums`).
Two reports keeping their sums at once: the one whose ``version`` is still current wins,
the other's sums are dropped (its report is still exact). The rows are never updated or
deleted otherwise: the fold reads only inserts.

**A report writes.** Reading a report (the REST ``ab`` report, the results page a viewer
opens and its refreshes) may write the deployment's row of ``ab_report_sums``: a viewer's
GET triggers it. That write is best effort: it waits at most :data:`KEEP_LOCK_WAIT_MS` for
a lock (on SQLite the database's write lock, which another writer may hold), and where it
cannot be made (locked, a read-only database, role or standby) it is skipped and the report,
already computed, is returned as it is, and this process's reports of the deployment try
again only :data:`KEEP_RETRY_AFTER_MS` later. The process keeps the last sums it computed too
(:data:`SUMS_KEPT_IN_PROCESS` deployments per :class:`~opsloop.store.Database`, with their
watermark, pending writers and count of retires, exactly as the row keeps them), and the
next report of the same ``Database`` object folds in from whichever of the two is newer: a
store whose row cannot be written is read whole once per process, not at every report.
Those sums rest, as the row does, on rows being only inserted; whatever takes rows out by
other means than a retire must call :func:`forget_kept_sums`.

>>> from opsloop.store import Database
>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> from opsloop.serving.prediction_feedback import record_feedback
>>> db = Database("sqlite://")
>>> StoreEventSink(db).write([PredictionEvent("api", v, "primary", "m", 1, f"r{i}", None,
...     [{"x": 1}], {"predictions": [1]}, None, 0.4, 1000) for i, v in enumerate("aab")])
>>> [record_feedback(db, "api", f"r{i}", reward=reward, actor="ana")
...  for i, reward in enumerate([1.0, 3.0, 5.0])]
['joined', 'joined', 'joined']
>>> sums = arm_sums(db, "api")
>>> sums.requests, sums.outcomes["reward"]["a"].mean(), sums.outcomes["reward"]["a"].var()
({'a': 2, 'b': 1}, 2.0, 2.0)
>>> record_feedback(db, "api", "r1", reward=7.0, actor="ana")  # replaces 3.0
'joined'
>>> arm_sums(db, "api").outcomes["reward"]["a"].mean()
4.0
"""

from __future__ import annotations

import json
import logging
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from opsloop.serving.retired_names import retires
from opsloop.store import tables
from opsloop.store.database import Database, clock_of

#: The outcomes kept (see :mod:`.ab_report`).
OUTCOMES = ("reward", "label", "correct")

# 2**-1074 is the smallest positive double: every finite double times 2**1074 is an integer.
_SCALE = 1074
# Rows read from the database per fetch while folding.
_ROWS_PER_FETCH = 20_000

#: How long a report waits for a lock to keep its sums before it skips keeping them.
KEEP_LOCK_WAIT_MS = 200
#: How many deployments' sums the process keeps per store (the least recently used go).
SUMS_KEPT_IN_PROCESS = 256
#: After a report could not keep its sums, how long (by the store's clock) the reports of
#: the deployment in this process leave the store's row alone: each try may wait
#: :data:`KEEP_LOCK_WAIT_MS`, and the process's own sums serve them meanwhile.
KEEP_RETRY_AFTER_MS = 60_000

_feedback, _events, _sums = (
    tables.prediction_feedback,
    tables.prediction_events,
    tables.ab_report_sums,
)

_log = logging.getLogger(__name__)

# A label that is not a number (a text, a list): the label outcome's report refuses it.
_NOT_NUMBER = object()


@dataclass
class OutcomeSums:
    """One arm's outcomes: their count ``n``, their exact sum (``total``, in units of
    2⁻¹⁰⁷⁴) and sum of squares (``squares``, in units of 2⁻²¹⁴⁸), how many are 1
    (``ones``), how many are neither 0 nor 1 (``other``) and how many are infinite
    (``infinite``, kept out of the sums).

    >>> s = OutcomeSums()
    >>> for x in (0.1, 0.2, 0.3):
    ...     s.add(x, 1)
    >>> s.add(0.2, -1)
    >>> s.n, s.mean(), s.var(), s.ones, s.other
    (2, 0.2, 0.02, 0, 2)
    """

    n: int = 0
    total: int = 0
    squares: int = 0
    ones: int = 0
    other: int = 0
    infinite: int = 0

    def add(self, x: float, sign: int) -> None:
        """Put the value ``x`` in (``sign`` 1) or take it out (``sign`` -1)."""
        self.n += sign
        if x == 1.0:
            self.ones += sign
        elif x != 0.0:
            self.other += sign
        if math.isinf(x):
            self.infinite += sign
            return
        numerator, denominator = x.as_integer_ratio()
        shift = _SCALE - (denominator.bit_length() - 1)
        self.total += sign * (numerator << shift)
        self.squares += sign * ((numerator * numerator) << (2 * shift))

    def add_many(self, values: list[float]) -> None:
        """Put every value of ``values`` in, as :meth:`add` does one by one.

        >>> one, many = OutcomeSums(), OutcomeSums()
        >>> values = [0.0, 1.0, -2.5, 1e300, 5e-324, float("inf"), 0.1]
        >>> for x in values:
        ...     one.add(x, 1)
        >>> many.add_many(values)
        >>> one == many
        True
        """
        x = np.asarray(values, dtype=np.float64)
        self.n += len(x)
        self.ones += int(np.count_nonzero(x == 1.0))
        self.other += int(np.count_nonzero((x != 0.0) & (x != 1.0)))
        infinite = np.isinf(x)
        self.infinite += int(np.count_nonzero(infinite))
        total, squares = _exact_sums(x[~infinite])
        self.total += total
        self.squares += squares

    def mean(self) -> float:
        """The mean (``nan`` without outcomes); for 0/1 outcomes the count of ones over
        ``n``, else the exact mean rounded once.

        >>> OutcomeSums().mean()
        nan
        """
        if self.n == 0:
            return math.nan
        if self.other == 0:
            return self.ones / self.n
        return _divided(self.total, self.n << _SCALE)

    def var(self) -> float:
        """The sample variance (``ddof=1``; ``nan`` below two outcomes): for 0/1 outcomes
        ``k`` squared deviations ``(1 - mean)²`` and ``n - k`` of ``mean²`` over ``n - 1``,
        else the exact variance rounded once.

        >>> OutcomeSums(n=4, ones=1).var()
        0.25
        """
        n = self.n
        if n < 2:
            return math.nan
        if self.other == 0:
            mean = self.ones / n
            return (self.ones * (1.0 - mean) ** 2 + (n - self.ones) * mean**2) / (n - 1)
        return _divided(n * self.squares - self.total * self.total, (n * (n - 1)) << 2 * _SCALE)

    def to_list(self) -> list[Any]:
        """The sums as JSON values (the integers in hexadecimal).

        >>> OutcomeSums(1, 255, 4096, 0, 1, 0).to_list()
        [1, 'ff', '1000', 0, 1, 0]
        """
        return [self.n, format(self.total, "x"), format(self.squares, "x"), self.ones,
                self.other, self.infinite]  # fmt: skip

    @classmethod
    def from_list(cls, values: list[Any]) -> OutcomeSums:
        """The sums :meth:`to_list` wrote.

        >>> OutcomeSums.from_list(OutcomeSums(2, -5, 9, 1, 1, 0).to_list())
        OutcomeSums(n=2, total=-5, squares=9, ones=1, other=1, infinite=0)
        """
        n, total, squares, ones, other, infinite = values
        return cls(n, int(total, 16), int(squares, 16), ones, other, infinite)


# Values summed at once by _exact_sums: its 18-bit limbs' products summed in int64 stay
# below 2**63 for up to 2**26 of them.
_VALUES_PER_SUM = 1 << 20
_LIMB = (1 << 18) - 1


def _exact_sums(x: np.ndarray) -> tuple[int, int]:
    """The sum of the finite doubles ``x`` in units of 2⁻¹⁰⁷⁴ and the sum of their squares
    in units of 2⁻²¹⁴⁸, exactly, in numpy's integers: each value is a 53-bit integer
    mantissa times a power of two; the mantissas (and, cut in 18-bit limbs, the products
    making their squares) are summed per power, and the few powers joined in Python's."""
    total = squares = 0
    for start in range(0, len(x), _VALUES_PER_SUM):
        fraction, exponent = np.frexp(x[start : start + _VALUES_PER_SUM])
        mantissa = (fraction * 2.0**53).astype(np.int64)  # exact: |mantissa| < 2**53
        order = np.argsort(exponent, kind="stable")
        exponent, mantissa = exponent[order], mantissa[order]
        starts = np.flatnonzero(np.r_[True, exponent[1:] != exponent[:-1]])
        size = np.abs(mantissa)
        a, b, c = size >> 36, (size >> 18) & _LIMB, size & _LIMB
        sums = [
            np.add.reduceat(part, starts) if len(part) else part
            for part in (mantissa >> 26, mantissa & ((1 << 26) - 1), a * a, 2 * a * b,
                         2 * a * c + b * b, 2 * b * c, c * c)
        ]  # fmt: skip
        for k, first in enumerate(starts):
            high, low, p72, p54, p36, p18, p0 = (int(part[k]) for part in sums)
            shift = int(exponent[first]) - 53 + _SCALE
            group = (high << 26) + low
            square = (p72 << 72) + (p54 << 54) + (p36 << 36) + (p18 << 18) + p0
            # A subnormal's mantissa ends in zeros enough for a negative shift to be exact.
            total += group << shift if shift >= 0 else group >> -shift
            squares += square << 2 * shift if shift >= 0 else square >> -2 * shift
    return total, squares


def _divided(numerator: int, denominator: int) -> float:
    # int / int is correctly rounded in Python; beyond the largest double it overflows.
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf


@dataclass
class ArmSums:
    """A deployment's sums per arm: ``requests`` (variant → requests answered),
    ``outcomes`` (outcome → variant → :class:`OutcomeSums`) and ``not_number`` (newest
    labels, of any arm, that are not numbers)."""

    requests: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, OutcomeSums]] = field(
        default_factory=lambda: {name: {} for name in OUTCOMES}
    )
    not_number: int = 0

    def to_json(self) -> str:
        """The sums as JSON text.

        >>> ArmSums.from_json(ArmSums({"a": 3}).to_json()).requests
        {'a': 3}
        """
        return json.dumps(
            {
                "requests": self.requests,
                "outcomes": {
                    name: {variant: s.to_list() for variant, s in arms.items()}
                    for name, arms in self.outcomes.items()
                },
                "not_number": self.not_number,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ArmSums:
        """The sums :meth:`to_json` wrote.

        >>> ArmSums.from_json(ArmSums(not_number=2).to_json()).not_number
        2
        """
        document = json.loads(text)
        return cls(
            dict(document["requests"]),
            {
                name: {variant: OutcomeSums.from_list(v) for variant, v in arms.items()}
                for name, arms in document["outcomes"].items()
            },
            document["not_number"],
        )

    def _apply(self, variant: str, values: tuple[Any, Any, Any], sign: int) -> None:
        reward, label, correct = values
        if label is _NOT_NUMBER:
            self.not_number += sign
            label = None
        for name, value in (("reward", reward), ("label", label), ("correct", correct)):
            if value is not None:
                self.outcomes[name].setdefault(variant, OutcomeSums()).add(value, sign)


def _outcome_values(label_json: str | None, reward: float | None, output_json: str | None):
    """One request's outcomes (reward, label, correct) from its newest feedback and answer,
    each ``None`` where it has none, as the report reads them (:mod:`.ab_report`)."""
    if reward is not None and math.isnan(reward):
        reward = None
    if label_json is None:
        return reward, None, None
    label = json.loads(label_json)
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return reward, None, None
    number = float(label) if isinstance(label, bool | int | float) else _NOT_NUMBER
    output = None if output_json is None else json.loads(output_json)
    predictions = output.get("predictions") if isinstance(output, dict) else None
    guess = predictions[0] if isinstance(predictions, list) and predictions else None
    return reward, number, float(label == guess)


def _by_id_range(column: sa.ColumnElement, low: int, high: int) -> sa.ColumnElement:
    return sa.and_(column > low, column <= high)


def _named(table: sa.Table, deployment: str) -> sa.ColumnElement:
    # Compared as an expression, so that no index on ``deployment`` is chosen for a range
    # of ids: the range of the primary key is the short read.
    return table.c.deployment.concat("") == deployment


def _fold(
    connection: Connection,
    deployment: str,
    sums: ArmSums,
    low: tuple[int, int],
    high: tuple[int, int],
) -> None:
    """Bring ``sums``, of the rows up to ids ``low`` (feedback, event), to the rows up to
    ``high``."""
    (low_f, low_e), (high_f, high_e) = low, high
    if (low_f, low_e) == (high_f, high_e):
        return
    first = low == (0, 0)
    f, e = _feedback, _events
    feedback_where = [f.c.deployment == deployment, f.c.id <= high_f]
    event_where = [e.c.deployment == deployment, e.c.role == "primary", e.c.id <= high_e]
    if not first:
        # The requests whose newest feedback or newest answer may have changed.
        affected = sa.union(
            sa.select(f.c.request_id).where(
                _named(f, deployment), _by_id_range(f.c.id, low_f, high_f)
            ),
            sa.select(e.c.request_id).where(
                _named(e, deployment), e.c.role == "primary", _by_id_range(e.c.id, low_e, high_e)
            ),
        ).cte("affected")
        feedback_where.append(f.c.request_id.in_(sa.select(affected.c.request_id)))
        event_where[0] = _named(e, deployment)
        event_where.append(e.c.request_id.in_(sa.select(affected.c.request_id)))
    newest_feedback = (
        sa.select(
            f.c.request_id,
            sa.func.max(sa.case((f.c.id <= low_f, f.c.id))).label("before"),
            sa.func.max(f.c.id).label("after"),
        )
        .where(*feedback_where)
        .group_by(f.c.request_id)
        .subquery("newest_feedback")
    )
    newest_answer = (
        sa.select(
            e.c.request_id,
            sa.func.max(sa.case((e.c.id <= low_e, e.c.id))).label("before"),
            sa.func.max(e.c.id).label("after"),
        )
        .where(*event_where)
        .group_by(e.c.request_id)
        .subquery("newest_answer")
    )
    f1, e1 = f.alias("f1"), e.alias("e1")
    columns = [f1.c.label_json, f1.c.reward, e1.c.variant, _output_if_labelled(f1, e1)]
    joined = newest_feedback.join(
        newest_answer, newest_answer.c.request_id == newest_feedback.c.request_id
    )
    joined = joined.join(f1, f1.c.id == newest_feedback.c.after).join(
        e1, e1.c.id == newest_answer.c.after
    )
    if not first:
        f0, e0 = f.alias("f0"), e.alias("e0")
        columns += [
            newest_feedback.c.before,
            newest_feedback.c.after,
            newest_answer.c.before,
            newest_answer.c.after,
            f0.c.label_json,
            f0.c.reward,
            e0.c.variant,
            _output_if_labelled(f0, e0),
        ]
        joined = joined.outerjoin(f0, f0.c.id == newest_feedback.c.before).outerjoin(
            e0, e0.c.id == newest_answer.c.before
        )
    for rows in _driver_rows(connection, sa.select(*columns).select_from(joined)):
        # What comes in is summed a fetch at a time (vectorised); what goes out, row by row.
        added: dict[tuple[str, str], list[float]] = {}
        for row in rows:
            if not first:
                fb_before, fb_after, ev_before, ev_after = row[4:8]
                if fb_before is not None and ev_before is not None:
                    if (fb_before, ev_before) == (fb_after, ev_after):
                        continue
                    sums._apply(row[10], _outcome_values(row[8], row[9], row[11]), -1)
            reward, label, correct = _outcome_values(row[0], row[1], row[3])
            if label is _NOT_NUMBER:
                sums.not_number += 1
                label = None
            variant = row[2]
            for name, value in (("reward", reward), ("label", label), ("correct", correct)):
                if value is not None:
                    added.setdefault((name, variant), []).append(value)
        for (name, variant), values in added.items():
            sums.outcomes[name].setdefault(variant, OutcomeSums()).add_many(values)
    _fold_requests(connection, deployment, sums, low_e, high_e)


def _output_if_labelled(feedback: sa.FromClause, answer: sa.FromClause) -> sa.ColumnElement:
    # Only a label is compared with the answer's prediction.
    return sa.case((feedback.c.label_json.is_not(None), answer.c.output_json))


def _driver_rows(connection: Connection, query: sa.Select) -> Iterator[list[tuple]]:
    """The rows of ``query`` in fetches, as the driver gives them: at a million rows,
    making SQLAlchemy's rows of them costs more than the fold (on PostgreSQL a
    server-side cursor, so the rows are not all held in memory at once)."""
    compiled = query.compile(dialect=connection.dialect)
    parameters: Any = compiled.params
    if compiled.positional:
        parameters = tuple(parameters[name] for name in compiled.positiontup or ())
    raw = connection.connection.dbapi_connection
    assert raw is not None
    postgresql = connection.dialect.name == "postgresql"
    cursor = raw.cursor(name="ab_arm_sums_fold") if postgresql else raw.cursor()
    try:
        cursor.execute(compiled.string, parameters)
        while rows := cursor.fetchmany(_ROWS_PER_FETCH):
            yield rows
    finally:
        cursor.close()


def _fold_requests(
    connection: Connection, deployment: str, sums: ArmSums, low: int, high: int
) -> None:
    """Count the answers with ids past ``low`` up to ``high`` whose variant had not answered
    their request id before."""
    if low == high:
        return
    new, old = _events.alias("new"), _events.alias("old")
    where = [
        _named(new, deployment) if low else new.c.deployment == deployment,
        new.c.role == "primary",
        # A request whose model failed is recorded too, with its error: not an answer.
        new.c.error.is_(None),
        _by_id_range(new.c.id, low, high),
    ]
    if low:
        where.append(
            ~sa.exists().where(
                old.c.request_id == new.c.request_id,
                old.c.deployment == deployment,
                old.c.variant == new.c.variant,
                old.c.role == "primary",
                old.c.error.is_(None),
                old.c.id <= low,
            )
        )
    query = (
        sa.select(new.c.variant, sa.func.count(sa.distinct(new.c.request_id)))
        .where(*where)
        .group_by(new.c.variant)
    )
    for variant, count in connection.execute(query):
        sums.requests[variant] = sums.requests.get(variant, 0) + int(count)


@dataclass(frozen=True)
class _Probe:
    """PostgreSQL, read before the report's snapshot: the largest ids and the transactions
    (virtual ids) then holding a write lock on the feedback or the events."""

    ids: tuple[int, int]
    writing: frozenset[str]


def _largest_ids(connection: Connection) -> tuple[int, int]:
    return (
        connection.execute(sa.select(sa.func.max(_feedback.c.id))).scalar() or 0,
        connection.execute(sa.select(sa.func.max(_events.c.id))).scalar() or 0,
    )


def _probe(db: Database) -> _Probe:
    # READ COMMITTED: each statement sees what committed before it began, so the ids first,
    # then the locks (see the module).
    with db.engine.connect() as connection:
        ids = _largest_ids(connection)
        rows = connection.execute(
            sa.text(
                "SELECT DISTINCT virtualtransaction FROM pg_locks "
                "WHERE mode = 'RowExclusiveLock' AND relation IN "
                "('prediction_feedback'::regclass, 'prediction_events'::regclass) "
                "AND pid IS DISTINCT FROM pg_backend_pid()"
            )
        ).all()
        connection.rollback()
    return _Probe(ids, frozenset(vxid for (vxid,) in rows))


def _ended_writers(db: Database, deployment: str, also: list[str]) -> frozenset[str]:
    """PostgreSQL, before the report's snapshot: of the writers the kept pending watermark
    and ``also`` (the process's own, see :func:`arm_sums`) name, those gone from
    ``pg_locks`` now, read after the kept row (every transaction holds a lock on its own
    virtual id until it ends, and a virtual id is not used twice)."""
    with db.engine.connect() as connection:
        pending_json = connection.execute(
            sa.select(_sums.c.pending_json).where(_sums.c.deployment == deployment)
        ).scalar()
        named = [] if pending_json is None else list(json.loads(pending_json)["writing"])
        named = sorted(set(named) | set(also))
        live = set()
        if named:
            live = set(
                connection.execute(
                    sa.text(
                        "SELECT DISTINCT virtualtransaction FROM pg_locks "
                        "WHERE virtualtransaction = ANY(:named)"
                    ),
                    {"named": named},
                ).scalars()
            )
        connection.rollback()
    return frozenset(named) - live


def _later(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return (max(a[0], b[0]), max(a[1], b[1]))


@dataclass(frozen=True)
class _Start:
    """Sums as of a final watermark, as the kept row holds them: the count of retires they
    were made under, the watermark, the pending watermark (or ``None``) and the sums."""

    retires: int
    low: tuple[int, int]
    pending: dict[str, Any] | None
    sums_json: str


# Per store (the Database object, so that two in-memory SQLite stores never meet), per
# deployment, the newest sums this process computed.
_in_process: weakref.WeakKeyDictionary[Database, OrderedDict[str, _Start]] = (
    weakref.WeakKeyDictionary()
)
_in_process_lock = threading.Lock()
# Per store, per deployment: the store's time before which no report tries to keep sums.
_keep_retry: weakref.WeakKeyDictionary[Database, dict[str, int]] = weakref.WeakKeyDictionary()


def _may_keep(db: Database, deployment: str) -> bool:
    with _in_process_lock:
        return db.clock() >= _keep_retry.get(db, {}).get(deployment, 0)


def _kept_or_not(db: Database, deployment: str, kept: bool) -> None:
    with _in_process_lock:
        retry = _keep_retry.setdefault(db, {})
        retry.pop(deployment, None)
        if not kept:
            retry[deployment] = db.clock() + KEEP_RETRY_AFTER_MS
            while len(retry) > SUMS_KEPT_IN_PROCESS:
                retry.pop(next(iter(retry)))


def _remembered(db: Database, deployment: str) -> _Start | None:
    with _in_process_lock:
        kept = _in_process.get(db)
        if kept is None or deployment not in kept:
            return None
        kept.move_to_end(deployment)
        return kept[deployment]


def _remember(db: Database, deployment: str, start: _Start) -> None:
    with _in_process_lock:
        kept = _in_process.setdefault(db, OrderedDict())
        old = kept.get(deployment)
        # Another thread's report may have finished first with newer sums: those stay.
        if (
            old is None
            or start.retires > old.retires
            or (start.retires == old.retires and _later(old.low, start.low) != old.low)
        ):
            kept[deployment] = start
        kept.move_to_end(deployment)
        while len(kept) > SUMS_KEPT_IN_PROCESS:
            kept.popitem(last=False)


def forget_kept_sums(db: Database) -> None:
    """Drop the sums this process keeps for ``db``'s deployments (after rows were taken out
    of the store other than by a retire); the next report starts from the kept row.

    >>> forget_kept_sums(Database("sqlite://"))
    """
    with _in_process_lock:
        _in_process.pop(db, None)
        _keep_retry.pop(db, None)


def _newer_start(stored: Any, generation: int, remembered: _Start | None) -> _Start | None:
    """Of the kept row and the sums this process remembers, the one with the later
    watermark made under the current count of retires (the row where they tie)."""
    row = None
    if stored is not None and stored.retires == generation:
        pending = None if stored.pending_json is None else json.loads(stored.pending_json)
        row = _Start(generation, (stored.feedback_id, stored.event_id), pending, stored.sums_json)
    if remembered is None or remembered.retires != generation:
        return row
    if row is None:
        return remembered
    later = remembered.low != row.low and _later(remembered.low, row.low) == remembered.low
    return remembered if later else row


def arm_sums(db: Database, deployment: str) -> ArmSums:
    """The sums of ``deployment``'s feedback and answers per arm, as the report's snapshot
    sees them; the final part of them kept for the next report (see the module). A retired
    deployment's history (a name with a ``/``) receives its rows with their old ids at the
    retire, after any report of it: its sums are made from every row and not kept.

    >>> arm_sums(Database("sqlite://"), "api/retired-1").requests
    {}
    """
    if "/" in deployment:
        sums = ArmSums()
        with db.read() as connection:
            _fold(connection, deployment, sums, (0, 0), _largest_ids(connection))
        return sums
    remembered = _remembered(db, deployment)
    probe = ended = None
    if db.dialect == "postgresql":
        also = (
            []
            if remembered is None or remembered.pending is None
            else remembered.pending["writing"]
        )
        probe, ended = _probe(db), _ended_writers(db, deployment, also)
    with db.read() as connection:
        generation = retires(connection, deployment)
        stored = connection.execute(
            sa.select(_sums).where(_sums.c.deployment == deployment)
        ).first()
        top = _largest_ids(connection)
        start = _newer_start(stored, generation, remembered)
        if start is not None:
            sums, low, pending = ArmSums.from_json(start.sums_json), start.low, start.pending
        else:
            sums, low, pending = ArmSums(), (0, 0), None
        if probe is None:
            final, pending = top, None
        else:
            final = low
            assert ended is not None
            # Final only where each writer it names was seen gone before this snapshot, by
            # this report itself: another report's probe may be newer than this one's.
            if pending is not None and set(pending["writing"]) <= ended:
                final, pending = _later(final, tuple(pending["ids"])), None
            if not probe.writing:
                final, pending = _later(final, probe.ids), None
            elif pending is None:
                pending = {"ids": list(probe.ids), "writing": sorted(probe.writing)}
        _fold(connection, deployment, sums, low, final)
        text = sums.to_json()
        # The tail: rows this snapshot sees past the final watermark, for this report only.
        _fold(connection, deployment, sums, final, _later(final, top))
    _remember(db, deployment, _Start(generation, final, pending, text))
    pending_text = None if pending is None else json.dumps(pending, separators=(",", ":"))
    kept = stored is not None and stored.retires == generation
    as_kept = None if not kept else (stored.feedback_id, stored.event_id, stored.pending_json)
    if as_kept != (*final, pending_text) and _may_keep(db, deployment):
        kept_now = _keep(db, deployment, stored, generation, final, pending_text, text)
        _kept_or_not(db, deployment, kept_now)
    return sums


def _keep(
    db: Database,
    deployment: str,
    stored: Any,
    generation: int,
    final: tuple[int, int],
    pending: str | None,
    text: str,
) -> bool:
    """Write the sums as of ``final`` unless another report wrote them since ``stored``;
    skipped where the write cannot be made at once (see the module): ``False`` then."""
    values = {
        "retires": generation,
        "feedback_id": final[0],
        "event_id": final[1],
        "pending_json": pending,
        "sums_json": text,
    }
    try:
        with db.write(lock_wait_ms=KEEP_LOCK_WAIT_MS) as connection:
            values["updated_ms"] = clock_of(connection)
            if stored is None:
                connection.execute(
                    _sums.insert().values(deployment=deployment, version=1, **values)
                )
            else:
                connection.execute(
                    _sums.update()
                    .where(_sums.c.deployment == deployment, _sums.c.version == stored.version)
                    .values(version=stored.version + 1, **values)
                )
    except IntegrityError:
        pass  # another report kept its sums first: this one's are no newer
    except DBAPIError as error:
        if not _cannot_write(error):
            raise
        _log.info("A/B sums of %s not kept: %s", deployment, error.orig)
        return False
    return True


# SQLite: the write lock is held by another connection, or the file is read-only.
_SQLITE_CANNOT_WRITE = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY"}
# PostgreSQL: lock_not_available, insufficient_privilege, read_only_sql_transaction (a
# read-only role's default or a standby), query_canceled.
_POSTGRESQL_CANNOT_WRITE = {"55P03", "42501", "25006", "57014"}


def _cannot_write(error: DBAPIError) -> bool:
    """Whether ``error`` says the sums could not be written now (rather than a defect)."""
    name = getattr(error.orig, "sqlite_errorname", None)
    if name is not None:  # extended codes too (SQLITE_BUSY_SNAPSHOT, SQLITE_READONLY_DBMOVED)
        return any(name == code or name.startswith(code + "_") for code in _SQLITE_CANNOT_WRITE)
    return getattr(error.orig, "sqlstate", None) in _POSTGRESQL_CANNOT_WRITE
