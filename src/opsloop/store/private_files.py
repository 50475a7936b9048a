"""Folders and files of the store that only their owner can open, whatever the umask.

The store holds API token hashes, the audit log and model artifacts, so what it creates
on disk is private: folders ``0700``, files ``0600``. The mode is set with ``chmod`` after
creation because the umask can only remove bits, and a umask such as ``0277`` would leave
the owner unable to write. Folders and files that already exist keep their modes: a home
shared on purpose (a group-readable folder for a team) is not changed behind its owner's
back.

>>> import os, stat
>>> home = private_directory(tmp_path / "home" / "store")
>>> oct(stat.S_IMODE(os.stat(home).st_mode)), oct(stat.S_IMODE(os.stat(home.parent).st_mode))
('0o700', '0o700')
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` and any missing parents with mode ``0700``; return it.

    >>> import stat
    >>> made = private_directory(tmp_path / "a" / "b")
    >>> made == tmp_path / "a" / "b", oct(stat.S_IMODE(made.stat().st_mode))
    (True, '0o700')

    A folder that exists keeps its mode:

    >>> os.chmod(tmp_path, 0o750)
    >>> oct(stat.S_IMODE(private_directory(tmp_path).stat().st_mode))
    '0o750'
    """
    path = Path(path).expanduser()
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue  # another process made it first; its creator set its mode
        os.chmod(folder, DIRECTORY_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"store folder {str(path)!r} exists and is not a folder")
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Create ``path`` empty with mode ``0600`` if it does not exist (its folder privately).

    SQLite gives the ``-wal`` and ``-shm`` files of a database the database file's mode,
    so creating the database file this way first keeps all three private.

    >>> import os, stat
    >>> made = private_file(tmp_path / "store.db")
    >>> oct(stat.S_IMODE(os.stat(made).st_mode)), made.stat().st_size
    ('0o600', 0)
    """
    path = Path(path).expanduser()
    private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)
    return path


def write_private_file_once(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to a new ``0600`` file at ``path``, or return what is already there.

    The text goes to a temporary file that is then hard-linked to ``path``: the link fails
    if ``path`` exists, so of two processes racing, one wins and both return its text, and
    no reader ever sees a half-written file.

    >>> target = tmp_path / "secret"
    >>> write_private_file_once(target, "first"), write_private_file_once(target, "second")
    ('first', 'first')
    """
    path = Path(path).expanduser()
    with contextlib.suppress(FileNotFoundError):
        return path.read_text()
    private_directory(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        os.write(descriptor, text.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text()
    finally:
        temporary.unlink()
    return text
