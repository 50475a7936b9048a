"""Separation of duties ("four eyes"): a protected change counts only the approvals of
people other than the one who applies it.

A protected alias (:meth:`~opsloop.registry.ModelRegistry.set_alias`) and a protected
deployment (:meth:`~opsloop.serving.Deployments.deploy`, ``switch`` and ``rollback``) change
only with ``N`` approvals by distinct approvers. The user who applies the change is never
one of the ``N``: otherwise one person with the approver and editor roles, plus ``N - 1``
others, could move what ``N`` people are meant to guard. Every surface (the Python API, the
REST routes, the command line, the dashboard's buttons) calls the same operation, which
counts through :func:`counted_approvers`, so the rule holds everywhere.

**An approval of one's own change is recorded, never counted.** An approval names what it
approves (a definition's digest, or an alias and a version), not who will apply it: when it
is given, nobody knows who will, and one approver may well leave the applying to someone
else. Refusing it at approval time would guess; so it is recorded (with its audit entry)
and the change's applier is left out when the change counts its approvals. The refusal
names the applier, says that their own approval does not count, and gives how many
distinct other approvers there are and how many are needed (:func:`approval_shortfall`).
When the change is made, every pending approval of it is used up, the applier's own too:
the change it approved has happened, and left pending it would count for a later change
that person did not apply. The change's audit entry names its actor (who applied) and, in
``approved_by``, the approvers that counted.

**An approver must still be one when the change is applied.** An approval counts only
while its approver is enabled and holds a role that may approve (approver or admin): an
approval given by someone disabled or demoted since is kept, with its audit entry, but
left out of the count, and the refusal names it and says why
(:mod:`.approver_standing`). Disabling a person who approved is how an admin withdraws
their approvals without touching anyone else's. A rollback that reuses the approvals
that covered a definition when it was applied is not affected: those approvals were
counted when their approvers could approve, and the change they allowed has served since.

**Who applies, who requests.** Nothing records a request for a protected change apart
from applying it: an approval approves a definition or a version, and the change is made by
whoever applies it then. A canary's ramp applies its steps as the user who set the rollout
(:mod:`opsloop.serving.canary_rollout`), and a monitoring action as the monitor's acting
user, so they are the appliers whose approvals do not count. A retraining a person asks for
records them (``requested_by``), but its canary is deployed by the follower's user, with a
version registered in that same action, which no approval can have named before.

**A rollback** that restores a definition reuses the approvals that covered it, leaving
out only the person who applied it then: its approvers allowed it to serve, and one person
approving and another applying is what four eyes asks. The user who rolls back may be one
of those approvers, since going back to what was approved by one and applied by another
gives nobody a power they lacked; so a failing canary goes back even when the user who set
its ramp approved the definition it restores.

**What is in place has nothing to approve.** Approving the version an alias points at, or
the definition a deployment serves, is refused: it approves no change, and left pending it
would let a later change back to it through with nobody approving that change. Re-applying
what is in place changes nothing and uses up approvals of it recorded before that refusal.

>>> counted_approvers(["bo", "ana", "cy", "bo"], "ana")
('bo', 'cy')
>>> print(approval_shortfall(2, ["ana", "bo"], "ana"))
needs 2 approval(s) from distinct approvers other than 'ana', who applies it (an applier's own approval does not count), has 1 (bo); 'ana' approved it too
>>> print(approval_shortfall(1, ["ana", "bo"], "ana"))
None
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

from collections.abc import Iterable, Mapping


def counted_approvers(
    approvers: Iterable[str], applier: str, *, also_excluded: Iterable[str] = ()
) -> tuple[str, ...]:
    """The distinct ``approvers`` that count toward a change ``applier`` applies: all but
    the applier (and ``also_excluded``), sorted.

    >>> counted_approvers(["cy", "ana"], "bo"), counted_approvers(["ana"], "ana")
    (('ana', 'cy'), ())
    >>> counted_approvers(["ana", "bo", "cy"], "cy", also_excluded=["ana"])
    ('bo',)
    """
    left_out = {applier, *also_excluded}
    return tuple(sorted({a for a in approvers if a not in left_out}))


def approval_shortfall(
    required: int,
    approvers: Iterable[str],
    applier: str,
    *,
    applies: str = "applies it",
    lapsed: Mapping[str, str] | None = None,
) -> str | None:
    """Why a change ``applier`` applies lacks approvals: ``required`` distinct approvers
    other than the applier are needed among ``approvers`` (the change's pending approvals);
    ``None`` when it has them. ``applies`` says what the applier does, for the sentence.
    ``lapsed`` maps the approvers whose approval no longer counts to why
    (:func:`~opsloop.registry.approver_standing.lapsed_approvers`): they are left out,
    and the sentence says why.

    >>> print(approval_shortfall(1, [], "ana", applies="moves it"))
    needs 1 approval(s) from distinct approvers other than 'ana', who moves it (an applier's own approval does not count), has 0
    >>> print(approval_shortfall(2, ["bo", "cy"], "ana"))
    None
    >>> print(approval_shortfall(2, ["bo", "cy"], "ana", lapsed={"cy": "user cy is disabled"}))
    needs 2 approval(s) from distinct approvers other than 'ana', who applies it (an applier's own approval does not count), has 1 (bo); the approval of 'cy' no longer counts: user cy is disabled
    """  # noqa: E501 - a doctest's expected output is one line
    given = set(approvers)
    lapsed = {name: why for name, why in (lapsed or {}).items() if name in given}
    others = counted_approvers(given, applier, also_excluded=lapsed)
    if len(others) >= required:
        return None
    have = f" ({', '.join(others)})" if others else ""
    own = f"; {applier!r} approved it too" if applier in given else ""
    gone = "".join(
        f"; the approval of {name!r} no longer counts: {why}"
        for name, why in sorted(lapsed.items())
        if name != applier
    )
    return (
        f"needs {required} approval(s) from distinct approvers other than {applier!r}, who "
        f"{applies} (an applier's own approval does not count), has {len(others)}{have}"
        f"{own}{gone}"
    )
