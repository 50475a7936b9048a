"""What every ``opsloop`` command shares: the consoles and the one-line error contract.

Exit codes: 0 success, 1 the data failed a check, 2 the command could not run (bad path,
unreadable file, bad option). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

# Piped output (CI logs, files) gets a fixed, wide layout instead of rich's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)

#: The ``--json`` option of the commands that print tables.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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


def print_json(document: object) -> None:
    """Print ``document`` as indented JSON on stdout (anything else as its text)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def print_frame(frame: pd.DataFrame, title: str | None = None) -> None:
    """Print ``frame`` as a table (missing values blank)."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.astype(object).where(frame.notna(), "").itertuples(index=False):
        table.add_row(*(str(value) for value in row))
    out.print(table)
