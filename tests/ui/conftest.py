"""Dashboard fixtures: the server's store fixtures (SQLite, and PostgreSQL where configured)."""

from tests.server.conftest import artifacts, database
from tests.store.databases import isolated_home, postgres_store_database, store_uri

__all__ = ["artifacts", "database", "isolated_home", "postgres_store_database", "store_uri"]
