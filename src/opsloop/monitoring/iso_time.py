"""Times in messages people read: epoch milliseconds (the store's times) as ISO 8601 UTC.

A reason in the audit log or an action's outcome names the window it acted on; a person
reads ``2027-01-15T08:00:00Z``, not ``1800000000000``. The evidence beside it keeps the
milliseconds for programs.

>>> utc_iso(1_800_000_000_000), utc_iso(1_800_000_000_123)
('2027-01-15T08:00:00Z', '2027-01-15T08:00:00.123Z')
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_iso(ms: int) -> str:
    """``ms`` since the epoch as ISO 8601 UTC text, to the second, or to the millisecond
    when it has some.

    >>> utc_iso(0)
    '1970-01-01T00:00:00Z'
    """
    seconds, rest = divmod(int(ms), 1000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{rest:03d}Z" if rest else f"{text}Z"
