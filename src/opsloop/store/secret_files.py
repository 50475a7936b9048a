"""Secrets kept in files that only their owner can read: made once, atomically, then reused.

A secret file is written to a private temporary file (mode 0600) and linked into place, so
two processes starting at once agree on one secret and no process ever reads a half-written
one; the folder is created with mode 0700. Used for the audit log's key.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "sub" / "x.key"
>>> first = secret_file(path)
>>> first == secret_file(path), len(first), oct(path.stat().st_mode & 0o777)
(True, 64, '0o600')
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def secret_file(path: Path, nbytes: int = 32) -> str:
    """The secret in ``path`` (hex text), made with ``nbytes`` random bytes if absent.

    >>> import tempfile
    >>> len(secret_file(Path(tempfile.mkdtemp()) / "k", nbytes=8))
    16
    """
    path = Path(path)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(nbytes) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # Linking fails if another process linked its secret first: then that one is used.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    text = path.read_text().strip()
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{path}: a secret file holds hex digits only; this one is damaged")
    return text
