"""The Host header check: the server answers only to the names it is meant to be reached by.

A web page can make a browser send requests to ``127.0.0.1`` by pointing a name it
controls at that address (DNS rebinding); the browser then sends ``Host: attacker.example``.
Refusing any Host not on the allow-list stops that. The list holds the loopback names
(``localhost``, ``127.0.0.1``, ``::1``) and whatever the server's owner adds (``opsloop
server`` adds the address it binds and ``--allowed-hosts``); the port is not compared.
A refused request gets a 400 whose message names the rule.

>>> host_name("[::1]:5005"), host_name("LocalHost:80"), host_name("example.com")
('::1', 'localhost', 'example.com')
"""

from __future__ import annotations

import json
from collections.abc import Iterable

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_name(header: str) -> str:
    """The host part of a Host header value (port and IPv6 brackets removed, lower case).

    >>> host_name("127.0.0.1:8080")
    '127.0.0.1'
    """
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value  # a bare name, or an IPv6 address without brackets


class HostCheck:
    """ASGI middleware answering 400 to HTTP requests whose Host is not in ``allowed``.

    >>> sorted(HostCheck(None, ["Example.com:5005", "[::1]"]).allowed)
    ['127.0.0.1', '::1', 'example.com', 'localhost']
    """

    def __init__(self, app, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(LOOPBACK_HOSTS) | {host_name(name) for name in allowed}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value for key, value in scope["headers"] if key == b"host"), None)
        host = None if header is None else header.decode("latin-1")
        if host is not None and host_name(host) in self.allowed:
            await self.app(scope, receive, send)
            return
        names = ", ".join(sorted(self.allowed))
        given = "no Host header" if host is None else f"Host {host!r}"
        detail = (
            f"{given} is not allowed: this server answers only to {names}; "
            "its owner can add names with 'opsloop server --allowed-hosts'"
        )
        body = json.dumps({"detail": detail, "error": "HostNotAllowed"}).encode()
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
