"""``opsloop users``: users, roles and API tokens of the local store.

Users are managed on the store itself (``OPSLOOP_STORE_URI`` or SQLite under
``OPSLOOP_HOME``), by whoever can open it, as the server's admin does. A token is printed once,
when it is made; afterwards it is known by its public id (the first 12 hex digits of its
sha256), which ``users tokens`` lists and ``users revoke`` takes. ``users role``,
``disable``, ``enable``, ``revoke`` and ``rotate`` are operations of the users' contract:
with ``OPSLOOP_TRACKING_URI`` naming a server (an ``http(s)://`` URL) they go there, as the
owner of ``OPSLOOP_TRACKING_TOKEN``, who must be an admin
(:func:`opsloop.registry.backend.open_users`; ``revoke`` sends the token's id, never the
token); otherwise they change the same store as every other ``users`` command. Times print
as ISO 8601 UTC.
Exit codes: 0 success, 2 the command could not run; errors are one line on stderr.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(users_app, ["revoke", "not-an-id"]).output.startswith("error: token:")
True
"""

from __future__ import annotations

import sys
from typing import Annotated

import pandas as pd
import typer

from opsloop.cli.console import one_line_errors, out, print_frame

users_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Users, roles and API tokens."
)

_DAY_MS = 86_400_000

ExpiresDays = Annotated[
    float | None,
    typer.Option("--expires-days", help="The token expires this many days from now."),
]


def _database():
    from opsloop.store import open_database

    return open_database()


def _local_users() -> type:
    from opsloop.registry.local_users import LocalUsers

    return LocalUsers


def _users():
    """The users' contract where the commands that have one go: a server named by
    ``OPSLOOP_TRACKING_URI``, else the store every ``users`` command changes (a database
    named by ``OPSLOOP_TRACKING_URI`` is not that store)."""
    from opsloop.registry.backend import open_users
    from opsloop.tracking.api import is_server, tracking_target

    target = tracking_target()
    return open_users(target) if is_server(target) else _local_users()(_database())


def _expiry(days: float | None) -> int | None:
    if days is None:
        return None
    if not days > 0:
        raise ValueError(f"--expires-days must be positive, got {days}")
    from opsloop.store.database import now_ms
    from opsloop.tracking.limits import MAX_TIME_MS

    now = now_ms()
    # A float compared before it is rounded: infinity or 1e300 days never reach int().
    if not now + days * _DAY_MS <= MAX_TIME_MS:
        latest = (MAX_TIME_MS - now) // _DAY_MS
        raise ValueError(f"--expires-days must be at most {latest}, got {days}")
    return now + round(days * _DAY_MS)


def _iso(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    shown = frame.copy()
    for column in columns:
        shown[column] = pd.to_datetime(shown[column], unit="ms", utc=True).map(
            lambda t: "" if pd.isna(t) else t.isoformat(timespec="seconds")
        )
    return shown


def _print_token(token: str, what: str) -> None:
    from opsloop.registry import token_id

    out.print(f"{what}; API token {token_id(token)}, shown once:")
    sys.stdout.write(token + "\n")


@users_app.command("add")
@one_line_errors
def add_user(
    name: str,
    role: Annotated[
        str, typer.Option(help="viewer, editor, gatekeeper, approver or admin.")
    ] = "viewer",
    expires_days: ExpiresDays = None,
) -> None:
    """Create a user and print their API token (shown once; only its hash is stored)."""
    from opsloop.registry import add_user as add

    user, token = add(_database(), name, role, expires_ms=_expiry(expires_days))
    _print_token(token, f"user {user.name!r} ({user.role})")


@users_app.command("list")
@one_line_errors
def list_users() -> None:
    """Every user: role, whether disabled, active tokens and their last use."""
    import sqlalchemy as sa

    from opsloop.registry import list_tokens
    from opsloop.store import tables
    from opsloop.store.database import now_ms

    database = _database()
    users = tables.users
    with database.read() as connection:
        rows = connection.execute(
            sa.select(users.c.name, users.c.role, users.c.disabled_ms).order_by(users.c.name)
        ).all()
    tokens = list_tokens(database)
    now = now_ms()
    active = tokens[
        tokens["revoked_ms"].isna() & (tokens["expires_ms"].isna() | (tokens["expires_ms"] > now))
    ]
    records = []
    for name, role, disabled_ms in rows:
        mine = active[active["user"] == name]
        records.append(
            {
                "name": name,
                "role": role,
                "disabled": disabled_ms,
                "active_tokens": len(mine),
                "last_used": mine["last_used_ms"].max() if len(mine) else None,
            }
        )
    frame = pd.DataFrame(
        records, columns=["name", "role", "disabled", "active_tokens", "last_used"]
    )
    print_frame(_iso(frame, ["disabled", "last_used"]), "users")


@users_app.command("tokens")
@one_line_errors
def list_tokens(
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
) -> None:
    """Tokens by id: created, expiry, last use and revocation."""
    from opsloop.registry import list_tokens as tokens

    frame = tokens(_database(), name)
    times = ["created_ms", "expires_ms", "last_used_ms", "revoked_ms"]
    shown = _iso(frame, times).rename(columns={t: t.removesuffix("_ms") for t in times})
    print_frame(shown, "API tokens")


@users_app.command("token")
@one_line_errors
def new_token(name: str, expires_days: ExpiresDays = None) -> None:
    """Issue another token for a user and print it (shown once)."""
    from opsloop.registry import new_token as issue

    _print_token(issue(_database(), name, expires_ms=_expiry(expires_days)), f"user {name!r}")


@users_app.command("revoke")
@one_line_errors
def revoke(
    token: Annotated[str, typer.Argument(help="The token's id (users tokens) or the token.")],
) -> None:
    """Make one token unusable from now on and end the dashboard sessions started from it."""
    from opsloop.registry import token_id

    users = _users()
    if token.startswith("olp_") and not isinstance(users, _local_users()):
        token = token_id(token)  # only the id travels to a server
    revoked = users.revoke_token(token)
    out.print(
        f"revoked API token {revoked.token_id} of user {revoked.user!r} "
        f"({revoked.dashboard_sessions_ended} dashboard sessions ended)"
    )


@users_app.command("rotate")
@one_line_errors
def rotate(name: str, expires_days: ExpiresDays = None) -> None:
    """Revoke every active token of a user and print one new token."""
    issued = _users().rotate_token(name, _expiry(expires_days))
    _print_token(issued.token, f"user {name!r}: {issued.revoked} earlier tokens revoked")


@users_app.command("role")
@one_line_errors
def set_role(
    name: str,
    role: Annotated[str, typer.Argument(help="viewer, editor, gatekeeper, approver or admin.")],
) -> None:
    """Give a user another role; their dashboard sessions end (the last admin keeps theirs)."""
    user = _users().set_user_role(name, role)
    out.print(f"user {user.name!r} is now {user.role}")


@users_app.command("disable")
@one_line_errors
def disable(name: str) -> None:
    """Stop every token of a user from working and end their dashboard sessions (the user
    and their history stay; the last enabled admin cannot be disabled)."""
    _users().disable_user(name)
    out.print(f"user {name!r} disabled")


@users_app.command("enable")
@one_line_errors
def enable(name: str) -> None:
    """Let a disabled user's unrevoked, unexpired tokens work again."""
    _users().enable_user(name)
    out.print(f"user {name!r} enabled")
