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
from tests.store.lock_waits import PausedChange, in_thread, wait_until_blocked
from tests.ui.signing_in import session
from typer.testing import CliRunner

from opsloop.cli.app import app as cli
from opsloop.errors import InvalidArgumentError
from opsloop.registry import ModelRegistry, PermissionDenied, add_user, authenticate, token_id
from opsloop.registry.http_users import HttpUsers
from opsloop.registry.users import (
    IssuedToken,
    LastAdminError,
    RevokedToken,
    UnknownTokenError,
    UnknownUserError,
    User,
    UserStatus,
    get_user,
    list_tokens,
    new_token,
    revoke_token,
    rotate_token,
    set_user_disabled,
)
from opsloop.server import create_app
from opsloop.store import tables
from opsloop.tracking.limits import MAX_TIME_MS

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


# Each admin change, as (operation, verb, path, body) by mal against bo.
CHANGES = [
    ("set_user_role", "PUT", "/users/bo/role", {"role": "editor"}),
    ("disable_user", "POST", "/users/bo/disable", None),
    ("enable_user", "POST", "/users/bo/enable", None),
    ("revoke_token", "DELETE", "/tokens/{bo}", None),
    ("rotate_token", "POST", "/users/mal/tokens/rotate", {}),
]


@pytest.mark.parametrize(("operation", "verb", "path", "body"), CHANGES)
def test_a_change_whose_token_is_revoked_before_its_transaction_is_refused(
    database, artifacts, tokens, operation, verb, path, body
):
    """mal's request is authenticated; root revokes mal's token before the change's
    transaction begins. The change is refused as the revoked token is (401) and changes
    nothing: a rotation mints no token for its holder."""
    _, mal = add_user(database, "mal", "admin")
    if operation == "enable_user":
        set_user_disabled(database, "bo")
    app = create_app(database, artifacts, allow_embedded=False)
    service = app.state.users
    change = getattr(service, operation)

    def revoked_meanwhile(*arguments, **options):
        revoke_token(database, token_id(mal), actor="root")
        return change(*arguments, **options)

    setattr(service, operation, revoked_meanwhile)
    before = list_tokens(database)
    with running_server(app) as url:
        answer = call(url, mal, verb, path.format(bo=token_id(tokens["bo"])), body)
    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"] == "unknown or revoked API token"
    after = list_tokens(database)
    assert len(after) == len(before)
    assert after[after["token_id"] == token_id(mal)]["revoked_ms"].notna().all()
    bo = get_user(database, "bo")
    assert bo.role == "viewer"
    assert authenticate(database, tokens["bo"]) == (
        None if operation == "enable_user" else User("bo", "viewer")
    )
    assert [(actor, action, entity) for actor, action, entity, *_ in
            entries(database, artifacts)][-1:] == [
        ("root", "revoke_token", "user:mal")
    ]  # fmt: skip


def test_two_rotations_of_a_user_at_once_leave_one_active_token(database, store_uri, tokens):
    """The first rotation holds the user's row; the second waits, then revokes the token the
    first issued."""
    first = PausedChange(store_uri, "INSERT INTO API_TOKENS", lambda db: rotate_token(db, "bo"))
    second, rotated = in_thread(lambda: rotate_token(database, "bo"))
    if database.dialect == "postgresql":
        wait_until_blocked(database, deadline_s=20)
    [issued] = first.release()
    second.join(timeout=60)
    assert authenticate(database, issued) is None
    assert authenticate(database, rotated[0]).name == "bo"
    active = list_tokens(database, "bo")
    assert active[active["revoked_ms"].isna()]["token_id"].tolist() == [token_id(rotated[0])]


def test_two_revocations_of_a_token_at_once_revoke_it_once(database, artifacts, store_uri, tokens):
    """The first revocation holds the token's row; the second waits, then finds it revoked:
    a 404, and one entry in the audit log."""
    bo = token_id(tokens["bo"])
    first = PausedChange(
        store_uri,
        "DELETE FROM DASHBOARD_SESSIONS",
        lambda db: revoke_token(db, bo, actor="root"),
    )
    second, outcome = in_thread(lambda: revoke_token(database, bo))
    if database.dialect == "postgresql":
        wait_until_blocked(database, deadline_s=20)
    assert first.release() == [bo]
    second.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], UnknownTokenError), outcome
    assert [(actor, action, entity) for actor, action, entity, *_ in
            entries(database, artifacts)] == [
        ("root", "revoke_token", "user:bo")
    ]  # fmt: skip


def test_the_last_admin_cannot_revoke_their_last_active_token(served, database, artifacts, tokens):
    root = token_id(tokens["root"])
    refused = call(served, tokens["root"], "DELETE", f"/tokens/{root}")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith(
        "user 'root' is the last enabled admin: revoking their last active token would leave "
        "nobody to manage users"
    )
    assert authenticate(database, tokens["root"]).name == "root"
    # With another active token (or another admin) it may go; rotating is always allowed.
    spare = new_token(database, "root")
    assert call(served, tokens["root"], "DELETE", f"/tokens/{root}").status_code == 200
    rotated = call(served, spare, "POST", "/users/root/tokens/rotate", {})
    assert rotated.status_code == 201, rotated.text
    assert authenticate(database, rotated.json()["token"]).name == "root"


def test_a_rotation_needs_no_body_and_its_answer_is_never_cached(served, database, tokens):
    answer = httpx.post(
        f"{served}{API}/users/bo/tokens/rotate",
        headers={"Authorization": f"Bearer {tokens['root']}"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json()["expires_ms"] is None
    assert authenticate(database, answer.json()["token"]).name == "bo"
    # Answers without a secret keep the default.
    disabled = call(served, tokens["root"], "POST", "/users/ana/disable")
    assert "cache-control" not in disabled.headers


def test_an_expiry_past_the_wire_limit_is_refused_by_the_store_and_the_command_line(
    database, tokens, monkeypatch
):
    with pytest.raises(InvalidArgumentError, match=f"expires_ms must be at most {MAX_TIME_MS}"):
        rotate_token(database, "bo", expires_ms=MAX_TIME_MS + 1)
    with pytest.raises(InvalidArgumentError, match=f"expires_ms must be at most {MAX_TIME_MS}"):
        new_token(database, "bo", expires_ms=MAX_TIME_MS + 1)
    runner = CliRunner()
    for days in ("inf", "1e10"):
        refused = runner.invoke(cli, ["users", "rotate", "bo", "--expires-days", days])
        assert refused.exit_code == 2, refused.output
        assert "--expires-days must be at most " in refused.output
    assert authenticate(database, tokens["bo"]).name == "bo"
