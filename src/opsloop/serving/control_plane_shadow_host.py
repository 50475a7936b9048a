"""Shadows in a process of their own when the data plane runs on a control plane's URL.

A data plane with no store of its own (:mod:`.remote_serving`) reaches the model versions
and the event table through the control plane. Its shadow process
(:mod:`.shadow_process`) does the same as the serving process does: it loads the shadow's
version through :class:`~opsloop.registry.http_registry.HttpModelRegistry` (the artifact
downloaded, its sha256 checked in the child against the version's recorded hash, loaded
by the serving user's trust rules) and sends its prediction events through the control
plane's ``record_events`` (:class:`~.control_plane_sink.ControlPlaneSink`), acting with the
data plane's token. The token reaches the child over its pipe with the rest of the host,
never on its command line; the host's ``repr`` leaves it out.

>>> ControlPlaneShadowHost("https://ops.example.com", token="olp_secret")
ControlPlaneShadowHost(server_url='https://ops.example.com', trust=False, trusted_types=(), \
niceness=19, timeout_s=60.0, scheduling='idle')
>>> ControlPlaneShadowHost("ftp://ops.example.com")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: server_url: must start with http:// or https://, got ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opsloop.errors import InvalidArgumentError
from opsloop.serving.shadow_process import check_niceness, check_scheduling


@dataclass(frozen=True)
class ControlPlaneShadowHost:
    """What a shadow process needs to reach the control plane at ``server_url``: the
    data plane's ``token`` (``None``: ``$OPSLOOP_TRACKING_TOKEN``, which the child
    inherits), the serving user's ``trust`` and ``trusted_types``, the ``niceness`` added
    to the child's priority, the HTTP ``timeout_s`` and the child's ``scheduling``
    (``"idle"`` or ``"normal"``; as for :class:`~.shadow_process.ShadowHost`)."""

    server_url: str
    token: str | None = field(default=None, repr=False)
    trust: bool = False
    trusted_types: tuple[str, ...] = ()
    niceness: int = 19
    timeout_s: float = 60.0
    scheduling: str = "idle"

    def __post_init__(self) -> None:
        if not self.server_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(
                f"server_url: must start with http:// or https://, got {self.server_url!r}"
            )
        check_niceness(self.niceness)
        check_scheduling(self.scheduling)

    def open(self) -> tuple[Any, Any, Callable[[], int]]:
        """In the child: the control plane's registry, a sink sending the events through
        it, and this host's clock (as the serving process stamps its own events)."""
        from opsloop.registry.http_registry import HttpModelRegistry
        from opsloop.serving.control_plane_sink import ControlPlaneSink
        from opsloop.serving.http_deployments import HttpDeployments
        from opsloop.store.database import now_ms

        url, token, timeout = self.server_url, self.token, self.timeout_s
        registry = HttpModelRegistry(url, token=token, timeout_s=timeout)
        sink = ControlPlaneSink(HttpDeployments(url, token=token, timeout_s=timeout))
        return registry, sink, now_ms


__all__ = ["ControlPlaneShadowHost"]
