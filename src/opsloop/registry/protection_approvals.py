"""Lowering or removing a protection is itself a protected change.

An admin protects an alias (:meth:`~opsloop.registry.ModelRegistry.protect_alias`) or a
deployment (:meth:`~opsloop.serving.Deployments.protect`) so that no one person can change
what it serves. Were removing that protection an admin's own act, one admin could remove it,
change what is served, and put it back: four eyes in name only. So a change of protection
that **loosens** it (:func:`loosens`: fewer approvals, no gate where one was required, any
gate where a named one was, or another gate) needs approvals of exactly that protection by
distinct approvers other than the admin who applies it: as many as the protection requires
now, and at least one (a protection by a release gate alone needs one other person too).
Each approval names the change it approves (:func:`protection_digest`: the protection in
force when it was given and the one asked for), so an approval of "lower to one approval"
never lets "remove it" through, nor does an approval given before the protection was
tightened let the tighter one be lowered as far: the approver saw a smaller loosening. And
any change of the protection uses up every pending approval of changing it
(:func:`use_protection_approvals`): an approval never outlives the protection it was
given against, even where the protection later returns to what it was. Approvals of
approvers disabled or demoted since do not count
(:mod:`.approver_standing`), nor does the applier's own (:mod:`.separate_approvers`).
Applying the change uses up the approvals of it, and its ``protect`` or ``protect_alias``
audit entry names the approvers that counted (``approved_by``).

While no users are registered (embedded use, where nobody could approve), a protection
changes as any other change does there, with no approvals.

Tightening a protection (more approvals, a gate where none was, a named gate where any
would do) or setting one where none was needs no approval: it can only make a change harder.

These functions run inside the caller's write transaction.

>>> loosens((2, False), (0, False)), loosens((2, False), (3, True)), loosens((0, False), (1, False))
(True, False, False)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, ConflictError
from opsloop.registry.approver_standing import lapsed_approvers
from opsloop.registry.separate_approvers import approval_shortfall, counted_approvers
from opsloop.registry.users import PermissionDenied
from opsloop.store import tables
from opsloop.store.database import clock_of

_approvals = tables.protection_approvals

#: A protection: the approvals a change needs, and the release gate (``False``: none,
#: ``True``: any, else a gate's name or sha256).
Protection = tuple[int, bool | str]


def _gate_loosens(before: bool | str, after: bool | str) -> bool:
    if before is False or after == before:
        return False
    # Any gate where a named one was, none at all, or another named gate.
    return not (before is True and isinstance(after, str))


def loosens(before: Protection, after: Protection) -> bool:
    """Whether changing protection ``before`` to ``after`` makes a change easier: fewer
    approvals, or a weaker or other release gate.

    >>> loosens((1, "credit"), (1, True)), loosens((1, "credit"), (1, "smoke"))
    (True, True)
    >>> loosens((1, True), (1, "credit")), loosens((0, "credit"), (0, "credit"))
    (False, False)
    """
    return after[0] < before[0] or _gate_loosens(before[1], after[1])


def described(protection: Protection) -> str:
    """A protection in words.

    >>> described((2, "credit")), described((0, False)), described((1, True))
    ("2 approval(s) and the release gate 'credit'", 'no protection', '1 approval(s) and any release gate')
    """  # noqa: E501 - a doctest's expected output is one line
    required, gate = protection
    if not required and gate is False:
        return "no protection"
    words = f"{required} approval(s)"
    if gate is True:
        words += " and any release gate"
    elif gate is not False:
        words += f" and the release gate {gate!r}"
    return words


def gate_flags(gate: bool | str) -> str:
    """The command line's options asking for the release gate ``gate``, for a hint.

    >>> gate_flags(False), gate_flags(True), gate_flags("credit")
    ('', ' --require-any-gate', ' --require-gate credit')
    """
    if gate is False:
        return ""
    return " --require-any-gate" if gate is True else f" --require-gate {gate}"


def protection_digest(current: Protection, asked: Protection) -> str:
    """The sha256 naming the change of protection an approval approves: from ``current``
    (in force when it is approved) to ``asked``.

    >>> protection_digest((1, False), (0, False)) == protection_digest((1, False), (0, False))
    True
    >>> protection_digest((1, False), (0, False)) == protection_digest((1, True), (0, False))
    False
    """
    document = {
        "from": {"required_approvals": current[0], "require_gate": current[1]},
        "to": {"required_approvals": asked[0], "require_gate": asked[1]},
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _pending(entity: str, digest: str) -> tuple:
    return (
        _approvals.c.entity == entity,
        _approvals.c.digest == digest,
        _approvals.c.consumed.is_(False),
    )


def _void_pending(connection: Connection, entity: str, kept: str) -> None:
    """Use up the pending approvals of changing the protection of ``entity``, except those
    of the change ``kept`` (the one being applied, which counts them)."""
    connection.execute(
        _approvals.update()
        .where(
            _approvals.c.entity == entity,
            _approvals.c.consumed.is_(False),
            _approvals.c.digest != kept,
        )
        .values(consumed=True)
    )


def record_protection_approval(
    connection: Connection,
    entity: str,
    what: str,
    current: Protection,
    asked: Protection,
    approver: str,
    comment: str | None,
) -> int:
    """Record ``approver``'s approval of changing the protection of ``entity`` (``what``
    names it in words) from ``current`` to ``asked``; return how many distinct approvers
    approved that change so far. Only a change that loosens the protection needs one: any
    other is refused (:class:`~opsloop.errors.ConflictError`), as is a second approval by the
    same person (:class:`~opsloop.errors.AlreadyDoneError`).

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     record_protection_approval(c, "deployment:api", "deployment 'api'", (2, False),
    ...                                (0, False), "ana", None)
    1
    """
    if not loosens(current, asked):
        raise ConflictError(
            f"{what} has {described(current)}; {described(asked)} does not lower it, and only "
            "lowering or removing a protection needs approval: nothing to approve"
        )
    digest = protection_digest(current, asked)
    already = connection.execute(
        sa.select(_approvals.c.id).where(
            *_pending(entity, digest), _approvals.c.approver == approver
        )
    ).first()
    if already is not None:
        raise AlreadyDoneError(
            f"{approver!r} already approved changing the protection of {what} to {described(asked)}"
        )
    connection.execute(
        _approvals.insert().values(
            entity=entity,
            digest=digest,
            approver=approver,
            comment=comment,
            created_ms=clock_of(connection),
            consumed=False,
        )
    )
    return connection.execute(
        sa.select(sa.func.count(sa.distinct(_approvals.c.approver))).where(
            *_pending(entity, digest)
        )
    ).scalar_one()


def use_protection_approvals(
    connection: Connection,
    entity: str,
    what: str,
    current: Protection,
    asked: Protection,
    applier: str,
    how: str,
) -> dict[str, list[str]]:
    """Check that changing the protection of ``entity`` from ``current`` to ``asked``,
    applied by ``applier``, has the approvals it needs (none unless it loosens it, see the
    module), and use them up, with every other pending approval of changing it when the
    protection changes at all; return what its audit entry adds (``approved_by``, nothing
    for a change that needs no approval). The refusal names ``what``, the change, the
    shortfall and ``how`` its approvers approve it.

    >>> from opsloop.registry.users import add_user
    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> for user, role in (("root", "admin"), ("ana", "approver")):
    ...     _ = add_user(db, user, role)
    >>> with db.write() as c:
    ...     use_protection_approvals(c, "deployment:api", "deployment 'api'", (1, False),
    ...                              (0, False), "root", "approve it first")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected by 1 approval(s):
    lowering it to no protection needs 1 approval(s) from distinct approvers other than 'root',
    who applies it (an applier's own approval does not count), has 0 (approve it first)
    >>> with db.write() as c:
    ...     _ = record_protection_approval(c, "deployment:api", "deployment 'api'", (1, False),
    ...                                    (0, False), "ana", None)
    ...     use_protection_approvals(c, "deployment:api", "deployment 'api'", (1, False),
    ...                              (0, False), "root", "approve it first")
    {'approved_by': ['ana']}
    """
    if asked != current:
        # Whatever the change, the approvals pending against the protection it replaces
        # were given for a starting point that is gone: none may count later.
        _void_pending(connection, entity, protection_digest(current, asked))
    if not loosens(current, asked):
        return {}
    if connection.execute(sa.select(tables.users.c.id).limit(1)).first() is None:
        # Embedded use with no users registered has no identities to keep apart (and
        # nobody who could approve): there, as every change, it is whoever opened the store.
        return {}
    required = max(current[0], 1)
    pending = _pending(entity, protection_digest(current, asked))
    given = set(
        connection.execute(sa.select(_approvals.c.approver).distinct().where(*pending)).scalars()
    )
    lapsed = lapsed_approvers(connection, given)
    shortfall = approval_shortfall(required, given, applier, lapsed=lapsed)
    if shortfall is not None:
        raise PermissionDenied(
            f"{what} is protected by {described(current)}: lowering it to {described(asked)} "
            f"{shortfall} ({how})"
        )
    connection.execute(_approvals.update().where(*pending).values(consumed=True))
    return {"approved_by": list(counted_approvers(given, applier, also_excluded=lapsed))}


@dataclass(frozen=True)
class LapsedProtectionApproval:
    """A pending approval of lowering a protection that no longer counts: its
    ``approver``, ``why`` (disabled, demoted or gone, see :mod:`.approver_standing`), the
    protection it approves lowering to (``required_approvals``, ``require_gate``; ``None``
    both where the log holds no entry of it), and when it was given, with its comment.

    >>> LapsedProtectionApproval("bo", "user bo is disabled", 0, False, 5, None).to_dict()["why"]
    'user bo is disabled'
    """

    approver: str
    why: str
    required_approvals: int | None
    require_gate: bool | str | None
    created_ms: int
    comment: str | None

    def to_dict(self) -> dict[str, object]:
        """The approval as a JSON-ready document.

        >>> LapsedProtectionApproval("bo", "gone", 1, "credit", 5, "ok").to_dict()["require_gate"]
        'credit'
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> LapsedProtectionApproval:
        """The approval from :meth:`to_dict`'s document.

        >>> one = LapsedProtectionApproval("bo", "gone", 0, True, 5, None)
        >>> LapsedProtectionApproval.from_dict(one.to_dict()) == one
        True
        """
        return cls(**{f.name: document[f.name] for f in fields(cls)})


def lapsed_protection_approvals(
    connection: Connection, entity: str, current: Protection
) -> tuple[LapsedProtectionApproval, ...]:
    """The pending approvals of lowering the protection of ``entity`` (now ``current``)
    whose approvers can no longer approve, oldest first: they would not count toward the
    change they approve (:func:`use_protection_approvals`). What each approves is read from
    its ``approve_protection`` audit entry, matched by the digest of that change from
    ``current``: every pending approval is of a change from the protection in force, since
    any change of it uses up the others.

    >>> from opsloop.registry.audit import append_audit
    >>> from opsloop.registry.users import add_user, set_user_disabled
    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> for user, role in (("root", "admin"), ("bo", "approver")):
    ...     _ = add_user(db, user, role)
    >>> with db.write() as c:
    ...     _ = record_protection_approval(c, "deployment:api", "deployment 'api'", (2, False),
    ...                                    (0, False), "bo", "sunset")
    ...     _ = append_audit(c, "bo", "approve_protection", "deployment:api", "sunset", None,
    ...                      {"required_approvals": 0, "require_gate": False})
    >>> set_user_disabled(db, "bo", actor="root")
    >>> with db.read() as c:
    ...     [(a.approver, a.why, a.required_approvals, a.comment)
    ...      for a in lapsed_protection_approvals(c, "deployment:api", (2, False))]
    [('bo', 'user bo is disabled', 0, 'sunset')]
    """
    rows = connection.execute(
        sa.select(
            _approvals.c.approver,
            _approvals.c.digest,
            _approvals.c.created_ms,
            _approvals.c.comment,
        )
        .where(_approvals.c.entity == entity, _approvals.c.consumed.is_(False))
        .order_by(_approvals.c.id)
    ).all()
    lapsed = lapsed_approvers(connection, {row.approver for row in rows})
    if not lapsed:
        return ()
    log = tables.audit_log
    asked: dict[str, Protection] = {}
    for document in connection.execute(
        sa.select(log.c.after_json).where(
            log.c.entity == entity,
            log.c.action == "approve_protection",
            log.c.actor.in_(sorted(lapsed)),
        )
    ).scalars():
        after = json.loads(document)
        protection = (int(after["required_approvals"]), after["require_gate"])
        asked[protection_digest(current, protection)] = protection
    found = []
    for row in rows:
        if row.approver not in lapsed:
            continue
        to = asked.get(row.digest)
        found.append(
            LapsedProtectionApproval(
                row.approver,
                lapsed[row.approver],
                None if to is None else to[0],
                None if to is None else to[1],
                int(row.created_ms),
                row.comment,
            )
        )
    return tuple(found)


__all__ = [
    "LapsedProtectionApproval",
    "Protection",
    "described",
    "gate_flags",
    "lapsed_protection_approvals",
    "loosens",
    "protection_digest",
    "record_protection_approval",
    "use_protection_approvals",
]
