"""The append-only, hash-chained audit log of every registry change.

Each entry records who, when, what (action and entity), why, the state before and after,
and where the change came from (its ``origin``, :mod:`opsloop.store.audit_origin`: over
HTTP with a token from a client address, or a Python process) and, for a change a rollout's
controller made, its ``decision`` (the action and the evidence behind it, written only by
that path: :mod:`opsloop.serving.rollout_decisions`). Each carries ``hash =
HMAC-SHA256(key, previous hash + the entry's canonical JSON)``, under the audit key kept
outside the database (:mod:`.audit_key`). The first entry follows 64 zeros.
Changing, inserting or deleting any entry breaks every later hash, and without the key nobody
can recompute them, which :func:`verify_audit_log` reports with the first entry that fails.
The previous-hash column is unique, so two writers can never both extend the same entry.
Entries are appended in the same transaction as the change they describe: no change without
its record.

Entries written before the log was keyed are plain ``sha256`` links, allowed only before the
first keyed entry; once a key exists the newest entry must be keyed (a log rewritten as plain
links fails), and :func:`seal_audit_log` anchors an older log under the key. Deleting the
newest entries leaves a valid shorter chain: publish the head (:func:`audit_head`, ``opsloop
audit head``) and pass it back to :func:`verify_audit_log` to catch that. Verification also
compares the current aliases, protections and deployments with the state the log implies
(:mod:`.audit_state`).

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     _ = append_audit(c, "ana", "describe_model", "model:churn", "clearer",
...                      {"description": None}, {"description": "churn scorer"})
>>> verify_audit_log(db).ok
True

The examples of the functions start from ``db``, another such empty store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgumentError
from opsloop.registry.audit_key import audit_key, keyed_hash
from opsloop.registry.audit_state import state_problems
from opsloop.store import tables
from opsloop.store.audit_origin import current_origin
from opsloop.store.database import Database, clock_of
from opsloop.tracking.limits import checked_text

GENESIS = "0" * 64
_log = tables.audit_log
# The same constant in every process: PostgreSQL writers of the log take turns on it.
_AUDIT_LOCK_KEY = 0x6F70736175646974


def _canonical(value: object) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def entry_hash(
    prev_hash: str,
    at_ms: int,
    actor: str,
    action: str,
    entity: str,
    reason: str | None,
    before_json: str | None,
    after_json: str | None,
    key: bytes | None = None,
    origin: str | None = None,
    decision: str | None = None,
) -> str:
    """The hash of one entry given its predecessor's hash: HMAC-SHA256 under ``key``, or a
    plain sha256 (entries written before the log was keyed) without one.

    The ``origin`` is hashed only when there is one, and the ``decision`` (after the
    origin, even a null one) only when there is one: entries written before either was
    recorded hash as they always did, and a recorded one cannot be changed unnoticed.

    >>> entry_hash(GENESIS, 0, "a", "b", "c", None, None, None)[:12]
    '2a5a9300193a'
    >>> entry_hash(GENESIS, 0, "a", "b", "c", None, None, None, key=b"k")[:12]
    'f53326939353'
    >>> entry_hash(GENESIS, 0, "a", "b", "c", None, None, None, key=b"k", origin="{}")[:12]
    'b5fec66a913e'
    >>> entry_hash(GENESIS, 0, "a", "b", "c", None, None, None, key=b"k", origin="{}",
    ...            decision="{}")[:12]
    '634b25aef5fd'
    """
    fields: list[object] = [prev_hash, at_ms, actor, action, entity, reason]
    fields += [before_json, after_json]
    if origin is not None or decision is not None:
        fields.append(origin)
    if decision is not None:
        fields.append(decision)
    document = json.dumps(fields, separators=(",", ":")).encode()
    if key is None:
        return hashlib.sha256(document).hexdigest()
    return keyed_hash(key, document)


def lock_audit_log(connection: Connection) -> None:
    """Hold the log's lock until the caller's transaction ends (a no-op on SQLite).

    On SQLite every write transaction already holds the database's one write lock. On
    PostgreSQL a change that reads state, checks it and then writes it with its audit entry
    takes this lock first, so no concurrent change slips between its check and its write.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     lock_audit_log(c)
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})


