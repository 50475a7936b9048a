"""The dashboard's cookies, and when they are marked ``Secure``.

Two cookies, both ``HttpOnly`` (page scripts cannot read them), ``SameSite=Strict`` (no
other site's page or form sends them) and without ``Max-Age`` (they end with the browser):

- ``opsloop_session``: the session id (:mod:`opsloop.registry.dashboard_sessions`), never
  the API token;
- ``opsloop_login``: the login form's pre-session value, 256 random bits the login form's
  CSRF token is derived from (:mod:`.login_pages`), sent to ``/login`` only over plain
  HTTP.

A ``Secure`` cookie is named with the ``__Host-`` prefix (``__Host-opsloop_session``,
``__Host-opsloop_login``): browsers then take it only from an HTTPS answer of this very
host, with ``Path=/`` and no ``Domain``, so a neighbouring subdomain or a plain-HTTP
answer cannot plant one (a session fixed in advance, or a login nonce the attacker
knows). That rule is why the secure login cookie has ``Path=/``. A request is read by the
name its own mode gives: a secure request's plain-named cookie is ignored.

``Secure`` follows the server's ``secure_cookies`` setting (``opsloop server
--secure-cookies``): ``always``, ``never``, or ``auto`` (the default), where it is set when
the request arrived over HTTPS. Behind a proxy that ends TLS a request arrives over HTTP:
``auto`` then needs the proxy named in ``--trusted-proxies``, whose ``X-Forwarded-Proto``
says what the browser used (:mod:`opsloop.server.forwarded_headers`), or ``always``.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError

#: The session cookie (over plain HTTP; see :func:`cookie_name`).
COOKIE = "opsloop_session"
#: The login form's pre-session cookie (over plain HTTP).
LOGIN_COOKIE = "opsloop_login"
#: The prefix of a ``Secure`` cookie's name, which browsers accept only with ``Secure``,
#: ``Path=/`` and no ``Domain``.
SECURE_PREFIX = "__Host-"
#: The values of the ``secure_cookies`` setting.
SECURE_COOKIES = ("auto", "always", "never")
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")


def secure_cookies_setting(setting: object) -> str:
    """``setting`` checked as the server's ``secure_cookies`` setting.

    >>> secure_cookies_setting("always")
    'always'
    >>> secure_cookies_setting("yes")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: secure_cookies: must be one of auto, always, never, got...
    """
    if setting not in SECURE_COOKIES:
        raise InvalidArgumentError(
            f"secure_cookies: must be one of {', '.join(SECURE_COOKIES)}, got {setting!r}"
        )
    return setting  # type: ignore[return-value]


def is_secure(request: Request) -> bool:
    """Whether the cookies set in answer to ``request`` are marked ``Secure``.

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "auto"
    >>> def request(scheme):
    ...     return Request({"type": "http", "app": app, "scheme": scheme, "headers": [],
    ...                     "server": ("ops.example", 80), "path": "/"})
    >>> is_secure(request("https")), is_secure(request("http"))
    (True, False)
    >>> app.state.secure_cookies = "always"; is_secure(request("http"))
    True
    """
    setting = request.app.state.secure_cookies
    return setting == "always" or (setting == "auto" and request.url.scheme == "https")


def cookie_name(request: Request, name: str = COOKIE) -> str:
    """The name of cookie ``name`` in answer to ``request``, and the one read from it: with
    the ``__Host-`` prefix when the cookies are ``Secure`` (:func:`is_secure`).

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "auto"
    >>> def request(scheme):
    ...     return Request({"type": "http", "app": app, "scheme": scheme, "headers": [],
    ...                     "server": ("ops.example", 80), "path": "/"})
    >>> cookie_name(request("https")), cookie_name(request("http"), LOGIN_COOKIE)
    ('__Host-opsloop_session', 'opsloop_login')
    """
    return SECURE_PREFIX + name if is_secure(request) else name


def session_cookie(request: Request) -> str | None:
    """The session id ``request`` carries in the cookie its mode names, ``None`` if none.

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "always"
    >>> def sent(cookie):
    ...     return session_cookie(Request({"type": "http", "app": app, "scheme": "http",
    ...         "headers": [(b"cookie", cookie.encode())], "path": "/"}))
    >>> sent("__Host-opsloop_session=abc"), sent("opsloop_session=abc")
    ('abc', None)
    """
    return request.cookies.get(cookie_name(request))


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    """Give the browser session ``session_id`` in its cookie.

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "always"
    >>> request = Request({"type": "http", "app": app, "scheme": "http", "headers": [],
    ...                    "server": ("ops.example", 80), "path": "/login"})
    >>> response = Response(); set_session_cookie(response, request, "s" * 43)
    >>> response.headers["set-cookie"]
    '__Host-opsloop_session=sss...; HttpOnly; Path=/; SameSite=strict; Secure'
    """
    response.set_cookie(
        cookie_name(request),
        session_id,
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Have the browser drop its session cookie.

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "never"
    >>> request = Request({"type": "http", "app": app, "scheme": "https", "headers": [],
    ...                    "server": ("ops.example", 443), "path": "/logout"})
    >>> response = Response(); clear_session_cookie(response, request)
    >>> response.headers["set-cookie"]
    'opsloop_session=""; expires=...; HttpOnly; Max-Age=0; Path=/; SameSite=strict'
    """
    response.delete_cookie(
        cookie_name(request), path="/", httponly=True, samesite="strict", secure=is_secure(request)
    )


