"""The ``webhook`` action: POST an alert as JSON to a URL, each try bounded in time.

A try that gets a 2xx answer delivers the alert. A connection failure, a time-out or a
5xx or 429 answer is tried again, up to ``retries`` more times, waiting ``backoff_s``,
doubled each time, between tries (the ``sleep`` is injectable, so a test need not wait);
another 4xx is the receiver refusing this alert and is not retried. With an
``idempotency_key`` every try carries it as its ``Idempotency-Key`` header, so a receiver
can tell a try it already took (one whose answer was lost, or one sent again after the
monitor's process died during it, see :mod:`.running_actions`). The outcome says how
many tries were made and what the last one got; it never raises for the receiver's sake,
so a dead webhook cannot stop the monitor.

>>> post_alert("http://127.0.0.1:9/hook", {"rule": "x"}, timeout_s=0.5, retries=0)["status"]
'failed'
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from opsloop.errors import InvalidArgumentError


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


def post_alert(
    url: str,
    payload: dict[str, Any],
    *,
    timeout_s: float = 5.0,
    retries: int = 2,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url``; the outcome: ``status`` (``done`` or
    ``failed``), ``tries``, the last ``http_status`` (``None`` when no answer came) and a
    ``reason``.

    >>> post_alert("ftp://example.com", {})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: url: an http:// or https:// URL, got 'ftp://example.com'
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidArgumentError(f"url: an http:// or https:// URL, got {url!r}")
    body = json.dumps(payload, default=str).encode()
    headers = {"Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    reason, http_status, tries = "", None, 0
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        tries += 1
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                http_status = answer.status
                return {
                    "status": "done",
                    "tries": tries,
                    "http_status": http_status,
                    "reason": f"delivered to {url} ({http_status})",
                }
        except urllib.error.HTTPError as error:
            http_status, reason = error.code, f"{url} answered {error.code}"
            if not _retryable(error.code):
                break
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            http_status = None
            cause = getattr(error, "reason", error)
            reason = f"{url} not reached: {cause}"
    return {"status": "failed", "tries": tries, "http_status": http_status, "reason": reason}