def append_audit(
    connection: Connection,
    actor: str,
    action: str,
    entity: str,
    reason: str | None,
    before: object,
    after: object,
    *,
    at_ms: int | None = None,
    decision: Mapping[str, object] | None = None,
) -> str:
    """Append one entry inside the caller's write transaction; return its hash.

    ``at_ms`` (default: now) lets a change stamp its rows and its entry with one time. The
    entry's origin is :func:`~opsloop.store.audit_origin.current_origin`: the request's
    on a server, this process's anywhere else. ``decision`` is a rollout controller's
    decision behind the change (:mod:`opsloop.serving.rollout_decisions`, the only
    caller that passes one): no operation a client calls passes it on.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     len(append_audit(c, "ana", "create", "model:x", None, None, {"name": "x"}))
    64
    """
    if reason is not None:
        checked_text("reason", reason)
    lock_audit_log(connection)
    prev = (
        connection.execute(sa.select(_log.c.hash).order_by(_log.c.id.desc()).limit(1)).scalar()
        or GENESIS
    )
    at = clock_of(connection) if at_ms is None else int(at_ms)
    before_json, after_json = _canonical(before), _canonical(after)
    decision_json = None if decision is None else _canonical(dict(decision))
    origin = current_origin()
    digest = entry_hash(
        prev,
        at,
        actor,
        action,
        entity,
        reason,
        before_json,
        after_json,
        key=audit_key(),
        origin=origin,
        decision=decision_json,
    )
    connection.execute(
        _log.insert().values(
            at_ms=at,
            actor=actor,
            action=action,
            entity=entity,
            reason=reason,
            before_json=before_json,
            after_json=after_json,
            prev_hash=prev,
            hash=digest,
            keyed=True,
            origin=origin,
            decision=decision_json,
        )
    )
    return digest


def alias_version_at(connection: Connection, model: str, alias: str, at_ms: int) -> int | None:
    """The version ``model``'s ``alias`` pointed at, at time ``at_ms``, from the log.

    >>> from opsloop.store.database import now_ms
    >>> with db.write() as c:
    ...     _ = append_audit(c, "ana", "set_alias", "model:m/alias:prod", None, None,
    ...                      {"version": 3})
    >>> with db.read() as c:
    ...     alias_version_at(c, "m", "prod", 0), alias_version_at(c, "m", "prod", now_ms() + 1)
    (None, 3)
    """
    after = connection.execute(
        sa.select(_log.c.after_json)
        .where(
            _log.c.entity == f"model:{model}/alias:{alias}",
            _log.c.action == "set_alias",
            _log.c.at_ms <= int(at_ms),
        )
        .order_by(_log.c.id.desc())
        .limit(1)
    ).scalar()
    return None if after is None else json.loads(after)["version"]


