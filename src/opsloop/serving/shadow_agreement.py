"""How each shadow variant of a deployment did beside its primary over a time window: the
copies it was sent, the answers it recorded (and the failed ones), the copies with no
answer recorded, and how often its predictions equalled the primary's on the same request.

The window selects the primary's answers (``since_ms`` <= time < ``until_ms``); each of
them was copied to every shadow whose sample holds its request id (a shadow's
``shadow_sample``, 1 unless set: :mod:`.shadow_sampling`, whose rule depends on the id
alone, so it tells here which requests were sampled out). A shadow's answer counts for its
request whenever it was recorded (shadows answer off the request path, a little later),
also for a request outside the sample (the sample was larger then). A copy with no shadow
answer was dropped by the shadow's full queue, or is still waiting (the data plane's
``/metrics`` counts the drops exactly). Agreement compares the ``predictions`` of the two
recorded outputs and rests on the ``answered`` copies: a report states that number beside
it. It is counted twice: per request (``agreed``, ``agreement``: the whole list equal, for
a request of several records) and per record (``records``, ``records_agreed``,
``record_agreement``: each record's prediction equal to the primary's), the unit a canary's
disagreement gate counts in (a request of 100 records that differ on 1 is one request not
agreed, and 99 records of 100 agreed).

>>> from opsloop.store import Database
>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> db = Database("sqlite://")
>>> def answer(variant, role, request, label, error=None):
...     output = None if error else {"predictions": [label]}
...     return PredictionEvent("api", variant, role, "m", 1, request, None, [], output,
...                            error, 1.0, 10)
>>> StoreEventSink(db).write([answer("a", "primary", "r1", 1), answer("s", "shadow", "r1", 1),
...     answer("a", "primary", "r2", 0), answer("s", "shadow", "r2", 1),
...     answer("a", "primary", "r3", 0), answer("s", "shadow", "r3", None, error="boom"),
...     answer("a", "primary", "r4", 1)])
>>> shadow = shadow_agreement(db, "api", since_ms=0, until_ms=100).variants[0]
>>> shadow.copies, shadow.answered, shadow.failed, shadow.unanswered, shadow.agreed
(4, 2, 1, 1, 1)
>>> shadow.agreement, shadow.records, shadow.records_agreed
(0.5, 2, 1)

At ``shadow_sample`` 0.3, r4 (whose id hashes to 0.31 of the range) was sampled out, so it
is not an unanswered copy:

>>> shadow = shadow_agreement(db, "api", since_ms=0, until_ms=100, samples={"s": 0.3})
>>> shadow = shadow.variants[0]
>>> shadow.copies, shadow.sampled_out, shadow.unanswered, shadow.agreement
(3, 1, 0, 0.5)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.serving.shadow_sampling import in_shadow_sample
from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.tracking.limits import checked_key

_events = tables.prediction_events
#: The most primary answers one report reads (the newest of its window).
MAX_REQUESTS = 200_000


@dataclasses.dataclass(frozen=True)
class ShadowVariantAgreement:
    """One shadow over the window: ``copies`` sent (the primary's answers in its sample),
    ``answered`` without an error, ``failed`` with one, ``unanswered`` (dropped or still
    waiting), and of the answered copies ``agreed`` with the primary's predictions (the
    whole request's); ``agreement`` is ``agreed / answered`` (``None`` when it answered
    none). ``sample`` is the shadow's ``shadow_sample`` the report applied, and
    ``sampled_out`` the primary's answers whose copy it left out (``copies + sampled_out``
    is the primary's answers). Per record: ``records`` the primary's records in the
    answered copies, ``records_agreed`` those whose prediction the shadow's equals at the
    same position (a shadow answer with fewer records, or none, agrees on none of the
    missing ones), ``record_agreement`` their ratio (``None`` without records)."""

    variant: str
    copies: int
    answered: int
    failed: int
    unanswered: int
    agreed: int
    agreement: float | None
    sample: float = 1.0
    sampled_out: int = 0
    records: int = 0
    records_agreed: int = 0
    record_agreement: float | None = None


@dataclasses.dataclass(frozen=True)
class ShadowAgreement:
    """A deployment's shadows from ``since_ms`` to ``until_ms``: one
    :class:`ShadowVariantAgreement` each (by name), the primary ``requests`` read, and
    whether they were all of the window's (``complete``; else the newest
    :data:`MAX_REQUESTS`).

    >>> s = ShadowAgreement("api", 0, 10, 1, [ShadowVariantAgreement("s", 1, 1, 0, 0, 1, 1.0)],
    ...                     True)
    >>> ShadowAgreement.from_dict(s.to_dict()) == s
    True
    """

    deployment: str
    since_ms: int
    until_ms: int
    requests: int
    variants: list[ShadowVariantAgreement]
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping) -> ShadowAgreement:
        """The report :meth:`to_dict` wrote."""
        fields = {name: document[name] for name in cls.__dataclass_fields__}
        fields["variants"] = [ShadowVariantAgreement(**v) for v in document["variants"]]
        return cls(**fields)


def _predictions(output_json: str | None) -> Any:
    if output_json is None:
        return None
    output = json.loads(output_json)
    return output.get("predictions") if isinstance(output, dict) else None


def shadow_agreement(
    db: Database,
    deployment: str,
    *,
    since_ms: int,
    until_ms: int,
    shadows: tuple[str, ...] = (),
    samples: Mapping[str, float] | None = None,
    max_requests: int = MAX_REQUESTS,
) -> ShadowAgreement:
    """Each shadow of ``deployment`` beside its primary over the window (see the module):
    the shadows that recorded an answer to the window's requests, and those named in
    ``shadows`` (the deployment's now) even when they recorded none. ``samples`` gives a
    shadow's ``shadow_sample`` (1 for one not named).

    >>> shadow_agreement(Database("sqlite://"), "api", since_ms=5, until_ms=5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: until_ms: must be after since_ms (5), got 5
    """
    checked_key("deployment", deployment)
    for name, value in (("since_ms", since_ms), ("until_ms", until_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(
                f"{name}: must be milliseconds since the epoch, got {value!r}"
            )
    if until_ms <= since_ms:
        raise InvalidArgumentError(f"until_ms: must be after since_ms ({since_ms}), got {until_ms}")
    primary = (
        sa.select(_events.c.request_id, _events.c.output_json)
        .where(
            _events.c.deployment == deployment,
            _events.c.role == "primary",
            _events.c.at_ms >= since_ms,
            _events.c.at_ms < until_ms,
        )
        .order_by(_events.c.at_ms.desc())
        .limit(max_requests + 1)
    )
    with db.read() as connection:
        rows = connection.execute(primary).all()
        complete = len(rows) <= max_requests
        answers = {request: _predictions(output) for request, output in rows[:max_requests]}
        read = primary.with_only_columns(_events.c.request_id).limit(max_requests)
        # Matched by request id, not by time: a shadow answers off the request path, later.
        shadow_rows = connection.execute(
            sa.select(
                _events.c.variant, _events.c.request_id, _events.c.output_json, _events.c.error
            )
            .where(
                _events.c.deployment == deployment,
                _events.c.role == "shadow",
                _events.c.request_id.in_(read.scalar_subquery()),
            )
            .order_by(_events.c.id)
        ).all()
    seen: dict[str, dict[str, tuple[Any, bool]]] = {name: {} for name in shadows}
    for variant, request, output, error in shadow_rows:
        if request in answers:
            # The first recorded answer of a copy stands (a copy is answered once).
            seen.setdefault(variant, {}).setdefault(
                request, (_predictions(output), error is not None)
            )
    variants = []
    for variant in sorted(seen):
        recorded = seen[variant]
        fraction = (samples or {}).get(variant, 1.0)
        sampled_out = sum(
            1
            for request in answers
            if request not in recorded and not in_shadow_sample(request, fraction)
        )
        copies = len(answers) - sampled_out
        failed = agreed = records = records_agreed = 0
        for request, (predictions, error) in recorded.items():  # one pass over the answers
            if error:
                failed += 1
                continue
            primary = answers[request]
            agreed += predictions is not None and predictions == primary
            if not isinstance(primary, list):
                continue
            records += len(primary)
            if isinstance(predictions, list):
                records_agreed += sum(
                    1 for p, q in zip(primary, predictions, strict=False) if p == q
                )
        answered = len(recorded) - failed
        variants.append(
            ShadowVariantAgreement(
                variant,
                copies,
                answered,
                failed,
                copies - len(recorded),
                agreed,
                agreed / answered if answered else None,
                fraction,
                sampled_out,
                records,
                records_agreed,
                records_agreed / records if records else None,
            )
        )
    return ShadowAgreement(deployment, since_ms, until_ms, len(answers), variants, complete)


__all__ = ["ShadowAgreement", "ShadowVariantAgreement", "shadow_agreement"]
