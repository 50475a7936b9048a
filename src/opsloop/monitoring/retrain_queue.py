"""Retraining handed to a follower: a ``retrain`` action fired where no user code may run
(a server's monitoring) becomes a request in a queue, and a process the user starts and
trusts (:mod:`.retrain_follower`, ``opsloop monitor retrain --follow``) claims it, runs
their training function on their machine, and reports what happened.

**A request** keeps what the local action would have used: the ``rule``, the ``variant``
whose answers to learn from, the policy's evidence (its ``change_point_ms``, the window
that fired), the data window ``[start_ms, end_ms)`` and the policy's options (``train``,
``reference_share``, ``holdout``, ``min_rows``, the data-window policy ``window_policy`` and its
``neighbours``). Its ``state`` moves from ``queued`` to
``claimed`` to the outcome's status (``done``, ``failed``, ``blocked``, ``refused``).
Queueing is audited as the action's outcome (``policy_retrain``, status ``queued``).

**Claims are exclusive.** :func:`claim_retrain` takes the oldest queued request whose
``train`` is the follower's, by a compare-and-swap of its stored document (an update that
matches only the document it read), so of two followers claiming at once one wins and the
other takes the next request or none, on SQLite as on PostgreSQL (where the update of a
row another transaction changed is judged again on the row it committed). A claim holds
for ``lease_s`` seconds: a request claimed by a follower that stopped is claimed again once
its lease runs out. The claim answers with a ``claim`` token that the follower shows to
read the rows (:func:`retrain_rows`) and to report (:func:`report_retrain`); the claim is
audited (``retrain_window``: the window's range, row counts and sha256, as the local
action's). The rows are read page by page from the window the claim built (:mod:`.claimed_windows`).

**The report** is audited as the local action's outcome is (``policy_retrain``, with an
alert when it is not ``done``), under the reporting user's name.

>>> from opsloop.monitoring.policy import Policy
>>> rule = Policy.parse("error_rate > 0.2 -> retrain(train=pkg.fit:train)")
>>> evidence = {"signal": "error_rate", "windows": [], "change_point_ms": 0,
...             "start_ms": 0, "window_ms": 3_600_000}
>>> queue_retrain(db, "api", "default", rule, evidence, actor="ana")["status"]
'queued'
>>> [(r["state"], r["train"], r["end_ms"]) for r in retrain_requests(db, "api")]
[('queued', 'pkg.fit:train', 3600000)]
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import sqlalchemy as sa

from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError
from opsloop.monitoring.action_outcome import record_outcome
from opsloop.monitoring.claimed_windows import forget_window, keep_window, kept_window
from opsloop.monitoring.monitor_state import lock_monitor, put_state
from opsloop.monitoring.training_window import TrainingWindow, training_window, window_start
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.store import tables
from opsloop.store.database import Database, clock_of

#: The name prefix of a request's state row (``retrain_request:ID``).
PREFIX = "retrain_request:"
#: The outcomes a follower reports, a finished request's states.
FINISHED = ("done", "failed", "blocked", "refused")
#: The states a request passes through; ``cancelled``: its deployment was retired before
#: it finished (:mod:`.retired_monitoring`).
STATES = ("queued", "claimed", *FINISHED, "cancelled")
#: How long a claim holds by default, in seconds.
DEFAULT_LEASE_S = 3600
#: The most rows :func:`retrain_rows` gives at a time.
MAX_ROWS_PER_PAGE = 10_000
# What a listing never shows: the claim's token is its holder's.
_PRIVATE = ("claim",)

_state = tables.monitoring_state


def _public(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in _PRIVATE}


def queue_retrain(
    db: Database, deployment: str, variant: str, rule: Any, evidence: dict, *, actor: str
) -> dict[str, Any]:
    """Queue ``rule``'s retraining for a follower; the action's outcome (``queued``, the
    ``request_id``)."""
    now = db.clock()
    with db.write() as connection:
        # Numbered per deployment under its monitor lock, so that evaluators queueing at
        # once never take the same number.
        lock_monitor(connection, deployment)
        request_id = 1 + max((r["id"] for _, r in _stored(connection, deployment)), default=0)
        request = _new_request(request_id, deployment, variant, rule, evidence, now, actor)
        put_state(connection, deployment, f"{PREFIX}{request_id}", request)
    return {
        "status": "queued",
        "reason": f"retrain request {request_id} queued for a follower that runs "
        f"{request['train']}",
        "request_id": request_id,
    }


def _new_request(request_id, deployment, variant, rule, evidence, now, actor) -> dict[str, Any]:
    return {
        "id": request_id,
        "deployment": deployment,
        "variant": variant,
        "rule": rule.text,
        "train": rule.option("train"),
        "reference_share": rule.option("reference_share"),
        "holdout": rule.option("holdout"),
        "min_rows": rule.option("min_rows"),
        "window_policy": rule.option("window"),
        "neighbours": rule.option("neighbours"),
        "tolerance": rule.option("tolerance"),
        "start_ms": window_start(rule.option("window"), evidence, rule.option("since")),
        "end_ms": int(evidence["start_ms"]) + int(evidence["window_ms"]),
        "evidence": json.loads(json.dumps(evidence, default=str)),
        "state": "queued",
        "queued_ms": now,
        "queued_by": actor,
        "claimed_by": None,
        "follower": None,
        "claimed_ms": None,
        "expires_ms": None,
        "claims": 0,
        "label": None,
        "finished_ms": None,
        "outcome": None,
    }


def _stored(connection, deployment: str) -> list[tuple[str, dict[str, Any]]]:
    rows = connection.execute(
        sa.select(_state.c.state_json).where(
            _state.c.deployment == deployment, _state.c.name.like(PREFIX + "%")
        )
    ).scalars()
    found = [(text, json.loads(text)) for text in rows]
    return sorted(found, key=lambda pair: (pair[1]["queued_ms"], pair[1]["id"]))


def retrain_requests(
    db: Database, deployment: str, *, state: str | None = None
) -> list[dict[str, Any]]:
    """``deployment``'s retrain requests, oldest first (those in ``state``, or all).

    >>> retrain_requests(db, "api", state="waiting")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: state: one of queued, claimed, done, failed, blocked, refused, cancelled, got 'waiting'
    """  # noqa: E501 - a doctest's expected output is one line
    if state is not None and state not in STATES:
        raise InvalidArgumentError(f"state: one of {', '.join(STATES)}, got {state!r}")
    with db.read() as connection:
        found = _stored(connection, deployment)
    return [_public(r) for _, r in found if state is None or r["state"] == state]


def _swap(connection, deployment: str, old_text: str, new: dict[str, Any]) -> bool:
    """Replace the stored request ``old_text`` by ``new``, only if it is still stored as
    read: whether it was."""
    text = json.dumps(new, separators=(",", ":"))
    updated = connection.execute(
        _state.update()
        .where(
            _state.c.deployment == deployment,
            _state.c.name == f"{PREFIX}{new['id']}",
            _state.c.state_json == old_text,
        )
        .values(state_json=text, updated_ms=clock_of(connection))
    )
    return updated.rowcount == 1


def _window(db: Database, request: dict[str, Any], label: str) -> TrainingWindow:
    return training_window(
        db,
        request["deployment"],
        start_ms=request["start_ms"],
        end_ms=request["end_ms"],
        label=label,
        variant=request["variant"],
        reference_share=request["reference_share"],
        # Requests queued before windows had policies have none: the change point's.
        policy=request.get("window_policy", "since_change_point"),
        keep_correct=request.get("window_policy") == "keep_correct",
        neighbours=request.get("neighbours", 5),
        tolerance=request.get("tolerance", 3.0),
        # The windows the alert was evaluated by: their labels are judged window by window.
        window_ms=(request.get("evidence") or {}).get("window_ms"),
    )


def claim_retrain(
    db: Database,
    deployment: str,
    *,
    train: str,
    label: str,
    follower: str = "follower",
    lease_s: int = DEFAULT_LEASE_S,
    actor: str,
) -> dict[str, Any] | None:
    """Claim the oldest request of ``deployment`` to retrain with ``train`` that is queued,
    or claimed under a lease that ran out; ``None`` when there is none. The request as
    claimed, with its ``claim`` token and its ``window`` (the rows' range, counts and
    sha256, with the gate's ``label`` column); see the module docstring."""
    if isinstance(lease_s, bool) or not isinstance(lease_s, int) or lease_s < 1:
        raise InvalidArgumentError(
            f"lease_s: a whole number of seconds, at least 1, got {lease_s!r}"
        )
    now = db.clock()
    with db.read() as connection:
        candidates = _stored(connection, deployment)
    for old_text, request in candidates:
        free = request["state"] == "queued" or (
            request["state"] == "claimed" and request["expires_ms"] <= now
        )
        if not free or request["train"] != train:
            continue
        # Read before the claim, so a label that is also an input refuses the call and
        # leaves the request queued.
        window = _window(db, request, label)
        claimed = {
            **request,
            "state": "claimed",
            "claim": secrets.token_hex(16),
            "claimed_by": actor,
            "follower": follower,
            "claimed_ms": now,
            "expires_ms": now + 1000 * lease_s,
            "claims": request["claims"] + 1,
            "label": label,
        }
        held = max(1, round(request["holdout"] * window.new_rows)) if window.new_rows else 0
        counts = {"train_rows": len(window.frame) - held, "gate_rows": held}
        with db.write() as connection:
            if not _swap(connection, deployment, old_text, claimed):
                continue  # another follower claimed it first
            lock_audit_log(connection)
            append_audit(
                connection,
                actor,
                "retrain_window",
                f"monitor:{deployment}",
                f"retrain request {request['id']} claimed by {follower!r} for "
                f"{lease_s} s: policy {request['rule']!r} retrains on the data since the "
                "change point",
                None,
                {**window.to_dict(), **counts, "request_id": request["id"]},
            )
        keep_window(db.uri, deployment, request["id"], claimed["claim"], window)
        return {**claimed, "window": window.to_dict()}
    return None


def _held(db: Database, deployment: str, request_id: int, claim: str):
    """The stored text and document of a request claimed under ``claim``."""
    with db.read() as connection:
        text = connection.execute(
            sa.select(_state.c.state_json).where(
                _state.c.deployment == deployment, _state.c.name == f"{PREFIX}{request_id}"
            )
        ).scalar()
    request = None if text is None else json.loads(text)
    if request is None:
        raise NotFoundError(f"request_id: {deployment!r} has no retrain request {request_id}")
    if request["state"] != "claimed" or not secrets.compare_digest(
        str(request.get("claim")), claim
    ):
        raise ConflictError(
            f"claim: retrain request {request_id} is {request['state']}, and not under this "
            "claim; claim it first"
        )
    return text, request


def retrain_rows(
    db: Database,
    deployment: str,
    request_id: int,
    *,
    claim: str,
    offset: int = 0,
    limit: int = MAX_ROWS_PER_PAGE,
) -> dict[str, Any]:
    """The training rows of a claimed request, ``limit`` from ``offset`` (as records, the
    label in the column the claim named; missing values as ``None``), with the whole
    window's ``window`` (range, counts, sha256) and ``total`` rows. The window is built
    once a claim in this process (:mod:`.claimed_windows`), not once a page."""
    _, request = _held(db, deployment, request_id, claim)
    window = kept_window(db.uri, deployment, request_id, claim)
    if window is None:  # claimed in another process, or let go to make room
        window = _window(db, request, request["label"])
        keep_window(db.uri, deployment, request_id, claim, window)
    page = window.frame.iloc[offset : offset + limit]
    rows = page.astype(object).where(page.notna(), None).to_dict("records")
    return {
        "request_id": request_id,
        "window": window.to_dict(),
        "columns": [str(c) for c in window.frame.columns],
        "offset": offset,
        "total": len(window.frame),
        "rows": rows,
    }


def report_retrain(
    db: Database,
    deployment: str,
    request_id: int,
    *,
    claim: str,
    status: str,
    reason: str,
    details: dict[str, Any] | None = None,
    actor: str,
) -> dict[str, Any]:
    """Finish a claimed request with its outcome (``status``, ``reason`` and what the
    retraining reports in ``details``: the version, the run, the gate's report); audited as
    the action's outcome. The request as finished."""
    if status not in FINISHED:
        raise InvalidArgumentError(f"status: one of {', '.join(FINISHED)}, got {status!r}")
    text, request = _held(db, deployment, request_id, claim)
    outcome = {
        "action": "retrain",
        "rule": request["rule"],
        **(details or {}),
        "status": status,
        "reason": reason,
        "request_id": request_id,
    }
    outcome = json.loads(json.dumps(outcome, default=str))
    finished = {**request, "state": status, "finished_ms": db.clock(), "outcome": outcome}
    finished.pop("claim")
    with db.write() as connection:
        if not _swap(connection, deployment, text, finished):
            raise ConflictError(
                f"claim: retrain request {request_id} changed while it was reported"
            )
    forget_window(db.uri, deployment, request_id, claim)
    record_outcome(
        db, actor, deployment, request["variant"], request["rule"], request["evidence"], outcome
    )
    return _public(finished)