def login_nonce(request: Request) -> tuple[str, bool]:
    """The login form's pre-session value: the browser's, when it sent a well-formed one,
    else a new one; and whether it is new (then :func:`set_login_cookie` gives it).

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "never"
    >>> fresh, new = login_nonce(Request({"type": "http", "app": app, "headers": []}))
    >>> bool(_NONCE.fullmatch(fresh)), new
    (True, True)
    >>> kept = login_nonce(Request({"type": "http", "app": app, "headers": [
    ...     (b"cookie", f"{LOGIN_COOKIE}={fresh}".encode())]}))
    >>> kept == (fresh, False)
    True
    """
    given = given_login_nonce(request)
    if given is not None:
        return given, False
    return secrets.token_urlsafe(32), True


def given_login_nonce(request: Request) -> str | None:
    """The pre-session value the browser sent with its login, ``None`` if none (or not
    one this server would give).

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "never"
    >>> def sent(value):
    ...     cookie = f"{LOGIN_COOKIE}={value}".encode()
    ...     return given_login_nonce(
    ...         Request({"type": "http", "app": app, "headers": [(b"cookie", cookie)]}))
    >>> sent("n" * 43) == "n" * 43, sent("short"), sent("n" * 42 + "!")
    (True, None, None)
    """
    given = request.cookies.get(cookie_name(request, LOGIN_COOKIE))
    return given if given is not None and _NONCE.fullmatch(given) else None


def _login_path(request: Request) -> str:
    # A __Host- cookie must have Path=/; over plain HTTP it goes to /login only.
    return "/" if is_secure(request) else "/login"


def set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    """Give the browser the login form's pre-session value, for ``/login`` only (for the
    whole host when ``Secure``, as its ``__Host-`` name requires).

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "auto"
    >>> request = Request({"type": "http", "app": app, "scheme": "https", "headers": [],
    ...                    "server": ("ops.example", 443), "path": "/login"})
    >>> response = Response(); set_login_cookie(response, request, "n" * 43)
    >>> response.headers["set-cookie"]
    '__Host-opsloop_login=nnn...; HttpOnly; Path=/; SameSite=strict; Secure'
    """
    response.set_cookie(
        cookie_name(request, LOGIN_COOKIE),
        nonce,
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
        path=_login_path(request),
    )


def clear_login_cookie(response: Response, request: Request) -> None:
    """Have the browser drop the pre-session value once it has signed in.

    >>> from fastapi import FastAPI
    >>> app = FastAPI(); app.state.secure_cookies = "auto"
    >>> request = Request({"type": "http", "app": app, "scheme": "http", "headers": [],
    ...                    "server": ("ops.example", 80), "path": "/login"})
    >>> response = Response(); clear_login_cookie(response, request)
    >>> response.headers["set-cookie"]
    'opsloop_login=""; expires=...; HttpOnly; Max-Age=0; Path=/login; SameSite=strict'
    """
    response.delete_cookie(
        cookie_name(request, LOGIN_COOKIE),
        path=_login_path(request),
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )
