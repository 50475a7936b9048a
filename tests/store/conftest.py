"""Store fixtures (defined in :mod:`tests.store.databases`)."""

from tests.store.databases import isolated_home, postgres_store_database, store_uri

__all__ = ["isolated_home", "postgres_store_database", "store_uri"]
