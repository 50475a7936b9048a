"""Protected deployments: a change needs approvals of that exact definition by distinct people.

The registry protects aliases; a deployment that pins a fixed version would bypass that,
so a deployment can be protected too. An approval names the definition it approves by a
digest of what decides the serving (strategy, automation level, and each variant's name,
model, version or alias, role and weight; not the description), so an approval of one
definition never lets another through. The approvals are used up by the change they allow,
as the registry's are.

A protected alias protects the deployments that follow it: once a deployment follows a
protected alias of a model, a new definition that serves that model any other way (a pinned
version, another alias) or stops serving it needs the alias's number of approvals of that
definition, as moving the alias would (:func:`alias_guard`). Otherwise an editor could pin
any version in place of an alias that approvers guard. An alias that requires a passed
release gate requires it of every version such a definition serves in its place
(:func:`alias_gate_guard`).

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
from opsloop.registry.gate_requirement import (
    decode_requirement,
    describe_requirement,
    gate_problem,
)
from opsloop.registry.users import PermissionDenied
from opsloop.serving.deployment_records import Variant
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
        "variants": [
            {**variant.to_dict(), "weight": float(variant.weight)} for variant in variants
        ],
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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


def set_protection(connection: Connection, name: str, required: int) -> int:
    """Require ``required`` approvals (0 removes the protection); return the previous count.

    >>> with db.write() as c:
    ...     set_protection(c, "api", 2), set_protection(c, "api", 0)
    (0, 2)
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
    before = required_approvals(connection, name)
    connection.execute(_protected.delete().where(_protected.c.name == name))
    if required:
        connection.execute(_protected.insert().values(name=name, required_approvals=required))
    return before


def _pending(name: str, digest: str) -> tuple:
    return (
        _approvals.c.deployment == name,
        _approvals.c.digest == digest,
        _approvals.c.consumed.is_(False),
    )


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
    connection: Connection, followed: Sequence[Variant], variants: Sequence[Variant]
) -> tuple[int, str]:
    """The approvals a new definition (``variants``) needs because it stops following a
    protected alias that the current definition's variants (``followed``) follow, and why.

    Every variant of the new definition that serves the alias's model must follow that same
    alias, and one must, or the alias's required approvals apply.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     alias_guard(c, [Variant("s", "m", alias="champion")], [Variant("s", "m", version=2)])
    (0, '')
    """
    needed, why = 0, ""
    for model, alias in sorted({(v.model, v.alias) for v in followed if v.alias is not None}):
        serving = [v for v in variants if v.model == model]
        if serving and all(v.alias == alias for v in serving):
            continue
        required = connection.execute(
            sa.select(_protected_aliases.c.required_approvals)
            .join(_models, _models.c.id == _protected_aliases.c.model_id)
            .where(_models.c.name == model, _protected_aliases.c.name == alias)
        ).scalar()
        if required and required > needed:
            needed = int(required)
            why = (
                f"it follows the protected alias {model}@{alias}, and this definition serves "
                f"{model!r} otherwise"
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
            if version == current:
                continue
            problem = gate_problem(connection, model, version, requirement, current)
            if problem is not None:
                against = "" if current is None else f" against version {current}"
                raise PermissionDenied(
                    f"deployment {name!r} is guarded: it follows the protected alias "
                    f"{model}@{alias}, and variant {variant.name!r} would serve version "
                    f"{version} in its place, which needs {describe_requirement(requirement)}"
                    f"{against}; {problem}"
                )


def use_approvals(
    connection: Connection, name: str, digest: str, guard: tuple[int, str] = (0, "")
) -> tuple[str, ...]:
    """Check that a protected deployment's new definition has its approvals and use them up;
    return who approved (nothing for an unprotected deployment). ``guard`` is what
    :func:`alias_guard` asks for; the larger of the two counts applies.

    >>> with db.write() as c:
    ...     _ = set_protection(c, "api", 1)
    ...     use_approvals(c, "api", "a" * 64)
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: deployment 'api' is protected: ...has 0
    """
    own = required_approvals(connection, name)
    required = max(own, guard[0])
    if not required:
        return ()
    approvers = tuple(
        sorted(
            connection.execute(
                sa.select(_approvals.c.approver).distinct().where(*_pending(name, digest))
            ).scalars()
        )
    )
    if len(approvers) < required:
        have = f" ({', '.join(approvers)})" if approvers else ""
        because = "is protected" if own >= guard[0] else f"is guarded: {guard[1]}"
        raise PermissionDenied(
            f"deployment {name!r} {because}: this definition needs {required} approval(s) "
            f"from distinct approvers, has {len(approvers)}{have}"
        )
    connection.execute(_approvals.update().where(*_pending(name, digest)).values(consumed=True))
    return approvers
