"""Where an audited change came from: over HTTP (which token, which client address) or from
this Python process (its program name and host).

An incident review asks "who rolled this back, and from where"; the actor names who, the
origin names from where. It is a short JSON object kept with each audit entry:
``{"via": "http", "token": "<token id>", "client": "<address>"}`` or ``{"via": "python",
"process": "<program>", "host": "<host name>"}``.

The server knows the origin of a request; the store and the registry, which write the
entries, must not import the server. So the origin travels in a context variable defined
here: the server opens a :class:`RequestOrigin` for each request (:func:`request_origin`)
and fills in the token once the token lookup found it; :func:`current_origin` reads it
where an entry is written, and gives the process's own origin anywhere else (a script, the
command line on a local store, a data plane's rollout controller).

>>> import json
>>> json.loads(current_origin())["via"]
'python'
>>> with request_origin("127.0.0.1") as origin:
...     origin.token = "eeea94a2a1f0"
...     current_origin()
'{"client":"127.0.0.1","token":"eeea94a2a1f0","via":"http"}'
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

#: The longest origin kept (characters of its JSON text).
ORIGIN_LENGTH = 300
# Each text field of an origin is cut to this many characters, so the whole stays bounded.
_FIELD_LENGTH = 64

_REQUEST: contextvars.ContextVar[RequestOrigin | None] = contextvars.ContextVar(
    "opsloop_request_origin", default=None
)


def _field(value: str) -> str:
    # Quotes, backslashes and unprintable characters would be escaped in JSON (up to six
    # characters each): replaced, every field's JSON is at most its own length plus quotes.
    kept = (c if c.isprintable() and c not in '"\\' else "?" for c in value)
    return "".join(kept)[:_FIELD_LENGTH]


def origin_text(document: dict[str, str | None]) -> str:
    """``document`` (three fields at most) as the origin's canonical JSON text: keys sorted,
    each value cut to 64 characters, so the whole stays within :data:`ORIGIN_LENGTH`.

    >>> origin_text({"via": "python", "process": "x" * 100, "host": "h"})[:40]
    '{"host":"h","process":"xxxxxxxxxxxxxxxxx'
    >>> len(origin_text({"via": "python", "process": "x" * 100, "host": "h"}))
    104
    >>> origin_text({"via": "python", "process": 'a"b' + chr(92) + chr(10) + "é", "host": ""})
    '{"host":"","process":"a?b??é","via":"python"}'
    """
    bounded = {key: None if value is None else _field(value) for key, value in document.items()}
    return json.dumps(bounded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def program_name(argv: list[str] | None = None) -> str:
    """The name this process was started as: a script's file name, a console command's
    name, the package of ``python -m package``; ``python`` when there is none (a REPL).

    >>> program_name(["/usr/local/bin/opsloop", "audit"])
    'opsloop'
    >>> program_name(["/x/site-packages/pytest/__main__.py"]), program_name([""])
    ('pytest', 'python')
    """
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0] or argv[0] == "-c":
        return "python"
    path = os.path.normpath(argv[0])
    if os.path.basename(path) == "__main__.py":
        return os.path.basename(os.path.dirname(path)) or "python"
    return os.path.basename(path) or "python"


@lru_cache(maxsize=1)
def process_origin() -> str:
    """This process's own origin: ``python``, its program name and its host.

    >>> sorted(json.loads(process_origin()))
    ['host', 'process', 'via']
    """
    return origin_text({"via": "python", "process": program_name(), "host": socket.gethostname()})


@dataclass
class RequestOrigin:
    """The origin of the request being served: the client's address, and the id of the
    token it authenticated with (``None`` until its token was looked up; ``installation``
    for the server's installation token).

    >>> RequestOrigin("10.0.0.7", "abc").text()
    '{"client":"10.0.0.7","token":"abc","via":"http"}'
    """

    client: str | None
    token: str | None = None

    def text(self) -> str:
        """The origin as :func:`origin_text` writes it.

        >>> RequestOrigin(None).text()
        '{"client":null,"token":null,"via":"http"}'
        """
        return origin_text({"via": "http", "token": self.token, "client": self.client})


@contextmanager
def request_origin(client: str | None) -> Iterator[RequestOrigin]:
    """Serve one request from ``client``: audited changes made inside are ``via: http``.

    The same :class:`RequestOrigin` is seen by the request's dependencies and its route,
    also where they run on another thread (a copied context holds the same object), so the
    token found by the lookup reaches the entry written by the route.

    >>> with request_origin("::1") as origin:
    ...     current_request() is origin
    True
    >>> current_request() is None
    True
    """
    origin = RequestOrigin(client)
    reset = _REQUEST.set(origin)
    try:
        yield origin
    finally:
        _REQUEST.reset(reset)


@contextmanager
def acting_in_process() -> Iterator[None]:
    """Record changes made inside as this process's own, even while serving a request:
    a data plane's rollout controller decides a rollback itself, whatever request's
    answer tipped its gate.

    >>> with request_origin("::1"), acting_in_process():
    ...     json.loads(current_origin())["via"]
    'python'
    """
    reset = _REQUEST.set(None)
    try:
        yield
    finally:
        _REQUEST.reset(reset)


def current_request() -> RequestOrigin | None:
    """The request being served in this context, ``None`` outside one.

    >>> current_request() is None
    True
    """
    return _REQUEST.get()


def current_origin() -> str:
    """The origin of a change made now: the request's, else this process's.

    >>> current_origin() == process_origin()
    True
    """
    request = _REQUEST.get()
    return process_origin() if request is None else request.text()


def describe_origin(origin: object) -> str:
    """An origin (parsed) in a few words, for tables people read; empty for none (an entry
    written before origins were recorded).

    >>> describe_origin({"via": "http", "token": "eeea94a2a1f0", "client": "127.0.0.1"})
    'http from 127.0.0.1, token eeea94a2a1f0'
    >>> describe_origin({"via": "python", "process": "opsloop", "host": "build-7"})
    'python: opsloop on build-7'
    >>> describe_origin(None), describe_origin({"via": "ftp"})
    ('', '{"via":"ftp"}')
    """
    if not isinstance(origin, dict):
        return ""
    via = origin.get("via")
    if via == "http":
        client, token = origin.get("client") or "an unknown address", origin.get("token")
        return f"http from {client}, token {token or 'none'}"
    if via == "python":
        return f"python: {origin.get('process')} on {origin.get('host')}"
    return json.dumps(origin, sort_keys=True, separators=(",", ":"))
