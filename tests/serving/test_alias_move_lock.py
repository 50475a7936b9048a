"""An alias move and a change of a deployment's rules must not both pass their checks.

On PostgreSQL (READ COMMITTED) each would read what the other has not committed yet, and
the alias would end on a version whose records lack a field the rules read: every request
would fail with a 503. Both take the audit log's lock before their check, so the later one
checks what the earlier one made. Here the move is held right after its check, and the
rules are changed through a second connection that gives up waiting for a lock after a
moment: it cannot change them meanwhile, and once the move is made the rule is refused.

Each audited change of the registry takes that lock before any row lock, as the
deployments' changes do, so no two of them wait on each other in opposite orders (an alias
move's new row refers to the model's row, which a registration locks). A protection change
under way when a move comes is then wholly before it: the move waits, and is refused by
the protection it finds.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import sqlalchemy as sa
from tests.store.lock_waits import PausedChange, in_thread, wait_until_blocked

from opsloop.data.schema import infer_schema
from opsloop.errors import InvalidArgumentError
from opsloop.registry import model_registry
from opsloop.registry.alias_move_check import check_alias_move
from opsloop.registry.model_registry import ModelRegistry
from opsloop.registry.users import PermissionDenied, add_user
from opsloop.serving import Deployments, Variant
from opsloop.store import Database

FRAME = pd.DataFrame({"age": [20, 40], "debt": [1.0, 2.0]})
OWES = {"name": "owes", "when": "debt > 1.5", "action": "flag"}


def _postgresql(registry) -> None:
    if registry.db.dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: no interleaving to force")


def _followed(registry) -> Deployments:
    """Version 1 of ``m`` serves age and debt, version 2 age alone; ``api`` follows the
    alias ``champion``, at version 1, with no rules yet."""
    registry.register("m", b"v1", flavor="onnx", input_schema=infer_schema(FRAME))
    registry.register("m", b"v2", flavor="onnx", input_schema=infer_schema(FRAME[["age"]]))
    registry.set_alias("m", "champion", 1)
    deployments = Deployments(registry.db, actor="owner")
    deployments.deploy("api", [Variant("stable", "m", alias="champion")])
    return deployments


def _impatient(db: Database) -> Database:
    """The same store through connections that give up waiting for any lock after 200 ms."""
    url = sa.make_url(db.uri).update_query_dict({"options": "-c lock_timeout=200"})
    return Database(url.render_as_string(hide_password=False))


def test_rules_cannot_change_while_an_alias_move_that_passed_its_check_is_open(
    registry, monkeypatch
):
    _postgresql(registry)
    deployments = _followed(registry)
    checked, go = threading.Event(), threading.Event()

    def held(*args, **kwargs):
        check_alias_move(*args, **kwargs)
        checked.set()
        go.wait(60)  # released by the test below; the bound only keeps a failure from hanging

    monkeypatch.setattr(model_registry, "check_alias_move", held)
    impatient = _impatient(registry.db)
    with ThreadPoolExecutor(1) as pool:
        move = pool.submit(registry.set_alias, "m", "champion", 2)
        try:
            assert checked.wait(60)
            # The move passed its check against no rules; a rule on debt now would pass
            # its own against version 1 and leave the alias on version 2.
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                Deployments(impatient, actor="owner").configure("api", assertions=[OWES])
        finally:
            go.set()
            impatient.dispose()
        move.result()
    assert deployments.get("api").serving == {"stable": 2}
    assert deployments.settings("api").assertions == ()
    with pytest.raises(InvalidArgumentError, match="unknown field 'debt'"):
        deployments.configure("api", assertions=[OWES])


def _statements(db: Database):
    """The SQL statements ``db`` runs, as a list that grows while the test runs."""
    seen: list[str] = []

    def record(connection, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    return seen


LOCKS_A_ROW = re.compile(r"FOR UPDATE|^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


CHANGES = [
    "register",
    "set_alias",
    "deploy",
    "configure",
    "protect_alias",
    "approve",
    "set_description",
    "record_gate",
]


@pytest.mark.parametrize("change", CHANGES)
def test_every_audited_change_takes_the_audit_lock_before_any_row_lock(registry, change):
    _postgresql(registry)
    deployments = _followed(registry)
    if change == "approve":  # approvals need registered approvers
        add_user(registry.db, "owner", "admin")
        add_user(registry.db, "ann", "approver")
    do = {
        "register": lambda: registry.register("m", b"v3", flavor="onnx"),
        "set_alias": lambda: registry.set_alias("m", "champion", 2),
        "deploy": lambda: deployments.deploy("web", [Variant("stable", "m", alias="champion")]),
        "configure": lambda: deployments.configure("api", assertions=[OWES]),
        "protect_alias": lambda: registry.protect_alias("m", "champion", 2),
        "approve": lambda: registry.approve("m", "champion", 2, actor="ann"),
        "set_description": lambda: registry.set_description("m", "credit scorer"),
        "record_gate": lambda: registry.record_gate("m", 2, passed=True, gate={"auc": 0.8}),
    }[change]
    seen = _statements(registry.db)
    do()
    locks = [i for i, s in enumerate(seen) if "pg_advisory_xact_lock" in s]
    rows = [i for i, s in enumerate(seen) if LOCKS_A_ROW.search(s)]
    assert locks and rows
    assert locks[0] < rows[0], seen[: rows[0] + 1]


def test_an_alias_move_during_a_protection_change_waits_for_it_and_is_refused(registry, store_uri):
    _postgresql(registry)
    _followed(registry)
    # The protection is held just before its row is written: it has taken what it takes
    # first. A move must not pass its check against no protection meanwhile.
    protecting = PausedChange(
        store_uri,
        "INSERT INTO PROTECTED_ALIASES",
        lambda db: ModelRegistry(db, registry.artifacts, actor="owner").protect_alias(
            "m", "champion", 2
        ),
    )
    try:
        move, moved = in_thread(lambda: registry.set_alias("m", "champion", 2))
        wait_until_blocked(registry.db, deadline_s=30)
        assert moved == []  # still waiting for the protection change
    finally:
        protected = protecting.release()
    move.join(timeout=60)
    assert protected == [None]
    [refusal] = moved
    assert isinstance(refusal, PermissionDenied), refusal
    assert str(refusal) == (
        "alias 'champion' of model 'm' is protected: moving it to version 2 needs 2 "
        "approval(s) from distinct approvers other than 'owner', who moves it (an applier's "
        "own approval does not count), has 0"
    )
    assert registry.get_version("m", alias="champion").version == 1
    log = registry.audit("m")
    assert log["action"].tolist()[-1] == "protect_alias"
