"""What the store creates on disk is its owner's alone, whatever the umask: the home and
artifact folders 0700, the SQLite database and its -wal and -shm files, blobs and the
installation token 0600."""

from __future__ import annotations

import os
import stat

import pytest
import sqlalchemy as sa

from opsloop.store import ArtifactStore, Database, tables
from opsloop.store.installation_token import ensure_installation_token, installation_token_path
from opsloop.store.location import artifact_uri, opsloop_home, store_uri
from opsloop.store.private_files import private_directory, private_file, write_private_file_once


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000, 0o277])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_the_home_database_artifacts_and_token_are_private(umask):
    home = opsloop_home()
    assert not home.exists()
    database = Database(store_uri())
    with database.write() as connection:
        connection.execute(tables.experiments.insert().values(name="a", created_ms=0))
    with database.read() as connection:
        assert connection.execute(sa.select(tables.experiments.c.name)).scalar_one() == "a"
    # The connection is still open, so WAL mode keeps its -wal and -shm files.
    files = {name: mode(home / name) for name in ("opsloop.db", "opsloop.db-wal", "opsloop.db-shm")}
    assert files == {"opsloop.db": 0o600, "opsloop.db-wal": 0o600, "opsloop.db-shm": 0o600}
    assert mode(home) == 0o700
    artifacts = ArtifactStore(artifact_uri())
    digest = artifacts.put_bytes(b"weights")
    blob = artifacts.path(digest)
    assert (mode(home / "artifacts"), mode(os.path.dirname(blob)), mode(blob)) == (
        0o700,
        0o700,
        0o600,
    )
    assert artifacts.get_bytes(digest) == b"weights"
    ensure_installation_token()
    assert mode(installation_token_path()) == 0o600
    database.dispose()


def test_existing_folders_and_files_keep_their_modes(tmp_path, umask):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o750)
    existing = shared / "store.db"
    existing.write_bytes(b"")
    os.chmod(existing, 0o640)
    assert private_directory(shared) == shared and private_file(existing) == existing
    assert (mode(shared), mode(existing)) == (0o750, 0o640)
    made = private_directory(shared / "a" / "b")
    assert (mode(shared / "a"), mode(made)) == (0o700, 0o700)


def test_a_private_file_written_once_is_never_replaced(tmp_path, umask):
    target = tmp_path / "nested" / "secret"
    assert write_private_file_once(target, "one") == "one"
    assert write_private_file_once(target, "two") == "one"
    assert target.read_text() == "one" and mode(target) == 0o600
    assert mode(target.parent) == 0o700
    # No temporary file is left next to it.
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret"]


def test_a_file_where_the_store_folder_should_be_is_named(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="exists and is not a folder"):
        private_directory(blocker)
