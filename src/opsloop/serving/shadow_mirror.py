"""Copies of requests for a shadow variant, answered off the request path.

Each shadow variant gets its own :class:`ShadowMirror`: a bounded queue and one worker
thread. The request path only offers a copy (``offer`` never waits): when the queue is full
the copy is dropped and counted, never queued without bound. The worker calls the handler
with each copy; an exception in it is counted and logged, and a handler that hangs holds
only its own shadow's worker, so its queue fills and further copies are dropped, while the
primary and the other shadows answer as before.

A thread shares the serving process's interpreter lock and cores with the primary, so a
shadow of the primary's size costs it a good part of its latency; :mod:`.shadow_process`
answers a shadow in a process of its own instead (``ServingRuntime(shadow_isolation=...)``).

>>> import threading
>>> seen, done = [], threading.Event()
>>> mirror = ShadowMirror("shadow", lambda job: (seen.append(job), done.set()), capacity=2)
>>> mirror.offer("row"), done.wait(5), seen
(True, True, ['row'])
>>> mirror.close()
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from opsloop.errors import InvalidArgumentError

logger = logging.getLogger("opsloop.serving")


class ShadowMirror:
    """A bounded queue of request copies and the worker that answers them (see the module).

    ``capacity`` bounds the copies waiting; ``on_drop`` is called (on the request path,
    so it must be cheap) for each copy dropped.

    >>> ShadowMirror("s", print, capacity=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: shadow capacity must be a positive integer, got 0
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Any], None],
        *,
        capacity: int = 1000,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidArgumentError(
                f"shadow capacity must be a positive integer, got {capacity!r}"
            )
        self.name = name
        self.dropped = 0
        self.failed = 0
        self.answered = 0
        self._handler = handler
        self._on_drop = on_drop
        # Requests offer copies from many threads; a lost increment would hide a drop.
        self._counting = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name=f"opsloop-shadow-{name}", daemon=True
        )
        self._thread.start()

    def offer(self, job: Any) -> bool:
        """Queue a copy for the shadow; ``False`` (and counted) when the queue is full or
        the mirror is closing."""
        if self._stop.is_set():
            self._count_drop()
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._count_drop()
            return False
        return True

    def _count_drop(self) -> None:
        with self._counting:
            self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()

    def _work(self) -> None:
        while True:
            try:
                # A timeout, so that a closed mirror's worker ends without a wake-up job.
                job = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if self._abandoned.is_set():  # closing gave up waiting: the rest are drops
                self._count_drop()
                continue
            try:
                self._handler(job)
                self.answered += 1
            except Exception:
                self.failed += 1
                logger.exception("shadow %s failed on a request copy", self.name)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop taking copies, answer those already queued (for at most ``timeout_s``),
        and count what is left as dropped, so no copy disappears uncounted. A handler that
        hangs keeps its daemon thread (left behind rather than waited for); the copy it
        holds is neither answered nor dropped.

        >>> import threading
        >>> release, seen = threading.Event(), []
        >>> mirror = ShadowMirror("s", lambda job: (release.wait(5), seen.append(job)))
        >>> [mirror.offer(n) for n in range(3)], release.set()
        ([True, True, True], None)
        >>> mirror.close(); mirror.answered, mirror.dropped, mirror.offer(4), mirror.dropped
        (3, 0, False, 1)
        """
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandoned.set()
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._count_drop()
