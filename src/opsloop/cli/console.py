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
            err.print(f"error: {_one_line(str(error))}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


# The longest error line printed: a message that quotes input at length (a library's, or a
# parser's quoting a whole line of a file) is cut here rather than flooding the terminal.
_MAX_ERROR_CHARACTERS = 300


def _one_line(message: str) -> str:
    """``message`` on one line, cut to a readable length with what was left out counted.

    >>> _one_line("bad value\\non two lines")
    'bad value on two lines'
    >>> _one_line("x" * 1000)[-40:]
    'xxxxxxxxxxxxx… (700 more characters cut)'
    """
    line = " ".join(message.split("\n"))
    if len(line) <= _MAX_ERROR_CHARACTERS:
        return line
    cut = len(line) - _MAX_ERROR_CHARACTERS
    return f"{line[:_MAX_ERROR_CHARACTERS]}… ({cut:,} more characters cut)"


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
