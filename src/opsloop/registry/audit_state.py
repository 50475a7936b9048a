"""Does the registry's current state equal the state its audit log implies?

A change and its audit entry are written in one transaction, so the newest entry of each
entity says what the state is now: an alias points at the version of its last ``set_alias``;
a protection requires what its last ``protect_alias`` or ``protect`` set (0: none; an alias's
release gate too); a
deployment is the definition of its last ``deploy``, or absent after ``retire``. A row changed
in the database without its entry (an alias moved by hand in SQL) shows up here, as what the
log implies and what the table holds.

The deployment tables are read directly (they are the store's), so this registry module
does not import the serving layer above it.

>>> from opsloop.store import Database
>>> with Database("sqlite://").read() as c:
...     state_problems(c)
[]

The examples of the functions start from ``db``, another such empty store.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.registry.gate_requirement import decode_requirement
from opsloop.store import tables

_log = tables.audit_log
_models, _versions, _aliases = tables.registered_models, tables.model_versions, tables.aliases


def _newest(connection: Connection, actions: tuple[str, ...], prefix: str) -> dict[str, dict]:
    """``{entity: (action, after)}`` of the newest entry per entity among ``actions``."""
    newest = (
        sa.select(sa.func.max(_log.c.id))
        .where(_log.c.action.in_(actions), _log.c.entity.startswith(prefix, autoescape=True))
        .group_by(_log.c.entity)
    )
    rows = connection.execute(
        sa.select(_log.c.entity, _log.c.action, _log.c.after_json).where(_log.c.id.in_(newest))
    )
    return {
        entity: {"action": action, "after": None if after is None else json.loads(after)}
        for entity, action, after in rows
    }


def _alias_problems(connection: Connection) -> list[str]:
    implied = {
        entity: entry["after"]["version"]
        for entity, entry in _newest(connection, ("set_alias",), "model:").items()
    }
    held = {
        f"model:{model}/alias:{alias}": version
        for model, alias, version in connection.execute(
            sa.select(_models.c.name, _aliases.c.name, _versions.c.version)
            .join(_models, _models.c.id == _aliases.c.model_id)
            .join(_versions, _versions.c.id == _aliases.c.version_id)
        )
    }
    return [
        f"{entity}: the log says version {implied.get(entity)}, the table holds {held.get(entity)}"
        for entity in sorted(set(implied) | set(held))
        if implied.get(entity) != held.get(entity)
    ]


def _protection_problems(connection: Connection) -> list[str]:
    implied = {
        entity: entry["after"]["required_approvals"]
        for entity, entry in _newest(connection, ("protect_alias",), "model:").items()
    }
    implied.update(
        (entity, entry["after"]["required_approvals"])
        for entity, entry in _newest(connection, ("protect",), "deployment:").items()
    )
    protected = tables.protected_aliases
    held = {
        f"model:{model}/alias:{alias}": required
        for model, alias, required in connection.execute(
            sa.select(_models.c.name, protected.c.name, protected.c.required_approvals).join(
                _models, _models.c.id == protected.c.model_id
            )
        )
    }
    # Entries written before gates could be required carry no require_gate: none.
    implied_gates = {
        entity: entry["after"].get("require_gate", False)
        for action, prefix in (("protect_alias", "model:"), ("protect", "deployment:"))
        for entity, entry in _newest(connection, (action,), prefix).items()
    }
    held_gates = {
        f"model:{model}/alias:{alias}": decode_requirement(stored)
        for model, alias, stored in connection.execute(
            sa.select(_models.c.name, protected.c.name, protected.c.required_gate_json).join(
                _models, _models.c.id == protected.c.model_id
            )
        )
    }
    held_gates.update(
        (f"deployment:{name}", decode_requirement(stored))
        for name, stored in connection.execute(
            sa.select(
                tables.protected_deployments.c.name,
                tables.protected_deployments.c.required_gate_json,
            )
        )
    )
    gates = [
        f"{entity}: the log says it requires {implied_gates.get(entity, False)!r} as its "
        f"gate, the table holds {held_gates.get(entity, False)!r}"
        for entity in sorted(set(implied_gates) | set(held_gates))
        if implied_gates.get(entity, False) != held_gates.get(entity, False)
    ]
    deployments = tables.protected_deployments
    held.update(
        (f"deployment:{name}", required)
        for name, required in connection.execute(
            sa.select(deployments.c.name, deployments.c.required_approvals)
        )
    )
    return [
        f"{entity}: the log says {implied.get(entity, 0)} required approval(s), the table "
        f"holds {held.get(entity, 0)}"
        for entity in sorted(set(implied) | set(held))
        if implied.get(entity, 0) != held.get(entity, 0)
    ] + gates


def _definition(document: dict) -> dict:
    """The fields of a definition that the tables hold."""
    return {
        "strategy": document["strategy"],
        "automation": document["automation"],
        "description": document.get("description"),
        "variants": [
            {
                key: variant[key] if key != "weight" else float(variant[key])
                for key in ("name", "model", "version", "alias", "role", "weight")
            }
            for variant in document["variants"]
        ],
    }


def _deployment_problems(connection: Connection) -> list[str]:
    implied = {
        entity: _definition(entry["after"])
        for entity, entry in _newest(
            connection, ("deploy", "rollback", "retire"), "deployment:"
        ).items()
        if entry["action"] != "retire"
    }
    heads, variants = tables.deployments, tables.deployment_variants
    held: dict[str, dict] = {}
    for head in connection.execute(sa.select(heads)).mappings():
        rows = connection.execute(
            sa.select(
                variants.c.name,
                _models.c.name.label("model"),
                _versions.c.version,
                variants.c.alias,
                variants.c.role,
                variants.c.weight,
            )
            .join(_models, _models.c.id == variants.c.model_id)
            .outerjoin(_versions, _versions.c.id == variants.c.version_id)
            .where(variants.c.deployment_id == head["id"])
            .order_by(variants.c.position)
        ).mappings()
        held[f"deployment:{head['name']}"] = {
            "strategy": head["strategy"],
            "automation": head["automation"],
            "description": head["description"],
            "variants": [{**row, "weight": float(row["weight"])} for row in rows],
        }
    problems = []
    for entity in sorted(set(implied) | set(held)):
        if entity not in held:
            problems.append(f"{entity}: the log says it is deployed, the tables hold nothing")
        elif entity not in implied:
            problems.append(f"{entity}: the tables hold a definition the log never recorded")
        elif implied[entity] != held[entity]:
            problems.append(f"{entity}: the tables hold another definition than the log's last")
    return problems


def state_problems(connection: Connection) -> list[str]:
    """Every difference between the current aliases, protections and deployments and the
    state the audit log implies (empty when they agree).

    >>> from opsloop.registry.audit import append_audit
    >>> with db.write() as c:
    ...     _ = append_audit(c, "ana", "set_alias", "model:m/alias:prod", None, None,
    ...                      {"version": 3})
    >>> with db.read() as c:
    ...     state_problems(c)
    ['model:m/alias:prod: the log says version 3, the table holds None']
    """
    return [
        *_alias_problems(connection),
        *_protection_problems(connection),
        *_deployment_problems(connection),
    ]
