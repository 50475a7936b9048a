"""Which deployments to use: the local store or an opsloop server, by ``OPSLOOP_TRACKING_URI``.

The rule is the registry's (:func:`opsloop.registry.open_registry`): unset, the local
store; an ``http(s)://`` URL, that server with the token in ``OPSLOOP_TRACKING_TOKEN``;
anything else, a database URI. Both answers have the same methods.

With ``OPSLOOP_TRACKING_URI`` unset, every call opens the one local store:

>>> from opsloop.registry import open_registry
>>> from opsloop.serving import Variant
>>> _ = open_registry().register("credit", b"onnx bytes", flavor="onnx")
>>> _ = open_deployments().deploy("api", [Variant("stable", "credit", version=1)])
>>> open_deployments().list()["name"].tolist()
['api']

A URL opens that server's deployments (here a server on ``db``, where ``registry``
registers):

>>> _ = registry.register("fraud", b"onnx bytes", flavor="onnx")
>>> _ = Deployments(db).deploy("fraud-api", [Variant("stable", "fraud", version=1)])
>>> open_deployments(server_url).list()["name"].tolist()
['fraud-api']
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
