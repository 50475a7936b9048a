"""The opsloop server: a FastAPI app serving the tracking and registry REST API under /api/v1/.

:mod:`.app` assembles the app from routers; :mod:`.identity` resolves who is calling (API
tokens, or the OS user in embedded mode); :mod:`.wire` declares the request bodies;
:mod:`.tracking_routes`, :mod:`.artifact_routes` and :mod:`.registry_routes` are thin
functions over :class:`~opsloop.tracking.LocalTrackingStore` and
:class:`~opsloop.registry.ModelRegistry`.

>>> from opsloop.store import Database
>>> create_app(Database("sqlite://"), allow_embedded=False).title
'opsloop'
"""

from opsloop.server.app import create_app

__all__ = ["create_app"]
