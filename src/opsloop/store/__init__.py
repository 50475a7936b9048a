"""The state layer's storage: the database and content-addressed artifacts.

:mod:`.location` says where state lives (``OPSLOOP_HOME``, ``OPSLOOP_STORE_URI``,
``OPSLOOP_ARTIFACT_URI``); :mod:`.tables` defines the tables; :mod:`.migrate` applies the
packaged Alembic migrations; :mod:`.database` opens SQLite (WAL, busy timeout, immediate
write transactions) or PostgreSQL migrated to head; :mod:`.artifacts` keeps blobs under their
sha256 and refuses any whose bytes changed.

>>> db = Database("sqlite://")
>>> db.dialect
'sqlite'
"""

from opsloop.store.artifacts import ArtifactStore, TamperedArtifactError, sha256_of_file
from opsloop.store.database import Database, now_ms, open_database
from opsloop.store.location import artifact_uri, opsloop_home, store_uri

__all__ = [
    "ArtifactStore",
    "Database",
    "TamperedArtifactError",
    "artifact_uri",
    "now_ms",
    "open_database",
    "opsloop_home",
    "sha256_of_file",
    "store_uri",
]
