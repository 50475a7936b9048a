"""The ``?refresh=`` parameter of the pages whose parts update in place: seconds between
refreshes, 0 for none, at most 300 (a bad value is a 422 naming ``refresh``).

One rule for every such page (runs, deployments, live traffic, results, review): without
``?refresh=`` a page refreshes every :data:`DEFAULT_REFRESH_S` seconds; a refresh other
than that is kept (:func:`kept_refresh`) by the page's links and forms, by the addresses
of its fragments and by their links and forms, and by the page a form's post leads back
to (:func:`posted_refresh`, :func:`with_refresh`).

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI()
>>> @app.get("/page")
... def page(refresh: Refresh = 5) -> int:
...     return refresh
>>> client = TestClient(app)
>>> client.get("/page").json(), client.get("/page?refresh=0").json()
(5, 0)
>>> client.get("/page?refresh=301").json()["detail"][0]["loc"]
['query', 'refresh']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query

from opsloop.errors import InvalidArgumentError

#: The longest refresh a page takes, in seconds.
MAX_REFRESH_S = 300
#: Seconds between refreshes of a page's live parts; 0 turns them off.
Refresh = Annotated[int, Query(ge=0, le=MAX_REFRESH_S)]
#: The refresh a run page takes when ``?refresh=`` is not given.
DEFAULT_REFRESH_S = 5


def kept_refresh(refresh: int | None) -> int | None:
    """The refresh a page's links, forms and fragments carry: ``None`` for the default
    (or none given), else the page's own.

    >>> kept_refresh(DEFAULT_REFRESH_S), kept_refresh(0), kept_refresh(30)
    (None, 0, 30)
    """
    return None if refresh is None or refresh == DEFAULT_REFRESH_S else refresh


def with_refresh(address: str, kept: int | None) -> str:
    """``address`` carrying the ``kept`` refresh (unchanged where ``None``), before its
    fragment.

    >>> with_refresh("/review?state=open#item-3", 0), with_refresh("/review/items", None)
    ('/review?state=open&refresh=0#item-3', '/review/items')
    """
    if kept is None:
        return address
    path, hash_mark, fragment = address.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{urlencode({'refresh': kept})}{hash_mark}{fragment}"


def posted_refresh(fields: Mapping[str, str]) -> int | None:
    """The refresh a posted form carries (its ``refresh`` field, see the module), checked
    as the query's is; ``None`` where the form carries none.

    >>> posted_refresh({"refresh": "30"}), posted_refresh({})
    (30, None)
    >>> posted_refresh({"refresh": "9999"})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: refresh: must be a whole number of seconds from 0 to 300, got '9999'
    >>> posted_refresh({"refresh": "0" * 5000})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: refresh: must be a whole number of seconds from 0 to 300, got '00000000000000000000'
    """  # noqa: E501 - a doctest's expected output is one line
    text = fields.get("refresh")
    if text is None or text == "":
        return None
    # The length first: int() of thousands of digits is refused by Python itself.
    if not (len(text) <= 3 and text.isascii() and text.isdigit()) or int(text) > MAX_REFRESH_S:
        raise InvalidArgumentError(
            f"refresh: must be a whole number of seconds from 0 to {MAX_REFRESH_S}, "
            f"got {text[:20]!r}"
        )
    return kept_refresh(int(text))


__all__ = [
    "DEFAULT_REFRESH_S",
    "MAX_REFRESH_S",
    "Refresh",
    "kept_refresh",
    "posted_refresh",
    "with_refresh",
]
