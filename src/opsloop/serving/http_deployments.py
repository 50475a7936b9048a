"""Deployments through an opsloop server: :class:`~opsloop.serving.Deployments` over REST.

:class:`HttpDeployments` is generated from the service's operation table
(:data:`~opsloop.serving.deployment_service.DEPLOYMENT_OPERATIONS`): it has the methods of
:class:`~opsloop.serving.deployment_service.DeploymentService` and returns the same records
and frames as the local class. The connection, the Bearer token
(``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error policy are the tracking client's
(:class:`~opsloop.tracking.http_store.ServerConnection`): an unknown deployment comes back as
:class:`~opsloop.serving.UnknownDeploymentError`, a missing model, version or alias as
:class:`~opsloop.registry.UnknownModelError`, a broken rule as a ``ValueError`` naming it, a
refused role as :class:`~opsloop.registry.PermissionDenied`. The acting user is the token's
owner.

>>> HttpDeployments("http://127.0.0.1:5005/", token="olp_x")
HttpDeployments('http://127.0.0.1:5005')
>>> HttpDeployments("http://127.0.0.1:1").deploy("api", [], actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
>>> HttpDeployments("http://127.0.0.1:1").deploy("api", [Variant("a", "m", version=1)],
...                                            strategy="canary")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: strategy 'canary': needs the primary and one candidate, ...
"""

from __future__ import annotations

from opsloop.contract.http_client import over_http
from opsloop.registry.http_registry import ServerClient
from opsloop.registry.model_registry import UnknownModelError
from opsloop.registry.users import PermissionDenied
from opsloop.serving.deployment_records import Variant
from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS, DeploymentService
from opsloop.serving.deployments import UnknownDeploymentError

__all__ = ["HttpDeployments", "Variant"]

_ERRORS = {
    "UnknownDeploymentError": UnknownDeploymentError,
    "UnknownModelError": UnknownModelError,
    "PermissionDenied": PermissionDenied,
}


@over_http(DEPLOYMENT_OPERATIONS)
class HttpDeployments(ServerClient, DeploymentService):
    """The deployments of the opsloop server at ``base_url``.

    >>> HttpDeployments("ftp://example.com")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...

    Against a server (``server_url``, one with no users, so it acts as the OS user) whose
    registry holds ``credit`` version 1:

    >>> _ = registry.register("credit", b"\\x08\\x01", flavor="onnx")
    >>> remote = HttpDeployments(server_url)
    >>> remote.deploy("credit-api", [Variant("stable", "credit", version=1)]).serving
    {'stable': 1}
    >>> remote.list()[["name", "variants"]].values.tolist()
    [['credit-api', 'stable=credit/1 (primary, 1)']]
    >>> remote.retire("credit-api"); remote.get("credit-api")
    Traceback (most recent call last):
    opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'credit-api'
    """

    errors = _ERRORS
