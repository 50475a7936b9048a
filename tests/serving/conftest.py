"""Deployment fixtures on SQLite and PostgreSQL (the registry's, see tests.registry)."""

from __future__ import annotations

import pytest
from tests.registry.conftest import database, registry, tracking
from tests.store.databases import isolated_home, postgres_store_database, store_uri

from opsloop.serving import Deployments

__all__ = [
    "database",
    "deployments",
    "isolated_home",
    "postgres_store_database",
    "registry",
    "store_uri",
    "tracking",
]


@pytest.fixture
def deployments(registry):
    return Deployments(registry.db, actor="owner")
