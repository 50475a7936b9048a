"""Which request copies a shadow answers: a share of them, chosen by the request id.

A shadow answers every copy by default, and its model competes with the primary for the
machine's cores (in a thread of the serving process or in a process of its own, see
:mod:`.shadow_mirror` and :mod:`.shadow_process`). A shadow variant's ``shadow_sample``
(a share in (0, 1], set on the deployment's definition, see
:mod:`.deployment_records`) caps that cost: only the copies of requests whose id falls in
the sample are sent to it, the others are counted as *sampled out*, apart from the copies
a full queue drops.

**The rule.** A request id is in the sample ``f`` when the first 8 bytes of its BLAKE2b
digest, read as a big-endian integer ``h``, satisfy ``h < f * 2**64``. So:

- it depends on the id alone, not on the process (Python's ``hash`` of a string changes
  with each interpreter), so several workers, or a replay of logged requests, choose the
  same copies, and the agreement report can tell afterwards which copies were meant to be
  answered (:mod:`.shadow_agreement`);
- it is independent of the answer and of the time, so the sampled copies are an unbiased
  sample of the requests and agreement measured on them estimates agreement on all;
- samples are nested: a request in the sample 0.1 is in the sample 0.25, so two shadows of
  one deployment at different shares are compared on common requests.

The id ``"a"`` hashes to 0.2538 of the range, so it is in the samples above that:

>>> in_shadow_sample("a", 0.25), in_shadow_sample("a", 0.26), in_shadow_sample("a", 1.0)
(False, True, True)
>>> round(sum(in_shadow_sample(f"request-{n}", 0.25) for n in range(10_000)) / 10_000, 2)
0.25
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable

from opsloop.errors import InvalidArgumentError

_SCALE = 2**64


def in_shadow_sample(request_id: str, fraction: float) -> bool:
    """Whether a shadow at ``shadow_sample=fraction`` answers the copy of request
    ``request_id`` (see the module for the rule).

    >>> [in_shadow_sample(r, 0.3) for r in ("a", "b", "c", "d")]  # at 0.25, 0.52, 0.22, 0.71
    [True, False, True, False]
    """
    if fraction >= 1.0:
        return True
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * _SCALE


def checked_shadow_sample(value: object, where: str = "shadow_sample") -> float:
    """``value`` as a share of copies a shadow answers, or an
    :class:`~opsloop.errors.InvalidArgumentError` naming ``where`` and the rule.

    >>> checked_shadow_sample(1), checked_shadow_sample(0.25)
    (1.0, 0.25)
    >>> checked_shadow_sample(0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: shadow_sample: must be a share in (0, 1], got 0
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= 1
    ):
        raise InvalidArgumentError(f"{where}: must be a share in (0, 1], got {value!r}")
    return float(value)


class ShadowSample:
    """One shadow's sample in a running data plane: which copies to send it (``takes``),
    and how many were ``sampled_out``. ``fraction`` follows the definition
    (:meth:`follow`); ``on_sampled_out`` is called for each copy left out (on the request
    path, so it must be cheap: a Prometheus counter's ``inc``).

    >>> sample = ShadowSample(0.3)
    >>> [sample.takes(r) for r in ("a", "b", "c", "d")], sample.sampled_out
    ([True, False, True, False], 2)
    >>> sample.follow(1.0); sample.takes("b"), sample.sampled_out
    (True, 2)
    """

    def __init__(self, fraction: float, on_sampled_out: Callable[[], None] | None = None) -> None:
        self.fraction = checked_shadow_sample(fraction)
        self.sampled_out = 0
        self._on_sampled_out = on_sampled_out
        # Requests finish on many threads; a lost increment would miscount the sample.
        self._counting = threading.Lock()

    def follow(self, fraction: float) -> None:
        """Use the share ``fraction`` for the copies from now on (the count goes on)."""
        self.fraction = checked_shadow_sample(fraction)

    def takes(self, request_id: str) -> bool:
        """Whether the copy of ``request_id`` goes to the shadow; counted when not."""
        if in_shadow_sample(request_id, self.fraction):
            return True
        with self._counting:
            self.sampled_out += 1
        if self._on_sampled_out is not None:
            self._on_sampled_out()
        return False


__all__ = ["ShadowSample", "checked_shadow_sample", "in_shadow_sample"]
