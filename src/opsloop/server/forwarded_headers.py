"""``X-Forwarded-Proto`` and ``X-Forwarded-For``, honoured only from the proxies named.

A reverse proxy that ends TLS passes the request on over plain HTTP, and says in these
headers that the browser used HTTPS and from which address. Anyone can send the same
headers, so they are read only when the peer the server sees is one of the server's
``trusted_proxies`` (addresses or networks, ``opsloop server --trusted-proxies``); from any
other peer they are ignored, as they are when none is named (the default). The ASGI
server's own handling of them is switched off where opsloop starts it (uvicorn would
otherwise trust loopback peers), so this is the one rule.

From a trusted proxy, the request's scheme becomes the last ``X-Forwarded-Proto`` value
(``http`` or ``https``; anything else is ignored) and its client the nearest address of
``X-Forwarded-For`` that is not itself a trusted proxy, which the audit log then records
(:mod:`.request_origin`). The scheme decides whether the dashboard's cookies are marked
``Secure`` under the ``auto`` setting (:mod:`opsloop.ui.session_cookies`).

>>> import asyncio
>>> seen = []
>>> async def app(scope, receive, send):
...     seen.append((scope["scheme"], scope["client"][0]))
>>> trusting = ForwardedByTrustedProxies(app, trusted_proxies(["10.0.0.0/8"]))
>>> def request(peer, *headers):
...     scope = {"type": "http", "scheme": "http", "client": (peer, 1), "headers": list(headers)}
...     asyncio.run(trusting(scope, None, None))
>>> proto = (b"x-forwarded-proto", b"https")
>>> chain = (b"x-forwarded-for", b"203.0.113.9, 10.1.1.1")
>>> request("10.0.0.2", proto, chain); request("192.0.2.7", proto, chain)
>>> seen
[('https', '203.0.113.9'), ('http', '192.0.2.7')]
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from opsloop.errors import InvalidArgumentError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: The most networks a server may name as trusted proxies.
MAX_TRUSTED_PROXIES = 64
_SCHEMES = {"http": "http", "https": "https", "ws": "ws", "wss": "wss"}


def trusted_proxies(names: Iterable[str]) -> tuple[Network, ...]:
    """``names`` (addresses, or networks as ``10.0.0.0/8``) checked as the server's
    ``trusted_proxies`` setting.

    >>> trusted_proxies(["127.0.0.1", "10.0.0.0/8", "::1"])
    (IPv4Network('127.0.0.1/32'), IPv4Network('10.0.0.0/8'), IPv6Network('::1/128'))
    >>> trusted_proxies(["proxy.example"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: trusted_proxies: 'proxy.example' is not an IP address...
    >>> trusted_proxies("10.0.0.1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: trusted_proxies must be a list of addresses, got the...
    """
    if isinstance(names, str):
        # A string is iterable too, and would trust each of its characters.
        raise InvalidArgumentError(
            f"trusted_proxies must be a list of addresses, got the string {names!r}"
        )
    networks = []
    for name in names:
        try:
            networks.append(ipaddress.ip_network(str(name).strip(), strict=False))
        except ValueError:
            raise InvalidArgumentError(
                f"trusted_proxies: {str(name)[:80]!r} is not an IP address or network "
                "(such as 127.0.0.1 or 10.0.0.0/8)"
            ) from None
        if len(networks) > MAX_TRUSTED_PROXIES:
            raise InvalidArgumentError(
                f"trusted_proxies: at most {MAX_TRUSTED_PROXIES} addresses or networks"
            )
    return tuple(networks)


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _header(scope: dict, name: bytes) -> str | None:
    """Every value of header ``name``, joined by commas as one list (``None``: not sent)."""
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ",".join(values) if values else None


class ForwardedByTrustedProxies:
    """ASGI middleware taking a request's scheme and client from the ``X-Forwarded-*``
    headers of a peer among ``trusted`` (see the module)."""

    def __init__(self, app, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client")
        if (
            scope["type"] in ("http", "websocket")
            and self.trusted
            and client
            and _is_trusted(str(client[0]), self.trusted)
        ):
            scope = dict(scope)
            proto = _header(scope, b"x-forwarded-proto")
            if proto is not None:
                # The last value is the one the nearest proxy, the trusted one, added.
                scheme = _SCHEMES.get(proto.rsplit(",", 1)[-1].strip().lower())
                if scheme is not None:
                    if scope["type"] == "websocket":
                        scheme = "wss" if scheme in ("https", "wss") else "ws"
                    scope["scheme"] = scheme
            chain = _header(scope, b"x-forwarded-for")
            if chain is not None:
                # Right to left: each hop appends the address it saw; the first that is
                # not a trusted proxy is the client (anything left of it could be forged).
                for hop in reversed([part.strip() for part in chain.split(",")][-32:]):
                    try:
                        ipaddress.ip_address(hop)
                    except ValueError:
                        break
                    scope["client"] = (hop, 0)
                    if not _is_trusted(hop, self.trusted):
                        break
        await self.app(scope, receive, send)
