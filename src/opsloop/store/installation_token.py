"""The installation token: what a request must carry to act on a server that has no users.

A server on the loopback interface with no users in its store (embedded mode) would
otherwise act for anything that can reach its port: other accounts on the machine, or a
web page in a browser. So it generates a random token once, keeps it in
``$OPSLOOP_HOME/server-token`` (mode ``0600``, so only the account that owns the home can
read it) and reuses it across restarts. opsloop's HTTP clients read the same file and send
it as a Bearer token to servers on loopback addresses (never to another machine), so the
owner's Python code and command line work unchanged while other local accounts cannot act.
Once the store has users, the token stops working and API tokens take over.

The examples run with ``OPSLOOP_HOME`` set to an empty folder:

>>> import os, stat
>>> token = ensure_installation_token()
>>> mode = oct(stat.S_IMODE(os.stat(installation_token_path()).st_mode))
>>> token == ensure_installation_token(), token.startswith("olp_install_"), mode
(True, True, '0o600')
"""

from __future__ import annotations

import secrets
from pathlib import Path

from opsloop.store.location import opsloop_home
from opsloop.store.private_files import write_private_file_once

TOKEN_FILE = "server-token"
_PREFIX = "olp_install_"


def installation_token_path() -> Path:
    """Where the installation token is kept: ``server-token`` in :func:`opsloop_home`.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": "/tmp/opsloop-doc"}):
    ...     str(installation_token_path())
    '/tmp/opsloop-doc/server-token'
    """
    return opsloop_home() / TOKEN_FILE


def ensure_installation_token() -> str:
    """The installation token, generated (256 random bits) and stored on first use.

    >>> token = ensure_installation_token()
    >>> installation_token_path().read_text() == token, ensure_installation_token() == token
    (True, True)
    >>> installation_token_path().write_text("olp_install_kept")  # an earlier one is kept
    16
    >>> ensure_installation_token()
    'olp_install_kept'
    """
    fresh = _PREFIX + secrets.token_urlsafe(32)
    return write_private_file_once(installation_token_path(), fresh).strip()


def read_installation_token() -> str | None:
    """The installation token if this account can read one, else ``None``.

    >>> read_installation_token() is None  # none made yet in this OPSLOOP_HOME
    True
    >>> token = ensure_installation_token()
    >>> read_installation_token() == token
    True
    """
    try:
        token = installation_token_path().read_text().strip()
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return None
    return token or None
