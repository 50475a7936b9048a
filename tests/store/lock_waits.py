"""Two transactions in a known order, without sleeping: one held at a known statement by an
event, the other seen waiting for its locks in PostgreSQL's catalogue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from opsloop.store import Database


def wait_until_blocked(database: Database, deadline_s: float = 60.0) -> None:
    """Return once another connection waits for a lock (polled, with a deadline)."""
    probe = sa.create_engine(database.engine.url)
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with probe.connect() as connection:
                waiting = connection.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).scalar()
            if waiting:
                return
        raise AssertionError("the second change never waited for the first")
    finally:
        probe.dispose()


class PausedChange:
    """``change(db)`` run on a store of its own (``Database(store_uri, clock=clock)``) and
    thread, held just before its first statement that starts with ``prefix`` until
    :meth:`release`: by then it has read and locked what it decides on."""

    def __init__(
        self, store_uri: str, prefix: str, change: Callable[[Database], object], clock=None
    ) -> None:
        self.db = Database(store_uri, clock=clock)
        self.reached, self.go = threading.Event(), threading.Event()
        self.outcome: list[object] = []

        def pause(connection, cursor, statement, *rest) -> None:
            if statement.lstrip().upper().startswith(prefix) and not self.reached.is_set():
                self.reached.set()
                assert self.go.wait(60), "never released"

        sa.event.listen(self.db.engine, "before_cursor_execute", pause)
        self.thread = threading.Thread(target=self._run, args=(change,))
        self.thread.start()
        assert self.reached.wait(60), "the change never reached " + prefix

    def _run(self, change: Callable[[Database], object]) -> None:
        try:
            self.outcome.append(change(self.db))
        except Exception as error:  # the test asserts which
            self.outcome.append(error)

    def release(self) -> list[object]:
        """Let the change go on; what it returned or raised, once it is done."""
        self.go.set()
        self.thread.join(timeout=60)
        self.db.dispose()
        return self.outcome


def in_thread(change: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``change()`` on a thread of its own; the thread, and a list that gets what it
    returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(change())
        except Exception as error:  # the test asserts which
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
