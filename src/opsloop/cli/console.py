"""What every ``opsloop`` command shares: the consoles and the one-line error contract.

Exit codes: 0 success, 1 the data failed a check, 2 the command could not run (bad path,
unreadable file, bad option). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer
from rich.console import Console

# Piped output (CI logs, files) gets a fixed, wide layout instead of rich's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)


class UsageProblem(Exception):
    """A command cannot run; the message is printed on one line and the exit code is 2."""


def one_line_errors(command: Callable) -> Callable:
    """Turn the errors a user can cause into one line on stderr and exit code 2."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        import httpx

        from opsloop.data.io import TableReadError

        try:
            return command(*args, **kwargs)
        except (
            UsageProblem,
            TableReadError,
            # a server that cannot be reached: refused, timed out, name not resolved
            httpx.TransportError,
            FileNotFoundError,
            PermissionError,
            ValueError,
            TypeError,
        ) as error:
            err.print(f"error: {error}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
