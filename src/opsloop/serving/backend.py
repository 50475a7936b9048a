"""Which deployments to use: the local store or an opsloop server, by ``OPSLOOP_TRACKING_URI``.

The rule is the registry's (:func:`opsloop.registry.open_registry`): unset, the local
store; an ``http(s)://`` URL, that server with the token in ``OPSLOOP_TRACKING_TOKEN``;
anything else, a database URI. Both answers have the same methods.

>>> type(open_deployments("http://127.0.0.1:5005")).__name__
'HttpDeployments'
"""

from __future__ import annotations

from opsloop.registry.http_registry import refuse_actor
from opsloop.serving.deployments import Deployments
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.tracking.api import is_server, tracking_target


def open_deployments(
    uri: str | None = None, *, token: str | None = None, actor: str | None = None
) -> Deployments | HttpDeployments:
    """The deployments at ``uri`` (default ``$OPSLOOP_TRACKING_URI``; unset: the local store).

    >>> open_deployments("https://ops.example.com", actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
    """
    target = tracking_target(uri)
    if is_server(target):
        refuse_actor(actor)
        return HttpDeployments(target, token=token)
    from opsloop.store import open_database

    return Deployments(open_database(target or None), actor=actor)
