"""Signing a benchmark's HTTP client in to the dashboard, as a person does: the login page's
CSRF token, then the form's post (the client keeps the session's cookie). Shared by the
dashboard benchmarks, run as scripts from this folder."""

from __future__ import annotations

import re


def log_in(client, token: str) -> None:
    """Sign ``client`` in through the login form (it keeps the session's cookie)."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert csrf is not None, page.text
    answer = client.post(
        "/login",
        data={"token": token, "next": "/runs", "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
