"""Signing in to the dashboard over HTTP as a browser does: the login page first (its
pre-session cookie and the form's CSRF token), then the form's post."""

from __future__ import annotations

import re

import httpx

# A page on a busy shared machine can take longer than httpx's 5 s default.
TIMEOUT_S = 60.0
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def login_page(url: str, **headers) -> tuple[str, str, str]:
    """The login page's pre-session cookie (its name, ``__Host-`` prefixed where the server
    marks it Secure, and its value) and the CSRF token its form carries."""
    page = httpx.get(f"{url}/login", headers=headers, timeout=TIMEOUT_S)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    (name,) = [n for n in ("opsloop_login", "__Host-opsloop_login") if n in page.cookies]
    return name, page.cookies[name], found.group(1)


def login_form(url: str) -> tuple[str, str]:
    """The login page's pre-session cookie and the CSRF token its form carries."""
    _, nonce, csrf = login_page(url)
    return nonce, csrf


def login(
    url: str, token: str, next_path: str = "/runs", *, csrf: str | None = None, **headers
) -> httpx.Response:
    """Post the login form with ``token``, and the CSRF token the page gave (or ``csrf``,
    ``""`` for none)."""
    name, nonce, given = login_page(url, **headers)
    data = {"token": token, "next": next_path}
    chosen = given if csrf is None else csrf
    if chosen:
        data["csrf_token"] = chosen
    return httpx.post(
        f"{url}/login",
        data=data,
        cookies={name: nonce},
        headers=headers,
        follow_redirects=False,
        timeout=TIMEOUT_S,
    )


def session(url: str, token: str) -> httpx.Client:
    """A client signed in with ``token``: it holds the session cookie the login set."""
    response = login(url, token)
    assert response.status_code == 303, response.text
    cookie = response.cookies["opsloop_session"]
    return httpx.Client(base_url=url, cookies={"opsloop_session": cookie}, timeout=TIMEOUT_S)


def page_csrf(client: httpx.Client, path: str = "/runs") -> str:
    """The CSRF token of ``client``'s session, as its pages carry it (the logout form)."""
    found = _CSRF.search(client.get(path).text)
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)
