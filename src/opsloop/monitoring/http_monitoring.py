"""Monitoring through an opsloop server: :class:`~opsloop.monitoring.local_monitoring.
Monitoring` over REST.

:class:`HttpMonitoring` is generated from the service's operation table
(:data:`~opsloop.monitoring.monitoring_service.MONITORING_OPERATIONS`) and returns the same
records and frames as the local class. The connection, the Bearer token
(``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error policy are the tracking client's;
the acting user is the token's owner.

>>> HttpMonitoring("http://127.0.0.1:5005/", token="olp_x")
HttpMonitoring('http://127.0.0.1:5005')
>>> HttpMonitoring("http://127.0.0.1:1").log_labels("api", ["r1"], [1], actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
"""

from __future__ import annotations

from opsloop.contract.http_client import over_http
from opsloop.monitoring.monitoring_service import MONITORING_OPERATIONS, MonitoringService
from opsloop.registry.http_registry import ServerClient
from opsloop.registry.users import PermissionDenied

__all__ = ["HttpMonitoring"]

_ERRORS = {"PermissionDenied": PermissionDenied}


@over_http(MONITORING_OPERATIONS)
class HttpMonitoring(ServerClient, MonitoringService):
    """The monitoring of the opsloop server at ``base_url``."""

    errors = _ERRORS