@dataclass(frozen=True)
class AuditVerification:
    """The result of checking the log: ``ok``, entries checked, the first bad entry's id, the
    problem (the first one found), the head hash, how many entries are keyed, and every
    difference between the current state and the state the log implies.

    >>> AuditVerification(True, 3, None, None).to_dict()["entries"]
    3
    """

    ok: bool
    entries: int
    first_bad_id: int | None
    problem: str | None
    head: str | None = None
    keyed_entries: int = 0
    state_problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> AuditVerification(False, 2, 2, "x").to_dict()["ok"]
        False
        """
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_id": self.first_bad_id,
            "problem": self.problem,
            "head": self.head,
            "keyed_entries": self.keyed_entries,
            "state_problems": list(self.state_problems),
        }

    @classmethod
    def from_dict(cls, document: dict) -> AuditVerification:
        """The verification :meth:`to_dict` wrote.

        >>> v = AuditVerification(False, 2, 2, "x", "ab", 1, ("p",))
        >>> AuditVerification.from_dict(v.to_dict()) == v
        True
        """
        fields = {name: document[name] for name in cls.__dataclass_fields__ if name in document}
        fields["state_problems"] = tuple(fields.get("state_problems", ()))
        return cls(**fields)


def _chain_problem(rows, key: bytes) -> tuple[int | None, str | None]:
    """The first entry that breaks the chain, and why (``(None, None)`` when none does)."""
    prev, keyed_seen = GENESIS, False
    for row in rows:
        if row["prev_hash"] != prev:
            return row["id"], (
                f"entry {row['id']} follows {row['prev_hash']}, but the entry before it "
                f"has hash {prev} (an entry was removed or inserted)"
            )
        if keyed_seen and not row["keyed"]:
            return row["id"], (
                f"entry {row['id']} is a plain sha256 link after keyed entries: it was not "
                "written with the audit key"
            )
        keyed_seen = keyed_seen or bool(row["keyed"])
        expected = entry_hash(
            prev,
            row["at_ms"],
            row["actor"],
            row["action"],
            row["entity"],
            row["reason"],
            row["before_json"],
            row["after_json"],
            key=key if row["keyed"] else None,
            origin=row["origin"],
            decision=row["decision"],
        )
        if expected != row["hash"]:
            return row["id"], (
                f"entry {row['id']} was changed, or written without this audit key: its "
                f"content hashes to {expected}, the log says {row['hash']}"
            )
        prev = row["hash"]
    if rows and not keyed_seen:
        return rows[-1]["id"], (
            "no entry is keyed: the log predates the audit key, or was rewritten as plain "
            "links; seal it (opsloop audit seal) after checking it"
        )
    return None, None


def verify_audit_log(
    db: Database, *, head: str | None = None, key: bytes | None = None
) -> AuditVerification:
    """Recompute every link in order under the audit key (default: this process's, see
    :mod:`.audit_key`), check that the entry with hash ``head`` (one published earlier) is
    still in the log, and compare the current state with the state the log implies.

    >>> from opsloop.store import Database
    >>> verify_audit_log(Database("sqlite://")).ok
    True
    """
    key = audit_key() if key is None else key
    with db.read() as connection:
        rows = connection.execute(sa.select(_log).order_by(_log.c.id)).mappings().all()
        differences = tuple(state_problems(connection))
    first_bad, problem = _chain_problem(rows, key)
    if problem is None and head is not None and head not in {row["hash"] for row in rows}:
        problem = (
            f"the published head {head} is not in the log: entries after it were removed, "
            "or the log was replaced"
        )
    if problem is None and differences:
        problem = f"the state differs from the log: {differences[0]}"
    # "entries" counts the entries that held, as before a failure the chain stops there.
    checked = next((i for i, row in enumerate(rows) if row["id"] == first_bad), len(rows))
    return AuditVerification(
        ok=problem is None,
        entries=checked,
        first_bad_id=first_bad,
        problem=problem,
        head=rows[-1]["hash"] if rows else None,
        keyed_entries=sum(bool(row["keyed"]) for row in rows),
        state_problems=differences,
    )


def newest_audit_id(db: Database) -> int:
    """The newest audit entry's id (0 for an empty log): one indexed read. Every change of
    a deployment, an alias, a user or a token appends an entry in its own transaction, so
    while this number stands, none of them changed.

    >>> from opsloop.store import Database
    >>> newest_audit_id(Database("sqlite://"))
    0
    """
    # Read on every data plane request, so through the driver (``Database.read_value``).
    newest = db.read_value(f"SELECT max(id) FROM {_log.name}")
    return int(cast(int, newest or 0))


def audit_head(db: Database) -> dict[str, object]:
    """The newest entry's id, time and hash, and how many entries the log holds: publish it
    to catch a later deletion of entries (:func:`verify_audit_log`'s ``head``).

    >>> from opsloop.store import Database
    >>> audit_head(Database("sqlite://"))
    {'id': None, 'at_ms': None, 'hash': None, 'entries': 0}
    """
    with db.read() as connection:
        newest = connection.execute(
            sa.select(_log.c.id, _log.c.at_ms, _log.c.hash).order_by(_log.c.id.desc()).limit(1)
        ).first()
        count = connection.execute(sa.select(sa.func.count()).select_from(_log)).scalar_one()
    if newest is None:
        return {"id": None, "at_ms": None, "hash": None, "entries": 0}
    return {"id": newest.id, "at_ms": newest.at_ms, "hash": newest.hash, "entries": count}


def seal_audit_log(db: Database, actor: str, reason: str | None = None) -> str:
    """Append a keyed ``seal`` entry naming the current head, so a log written before the
    audit key existed is anchored under it; return the new head hash.

    >>> len(seal_audit_log(db, "ana")), verify_audit_log(db).keyed_entries
    (64, 1)
    """
    with db.write() as connection:
        lock_audit_log(connection)
        head = connection.execute(
            sa.select(_log.c.hash).order_by(_log.c.id.desc()).limit(1)
        ).scalar()
        return append_audit(connection, actor, "seal", "audit", reason, None, {"head": head})


#: What follows a model's name in the entities of its versions and aliases
#: (``model:NAME/version:N``, ``model:NAME/alias:A``). A new model's name may not contain
#: them, so the first one in an entity ends the model's name.
MODEL_PARTS = ("/version:", "/alias:")


def model_entity_clause(name: str) -> sa.ColumnElement[bool]:
    """The audit entries of model ``name``: its own, its versions' and its aliases'.

    Never those of another model whose name starts with ``name`` (``m2``, ``m/x``).

    >>> with db.write() as c:
    ...     for entity in ("model:m", "model:m/version:1", "model:m2", "model:m/x/alias:a"):
    ...         _ = append_audit(c, "ana", "create", entity, None, None, None)
    >>> audit_entries(db, model="m")["entity"].tolist()
    ['model:m', 'model:m/version:1']
    """
    own = f"model:{name}"
    return sa.or_(
        _log.c.entity == own,
        *(_log.c.entity.startswith(own + part, autoescape=True) for part in MODEL_PARTS),
    )


def audit_entries(
    db: Database,
    *,
    entity: str | None = None,
    model: str | None = None,
    last: int | None = None,
    before: int | None = None,
    action: str | None = None,
) -> pd.DataFrame:
    """The log as a table (oldest first): every entry, those of exactly ``entity``, or those
    of model ``model`` (see :func:`model_entity_clause`); with ``action``, only entries of
    that action; with ``before``, only entries whose id is lower; with ``last``, only the
    newest ``last`` of those (a page of a long log, read from its index, not the whole log).

    >>> from opsloop.store import Database
    >>> list(audit_entries(Database("sqlite://")).columns)[:4]
    ['id', 'time', 'actor', 'action']
    >>> with db.write() as c:
    ...     for n in range(5):
    ...         _ = append_audit(c, "ana", "move", "model:p", None, None, n)
    >>> audit_entries(db, model="p", last=2)["after"].tolist()
    [3, 4]
    >>> newest = audit_entries(db, model="p", last=2)["id"].iloc[0]
    >>> audit_entries(db, model="p", last=2, before=int(newest))["after"].tolist()
    [1, 2]
    """
    if entity is not None and model is not None:
        raise InvalidArgumentError("give an entity or a model, not both")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise InvalidArgumentError(f"last: must be a whole number of at least 1, got {last!r}")
    query = sa.select(_log)
    if entity is not None:
        query = query.where(_log.c.entity == entity)
    elif model is not None:
        query = query.where(model_entity_clause(model))
    if action is not None:
        query = query.where(_log.c.action == action)
    if before is not None:
        query = query.where(_log.c.id < before)
    if last is None:
        query = query.order_by(_log.c.id)
    else:
        query = query.order_by(_log.c.id.desc()).limit(last)
    with db.read() as connection:
        rows = connection.execute(query).mappings().all()
    if last is not None:
        rows = rows[::-1]
    return audit_frame(
        {
            **{k: row[k] for k in _COLUMNS},
            "before": _parsed(row["before_json"]),
            "after": _parsed(row["after_json"]),
            "origin": _parsed(row["origin"]),
            "decision": _parsed(row["decision"]),
        }
        for row in rows
    )


# The logged fields of an entry as the table shows them, before/after aside (parsed JSON).
_COLUMNS = ("id", "at_ms", "actor", "action", "entity", "reason", "prev_hash", "hash")


def audit_frame(entries) -> pd.DataFrame:
    """The audit table from entries with ``at_ms`` and parsed ``before``/``after`` values,
    and the parsed ``origin`` and ``decision`` where the entries carry them (``None`` where
    they do not).

    Both registries (local, and over HTTP from the server's entries) build it here, so the
    two give the same columns and dtypes.

    >>> frame = audit_frame([{"id": 1, "at_ms": 0, "actor": "ana", "action": "register",
    ...     "entity": "model:m", "reason": None, "prev_hash": "0", "hash": "1",
    ...     "before": None, "after": {"version": 1}}])
    >>> list(frame.columns)[:6]
    ['id', 'time', 'actor', 'action', 'entity', 'reason']
    >>> list(frame.columns)[6:]
    ['prev_hash', 'hash', 'before', 'after', 'origin', 'decision']
    >>> str(frame["time"].iloc[0]), frame["after"].iloc[0], frame["origin"].iloc[0]
    ('1970-01-01 00:00:00+00:00', {'version': 1}, None)
    >>> frame["decision"].iloc[0] is None
    True
    """
    entries = list(entries)
    frame = pd.DataFrame([{c: e[c] for c in _COLUMNS} for e in entries], columns=list(_COLUMNS))
    frame.insert(1, "time", pd.to_datetime(frame.pop("at_ms").astype("int64"), unit="ms", utc=True))
    for name in ("reason", "before", "after"):
        frame[name] = pd.Series([e[name] for e in entries], dtype=object)
    frame["origin"] = pd.Series([e.get("origin") for e in entries], dtype=object)
    frame["decision"] = pd.Series([e.get("decision") for e in entries], dtype=object)
    return frame


def _parsed(text: str | None) -> object:
    return None if text is None else json.loads(text)
