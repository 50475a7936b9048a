"""Protected deployments: a change needs approvals of that exact definition by distinct people.

The registry protects aliases; a deployment that pins a fixed version would bypass that,
so a deployment can be protected too. An approval names the definition it approves by a
digest of what decides the serving (strategy, automation level, and each variant's name,
model, version or alias, role and weight; not the description), so an approval of one
definition never lets another through. The approvals are used up by the change they allow,
as the registry's are.

**Four eyes.** The approvals that count are those of people other than the user who
applies the change (deploys, switches or rolls back): an approver's approval of a
definition they then apply themselves is recorded (when it is given nobody knows who will
apply it), but it never counts toward the requirement (:func:`use_approvals`, and
:mod:`opsloop.registry.separate_approvers` for the rule and why). Nor does the approval of
someone disabled since, or no longer holding a role that may approve
(:mod:`opsloop.registry.approver_standing`). The refusal names the applier, how many other
approvers there are of how many needed, and each approval that no longer counts and why.

**A protected deployment guards the aliases it follows.** A variant that follows an alias
serves whatever version the alias points at, so moving that alias changes what the
protected deployment serves. The registry therefore counts such a move as a change of the
deployment: it needs as many approvals of the move, by people other than the mover, as the
deployment needs for a change, even when the alias itself is unprotected
(:func:`opsloop.registry.alias_move_check.protected_followers`).

A protected alias protects the deployments that follow it: once a deployment follows a
protected alias of a model, a new definition that serves that model any other way (a pinned
version, another alias) or stops serving it needs the alias's number of approvals of that
definition, as moving the alias would (:func:`alias_guard`). Otherwise an editor could pin
any version in place of an alias that approvers guard. A retire does not lift that guard: a
deployment created again under the name is held to the aliases the retired one followed
(:func:`retired_variants`). An alias that requires a passed
release gate requires it of every version such a definition serves in its place
(:func:`alias_gate_guard`).

**A deployment protected on its own may require a passed release gate** too
(:func:`set_protection`, :func:`deployment_gate_guard`), with the alias's rules
(:mod:`opsloop.registry.gate_requirement`): a new definition may put traffic (a primary or a
candidate, at any weight, since a rollout raises a candidate's share without a new definition)
on a version of a model only when that version's newest counted verdict of the gate, run
against the **baseline**, passed. The baseline is the version the current definition's
primary serves, when the primary serves that model: the version that answers the requests
now, which a candidate must beat. A deployment created again after a retire (the protection
stays with the name) has the retired deployment's baseline: the version its primary served
when it was retired (:func:`retired_baselines`), so retiring and deploying again resets
nothing. A model no primary serves (a name never deployed, or a primary serving another
model) has no baseline, and a passed verdict against any baseline counts, as for an alias
that points nowhere yet. The baseline version itself needs
no verdict, and a shadow answers no one, so it needs none. A variant that follows an alias is
held to the version the alias points at when the definition is deployed; the alias's later
moves are the alias's protection's to guard.

These functions run inside the caller's write transaction; :class:`~.deployments.Deployments`
calls them.

>>> from opsloop.serving.deployment_records import Variant
>>> a = definition_digest("single", "full_automation", [Variant("s", "m", version=1)])
>>> b = definition_digest("single", "full_automation", [Variant("s", "m", version=2)])
>>> len(a), a == b
(64, False)

The examples that write start from ``db``, an empty in-memory store
(``Database("sqlite://")``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, InvalidArgumentError
from opsloop.registry.approver_standing import lapsed_approvers
from opsloop.registry.gate_requirement import (
    checked_gate_requirement,
    decode_requirement,
    encode_requirement,
    missing_gate,
)
from opsloop.registry.separate_approvers import approval_shortfall, counted_approvers
from opsloop.registry.users import PermissionDenied
from opsloop.serving.deployment_records import Deployment, Variant
from opsloop.store import tables
from opsloop.store.database import clock_of
from opsloop.tracking.limits import INT32_MAX

_protected, _approvals = tables.protected_deployments, tables.deployment_approvals
_protected_aliases, _models = tables.protected_aliases, tables.registered_models
_aliases, _versions = tables.aliases, tables.model_versions


def definition_digest(strategy: str, automation: str, variants: Sequence[Variant]) -> str:
    """The sha256 of a definition's serving fields, in a canonical JSON form.

    >>> from opsloop.serving.deployment_records import Variant
    >>> v = Variant("s", "m", alias="champion")
    >>> definition_digest("single", "shadow", [v]) == definition_digest("single", "shadow", (v,))
    True
    """
    document = {
        "strategy": strategy,
        "automation": automation,
        "variants": [_digested(variant) for variant in variants],
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _digested(variant: Variant) -> dict[str, object]:
    document = {**variant.to_dict(), "weight": float(variant.weight)}
    # A shadow answering every copy digests as before shadows could be sampled, so
    # approvals given then still cover the same definition.
    if variant.shadow_sample == 1:
        del document["shadow_sample"]
    return document


def required_approvals(connection: Connection, name: str) -> int:
    """How many approvals a change of deployment ``name`` needs (0: not protected).

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     required_approvals(c, "api")
    0
    """
    found = connection.execute(
        sa.select(_protected.c.required_approvals).where(_protected.c.name == name)
    ).scalar()
    return int(found or 0)


def required_gate(connection: Connection, name: str) -> bool | str:
    """The release gate a change of deployment ``name`` needs (``False``: none).

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     required_gate(c, "api")
    False
    """
    found = connection.execute(
        sa.select(_protected.c.required_gate_json).where(_protected.c.name == name)
    ).scalar()
    return decode_requirement(found)


def check_required_approvals(required: object) -> None:
    """Refuse a count of required approvals that is not a whole number from 0 to the
    store's largest.

    >>> check_required_approvals(-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: required_approvals must be a non-negative integer (at
    most 2147483647), got -1
    """
    if (
        isinstance(required, bool)
        or not isinstance(required, int)
        or not 0 <= required <= INT32_MAX
    ):
        raise InvalidArgumentError(
            f"required_approvals must be a non-negative integer (at most {INT32_MAX}), "
            f"got {required!r}"
        )


def set_protection(
    connection: Connection, name: str, required: int, gate: bool | str = False
) -> tuple[int, bool | str]:
    """Require ``required`` approvals and the release gate ``gate`` (``True``: any gate, or
    a gate's name or sha256; ``False``: none); no approvals and no gate remove the
    protection. Return the previous approvals and gate.

    >>> with db.write() as c:
    ...     set_protection(c, "api", 2), set_protection(c, "api", 0, "credit")
    ...     set_protection(c, "api", 0)
    ((0, False), (2, False))
    (0, 'credit')
    """
    check_required_approvals(required)
    gate = checked_gate_requirement(gate)
    before = required_approvals(connection, name), required_gate(connection, name)
    connection.execute(_protected.delete().where(_protected.c.name == name))
    if required or gate is not False:
        connection.execute(
            _protected.insert().values(
                name=name, required_approvals=required, required_gate_json=encode_requirement(gate)
            )
        )
    return before


def _pending(name: str, digest: str) -> tuple:
    return (
        _approvals.c.deployment == name,
        _approvals.c.digest == digest,
        _approvals.c.consumed.is_(False),
    )


def use_up_approvals(connection: Connection, name: str, digest: str) -> int:
    """Use up the pending approvals of deployment ``name``'s definition ``digest``, as a
    change that puts that definition in place without needing them does (a re-deploy of
    it, or a change of its description only); return how many. Left pending, they would
    let a later change back to it through with nobody approving that change.

    >>> with db.write() as c:
    ...     _ = record_approval(c, "web", "b" * 64, "ana", None)
    ...     use_up_approvals(c, "web", "b" * 64), use_up_approvals(c, "web", "b" * 64)
    (1, 0)
    """
    return connection.execute(
        _approvals.update().where(*_pending(name, digest)).values(consumed=True)
    ).rowcount


def cancel_approvals(connection: Connection, name: str) -> int:
    """Use up every approval of deployment ``name`` no change has used yet; return how many.

    A retire calls this: approvals given to the retired deployment must not let a change
    through for a deployment later created under its name, which its approvers never saw.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     _ = record_approval(c, "api", "a" * 64, "ana", None)
    ...     _ = record_approval(c, "api", "b" * 64, "bo", None)
    ...     cancel_approvals(c, "api"), cancel_approvals(c, "api")
    ...     record_approval(c, "api", "a" * 64, "bo", None)  # the only one left is bo's
    (2, 0)
    1
    """
    unused = (_approvals.c.deployment == name, _approvals.c.consumed.is_(False))
    return connection.execute(_approvals.update().where(*unused).values(consumed=True)).rowcount


def record_approval(
    connection: Connection, name: str, digest: str, approver: str, comment: str | None
) -> int:
    """Record ``approver``'s approval of the definition ``digest``; return the approvers so far.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     record_approval(c, "api", "a" * 64, "ana", None), record_approval(
    ...         c, "api", "a" * 64, "bo", "checked")
    (1, 2)
    """
    already = connection.execute(
        sa.select(_approvals.c.id).where(*_pending(name, digest), _approvals.c.approver == approver)
    ).first()
    if already is not None:
        raise AlreadyDoneError(
            f"{approver!r} already approved this definition of deployment {name!r}"
        )
    connection.execute(
        _approvals.insert().values(
            deployment=name,
            digest=digest,
            approver=approver,
            comment=comment,
            created_ms=clock_of(connection),
            consumed=False,
        )
    )
    return connection.execute(
        sa.select(sa.func.count(sa.distinct(_approvals.c.approver))).where(*_pending(name, digest))
    ).scalar_one()


def alias_guard(
    connection: Connection,
    followed: Sequence[Variant],
    variants: Sequence[Variant],
    *,
    recreated: bool = False,
) -> tuple[int, str]:
    """The approvals a new definition (``variants``) needs because it stops following a
    protected alias that the current definition's variants (``followed``) follow, and why.

    Every variant of the new definition that serves the alias's model must follow that same
    alias, and one must, or the alias's required approvals apply. A definition that
    ``recreated`` a retired name (``followed`` being what was retired) and serves none of
    the alias's model needs none: the retire already took the alias's model off the name,
    and the name is as free as any other to serve something else.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     alias_guard(c, [Variant("s", "m", alias="champion")], [Variant("s", "m", version=2)])
    (0, '')
    """
    needed, why = 0, ""
    for model, alias in sorted({(v.model, v.alias) for v in followed if v.alias is not None}):
        serving = [v for v in variants if v.model == model]
        if (serving or recreated) and all(v.alias == alias for v in serving):
            continue
        required = connection.execute(
            sa.select(_protected_aliases.c.required_approvals)
            .join(_models, _models.c.id == _protected_aliases.c.model_id)
            .where(_models.c.name == model, _protected_aliases.c.name == alias)
        ).scalar()
        if required and required > needed:
            needed = int(required)
            why = f"it follows the protected alias {model}@{alias}, and this definition serves " + (
                f"{model!r} otherwise" if serving else f"no version of {model!r}"
            )
    return needed, why


def alias_gate_guard(
    connection: Connection,
    name: str,
    followed: Sequence[Variant],
    variants: Sequence[Variant],
    serving: Sequence[int],
) -> None:
    """Refuse a new definition (``variants``, serving the version numbers ``serving``) that
    serves a model in place of a protected alias the current definition follows (``followed``)
    when that alias requires a release gate and a version served otherwise than through the
    alias lacks a passed verdict against the version the alias points at
    (:func:`opsloop.registry.gate_requirement.gate_problem`). A shadow variant answers no
    one, so it needs no gate.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     alias_gate_guard(c, "api", [Variant("s", "m", alias="champion")],
    ...                      [Variant("s", "m", version=2)], [2])
    """
    for model, alias in sorted({(v.model, v.alias) for v in followed if v.alias is not None}):
        found = connection.execute(
            sa.select(_protected_aliases.c.required_gate_json, _models.c.id)
            .join(_models, _models.c.id == _protected_aliases.c.model_id)
            .where(_models.c.name == model, _protected_aliases.c.name == alias)
        ).first()
        requirement = decode_requirement(None if found is None else found.required_gate_json)
        if requirement is False:
            continue
        current = connection.execute(
            sa.select(_versions.c.version)
            .join(_aliases, _aliases.c.version_id == _versions.c.id)
            .where(_aliases.c.model_id == found.id, _aliases.c.name == alias)
        ).scalar()
        for variant, version in zip(variants, serving, strict=True):
            if variant.model != model or variant.alias == alias or variant.role == "shadow":
                continue
            missing = missing_gate(connection, model, version, requirement, current)
            if missing is not None:
                raise PermissionDenied(
                    f"deployment {name!r} is guarded: it follows the protected alias "
                    f"{model}@{alias}, and variant {variant.name!r} would serve version "
                    f"{version} in its place, which {missing}"
                )


def gate_baselines(current: Deployment | None) -> dict[str, int]:
    """The baseline of each model under a deployment's release gate: the version the
    current definition's primary serves, for the primary's model (nothing for a new
    deployment).

    >>> from opsloop.serving.deployment_records import Deployment
    >>> now = Deployment("api", "canary", "full_automation",
    ...     (Variant("stable", "m", alias="champion", weight=0.9),
    ...      Variant("canary", "m", version=3, role="candidate", weight=0.1)),
    ...     None, 0, "ana", {"stable": 2, "canary": 3})
    >>> gate_baselines(now), gate_baselines(None)
    ({'m': 2}, {})
    """
    if current is None:
        return {}
    primary = next(v for v in current.variants if v.role == "primary")
    served = current.serving.get(primary.name)
    return {} if served is None else {primary.model: int(served)}


def _retired_definition(connection: Connection, name: str) -> dict | None:
    """The definition deployment ``name`` had when it was last retired (its newest
    ``retire`` audit entry's ``before``); ``None`` for a name never retired."""
    log = tables.audit_log
    found = connection.execute(
        sa.select(log.c.before_json)
        .where(log.c.entity == f"deployment:{name}", log.c.action == "retire")
        .order_by(log.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else json.loads(found)


def retired_variants(connection: Connection, name: str) -> tuple[Variant, ...]:
    """The variants deployment ``name`` had when it was last retired (nothing for a name
    never retired). A deployment created again under the name is a change away from them
    as far as the aliases they followed go (:func:`alias_guard`, :func:`alias_gate_guard`):
    a retire must not let the name pin another version in place of a protected alias.

    >>> from opsloop.registry.audit import append_audit
    >>> with db.write() as c:
    ...     _ = append_audit(c, "root", "retire", "deployment:api", None, {
    ...         "variants": [{"name": "s", "model": "m", "alias": "champion"}]}, None)
    ...     retired_variants(c, "api"), retired_variants(c, "web")
    ((Variant(name='s', model='m', version=None, alias='champion', role='primary', weight=1.0, shadow_sample=1.0),), ())
    """  # noqa: E501 - a doctest's expected output is one line
    document = _retired_definition(connection, name)
    if document is None:
        return ()
    return tuple(Variant.from_dict(v) for v in document.get("variants") or ())


def retired_baselines(connection: Connection, name: str) -> dict[str, int]:
    """The baseline of each model under the release gate of a deployment ``name`` created
    again after a retire: the version the retired deployment's primary served when it was
    retired (its newest ``retire`` audit entry's ``before``), for the primary's model;
    nothing for a name never retired. A retire must not reset the baseline a protection
    surviving it holds new versions to: otherwise retiring and deploying again would let a
    version through on a pass against any version at all.

    >>> from opsloop.registry.audit import append_audit
    >>> with db.write() as c:
    ...     before = retired_baselines(c, "api")
    ...     _ = append_audit(c, "root", "retire", "deployment:api", None, {
    ...         "variants": [{"name": "s", "model": "m", "version": 4, "role": "primary"}],
    ...         "serving": {"s": 4}}, None)
    ...     before, retired_baselines(c, "api")
    ({}, {'m': 4})
    """
    document = _retired_definition(connection, name)
    if document is None:
        return {}
    primary = next((v for v in document.get("variants") or () if v.get("role") == "primary"), None)
    served = None if primary is None else (document.get("serving") or {}).get(primary["name"])
    return {} if served is None else {primary["model"]: int(served)}


def deployment_gate_guard(
    connection: Connection,
    name: str,
    current: Deployment | None,
    variants: Sequence[Variant],
    serving: Sequence[int],
) -> bool | str:
    """Refuse a new definition (``variants``, serving the version numbers ``serving``) of
    deployment ``name`` (now ``current``) when the deployment requires a release gate and a
    version it puts traffic on lacks a passed verdict against its model's baseline
    (:func:`gate_baselines`); the refusal names the variant, the version, the gate and why.
    Return the requirement it checked (``False``: none).

    >>> with db.write() as c:
    ...     _ = set_protection(c, "api", 0, "credit")
    ...     deployment_gate_guard(c, "api", None, [Variant("s", "m", version=2)], [2])
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected: variant 's' would
    serve version 2 of model 'm', which needs a passed release gate 'credit'; version 2 has no
    gate verdict of 'credit' recorded
    """
    requirement = required_gate(connection, name)
    if requirement is False:
        return False
    # A deployment created again after a retire is held to the retired one's baseline.
    retired = current is None
    baselines = retired_baselines(connection, name) if retired else gate_baselines(current)
    for variant, version in zip(variants, serving, strict=True):
        if variant.role == "shadow":
            continue
        # Nothing serves under the name now: the refusal says whose baseline it is.
        whose = "the retired deployment's" if retired else ""
        baseline = baselines.get(variant.model)
        missing = missing_gate(connection, variant.model, version, requirement, baseline, whose)
        if missing is not None:
            raise PermissionDenied(
                f"deployment {name!r} is protected: variant {variant.name!r} would serve "
                f"version {version} of model {variant.model!r}, which {missing}"
            )
    return requirement


def gate_covers(checked: object, requirement: bool | str) -> bool:
    """Whether a definition deployed after passing the gate requirement ``checked`` (what
    :func:`deployment_gate_guard` returned then; ``None`` for an older entry) passed the
    requirement ``requirement`` too: the same gate, or any gate where any will do.

    >>> gate_covers("credit", True), gate_covers("credit", "credit"), gate_covers(None, True)
    (True, True, False)
    >>> gate_covers("smoke", "credit"), gate_covers(None, False)
    (False, True)
    """
    if requirement is False:
        return True
    if checked is None or checked is False:
        return False
    return requirement is True or checked == requirement


def use_approvals(
    connection: Connection,
    name: str,
    digest: str,
    applier: str,
    guard: tuple[int, str] = (0, ""),
) -> tuple[str, ...]:
    """Check that a protected deployment's new definition, applied by ``applier``, has its
    approvals from people other than ``applier`` and use them all up (the applier's own
    too, see :mod:`~opsloop.registry.separate_approvers`); return who approved, the applier
    left out (nothing for an unprotected deployment). ``guard`` is what :func:`alias_guard`
    asks for; the larger of the two counts applies.

    >>> from opsloop.registry.users import add_user, set_user_disabled
    >>> for user, role in (("root", "admin"), ("ana", "approver"), ("bo", "approver")):
    ...     _ = add_user(db, user, role)
    >>> with db.write() as c:
    ...     _ = set_protection(c, "api", 1)
    ...     _ = record_approval(c, "api", "a" * 64, "ana", None)
    >>> with db.write() as c:
    ...     use_approvals(c, "api", "a" * 64, "ana")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected: this definition needs
    1 approval(s) from distinct approvers other than 'ana', who applies it (an applier's own
    approval does not count), has 0; 'ana' approved it too
    >>> with db.write() as c:
    ...     _ = record_approval(c, "api", "a" * 64, "bo", None)
    ...     use_approvals(c, "api", "a" * 64, "ana")
    ('bo',)
    >>> with db.write() as c:  # used up, ana's own approval too
    ...     use_approvals(c, "api", "a" * 64, "bo")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected: ...has 0

    An approver disabled (or demoted) since approving no longer counts:

    >>> with db.write() as c:
    ...     _ = record_approval(c, "api", "a" * 64, "bo", None)
    >>> set_user_disabled(db, "bo", actor="root")
    >>> with db.write() as c:
    ...     use_approvals(c, "api", "a" * 64, "ana")
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected: ...has 0; the
    approval of 'bo' no longer counts: user bo is disabled
    """
    own = required_approvals(connection, name)
    required = max(own, guard[0])
    if not required:
        return ()
    pending = connection.execute(
        sa.select(_approvals.c.approver).distinct().where(*_pending(name, digest))
    ).scalars()
    given = set(pending)
    lapsed = lapsed_approvers(connection, given)
    shortfall = approval_shortfall(required, given, applier, lapsed=lapsed)
    if shortfall is not None:
        because = "is protected" if own >= guard[0] else f"is guarded: {guard[1]}"
        raise PermissionDenied(f"deployment {name!r} {because}: this definition {shortfall}")
    connection.execute(_approvals.update().where(*_pending(name, digest)).values(consumed=True))
    return counted_approvers(given, applier, also_excluded=lapsed)
