"""Dashboard sessions over HTTP against real servers on loopback, on SQLite and PostgreSQL:
the cookie holds a random id whose hash alone is stored, a session ends on logout, with its
token, its user or their role, when idle and at its absolute end (on a clock the test
moves), a token holds at most 20, ended ones are deleted without a sign-in, login and
logout need their CSRF token, and the cookies' Secure flag follows the server's setting
and only trusted proxies' X-Forwarded-Proto."""

from __future__ import annotations

import hashlib
import re
from http.cookies import SimpleCookie

import httpx
import pytest
import sqlalchemy as sa
from tests.clock import FakeClock
from tests.server.running import running_server, started_process
from tests.ui.signing_in import TIMEOUT_S, login, login_form, page_csrf, session

from opsloop.registry import add_user, new_token, revoke_token, set_user_disabled
from opsloop.registry.dashboard_sessions import MAX_SESSIONS_PER_TOKEN, SessionLifetime
from opsloop.server import create_app
from opsloop.server.launch import main, server_app
from opsloop.store import Database, tables

HOUR_MS = 3_600_000


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored_sessions(database) -> list:
    table = tables.dashboard_sessions
    with database.read() as connection:
        return connection.execute(sa.select(table).order_by(table.c.created_ms)).all()


def everything_stored(database) -> str:
    """Every row of every table of the store, as text."""
    with database.read() as connection:
        return repr([connection.execute(sa.select(t)).all() for t in tables.metadata.sorted_tables])


def signed_in(url: str, client: httpx.Client, path: str = "/runs") -> bool:
    """Whether ``client``'s session still shows ``path`` (else it is sent to log in)."""
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code in (200, 303), answer.text
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/login?next=")
    return answer.status_code == 200


def stolen(url: str, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=url, cookies={"opsloop_session": cookie}, timeout=TIMEOUT_S)


@pytest.fixture
def users(database):
    return {name: add_user(database, name, role)[1] for name, role in
            (("ana", "editor"), ("bo", "viewer"))}  # fmt: skip


@pytest.fixture
def served(database, artifacts, users):
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        yield url


def test_the_cookie_holds_a_session_id_whose_sha256_alone_is_stored(served, database, users):
    url, token = served, users["ana"]
    response = login(url, token)
    assert response.status_code == 303
    (header,) = [h for h in response.headers.get_list("set-cookie") if "opsloop_session" in h]
    morsel = SimpleCookie(header)["opsloop_session"]
    cookie = morsel.value
    assert len(cookie) == 43 and cookie != token and token not in cookie
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/"
    assert not morsel["secure"] and not morsel["max-age"]  # over HTTP, ends with the browser
    (row,) = stored_sessions(database)
    assert (row.sha256, row.token_sha256) == (sha256(cookie), sha256(token))
    assert (row.user_name, row.role) == ("ana", "editor")
    assert row.expires_ms - row.created_ms == 43_200_000  # 12 hours by default
    assert row.idle_until_ms - row.created_ms == 7_200_000  # 2 hours by default
    text = everything_stored(database)
    assert cookie not in text and token not in text
    with stolen(url, cookie) as client:
        assert "ana (editor)</span>" in client.get("/runs").text


