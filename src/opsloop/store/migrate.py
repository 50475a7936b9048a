"""Alembic migrations shipped inside the package, applied when a database is opened.

The revisions live in ``opsloop/store/migrations/versions``; :func:`upgrade_to_head` brings
any database (empty or older) to the newest revision on an existing connection, so no
``alembic.ini`` is needed at run time.

>>> from sqlalchemy import create_engine
>>> engine = create_engine("sqlite://")
>>> with engine.begin() as connection:
...     upgrade_to_head(connection)
...     current_revision(connection) == head_revision()
True
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (and ``connection``, if any).

    >>> import pathlib
    >>> folder = pathlib.Path(alembic_config().get_main_option("script_location"))
    >>> (folder / "env.py").is_file(), any((folder / "versions").glob("*.py"))
    (True, True)
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of opsloop.

    >>> head_revision()
    '0034'
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, ``None`` for a database never migrated.

    >>> from sqlalchemy import create_engine
    >>> with create_engine("sqlite://").connect() as connection:
    ...     print(current_revision(connection))
    None
    """
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: Connection) -> None:
    """Apply every pending migration on ``connection`` (a no-op at head).

    >>> from sqlalchemy import create_engine
    >>> with create_engine("sqlite://").begin() as connection:
    ...     upgrade_to_head(connection)
    ...     upgrade_to_head(connection)
    ...     current_revision(connection)
    '0034'
    """
    if current_revision(connection) == head_revision():
        return
    command.upgrade(alembic_config(connection), "head")
