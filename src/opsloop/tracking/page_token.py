"""The page token of a run search: where the next page starts, bound to the search it came from.

A token holds the number of runs already returned and a short digest of the search (the
experiments, the filter and ``order_by``). The search's order always ends with start time
and run number, newest first, so ties in ``order_by`` fall the same way on every call and a
page starts exactly where the one before ended. A token handed to a different search, or
text that is not a token, is refused naming ``page_token``: silently returning rows of the
wrong query would be worse than an error.

Like MLflow's, the token is a position in the order, not a run: a run started between two
calls moves the later pages (with the default newest-first order, the next page repeats the
previous one's last run). Reading a finished experiment page by page is exact.

>>> token = page_token("churn", "metrics.auc > 0.8", ["metrics.auc DESC"], 50)
>>> token_offset(token, ["churn"], "metrics.auc > 0.8", ["metrics.auc DESC"])
50
>>> token_offset(token, "churn", None, None)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: page_token: this token belongs to another search; ...
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.limits import INT64_MAX

#: The longest token accepted: what :func:`page_token` writes is about 60 characters.
MAX_PAGE_TOKEN_LENGTH = 200


def _search_digest(
    experiments: str | Iterable[str] | None, filter: str | None, order_by: Sequence[str] | None
) -> str:
    names = None
    if experiments is not None:
        # One name or a list of them select the same runs; the order of names does not matter.
        names = sorted({experiments} if isinstance(experiments, str) else set(experiments))
    search = [names, filter or None, list(order_by or ())]
    text = json.dumps(search, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_token(
    experiments: str | Iterable[str] | None,
    filter: str | None,
    order_by: Sequence[str] | None,
    offset: int,
) -> str:
    """The token of the page that starts after ``offset`` runs of this search.

    >>> len(page_token(None, None, None, 10)) < MAX_PAGE_TOKEN_LENGTH
    True
    """
    text = json.dumps({"offset": offset, "search": _search_digest(experiments, filter, order_by)})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def token_offset(
    token: object,
    experiments: str | Iterable[str] | None,
    filter: str | None,
    order_by: Sequence[str] | None,
) -> int:
    """How many runs of this search come before the page ``token`` names.

    >>> token_offset("not a token", None, None, None)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: page_token: not a page token of search_runs ...
    """
    refused = InvalidArgumentError(
        "page_token: not a page token of search_runs (pass the next_page_token "
        f"of the previous page unchanged), got {token!r:.80}"
    )
    if not isinstance(token, str) or not 0 < len(token) <= MAX_PAGE_TOKEN_LENGTH:
        raise refused
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise refused from None
    offset = document.get("offset") if isinstance(document, dict) else None
    digest = document.get("search") if isinstance(document, dict) else None
    if (
        isinstance(offset, bool)
        or not isinstance(offset, int)
        or not 0 <= offset <= INT64_MAX
        or not isinstance(digest, str)
    ):
        raise refused
    if digest != _search_digest(experiments, filter, order_by):
        raise InvalidArgumentError(
            "page_token: this token belongs to another search; pass it with the same "
            "experiments, filter and order_by as the search that returned it"
        )
    return offset
