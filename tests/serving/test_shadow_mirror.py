"""A shadow's mirror: copies queued when it closes are answered or counted as dropped,
never lost silently."""

from __future__ import annotations

import threading

from opsloop.serving.shadow_mirror import ShadowMirror


def test_closing_answers_the_copies_already_queued():
    release, seen = threading.Event(), []

    def answer(job):
        release.wait(5)  # the first copy holds the worker until closing has begun
        seen.append(job)

    mirror = ShadowMirror("shadow", answer, capacity=100)
    assert all(mirror.offer(n) for n in range(10))
    # Release the worker only once close() has started: before, the worker stopped after
    # its current copy and the nine still queued vanished without being counted.
    releaser = threading.Thread(target=lambda: (mirror._stop.wait(5), release.set()))
    releaser.start()
    mirror.close(timeout_s=5)
    releaser.join()
    assert (mirror.answered, mirror.dropped, mirror.failed) == (10, 0, 0)
    assert seen == list(range(10))
    assert mirror.offer("late") is False and mirror.dropped == 1


def test_a_hung_shadow_gives_up_and_counts_what_was_left():
    started, release = threading.Event(), threading.Event()
    mirror = ShadowMirror("shadow", lambda job: (started.set(), release.wait(30)), capacity=100)
    assert all(mirror.offer(n) for n in range(5))
    assert started.wait(5)
    try:
        mirror.close(timeout_s=0.05)
        # One copy is in the hung handler; the four queued behind it are drops.
        assert (mirror.answered, mirror.dropped) == (0, 4)
    finally:
        release.set()
