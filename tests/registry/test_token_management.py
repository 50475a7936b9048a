"""Token management: ids, expiry, last use, revoke by id, rotate, disable; over HTTP too."""

from __future__ import annotations

import httpx
import pytest
from tests.server.running import running_server

from opsloop.registry import (
    HttpModelRegistry,
    ModelRegistry,
    PermissionDenied,
    add_user,
    authenticate,
    list_tokens,
    new_token,
    revoke_token,
    rotate_token,
    set_user_disabled,
    token_id,
)
from opsloop.server import create_app
from opsloop.store import tables
from opsloop.store.database import now_ms


def test_a_token_is_revoked_by_its_public_id_and_the_audit_log_says_who(registry):
    add_user(registry.db, "root", "admin")
    _, first = add_user(registry.db, "ana", "editor")
    second = new_token(registry.db, "ana")
    listed = list_tokens(registry.db, "ana")
    assert sorted(listed["token_id"]) == sorted([token_id(first), token_id(second)])
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in listed["token_id"])
    assert revoke_token(registry.db, token_id(first), actor="root") == token_id(first)
    assert authenticate(registry.db, first) is None
    assert authenticate(registry.db, second).name == "ana"
    with pytest.raises(ValueError, match="no active API token with id"):
        revoke_token(registry.db, token_id(first))
    with pytest.raises(ValueError, match="token: give an API token"):
        revoke_token(registry.db, "0123")
    entries = registry.audit()
    revoked = entries[entries["action"] == "revoke_token"]
    assert revoked["actor"].tolist() == ["root"]
    # A named actor must be an admin.
    with pytest.raises(PermissionDenied, match="user 'ana' has role 'editor'; this needs"):
        revoke_token(registry.db, token_id(second), actor="ana")
    assert authenticate(registry.db, second).name == "ana"
    assert revoked["entity"].tolist() == ["user:ana"]
    assert registry.verify_audit_log().ok


def test_expiry_and_last_use_follow_an_injected_clock(registry):
    _, token = add_user(registry.db, "bo", "viewer", expires_ms=10_000_000)
    assert authenticate(registry.db, token, at_ms=9_999_999).name == "bo"
    assert authenticate(registry.db, token, at_ms=10_000_000) is None
    assert list_tokens(registry.db)["last_used_ms"].tolist() == [9_999_999]
    # Uses within a minute of the recorded one write nothing; later ones move it.
    _, other = add_user(registry.db, "cy", "viewer")
    for at in (1_000_000, 1_030_000, 1_059_999):
        authenticate(registry.db, other, at_ms=at)
    assert list_tokens(registry.db, "cy")["last_used_ms"].tolist() == [1_000_000]
    authenticate(registry.db, other, at_ms=1_060_000)
    assert list_tokens(registry.db, "cy")["last_used_ms"].tolist() == [1_060_000]
    with pytest.raises(ValueError, match="expires_ms must be a positive integer"):
        add_user(registry.db, "di", "viewer", expires_ms=True)
    # Nothing of the refused call was stored.
    assert "di" not in set(list_tokens(registry.db)["user"])


def test_rotate_revokes_every_active_token_and_disable_stops_all(registry):
    _, first = add_user(registry.db, "ed", "editor")
    second = new_token(registry.db, "ed")
    third = rotate_token(registry.db, "ed", expires_ms=now_ms() + 60_000)
    assert authenticate(registry.db, first) is None and authenticate(registry.db, second) is None
    assert authenticate(registry.db, third).name == "ed"
    frame = list_tokens(registry.db, "ed")
    assert frame["revoked_ms"].notna().tolist() == [True, True, False]
    set_user_disabled(registry.db, "ed")
    assert authenticate(registry.db, third) is None
    # A disabled user cannot act locally either.
    with pytest.raises(PermissionDenied, match="user 'ed' is disabled"):
        ModelRegistry(registry.db, registry.artifacts, actor="ed").register(
            "m", b"\x08\x01", flavor="onnx"
        )
    set_user_disabled(registry.db, "ed", False)
    assert authenticate(registry.db, third).name == "ed"
    with pytest.raises(ValueError, match="unknown user 'nobody'"):
        rotate_token(registry.db, "nobody")


def test_over_http_revoked_expired_and_disabled_tokens_get_401(registry):
    _, admin = add_user(registry.db, "root", "admin")
    _, revoked = add_user(registry.db, "ana", "viewer")
    _, expiring = add_user(registry.db, "bo", "viewer", expires_ms=now_ms() + 3_600_000)
    _, disabled = add_user(registry.db, "cy", "viewer")
    revoke_token(registry.db, token_id(revoked))
    set_user_disabled(registry.db, "cy")
    # Expire bo's token as time passing would, without waiting for it.
    with registry.db.write() as connection:
        connection.execute(
            tables.api_tokens.update()
            .where(tables.api_tokens.c.sha256.startswith(token_id(expiring)))
            .values(expires_ms=now_ms() - 1)
        )
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        for token in (revoked, expiring, disabled):
            answer = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, answer.text
            assert answer.json()["detail"] == "unknown or revoked API token"
        working = HttpModelRegistry(url, token=admin)
        assert working.list_models().empty
        working.close()
    assert list_tokens(registry.db, "root")["last_used_ms"].notna().all()
