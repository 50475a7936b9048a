"""A protected alias or deployment that requires a passed release gate: which verdicts count.

An alias's protection may name a gate besides its approvals: ``True`` (any gate), or a
gate's name or its file's sha256. The alias then moves to a version only when the newest
verdict of that gate recorded on the version (:meth:`ModelRegistry.record_gate`, an audit
entry ``gate_passed`` or ``gate_failed``) was run against the version the alias points at
now, and passed. A verdict against another baseline does not count: the candidate must have
beaten what it replaces. An alias that points nowhere yet takes a passed verdict against any
baseline. A protected deployment may require a gate the same way, of each version a new
definition puts traffic on (:mod:`opsloop.serving.deployment_approvals`); its baseline is
the version its primary serves now.

**Who may record a verdict that counts.** Any editor may record a verdict (``record_gate``
takes what the caller says was run), so a verdict proves only that its recorder vouches for
it. A protected alias therefore counts only verdicts that

* were recorded by a **gatekeeper** or an **admin** (the role the registry read when it
  recorded the entry, kept in it as ``recorder_role``; a caller cannot set it). Give the
  gatekeeper role to the CI pipeline's token that runs ``opsloop gate run``, not to people
  who edit models: an editor's or an approver's verdict is kept in the audit log but does
  not count. A store with no users is one person's: there every verdict counts, as every
  other action is allowed there;
* carry the sha256 of the gate file (or of the gate's canonical JSON) and of the evaluation
  data (64 hex digits each), so the audit log names exactly what was run on what; and
* for a pass, list no failed check.

The same rules, and the same words in a refusal (:func:`missing_gate`), hold for an alias and
for a deployment.

The server does not run the gate itself (the models are loaded and measured where the gate
runs), so a gatekeeper's verdict is trusted as that role's word; what the role limits is
who can give it. A deployment that follows the alias is held to the same rule for each version it
would serve in the alias's place (:mod:`opsloop.serving.deployment_approvals`).

These functions run inside the caller's transaction.

>>> from opsloop.store import Database
>>> with Database("sqlite://").read() as c:
...     gate_problem(c, "m", 2, True, 1)
'version 2 has no gate verdict against version 1 recorded'
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.tracking.limits import MAX_NAME_LENGTH, checked_text

_log = tables.audit_log
GATE_ACTIONS = ("gate_passed", "gate_failed")
#: The roles whose recorded gate verdicts a protected alias counts.
GATE_RECORDERS = ("gatekeeper", "admin")
#: The key of a recorded verdict that holds its recorder's role, set by the registry.
RECORDER_ROLE = "recorder_role"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def checked_gate_requirement(value: object) -> bool | str:
    """``value`` if it is a gate requirement: ``False`` (none), ``True`` (any gate) or a
    gate's name or sha256 (non-empty text).

    >>> checked_gate_requirement("credit"), checked_gate_requirement(False)
    ('credit', False)
    >>> checked_gate_requirement(1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: require_gate must be true, false, or a gate's name...
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return checked_text("require_gate", value, MAX_NAME_LENGTH)
    raise InvalidArgumentError(
        f"require_gate must be true, false, or a gate's name or sha256, got {value!r}"
    )


def encode_requirement(requirement: bool | str) -> str | None:
    """The column's value: JSON, or null for no gate.

    >>> encode_requirement(True), encode_requirement("credit"), encode_requirement(False)
    ('true', '"credit"', None)
    """
    return None if requirement is False else json.dumps(requirement)


def decode_requirement(stored: str | None) -> bool | str:
    """The requirement a column value holds.

    >>> decode_requirement('"credit"'), decode_requirement(None)
    ('credit', False)
    """
    return False if stored is None else json.loads(stored)


def describe_requirement(requirement: bool | str) -> str:
    """The requirement in words.

    >>> describe_requirement(True), describe_requirement("credit")
    ('a passed release gate', "a passed release gate 'credit'")
    """
    return "a passed release gate" + ("" if requirement is True else f" {requirement!r}")


def _matches(document: Any, requirement: bool | str, baseline: int | None, model: str) -> bool:
    if not isinstance(document, dict):
        return False
    if requirement is not True and requirement not in (
        document.get("gate"),
        document.get("gate_sha256"),
    ):
        return False
    return baseline is None or document.get("baseline") == {"model": model, "version": baseline}


def ignored_because(document: dict, action: str, actor: str, open_store: bool) -> str | None:
    """Why a recorded verdict does not count towards a protected alias or deployment;
    ``None`` when it counts.

    >>> sha = "a" * 64
    >>> ignored_because({"gate_sha256": sha, "data_sha256": sha, "failed": [],
    ...                  "recorder_role": "editor"}, "gate_passed", "eda", False)
    "recorded by 'eda' as editor"
    >>> ignored_because({"gate_sha256": sha, "failed": [], "recorder_role": "gatekeeper"},
    ...                 "gate_passed", "ci", False)
    "recorded by 'ci' without the data's sha256"
    """
    if not open_store and document.get(RECORDER_ROLE) not in GATE_RECORDERS:
        role = document.get(RECORDER_ROLE)
        return f"recorded by {actor!r} as {role or 'an unregistered user'}"
    for key, what in (("gate_sha256", "the gate file's"), ("data_sha256", "the data's")):
        value = document.get(key)
        if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
            return f"recorded by {actor!r} without {what} sha256"
    if action == "gate_passed" and document.get("failed"):
        return f"recorded by {actor!r} as a pass with failed checks"
    return None


def gate_problem(
    connection: Connection,
    model: str,
    version: int,
    requirement: bool | str,
    baseline: int | None,
) -> str | None:
    """Why ``version`` of ``model`` lacks the passed gate ``requirement`` asks for against
    version ``baseline`` of the same model (any baseline when ``None``); ``None`` when its
    newest such verdict that counts passed.

    >>> from opsloop.registry.audit import append_audit
    >>> with db.write() as c:
    ...     _ = append_audit(c, "ci", "gate_failed", "model:m/version:2", None, None,
    ...         {"gate": "credit", "baseline": {"model": "m", "version": 1},
    ...          "gate_sha256": "a" * 64, "data_sha256": "b" * 64,
    ...          "failed": ["auc non-inferiority (delong)"]})
    ...     print(gate_problem(c, "m", 2, "credit", 1))
    the newest verdict of gate 'credit' on version 2 against version 1 failed (failed
    checks: auc non-inferiority (delong))
    """
    if requirement is False:
        return None
    rows = connection.execute(
        sa.select(_log.c.action, _log.c.actor, _log.c.after_json)
        .where(_log.c.entity == f"model:{model}/version:{version}", _log.c.action.in_(GATE_ACTIONS))
        .order_by(_log.c.id.desc())
    )
    # a store without users is one person's: every verdict there counts
    open_store = connection.execute(sa.select(tables.users.c.id).limit(1)).first() is None
    against = "" if baseline is None else f" against version {baseline}"
    ignored: list[str] = []
    for action, actor, after in rows:
        document = None if after is None else json.loads(after)
        if document is None or not _matches(document, requirement, baseline, model):
            continue
        why = ignored_because(document, action, actor, open_store)
        if why is not None:
            ignored.append(why)
            continue
        if action == "gate_passed":
            return None
        failed = document.get("failed") or []
        checks = f" (failed checks: {', '.join(map(str, failed))})" if failed else ""
        return (
            f"the newest verdict of gate {document.get('gate')!r} on version {version}"
            f"{against} failed{checks}"
        )
    named = "" if requirement is True else f" of {requirement!r}"
    if not ignored:
        return f"version {version} has no gate verdict{named}{against} recorded"
    shown = "; ".join(dict.fromkeys(ignored[:3]))
    # The ignored verdicts first: a terminal cuts long errors, and they are what to fix.
    return (
        f"version {version} has no gate verdict{named}{against} that counts (ignored: "
        f"{shown}); one counts when a gatekeeper or an admin records it with the gate's and "
        "the data's sha256"
    )


def missing_gate(
    connection: Connection,
    model: str,
    version: int,
    requirement: bool | str,
    baseline: int | None,
    whose: str = "",
) -> str | None:
    """What serving ``version`` of ``model`` in place of version ``baseline`` (``None``:
    nothing yet) lacks under the gate ``requirement``, as the tail of a refusal: the gate it
    needs, against what (``whose``, when given, says whose baseline it is), and why its
    verdicts do not do (:func:`gate_problem`). ``None`` when nothing is missing: no gate
    required, the version is the baseline itself, or its newest counted verdict passed.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     print(missing_gate(c, "m", 2, "credit", 1))
    ...     print(missing_gate(c, "m", 1, "credit", 1))
    needs a passed release gate 'credit' against version 1; version 2 has no gate verdict of
    'credit' against version 1 recorded
    None
    """
    if requirement is False or version == baseline:
        return None
    problem = gate_problem(connection, model, version, requirement, baseline)
    if problem is None:
        return None
    against = "" if baseline is None else f" against version {baseline}"
    if baseline is not None and whose:
        against += f" ({whose})"
    return f"needs {describe_requirement(requirement)}{against}; {problem}"