def test_a_stolen_cookie_is_refused_after_logout(served, database, users):
    url = served
    with session(url, users["ana"]) as client:
        cookie = client.cookies["opsloop_session"]
        csrf = page_csrf(client)
        out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'opsloop_session=""' in out.headers["set-cookie"]
    assert stored_sessions(database) == []
    with stolen(url, cookie) as thief:
        assert not signed_in(url, thief)
        # Its page's CSRF token does not bring it back either.
        again = thief.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert again.status_code == 303 and stored_sessions(database) == []
        assert not signed_in(url, thief)
        # A change form posted with the cookie and its page's token is not from ana: the
        # same post from her live session reaches the operation (no deployment 'api').
        change = thief.post(
            "/deployments/api/weights", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert change.status_code == 303 and change.headers["location"].startswith("/login")
    with session(url, users["ana"]) as live:
        reached = live.post(
            "/deployments/api/weights",
            data={"csrf_token": page_csrf(live)},
            follow_redirects=False,
        )
    assert reached.status_code not in (401, 403, 303), reached.text


def test_logout_without_this_sessions_csrf_token_is_refused_and_ends_nothing(
    served, database, users
):
    url = served
    with session(url, users["bo"]) as other:
        others = page_csrf(other)
    with session(url, users["ana"]) as client:
        before = stored_sessions(database)
        for fields in ({}, {"csrf_token": "0" * 64}, {"csrf_token": others}):
            refused = client.post("/logout", data=fields, follow_redirects=False)
            assert refused.status_code == 403, fields
            assert "csrf_token: missing or not this session&#39;s" in refused.text
            assert "set-cookie" not in refused.headers
        bare = client.post("/logout", follow_redirects=False)  # no body at all
        assert bare.status_code == 403
        cross = client.post(
            "/logout",
            data={"csrf_token": page_csrf(client)},
            headers={"Origin": "http://evil.example"},
            follow_redirects=False,
        )
        assert cross.status_code == 403 and "posted from this server" in cross.text
        assert stored_sessions(database) == before and signed_in(url, client)


def test_login_without_its_forms_csrf_token_is_refused_and_starts_nothing(served, database, users):
    url, token = served, users["ana"]
    _, another_forms = login_form(url)
    for csrf in ("", "0" * 64, another_forms):  # missing, made up, another form's
        refused = login(url, token, csrf=csrf)
        assert refused.status_code == 403, csrf
        assert "csrf_token: missing or not this login form&#39;s" in refused.text
        assert "opsloop_session" not in refused.headers.get("set-cookie", "")
    # The form's token without the pre-session cookie it was made from.
    _, csrf = login_form(url)
    bare = httpx.post(f"{url}/login", data={"token": token, "csrf_token": csrf}, timeout=TIMEOUT_S)
    assert bare.status_code == 403 and "set-cookie" not in bare.headers
    assert stored_sessions(database) == []
    assert login(url, token).status_code == 303 and len(stored_sessions(database)) == 1


def test_a_revoked_token_ends_every_session_it_started(served, database, users):
    url = served
    second = new_token(database, "ana")
    with (
        session(url, users["ana"]) as first,
        session(url, users["ana"]) as again,
        session(url, second) as other,
    ):
        assert signed_in(url, first) and signed_in(url, again) and signed_in(url, other)
        revoke_token(database, users["ana"])
        assert not signed_in(url, first) and not signed_in(url, again)
        assert signed_in(url, other)  # the same user's other token stands
    # The ended sessions' rows are gone.
    assert [row.token_sha256 for row in stored_sessions(database)] == [sha256(second)]


def test_a_disabled_user_or_a_changed_role_ends_the_session(served, database, users):
    url = served
    with session(url, users["bo"]) as viewer:
        set_user_disabled(database, "bo")
        assert not signed_in(url, viewer)
    set_user_disabled(database, "bo", False)
    with session(url, users["ana"]) as editor:
        assert "ana (editor)" in editor.get("/runs").text
        # An admin makes ana a viewer in the store: the session started as an editor ends.
        with database.write() as connection:
            connection.execute(
                tables.users.update().where(tables.users.c.name == "ana").values(role="viewer")
            )
        assert not signed_in(url, editor)
    with session(url, users["ana"]) as again:
        assert "ana (viewer)" in again.get("/runs").text


def test_sessions_end_when_idle_and_at_their_absolute_end(database, artifacts, users):
    clock = FakeClock()
    database.clock = clock
    lifetime = SessionLifetime(idle_s=600, absolute_s=3600)
    app = create_app(database, artifacts, allow_embedded=False, session_lifetime=lifetime)
    with running_server(app) as url:
        with session(url, users["ana"]) as client:
            # Each use moves the idle end: 599 s after the last use it still stands.
            for _ in range(2):
                clock.advance(599_000)
                assert signed_in(url, client)
            clock.advance(600_000)
            assert not signed_in(url, client)
        with session(url, users["ana"]) as busy:
            started = clock.now_ms
            while clock.now_ms - started < 3_500_000:
                clock.advance(500_000)
                assert signed_in(url, busy)
            clock.advance(3_600_000 - (clock.now_ms - started))  # 100 s after its last use
            assert not signed_in(url, busy)
        # Rows past their end are deleted when the next session starts.
        with session(url, users["bo"]):
            pass
        clock.advance(HOUR_MS)
        assert len(stored_sessions(database)) == 1
        with session(url, users["ana"]):
            assert [row.user_name for row in stored_sessions(database)] == ["ana"]


def test_a_token_holds_at_most_twenty_sessions_and_the_oldest_ends_first(
    database, artifacts, users
):
    clock = FakeClock()
    database.clock = clock
    app = create_app(database, artifacts, allow_embedded=False)
    with running_server(app) as url:
        cookies = []
        for _ in range(MAX_SESSIONS_PER_TOKEN + 2):
            clock.advance(1_000)
            cookies.append(login(url, users["ana"]).cookies["opsloop_session"])
        with session(url, users["bo"]) as other:
            assert signed_in(url, other)
        live = []
        for cookie in cookies:
            with stolen(url, cookie) as client:
                live.append(signed_in(url, client))
    assert live == [False, False] + [True] * MAX_SESSIONS_PER_TOKEN
    rows = stored_sessions(database)
    assert sorted(row.sha256 for row in rows if row.user_name == "ana") == sorted(
        sha256(cookie) for cookie in cookies[2:]
    )
    assert [row.user_name for row in rows].count("bo") == 1


def test_ended_sessions_are_deleted_by_page_requests_when_nobody_signs_in(
    database, artifacts, users
):
    clock = FakeClock()
    database.clock = clock
    lifetime = SessionLifetime(idle_s=600, absolute_s=3600)
    app = create_app(database, artifacts, allow_embedded=False, session_lifetime=lifetime)
    with running_server(app) as url:
        with session(url, users["bo"]):
            pass
        with session(url, users["ana"]) as client:
            for _ in range(3):  # ana's page every 4 minutes, bo gone
                clock.advance(240_000)
                assert signed_in(url, client)
            # bo's session ended 120 s ago; the lookups pruned it once 5 minutes had passed
            # since the sign-in's pruning (at 8 minutes: none had ended yet). The next
            # pruning is due at 13 minutes.
            assert sorted(row.user_name for row in stored_sessions(database)) == ["ana", "bo"]
            clock.advance(60_000)
            assert signed_in(url, client)
            assert [row.user_name for row in stored_sessions(database)] == ["ana"]


def test_every_server_on_the_store_shares_its_sessions(database, artifacts, users, store_uri):
    other = Database(store_uri)
    first = create_app(database, artifacts, allow_embedded=False)
    second = create_app(other, artifacts, allow_embedded=False)
    try:
        with running_server(first) as one, running_server(second) as two:
            cookie = login(one, users["ana"]).cookies["opsloop_session"]
            with stolen(one, cookie) as on_one, stolen(two, cookie) as on_two:
                assert signed_in(one, on_one) and signed_in(two, on_two)
                out = on_two.post(
                    "/logout", data={"csrf_token": page_csrf(on_one)}, follow_redirects=False
                )
                assert out.status_code == 303
                assert not signed_in(one, on_one)
    finally:
        other.dispose()


def _secure(header: str, name: str) -> bool:
    return bool(SimpleCookie(header)[name]["secure"])


def _set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Each cookie the answer sets, by name: its attributes, as the browser reads them."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        ((name, morsel),) = SimpleCookie(header).items()
        found[name] = {key: str(morsel[key]) for key in ("path", "domain", "secure", "httponly",
                                                        "samesite", "max-age")}  # fmt: skip
        found[name]["value"] = morsel.value
    return found


@pytest.mark.parametrize(
    ("setting", "proxies", "forwarded", "secure"),
    [
        ("auto", [], None, False),
        ("auto", [], "https", False),  # from a peer not trusted: ignored
        ("auto", ["10.0.0.0/8"], "https", False),  # the loopback peer is not in the list
        ("auto", ["127.0.0.1"], "https", True),
        ("auto", ["127.0.0.0/8"], "http, https", True),  # the nearest proxy's value counts
        ("auto", ["127.0.0.1"], "http", False),
        ("auto", ["127.0.0.1"], "gopher", False),
        ("always", [], None, True),
        ("always", [], "http", True),
        ("never", ["127.0.0.1"], "https", False),
    ],
)
def test_the_secure_flag_and_the_host_prefix_follow_the_setting_and_trusted_proxies_only(
    database, artifacts, users, setting, proxies, forwarded, secure
):
    app = create_app(
        database,
        artifacts,
        allow_embedded=False,
        secure_cookies=setting,
        trusted_proxies=proxies,
    )
    headers = {} if forwarded is None else {"X-Forwarded-Proto": forwarded}
    prefix = "__Host-" if secure else ""
    with running_server(app) as url:
        page = _set_cookies(httpx.get(f"{url}/login", headers=headers, timeout=TIMEOUT_S))
        assert list(page) == [f"{prefix}opsloop_login"]
        login_cookie = page[f"{prefix}opsloop_login"]
        # A __Host- cookie has Path=/ and no Domain, as browsers require of the prefix.
        assert login_cookie["path"] == ("/" if secure else "/login")
        assert login_cookie["domain"] == "" and bool(login_cookie["secure"]) is secure
        assert (login_cookie["httponly"], login_cookie["samesite"]) == ("True", "strict")
        signed = login(url, users["ana"], **headers)
        assert signed.status_code == 303, signed.text
        answered = _set_cookies(signed)
        assert set(answered) == {f"{prefix}opsloop_session", f"{prefix}opsloop_login"}
        cookie = answered[f"{prefix}opsloop_session"]
        assert (cookie["path"], cookie["domain"], bool(cookie["secure"])) == ("/", "", secure)
        assert (cookie["httponly"], cookie["samesite"], cookie["max-age"]) == (
            "True",
            "strict",
            "",
        )
        # The login cookie is cleared where it was set.
        cleared = answered[f"{prefix}opsloop_login"]
        assert (cleared["value"], cleared["max-age"]) == ("", "0")
        assert cleared["path"] == login_cookie["path"]
        # A page reads the session by the name its request's mode gives, and only by it.
        sid = cookie["value"]
        other = "opsloop_session" if secure else "__Host-opsloop_session"
        for name, shown in ((f"{prefix}opsloop_session", 200), (other, 303)):
            answer = httpx.get(
                f"{url}/runs",
                headers={**headers, "Cookie": f"{name}={sid}"},
                follow_redirects=False,
                timeout=TIMEOUT_S,
            )
            assert answer.status_code == shown, name
        # Logging out clears the cookie by the same name, path and flags.
        csrf = re.search(
            r'name="csrf_token" value="([0-9a-f]{64})"',
            httpx.get(
                f"{url}/runs",
                headers={**headers, "Cookie": f"{prefix}opsloop_session={sid}"},
                timeout=TIMEOUT_S,
            ).text,
        ).group(1)
        out = httpx.post(
            f"{url}/logout",
            data={"csrf_token": csrf},
            headers={**headers, "Cookie": f"{prefix}opsloop_session={sid}"},
            timeout=TIMEOUT_S,
        )
        assert out.status_code == 303
        gone = _set_cookies(out)[f"{prefix}opsloop_session"]
        assert (gone["value"], gone["max-age"], gone["path"], bool(gone["secure"])) == (
            "",
            "0",
            "/",
            secure,
        )
    assert stored_sessions(database) == []


def test_the_settings_are_checked_before_serving(database):
    with pytest.raises(ValueError, match="secure_cookies: must be one of auto, always, never"):
        server_app({"port": 5005, "secure_cookies": "sometimes"})
    with pytest.raises(ValueError, match=r"trusted_proxies: 'proxy\.example' is not an IP"):
        server_app({"port": 5005, "trusted_proxies": ["proxy.example"]})
    with pytest.raises(ValueError, match="session_idle_s: must be at most session_max_s"):
        server_app({"port": 5005, "session_idle_s": 7200, "session_max_s": 3600})
    assert main(["--port", "5005", "--secure-cookies", "sometimes"]) == 2
    app = server_app(
        {"port": 5005, "secure_cookies": "always", "trusted_proxies": ["10.0.0.0/8"],
         "session_idle_s": 300, "session_max_s": 900}
    )  # fmt: skip
    assert app.state.secure_cookies == "always"
    assert app.state.dashboard_sessions.lifetime == SessionLifetime(300, 900)


@pytest.mark.slow
def test_server_workers_share_sessions_and_take_the_settings_from_the_command_line(database, users):
    """``opsloop server --workers 2`` with the cookie and session settings: each worker
    marks the cookies by them, and a session one worker started holds on the other."""
    process, url = started_process(
        "server",
        "--workers",
        "2",
        "--trusted-proxies",
        "127.0.0.1",
        "--session-idle",
        "300",
        health="/api/v1/health",
        deadline_s=300,
    )
    try:
        secure = [login(url, users["ana"], **{"X-Forwarded-Proto": "https"}) for _ in range(4)]
        plain = login(url, users["ana"])
        cookies = [r.cookies["__Host-opsloop_session"] for r in secure]
        cookies.append(plain.cookies["opsloop_session"])
        assert all(
            _secure(h, "__Host-opsloop_session")
            for r in secure
            for h in r.headers.get_list("set-cookie")
            if h.startswith("__Host-opsloop_session=")
        )
        assert not _secure(plain.headers["set-cookie"], "opsloop_session")
        rows = stored_sessions(database)
        assert len(rows) == 5 and {r.idle_until_ms - r.created_ms for r in rows} == {300_000}
        # Every session holds on every request, whichever worker answers it.
        for cookie in cookies[-1:]:
            with stolen(url, cookie) as client:
                assert all(signed_in(url, client) for _ in range(4))
        for cookie in cookies[:-1]:
            with httpx.Client(
                base_url=url,
                headers={
                    "X-Forwarded-Proto": "https",
                    "Cookie": f"__Host-opsloop_session={cookie}",
                },
                timeout=TIMEOUT_S,
            ) as client:
                assert all(signed_in(url, client) for _ in range(4))
    finally:
        process.terminate()
        process.wait(timeout=60)
