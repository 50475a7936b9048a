"""Changing a user's role, an audited operation of the users' contract: over REST against a
real server on loopback, through the Python client and the command line, on SQLite and
PostgreSQL. Only an admin may; an unknown user or role is a 4xx naming the field; the last
enabled admin can be neither demoted nor disabled; the change ends the user's dashboard
sessions and is in the audit log with the role before and after."""

from __future__ import annotations

import inspect
import threading

import httpx
import pytest
import sqlalchemy as sa
from tests.server.running import running_server
from tests.store.lock_waits import PausedChange, in_thread, wait_until_blocked
from tests.ui.signing_in import session
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.registry import (
    LastAdminError,
    ModelRegistry,
    PermissionDenied,
    add_user,
    authenticate,
    set_user_disabled,
    set_user_role,
    token_id,
)
from opsloop.registry.http_users import HttpUsers
from opsloop.registry.local_users import LocalUsers
from opsloop.registry.user_service import USER_OPERATIONS, UserService
from opsloop.registry.users import (
    UnknownUserError,
    User,
    change_user_role,
    get_user,
    list_users,
)
from opsloop.server import create_app
from opsloop.store import Database, tables
from opsloop.tracking.capture import current_user

API = "/api/v1"


@pytest.fixture
def tokens(database):
    return {
        name: add_user(database, name, role)[1]
        for name, role in (("root", "admin"), ("ana", "editor"), ("bo", "viewer"))
    }


@pytest.fixture
def served(database, artifacts, tokens):
    with running_server(create_app(database, artifacts, allow_embedded=False)) as url:
        yield url


