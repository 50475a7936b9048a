"""The review queue through an opsloop server: :class:`~opsloop.serving.review_queue.
ReviewQueue` over REST.

:class:`HttpReviewQueue` is generated from the service's operation table
(:data:`~opsloop.serving.review_service.REVIEW_OPERATIONS`) and returns the same records as
the local class. The connection, the Bearer token (``OPSLOOP_TRACKING_TOKEN`` or
``token=``) and the error policy are the tracking client's; the acting user is the token's
owner.

>>> HttpReviewQueue("http://127.0.0.1:5005/", token="olp_x")
HttpReviewQueue('http://127.0.0.1:5005')
>>> HttpReviewQueue("http://127.0.0.1:1").claim(1, actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
"""

from __future__ import annotations

from opsloop.contract.http_client import over_http
from opsloop.registry.http_registry import ServerClient
from opsloop.registry.users import PermissionDenied
from opsloop.serving.review_service import REVIEW_OPERATIONS, ReviewQueueService

__all__ = ["HttpReviewQueue"]

_ERRORS = {"PermissionDenied": PermissionDenied}


@over_http(REVIEW_OPERATIONS)
class HttpReviewQueue(ServerClient, ReviewQueueService):
    """The review queue of the opsloop server at ``base_url``."""

    errors = _ERRORS
