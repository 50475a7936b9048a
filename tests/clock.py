"""A clock tests move by hand, so changes are apart in time without sleeping."""

from __future__ import annotations


class FakeClock:
    """Milliseconds since the epoch, starting at ``start_ms``; :meth:`advance` moves it.

    Give it to a store (``Database(uri, clock=FakeClock())`` or ``db.clock = FakeClock()``):
    every time the store records is then read from it.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int = 10) -> int:
        """Move ``ms`` forward; the new time."""
        self.now_ms += ms
        return self.now_ms
