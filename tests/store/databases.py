"""Fixtures shared by the store, tracking, registry and server tests.

``store_uri`` runs a test once on a SQLite file in its own ``tmp_path`` and once on
PostgreSQL. The PostgreSQL database is created fresh for the test session (named
``opsloop_store_<random>``, so it never meets another suite's tables), migrated once, emptied
before each test and dropped at the end. Conftests import these fixtures by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> None:
    """Every test gets its own OPSLOOP_HOME and no store or server from the environment."""
    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))
    for name in ("OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def postgres_store_database(postgres_uri: str) -> Iterator[str]:
    """URI of a PostgreSQL database created for this session and dropped after it."""
    admin_url = sa.make_url(postgres_uri)
    name = f"opsloop_store_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    uri = admin_url.set(database=name).render_as_string(hide_password=False)
    Database(uri).dispose()
    try:
        yield uri
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _empty_postgres(uri: str) -> None:
    engine = sa.create_engine(uri)
    names = ", ".join(f'"{table.name}"' for table in tables.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_uri(request, tmp_path, monkeypatch) -> str:
    """A migrated, empty store database, also set as OPSLOOP_STORE_URI."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        uri = request.getfixturevalue("postgres_store_database")
        _empty_postgres(uri)
    monkeypatch.setenv("OPSLOOP_STORE_URI", uri)
    return uri