def put_role(url: str, token: str, name: str, body: object) -> httpx.Response:
    return httpx.put(
        f"{url}{API}/users/{name}/role",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def role_entries(registry: ModelRegistry) -> list[tuple]:
    frame = registry.audit()
    frame = frame[frame["action"] == "set_user_role"]
    return list(zip(frame["actor"], frame["entity"], frame["before"], frame["after"], strict=True))


def stored_session_users(database) -> list[str]:
    table = tables.dashboard_sessions
    with database.read() as connection:
        return sorted(connection.execute(sa.select(table.c.user_name)).scalars())


def test_an_admin_changes_a_role_and_the_audit_log_has_it_before_and_after(
    served, database, artifacts, tokens
):
    answer = put_role(served, tokens["root"], "ana", {"role": "approver"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"name": "ana", "role": "approver"}
    # Her token stands, with the new role.
    whoami = httpx.get(
        f"{served}{API}/whoami", headers={"Authorization": f"Bearer {tokens['ana']}"}
    )
    assert whoami.json() == {"name": "ana", "role": "approver"}
    # The same role again changes nothing and records nothing.
    assert put_role(served, tokens["root"], "ana", {"role": "approver"}).json()["role"] == (
        "approver"
    )
    registry = ModelRegistry(database, artifacts, actor="root")
    assert role_entries(registry) == [
        (
            "root",
            "user:ana",
            {"role": "editor"},
            {"role": "approver", "dashboard_sessions_ended": 0},
        )
    ]
    frame = registry.audit()
    origin = frame[frame["action"] == "set_user_role"]["origin"].iloc[0]
    assert origin["token"] == token_id(tokens["root"])
    assert registry.verify_audit_log().ok


def test_refusals_name_the_field_or_the_role_needed_and_change_nothing(
    served, database, artifacts, tokens
):
    for caller in ("ana", "bo"):
        refused = put_role(served, tokens[caller], "bo", {"role": "admin"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].endswith("this needs 'admin'")
    unknown = put_role(served, tokens["root"], "ghost", {"role": "viewer"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "name: unknown user 'ghost'"
    for body, field in (
        ({"role": "boss"}, "role"),
        ({}, "role"),
        ({"role": "viewer", "reason": "x"}, "reason"),
        ({"role": 3}, "role"),
    ):
        bad = put_role(served, tokens["root"], "bo", body)
        assert bad.status_code == 422, body
        assert [error["loc"] for error in bad.json()["detail"]] == [["body", field]], body
    assert (
        "viewer, editor, gatekeeper, approver, admin"
        in put_role(served, tokens["root"], "bo", {"role": "boss"}).text
    )
    no_token = httpx.put(f"{served}{API}/users/bo/role", json={"role": "admin"})
    assert no_token.status_code == 401
    assert get_user(database, "bo").role == "viewer"
    assert role_entries(ModelRegistry(database, artifacts)) == []


def test_the_last_enabled_admin_can_be_neither_demoted_nor_disabled(
    served, database, artifacts, tokens
):
    refused = put_role(served, tokens["root"], "root", {"role": "editor"})
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "user 'root' is the last enabled admin: making them 'editor' would leave nobody"
    )
    with pytest.raises(LastAdminError, match="last enabled admin: disabling them"):
        set_user_disabled(database, "root")
    # With a second admin either may go; a disabled admin does not count.
    assert put_role(served, tokens["root"], "bo", {"role": "admin"}).status_code == 200
    set_user_disabled(database, "bo", actor="root")
    assert put_role(served, tokens["root"], "root", {"role": "viewer"}).status_code == 409
    set_user_disabled(database, "bo", False, actor="root")
    answer = put_role(served, tokens["bo"], "root", {"role": "viewer"})
    assert answer.json() == {"name": "root", "role": "viewer"}
    # bo is now the last one, by role or by disabling.
    assert put_role(served, tokens["bo"], "bo", {"role": "approver"}).status_code == 409
    with pytest.raises(LastAdminError):
        set_user_disabled(database, "bo")
    # A demoted admin's token no longer manages users.
    assert put_role(served, tokens["root"], "ana", {"role": "admin"}).status_code == 403
    assert [u for u in ("root", "ana", "bo") if get_user(database, u).role == "admin"] == ["bo"]
    assert authenticate(database, tokens["bo"]).role == "admin"


def test_the_python_client_raises_what_local_use_raises(served, database, tokens):
    users = HttpUsers(served, token=tokens["root"])
    try:
        assert users.set_user_role("bo", "gatekeeper") == get_user(database, "bo")
        assert get_user(database, "bo").role == "gatekeeper"
        with pytest.raises(UnknownUserError, match="name: unknown user 'ghost'"):
            users.set_user_role("ghost", "viewer")
        with pytest.raises(LastAdminError, match="last enabled admin"):
            users.set_user_role("root", "viewer")
        with pytest.raises(ValueError, match="role"):
            users.set_user_role("bo", "boss")
        with pytest.raises(ValueError, match="actor: over HTTP"):
            users.set_user_role("bo", "viewer", actor="root")
    finally:
        users.close()
    editor = HttpUsers(served, token=tokens["ana"])
    try:
        with pytest.raises(PermissionDenied, match="this needs 'admin'"):
            editor.set_user_role("ana", "admin")
    finally:
        editor.close()


def test_a_role_change_ends_that_users_dashboard_sessions_at_once(served, database, tokens):
    with session(served, tokens["ana"]) as ana, session(served, tokens["bo"]) as bo:
        assert "ana (editor)" in ana.get("/runs").text
        assert stored_session_users(database) == ["ana", "bo"]
        # Away and back: the session is still ended, though the role is what it started with.
        assert put_role(served, tokens["root"], "ana", {"role": "viewer"}).status_code == 200
        assert stored_session_users(database) == ["bo"]
        assert put_role(served, tokens["root"], "ana", {"role": "editor"}).status_code == 200
        ended = ana.get("/runs", follow_redirects=False)
        assert ended.status_code == 303 and ended.headers["location"].startswith("/login")
        assert bo.get("/runs", follow_redirects=False).status_code == 200
        # Disabling and enabling again does not bring a session back either.
        set_user_disabled(database, "bo", actor="root")
        set_user_disabled(database, "bo", False, actor="root")
        assert bo.get("/runs", follow_redirects=False).status_code == 303
    assert stored_session_users(database) == []
    with session(served, tokens["ana"]) as again:
        assert "ana (editor)" in again.get("/runs").text


def test_the_command_line_changes_a_role_on_the_store_or_through_a_server(
    served, database, artifacts, tokens, monkeypatch
):
    runner = CliRunner()
    done = runner.invoke(cli, ["users", "role", "ana", "approver"])
    assert done.exit_code == 0, done.output
    assert "user 'ana' is now approver" in done.output
    assert get_user(database, "ana").role == "approver"
    for arguments, message in (
        (["users", "role", "ana", "boss"], "error: role must be one of viewer, editor"),
        (["users", "role", "ghost", "viewer"], "error: name: unknown user 'ghost'"),
        (["users", "role", "root", "viewer"], "error: user 'root' is the last enabled admin"),
    ):
        refused = runner.invoke(cli, arguments)
        assert refused.exit_code == 2 and message in refused.output, refused.output
    # Through the server, as the token's owner.
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", served)
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["root"])
    assert runner.invoke(cli, ["users", "role", "bo", "editor"]).exit_code == 0
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["bo"])  # an editor now
    denied = runner.invoke(cli, ["users", "role", "bo", "admin"])
    assert denied.exit_code == 2 and "this needs 'admin'" in denied.output
    entries = role_entries(ModelRegistry(database, artifacts))
    assert [(actor, entity, before["role"], after["role"]) for actor, entity, before, after in
            entries] == [(current_user(), "user:ana", "editor", "approver"),
                         ("root", "user:bo", "viewer", "editor")]  # fmt: skip


def test_the_command_line_changes_the_store_the_other_users_commands_change(
    database, tokens, tmp_path, monkeypatch
):
    """A database named by OPSLOOP_TRACKING_URI is not a server: ``users role`` changes the
    store ``users add``, ``list`` and ``disable`` change, not that database."""
    tracking = tmp_path / "tracking.db"
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", f"sqlite:///{tracking}")
    runner = CliRunner()
    for arguments in (
        ["users", "add", "carl", "--role", "viewer"],
        ["users", "role", "carl", "editor"],
        ["users", "disable", "bo"],
    ):
        done = runner.invoke(cli, arguments)
        assert done.exit_code == 0, (arguments, done.output)
    assert get_user(database, "carl") == User("carl", "editor")
    assert authenticate(database, tokens["bo"]) is None
    listed = runner.invoke(cli, ["users", "list"])
    cells = [line.replace("│", " ").split() for line in listed.output.splitlines()]
    assert [row[:2] for row in cells if row and row[0] == "carl"] == [["carl", "editor"]]
    if tracking.exists():
        assert list_users(Database(f"sqlite:///{tracking}")) == []


def test_set_user_role_records_the_os_user_and_checks_a_named_actor(database, artifacts, tokens):
    """The public function keeps LocalUsers' rules: unnamed, the OS user acts and is
    recorded (not the target); named, the actor must be an enabled admin."""
    assert set_user_role(database, "bo", "admin") == User("bo", "admin")
    with pytest.raises(PermissionDenied, match="user 'ana' has role 'editor'; this needs"):
        set_user_role(database, "ana", "approver", actor="ana")
    with pytest.raises(PermissionDenied, match="'nobody' is not a registered user"):
        set_user_role(database, "ana", "approver", actor="nobody")
    set_user_disabled(database, "bo", actor="root")
    with pytest.raises(PermissionDenied, match="user 'bo' is disabled"):
        set_user_role(database, "ana", "approver", actor="bo")
    assert get_user(database, "ana").role == "editor"
    assert [(actor, entity, before["role"], after["role"]) for actor, entity, before, after in
            role_entries(ModelRegistry(database, artifacts))] == [
        (current_user(), "user:bo", "viewer", "admin")
    ]  # fmt: skip


def test_disabling_records_the_dashboard_sessions_it_ended(served, database, artifacts, tokens):
    with session(served, tokens["ana"]), session(served, tokens["ana"]):
        set_user_disabled(database, "ana", actor="root")
    set_user_disabled(database, "ana", False, actor="root")
    frame = ModelRegistry(database, artifacts).audit()
    entries = frame[frame["entity"] == "user:ana"]
    assert [(a, b) for a, b in zip(entries["action"], entries["after"], strict=True)][1:] == [
        ("disable_user", {"disabled": True, "dashboard_sessions_ended": 2}),
        ("enable_user", {"disabled": False}),
    ]


def test_two_admins_demoted_at_once_leave_one_admin(database, store_uri, tokens):
    """The second change waits for the first (PostgreSQL's row locks, SQLite's write lock)
    and then finds its target the last admin."""
    set_user_role(database, "ana", "admin", actor="root")
    other = Database(store_uri)
    outcome: list[object] = []
    try:
        with database.write() as first:
            change_user_role(first, "root", "editor", None)

            def second() -> None:
                try:
                    with other.write() as connection:
                        outcome.append(change_user_role(connection, "ana", "editor", None))
                except LastAdminError as error:
                    outcome.append(error)

            thread = threading.Thread(target=second)
            thread.start()
            if database.dialect == "postgresql":
                wait_until_blocked(database)
        thread.join(timeout=60)
    finally:
        other.dispose()
    assert len(outcome) == 1 and isinstance(outcome[0], LastAdminError), outcome
    assert (get_user(database, "root").role, get_user(database, "ana").role) == ("editor", "admin")


def test_a_change_decides_on_the_targets_role_as_it_stands_once_locked(
    database, artifacts, store_uri, tokens
):
    """carl's demotion holds his row; his promotion meanwhile waits for it and then sees
    him a viewer, so demoting root afterwards leaves carl the one admin, and every audit
    entry has the role that was there before it."""
    add_user(database, "carl", "editor")
    demotion = PausedChange(
        store_uri,
        "UPDATE USERS",
        lambda db: set_user_role(db, "carl", "viewer", actor="root"),
    )
    promotion, promoted = in_thread(lambda: set_user_role(database, "carl", "admin", actor="root"))
    if database.dialect == "postgresql":
        wait_until_blocked(database, deadline_s=20)
    assert demotion.release() == [User("carl", "viewer")]
    promotion.join(timeout=60)
    assert promoted == [User("carl", "admin")]
    assert set_user_role(database, "root", "viewer", actor="carl") == User("root", "viewer")
    assert [(u.name, u.role) for u in list_users(database) if u.role == "admin"] == [
        ("carl", "admin")
    ]
    assert [(actor, entity, before["role"], after["role"]) for actor, entity, before, after in
            role_entries(ModelRegistry(database, artifacts))] == [
        ("root", "user:carl", "editor", "viewer"),
        ("root", "user:carl", "viewer", "admin"),
        ("carl", "user:root", "admin", "viewer"),
    ]  # fmt: skip


def test_an_admins_demotion_waits_for_their_change_under_way(
    database, artifacts, store_uri, tokens
):
    """ana's change holds her row from her admin check on: root's demotion of her waits
    until it is done, so no change of hers lands after her demotion."""
    set_user_role(database, "ana", "admin", actor="root")
    hers = PausedChange(
        store_uri,
        "UPDATE USERS",
        lambda db: LocalUsers(db, actor="ana").set_user_role("bo", "approver"),
    )
    demotion, demoted = in_thread(lambda: set_user_role(database, "ana", "viewer", actor="root"))
    if database.dialect == "postgresql":
        wait_until_blocked(database, deadline_s=20)
    assert hers.release() == [User("bo", "approver")]
    demotion.join(timeout=60)
    assert demoted == [User("ana", "viewer")]
    assert [(actor, entity, before["role"], after["role"]) for actor, entity, before, after in
            role_entries(ModelRegistry(database, artifacts))][1:] == [
        ("ana", "user:bo", "viewer", "approver"),
        ("root", "user:ana", "admin", "viewer"),
    ]  # fmt: skip


def test_a_change_that_waited_for_its_actors_demotion_is_refused(
    database, artifacts, store_uri, tokens
):
    """root's demotion of ana holds her row; her change meanwhile waits, then finds her no
    longer an admin, and changes nothing."""
    set_user_role(database, "ana", "admin", actor="root")
    demotion = PausedChange(
        store_uri,
        "UPDATE USERS",
        lambda db: set_user_role(db, "ana", "viewer", actor="root"),
    )
    hers, outcome = in_thread(
        lambda: LocalUsers(database, actor="ana").set_user_role("ana", "admin")
    )
    if database.dialect == "postgresql":
        wait_until_blocked(database, deadline_s=20)
    assert demotion.release() == [User("ana", "viewer")]
    hers.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], PermissionDenied), outcome
    assert str(outcome[0]) == "user 'ana' has role 'viewer'; this needs 'admin'"
    assert get_user(database, "ana").role == "viewer"


@pytest.mark.parametrize("implementation", [LocalUsers, HttpUsers])
def test_implementations_have_the_protocols_signatures(implementation):
    for operation in USER_OPERATIONS.operations:
        wanted = inspect.signature(getattr(UserService, operation.method))
        found = inspect.signature(getattr(implementation, operation.method))
        assert [(p.name, p.kind, p.default) for p in found.parameters.values()] == [
            (p.name, p.kind, p.default) for p in wanted.parameters.values()
        ], operation.method
