"""The audit log's key: entries are chained by HMAC-SHA256 under a secret kept outside the
database, so whoever can write the database cannot rewrite the log and recompute it.

The key is, in order: ``$OPSLOOP_AUDIT_KEY`` (hex, at least 32 digits), the file named by
``$OPSLOOP_AUDIT_KEY_FILE``, or ``audit.key`` in ``OPSLOOP_HOME`` (made on first use, mode
0600). Every process that writes one store must use the same key: on one machine the home's
file does that; a team sharing a PostgreSQL store gives each server and worker the same
``OPSLOOP_AUDIT_KEY`` (or key file). Entries written before the log was keyed stay plain
sha256 links (see :func:`~opsloop.registry.audit.verify_audit_log`).

>>> import os, tempfile
>>> from unittest import mock
>>> with mock.patch.dict(os.environ, {"OPSLOOP_AUDIT_KEY": "ab" * 16}):
...     audit_key().hex() == "ab" * 16
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from opsloop.store.location import opsloop_home
from opsloop.store.private_files import write_private_file_once

KEY_VARIABLE = "OPSLOOP_AUDIT_KEY"
KEY_FILE_VARIABLE = "OPSLOOP_AUDIT_KEY_FILE"
_MIN_HEX_DIGITS = 32


def _from_hex(text: str, source: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{source}: the audit key must be hex digits") from None
    if len(text) < _MIN_HEX_DIGITS:
        raise ValueError(f"{source}: the audit key needs at least {_MIN_HEX_DIGITS} hex digits")
    return key


def audit_key() -> bytes:
    """The key of this process's audit log (see the module's rule).

    >>> import os, tempfile
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_AUDIT_KEY": "xyz"}):
    ...     audit_key()
    Traceback (most recent call last):
    ValueError: OPSLOOP_AUDIT_KEY: the audit key must be hex digits
    """
    value = os.environ.get(KEY_VARIABLE)
    if value:
        return _from_hex(value, KEY_VARIABLE)
    named = os.environ.get(KEY_FILE_VARIABLE)
    if named:
        path = Path(named).expanduser()
        try:
            return _from_hex(path.read_text(), str(path))
        except FileNotFoundError:
            raise ValueError(f"{KEY_FILE_VARIABLE}: no such key file {path}") from None
    path = opsloop_home() / "audit.key"
    return _from_hex(write_private_file_once(path, secrets.token_hex(32) + "\n"), str(path))


def keyed_hash(key: bytes, document: bytes) -> str:
    """HMAC-SHA256 of ``document`` under ``key``, as hex.

    >>> keyed_hash(b"k", b"d") == hmac.new(b"k", b"d", hashlib.sha256).hexdigest()
    True
    """
    return hmac.new(key, document, hashlib.sha256).hexdigest()
