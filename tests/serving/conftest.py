"""Deployment fixtures on SQLite and PostgreSQL (the registry's, see tests.registry), used
locally and through a real server."""

from __future__ import annotations

import pytest
from tests.registry.conftest import database, registry, tracking
from tests.server.running import running_server
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments

__all__ = [
    "database",
    "deployments",
    "isolated_home",
    "postgres_store_database",
    "registry",
    "store_uri",
    "tracking",
]


@pytest.fixture(params=["local", "http"])
def deployments(request, registry):
    """The registry's deployments, used directly or through a real server on its store."""
    if request.param == "local":
        yield Deployments(registry.db)
        return
    with running_server(create_app(registry.db, registry.artifacts)) as url:
        client = HttpDeployments(url, token="")
        yield client
        client.close()
