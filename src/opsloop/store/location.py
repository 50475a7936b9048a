"""Where opsloop keeps its state: the home folder, the database URI and the artifact root.

``OPSLOOP_HOME`` (default ``~/.opsloop``) holds the embedded SQLite database and the local
artifact folder. ``OPSLOOP_STORE_URI`` points the database elsewhere (for example
``postgresql+psycopg://user@host/db``) and ``OPSLOOP_ARTIFACT_URI`` points artifacts at any
fsspec URL (``s3://bucket/prefix``). Each is read when called, so tests can set them.

>>> import os
>>> from unittest import mock
>>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": "/tmp/opsloop-doc"}):
...     os.environ.pop("OPSLOOP_STORE_URI", None) and None
...     store_uri()
'sqlite:////tmp/opsloop-doc/opsloop.db'
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "OPSLOOP_HOME"
STORE_VARIABLE = "OPSLOOP_STORE_URI"
ARTIFACT_VARIABLE = "OPSLOOP_ARTIFACT_URI"


def opsloop_home() -> Path:
    """The state folder: ``$OPSLOOP_HOME`` or ``~/.opsloop`` (not created here).

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": "/tmp/opsloop-doc"}):
    ...     str(opsloop_home())
    '/tmp/opsloop-doc'
    """
    value = os.environ.get(HOME_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".opsloop"


def store_uri() -> str:
    """The database URI: ``$OPSLOOP_STORE_URI`` or a SQLite file in :func:`opsloop_home`.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_STORE_URI": "postgresql+psycopg://u@db/ops"}):
    ...     store_uri()
    'postgresql+psycopg://u@db/ops'
    """
    value = os.environ.get(STORE_VARIABLE)
    if value:
        return value
    return f"sqlite:///{opsloop_home() / 'opsloop.db'}"


def artifact_uri() -> str:
    """The artifact root: ``$OPSLOOP_ARTIFACT_URI`` or the ``artifacts`` folder of the home.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPSLOOP_HOME": "/tmp/opsloop-doc"}):
    ...     os.environ.pop("OPSLOOP_ARTIFACT_URI", None) and None
    ...     artifact_uri()
    '/tmp/opsloop-doc/artifacts'
    """
    value = os.environ.get(ARTIFACT_VARIABLE)
    return value if value else str(opsloop_home() / "artifacts")
