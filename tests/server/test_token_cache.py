"""Tokens remembered by the data plane: a revoked token, a disabled user's token and an
expired token are refused from the next request on, over HTTP on a real server."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from tests.server.running import running_server
from tests.serving.served_models import classifier

from opsloop.registry import ModelRegistry, add_user
from opsloop.registry.token_cache import TokenCache
from opsloop.registry.users import revoke_token, rotate_token, set_user_disabled
from opsloop.server.data_plane import create_data_plane_app
from opsloop.serving import Deployments, Variant
from opsloop.store import Database, tables

RECORD = {"age": 40, "income": 52_000.0}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_is_remembered_until_the_audit_log_moves_or_its_time_is_up(tmp_path):
    wall = Clock(1_000)
    db = Database(f"sqlite:///{tmp_path / 'store.db'}", clock=lambda: int(wall.now))
    monotonic = Clock(0.0)
    _, token = add_user(db, "ana", "viewer", expires_ms=5_000)
    cache = TokenCache(db, ttl_s=60.0, monotonic=monotonic)
    cache.follow()
    assert cache.user(token).name == "ana"
    # Deleting the token behind the audit log's back shows the cache answers from memory...
    with db.write() as connection:
        connection.execute(sa.delete(tables.api_tokens))
    cache.follow()
    assert cache.user(token).name == "ana"
    # ...until its entry ages out,
    monotonic.now = 60.0
    assert cache.user(token) is None
    # and an audited change makes it read again at once.
    _, other = add_user(db, "bo", "viewer", expires_ms=5_000)
    cache.follow()
    assert cache.user(other).name == "bo"
    wall.now = 4_999
    assert cache.user(other).name == "bo"
    wall.now = 5_000  # expiry needs no audit entry: the remembered expiry is checked
    assert cache.user(other) is None


def test_with_a_check_interval_the_audit_log_is_read_once_an_interval(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    monotonic = Clock(0.0)
    _, token = add_user(db, "ana", "viewer")
    cache = TokenCache(db, check_interval_s=5.0, monotonic=monotonic)
    first = cache.follow()
    assert cache.user(token).name == "ana"
    revoke_token(db, token)
    # Within the interval the revision read stands, so the revocation is not seen yet...
    monotonic.now = 4.9
    assert cache.follow() == first
    assert cache.user(token).name == "ana"
    # ...and once it passed, the next follow reads the moved revision and forgets the token.
    monotonic.now = 5.0
    assert cache.follow() > first
    assert cache.user(token) is None


def test_serve_with_a_check_interval_reads_the_revision_once_an_interval(database, artifacts):
    timed = create_data_plane_app(database, artifacts, check_interval_s=30.0)
    every = create_data_plane_app(database, artifacts)
    try:
        assert timed.state.token_cache.check_interval_s == 30.0
        assert every.state.token_cache.check_interval_s == 0
    finally:
        timed.state.runtime.close()
        every.state.runtime.close()


@pytest.fixture
def served(database, artifacts):
    registry = ModelRegistry(database, artifacts, actor="owner")
    model, frame = classifier()
    registry.register("credit", model, input_schema=frame)
    Deployments(database).deploy("api", [Variant("stable", "credit", version=1)])
    app = create_data_plane_app(database, artifacts)
    with running_server(app, health_path="/v2/health/live") as url:
        yield url, app
    app.state.runtime.close()


def _predict(url: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/deployments/api/predict",
        json=[RECORD],
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_a_revoked_or_disabled_token_is_refused_from_the_next_request_on(served, database):
    url, _ = served
    _, ana = add_user(database, "ana", "viewer")
    _, bo = add_user(database, "bo", "viewer")
    for _ in range(3):  # the later ones answered from memory
        assert _predict(url, ana).status_code == 200
        assert _predict(url, bo).status_code == 200
    revoke_token(database, ana)
    refused = _predict(url, ana)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "unknown or revoked API token"
    assert _predict(url, bo).status_code == 200
    set_user_disabled(database, "bo")
    assert _predict(url, bo).status_code == 401
    set_user_disabled(database, "bo", False)
    assert _predict(url, bo).status_code == 200
    new = rotate_token(database, "bo")
    assert _predict(url, bo).status_code == 401
    assert _predict(url, new).status_code == 200


def test_the_installation_token_stops_at_the_first_user(served, database):
    url, app = served
    installation = app.state.installation_token
    assert _predict(url, installation).status_code == 200
    assert _predict(url, installation).status_code == 200  # "no users" remembered
    add_user(database, "ana", "viewer")
    answer = _predict(url, installation)
    assert answer.status_code == 401
    assert "installation token stops working" in answer.json()["detail"]


def test_a_lookup_that_read_before_a_revocation_does_not_cache_the_revoked_token(
    tmp_path, monkeypatch
):
    """A request's lookup reads the token as active; before it stores that answer, the token
    is revoked and another request's follow() sees the new audit id and empties the cache.
    The stale answer serves the request that read it, and is not kept for the next one."""
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    _, token = add_user(db, "ana", "editor")
    cache = TokenCache(db, ttl_s=60.0)
    cache.follow()
    from opsloop.registry import token_cache as module

    lookup = module.resolve_token

    def revoked_meanwhile(database, given, **options):
        found = lookup(database, given, **options)
        monkeypatch.setattr(module, "resolve_token", lookup)
        revoke_token(db, given)
        cache.follow()  # another request, after the revocation
        return found

    monkeypatch.setattr(module, "resolve_token", revoked_meanwhile)
    assert cache.user(token).name == "ana"
    cache.follow()
    assert cache.user(token) is None
