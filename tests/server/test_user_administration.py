"""Disabling and enabling users, revoking and rotating tokens: audited operations of the
users' contract, over REST against a real server on loopback, through the Python client and
the command line, on SQLite and PostgreSQL. Only an admin may; the last enabled admin cannot
be disabled; the dashboard sessions of a disabled user or of a revoked token end at once; a
rotated token comes back once, in the answer, and nowhere else."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from tests.server.running import running_server
from tests.ui.signing_in import session
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.registry import ModelRegistry, PermissionDenied, add_user, authenticate, token_id
from opsloop.registry.http_users import HttpUsers
from opsloop.registry.users import (
    IssuedToken,
    LastAdminError,
    RevokedToken,
    UnknownTokenError,
    UnknownUserError,
    UserStatus,
    list_tokens,
    new_token,
)
from opsloop.server import create_app
from opsloop.store import tables

API = "/api/v1"
ACTIONS = ("disable_user", "enable_user", "revoke_token", "rotate_token")


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


def call(url: str, token: str, verb: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(
        verb,
        f"{url}{API}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def entries(database, artifacts) -> list[tuple]:
    frame = ModelRegistry(database, artifacts).audit()
    frame = frame[frame["action"].isin(ACTIONS)]
    return list(
        zip(
            frame["actor"], frame["action"], frame["entity"], frame["before"], frame["after"],
            strict=True,
        )
    )  # fmt: skip


def session_users(database) -> list[str]:
    table = tables.dashboard_sessions
    with database.read() as connection:
        return sorted(connection.execute(sa.select(table.c.user_name)).scalars())


def test_an_admin_disables_and_enables_a_user_and_the_audit_log_has_both_states(
    served, database, artifacts, tokens
):
    with session(served, tokens["bo"]) as bo:
        assert bo.get("/runs", follow_redirects=False).status_code == 200
        disabled = call(served, tokens["root"], "POST", "/users/bo/disable")
        assert disabled.status_code == 200, disabled.text
        answer = disabled.json()
        assert answer["name"] == "bo" and answer["role"] == "viewer"
        assert isinstance(answer["disabled_ms"], int) and answer["disabled_ms"] > 0
        # The session ended at once: its row is gone before its next request.
        assert session_users(database) == []
        assert bo.get("/runs", follow_redirects=False).status_code == 303
    assert call(served, tokens["bo"], "GET", "/whoami").status_code == 401
    # Again changes nothing and records nothing.
    again = call(served, tokens["root"], "POST", "/users/bo/disable")
    assert again.json() == answer
    enabled = call(served, tokens["root"], "POST", "/users/bo/enable")
    assert enabled.json() == {"name": "bo", "role": "viewer", "disabled_ms": None}
    assert call(served, tokens["bo"], "GET", "/whoami").json() == {"name": "bo", "role": "viewer"}
    assert entries(database, artifacts) == [
        ("root", "disable_user", "user:bo", {"disabled": False},
         {"disabled": True, "dashboard_sessions_ended": 1}),
        ("root", "enable_user", "user:bo", {"disabled": True}, {"disabled": False}),
    ]  # fmt: skip
    assert ModelRegistry(database, artifacts).verify_audit_log().ok


def test_a_revoked_tokens_sessions_end_at_once_and_the_owners_other_tokens_stand(
    served, database, artifacts, tokens
):
    second = new_token(database, "ana")
    with session(served, tokens["ana"]) as first_session, session(served, second) as other:
        assert session_users(database) == ["ana", "ana"]
        revoked = call(served, tokens["root"], "DELETE", f"/tokens/{token_id(tokens['ana'])}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json() == {
            "token_id": token_id(tokens["ana"]),
            "user": "ana",
            "dashboard_sessions_ended": 1,
        }
        assert session_users(database) == ["ana"]
        assert first_session.get("/runs", follow_redirects=False).status_code == 303
        assert other.get("/runs", follow_redirects=False).status_code == 200
    assert call(served, tokens["ana"], "GET", "/whoami").status_code == 401
    assert call(served, second, "GET", "/whoami").json()["name"] == "ana"
    gone = call(served, tokens["root"], "DELETE", f"/tokens/{token_id(tokens['ana'])}")
    assert gone.status_code == 404
    assert gone.json()["detail"] == (
        f"token_id: no active API token with id {token_id(tokens['ana'])!r}"
    )
    assert entries(database, artifacts) == [
        ("root", "revoke_token", "user:ana",
         {"token_id": token_id(tokens["ana"]), "revoked": False},
         {"token_id": token_id(tokens["ana"]), "revoked": True, "dashboard_sessions_ended": 1}),
    ]  # fmt: skip


def test_a_rotated_token_is_answered_once_and_stored_and_logged_only_as_its_hash(
    served, database, artifacts, tokens, caplog
):
    with session(served, tokens["bo"]) as bo, caplog.at_level("DEBUG"):
        expires = database.clock() + 3_600_000
        rotated = call(
            served, tokens["root"], "POST", "/users/bo/tokens/rotate", {"expires_ms": expires}
        )
        assert rotated.status_code == 201, rotated.text
        answer = rotated.json()
        token = answer.pop("token")
        assert answer == {
            "user": "bo",
            "token_id": token_id(token),
            "expires_ms": expires,
            "revoked": 1,
            "dashboard_sessions_ended": 1,
        }
        assert bo.get("/runs", follow_redirects=False).status_code == 303
    assert call(served, tokens["bo"], "GET", "/whoami").status_code == 401
    assert call(served, token, "GET", "/whoami").json() == {"name": "bo", "role": "viewer"}
    # The store keeps the token's hash; the audit log its id; no log line holds it.
    frame = list_tokens(database, "bo")
    assert frame["token_id"].tolist()[-1] == token_id(token)
    with database.read() as connection:
        stored = connection.execute(sa.select(tables.api_tokens.c.sha256)).scalars().all()
    assert token not in stored
    assert token not in caplog.text
    audit = ModelRegistry(database, artifacts).audit()
    assert token not in json.dumps(audit.astype(str).to_dict("records"))
    assert entries(database, artifacts) == [
        ("root", "rotate_token", "user:bo", {"active_tokens": [token_id(tokens["bo"])]},
         {"revoked": 1, "token_id": token_id(token), "expires_ms": expires,
          "dashboard_sessions_ended": 1}),
    ]  # fmt: skip
    # The record's repr leaves the token out.
    issued = IssuedToken.from_dict({**answer, "token": token})
    assert token not in repr(issued) and issued.token == token


def test_non_admins_are_refused_and_change_nothing(served, database, artifacts, tokens):
    for caller in ("ana", "bo"):
        for verb, path, body in (
            ("POST", "/users/bo/disable", None),
            ("POST", "/users/bo/enable", None),
            ("DELETE", f"/tokens/{token_id(tokens['root'])}", None),
            ("POST", "/users/root/tokens/rotate", {}),
        ):
            refused = call(served, tokens[caller], verb, path, body)
            assert refused.status_code == 403, (caller, path, refused.text)
            assert refused.json()["detail"].endswith("this needs 'admin'")
    no_token = httpx.post(f"{served}{API}/users/bo/disable", timeout=60)
    assert no_token.status_code == 401
    assert all(authenticate(database, token) is not None for token in tokens.values())
    assert entries(database, artifacts) == []


def test_the_last_admin_cannot_be_disabled_over_rest(served, database, artifacts, tokens):
    refused = call(served, tokens["root"], "POST", "/users/root/disable")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "user 'root' is the last enabled admin: disabling them would leave nobody"
    )
    assert refused.json()["error"] == "LastAdminError"
    # With a second admin, one may disable the other, and then not the one left.
    promoted = call(served, tokens["root"], "PUT", "/users/ana/role", {"role": "admin"})
    assert promoted.status_code == 200
    assert call(served, tokens["ana"], "POST", "/users/root/disable").status_code == 200
    assert call(served, tokens["ana"], "POST", "/users/ana/disable").status_code == 409
    assert authenticate(database, tokens["ana"]).role == "admin"
    assert [(actor, action, entity) for actor, action, entity, *_ in
            entries(database, artifacts)] == [("ana", "disable_user", "user:root")]  # fmt: skip


def test_refusals_name_the_user_the_token_or_the_field(served, database, tokens):
    root = tokens["root"]
    for verb, path, body in (
        ("POST", "/users/ghost/disable", None),
        ("POST", "/users/ghost/enable", None),
        ("POST", "/users/ghost/tokens/rotate", {}),
    ):
        unknown = call(served, root, verb, path, body)
        assert unknown.status_code == 404, path
        assert unknown.json()["detail"] == "name: unknown user 'ghost'"
    for path, body, field in (
        ("/users/bo/tokens/rotate", {"expires_ms": "soon"}, ["body", "expires_ms"]),
        ("/users/bo/tokens/rotate", {"expires_ms": 0}, ["body", "expires_ms"]),
        ("/users/bo/tokens/rotate", {"expires_ms": True}, ["body", "expires_ms"]),
        ("/users/bo/tokens/rotate", {"token": "olp_x"}, ["body", "token"]),
    ):
        bad = call(served, root, "POST", path, body)
        assert bad.status_code == 422, body
        assert [error["loc"] for error in bad.json()["detail"]] == [field], body
    # A time already past is refused by the store's clock, naming the field.
    past = call(served, root, "POST", "/users/bo/tokens/rotate", {"expires_ms": 1_000})
    assert past.status_code == 422
    assert past.json()["detail"].startswith("expires_ms: must be after now")
    for given in ("olp_" + "a" * 8, "0123", "ABCDEF012345"):
        bad = call(served, root, "DELETE", f"/tokens/{given}")
        assert bad.status_code == 422, given
        assert [error["loc"] for error in bad.json()["detail"]] == [["path", "token_id"]]
    # Nothing of the refused calls changed a token.
    assert authenticate(database, tokens["bo"]).name == "bo"


def test_the_python_client_raises_what_local_use_raises(served, database, tokens):
    users = HttpUsers(served, token=tokens["root"])
    try:
        assert users.disable_user("bo").disabled
        assert users.enable_user("bo") == UserStatus("bo", "viewer", None)
        revoked = users.revoke_token(token_id(tokens["bo"]))
        assert revoked == RevokedToken(token_id(tokens["bo"]), "bo", 0)
        issued = users.rotate_token("bo")
        assert (issued.user, issued.revoked, issued.expires_ms) == ("bo", 0, None)
        assert authenticate(database, issued.token).name == "bo"
        with pytest.raises(UnknownUserError, match="name: unknown user 'ghost'"):
            users.disable_user("ghost")
        with pytest.raises(UnknownTokenError, match="token_id: no active API token"):
            users.revoke_token(token_id(tokens["bo"]))
        with pytest.raises(LastAdminError, match="last enabled admin"):
            users.disable_user("root")
        with pytest.raises(ValueError, match="token_id: give the token's 12-digit id"):
            users.revoke_token(tokens["ana"])
        with pytest.raises(ValueError, match="expires_ms"):
            users.rotate_token("bo", 1_000)
        with pytest.raises(ValueError, match="actor: over HTTP"):
            users.disable_user("bo", actor="root")
    finally:
        users.close()
    editor = HttpUsers(served, token=tokens["ana"])
    try:
        with pytest.raises(PermissionDenied, match="this needs 'admin'"):
            editor.rotate_token("ana")
    finally:
        editor.close()
    assert authenticate(database, tokens["ana"]).name == "ana"


def test_the_command_line_manages_users_through_a_server(
    served, database, artifacts, tokens, monkeypatch
):
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", served)
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", tokens["root"])
    runner = CliRunner()
    done = runner.invoke(cli, ["users", "disable", "bo"])
    assert done.exit_code == 0 and "user 'bo' disabled" in done.output, done.output
    assert authenticate(database, tokens["bo"]) is None
    assert runner.invoke(cli, ["users", "enable", "bo"]).exit_code == 0
    assert authenticate(database, tokens["bo"]).name == "bo"
    # The token itself is given; only its id travels.
    revoked = runner.invoke(cli, ["users", "revoke", tokens["ana"]])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked API token {token_id(tokens['ana'])} of user 'ana'" in revoked.output
    rotated = runner.invoke(cli, ["users", "rotate", "bo", "--expires-days", "1"])
    assert rotated.exit_code == 0, rotated.output
    printed = rotated.output.strip().splitlines()[-1]
    assert authenticate(database, printed).name == "bo"
    refused = runner.invoke(cli, ["users", "disable", "root"])
    assert refused.exit_code == 2 and "last enabled admin" in refused.output
    monkeypatch.setenv("OPSLOOP_TRACKING_TOKEN", printed)  # a viewer's
    denied = runner.invoke(cli, ["users", "disable", "root"])
    assert denied.exit_code == 2 and "this needs 'admin'" in denied.output
    assert [(actor, action, entity) for actor, action, entity, *_ in
            entries(database, artifacts)] == [
        ("root", "disable_user", "user:bo"),
        ("root", "enable_user", "user:bo"),
        ("root", "revoke_token", "user:ana"),
        ("root", "rotate_token", "user:bo"),
    ]  # fmt: skip
