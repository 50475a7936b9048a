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
#: The ``--format`` option of the commands that print one table.
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="table, csv or json. Tables are never cut or wrapped when the output is not a "
        "terminal.",
    ),
]
OUTPUT_FORMATS = ("table", "csv", "json")


class UsageProblem(Exception):
    """A command cannot run; the message is printed on one line and the exit code is 2."""


def one_line_errors(command: Callable) -> Callable:
    """Turn the errors a user can cause into one line on stderr and exit code 2."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        import httpx

        from opsloop.data.io import TableReadError
        from opsloop.errors import ConflictError, NotFoundError

        try:
            return command(*args, **kwargs)
        except (
            UsageProblem,
            TableReadError,
            # a server that cannot be reached: refused, timed out, name not resolved
            httpx.TransportError,
            # the state a command meets: a name that does not exist, a change that conflicts
            NotFoundError,
            ConflictError,
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


def _choices_lists() -> tuple[str, ...]:
    """The lists of choices a message may end with and keep whole: the policy's signals
    and actions, which the user needs to correct a rule. Only these exact lists: a list
    at the end of another message may quote the user's own data at any length."""
    from opsloop.monitoring.policy import ACTIONS, SIGNALS

    return (f" (signals: {', '.join(SIGNALS)})", f" (available: {', '.join(ACTIONS)})")


def _one_line(message: str) -> str:
    """``message`` on one line, cut to a readable length with what was left out counted.

    >>> _one_line("bad value\\non two lines")
    'bad value on two lines'
    >>> _one_line("x" * 1000)[-40:]
    'xxxxxxxxxxxxx… (700 more characters cut)'

    A list of choices at the end stays whole; the text before it is cut as any other:

    >>> from opsloop.monitoring.policy import SIGNALS
    >>> signals = f" (signals: {', '.join(SIGNALS)})"
    >>> _one_line("y" * 400 + signals).endswith(signals)
    True
    >>> "(100 more characters cut)" in _one_line("y" * 400 + signals)
    True

    Any other list is cut as the rest of the line is (it may quote the user's data):

    >>> _one_line("z (columns: " + "c, " * 2000 + "c)")[300:]
    '… (5,714 more characters cut)'
    """
    line = " ".join(message.split("\n"))
    if len(line) <= _MAX_ERROR_CHARACTERS:
        return line
    choices = next((c for c in _choices_lists() if line.endswith(c)), None)
    if choices is not None:
        head = line[: -len(choices)]
        if len(head) > _MAX_ERROR_CHARACTERS:
            cut = len(head) - _MAX_ERROR_CHARACTERS
            head = f"{head[:_MAX_ERROR_CHARACTERS]}… ({cut:,} more characters cut)"
        return head + choices
    cut = len(line) - _MAX_ERROR_CHARACTERS
    return f"{line[:_MAX_ERROR_CHARACTERS]}… ({cut:,} more characters cut)"


def print_json(document: object) -> None:
    """Print ``document`` as indented JSON on stdout (anything else as its text)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def output_format(chosen: str | None, as_json: bool = False) -> str:
    """The format asked for (``--format``, or ``--json``), checked; default ``table``.

    >>> output_format(None), output_format("CSV"), output_format(None, as_json=True)
    ('table', 'csv', 'json')
    """
    if chosen is None:
        return "json" if as_json else "table"
    fmt = chosen.lower()
    if fmt not in OUTPUT_FORMATS:
        raise UsageProblem(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {chosen!r}")
    if as_json and fmt != "json":
        raise UsageProblem(f"--json and --format {fmt} ask for two formats; give one")
    return fmt


def print_table(table: Table) -> None:
    """Print a rich table: to a terminal as rich lays it out, elsewhere (a pipe, a file, a CI
    log) at its natural width, so no cell is cut short or wrapped mid-word."""
    if sys.stdout.isatty():
        out.print(table)
        return
    natural = Console(width=1_000_000).measure(table).maximum
    Console(highlight=False, width=max(natural, 80), soft_wrap=False).print(table)


def print_frame(frame: pd.DataFrame, title: str | None = None, fmt: str = "table") -> None:
    """Print ``frame`` as a table (missing values blank), as CSV or as JSON records; times
    print in ISO 8601.

    >>> import pandas as pd
    >>> print_frame(pd.DataFrame({"a": [1], "at": pd.to_datetime([0], unit="ms", utc=True)}),
    ...             fmt="csv")
    a,at
    1,1970-01-01T00:00:00+00:00
    """
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column].dtype):
            shown[column] = [None if pd.isna(t) else t.isoformat() for t in shown[column]]
    if fmt == "csv":
        shown.to_csv(sys.stdout, index=False)
        return
    if fmt == "json":
        records = shown.astype(object).where(shown.notna(), None).to_dict(orient="records")
        print_json(records)
        return
    table = Table(title=title)
    for column in shown.columns:
        table.add_column(str(column), overflow="fold")
    for row in shown.astype(object).where(shown.notna(), "").itertuples(index=False):
        table.add_row(*(str(value) for value in row))
    print_table(table)


#: A section of a command that prints several tables: its name (the ``section`` column of
#: the CSV), the frame, and the table's title when it differs from the name.
Section = tuple[str, pd.DataFrame] | tuple[str, pd.DataFrame, str]


def sections_frame(sections: list[Section]) -> pd.DataFrame:
    """Several tables as one long table with the columns section, item, field and value.

    A two-column table whose second column is ``value`` holds one field per row (item
    blank); in any other table the first column names each row's item and every other column
    is one of its fields (a one-column table lists items alone).

    >>> import pandas as pd
    >>> print(sections_frame([
    ...     ("params", pd.DataFrame({"key": ["depth"], "value": ["3"]})),
    ...     ("datasets", pd.DataFrame({"name": ["train"], "n_rows": [3], "n_columns": [2]})),
    ...     ("packages", pd.DataFrame({"package": ["numpy==2.4.6"]})),
    ... ]).to_csv(index=False).strip())
    section,item,field,value
    params,,depth,3
    datasets,train,n_rows,3
    datasets,train,n_columns,2
    packages,numpy==2.4.6,,
    """
    rows = []
    for name, frame, *_ in sections:
        columns = list(frame.columns)
        pairs = len(columns) == 2 and columns[1] == "value"
        for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            if pairs:
                rows.append((name, None, record[columns[0]], record["value"]))
            else:
                item = record[columns[0]]
                rows.extend((name, item, field, record[field]) for field in columns[1:])
                if len(columns) == 1:
                    rows.append((name, item, None, None))
    return pd.DataFrame(rows, columns=["section", "item", "field", "value"])


def print_sections(sections: list[Section], fmt: str = "table") -> None:
    """Print several tables: each with its title, or (``fmt="csv"``) as one CSV of
    :func:`sections_frame`'s columns, which a spreadsheet or ``pandas.read_csv`` reads whole.

    >>> import pandas as pd
    >>> print_sections([("tags", pd.DataFrame({"key": ["team"], "value": ["risk"]}))], "csv")
    section,item,field,value
    tags,,team,risk
    """
    if fmt == "csv":
        sections_frame(sections).to_csv(sys.stdout, index=False)
        return
    for name, frame, *title in sections:
        print_frame(frame, title=title[0] if title else name)


def iso_time_ms(value: object) -> object:
    """Epoch milliseconds as ISO 8601 UTC text (anything else unchanged).

    >>> iso_time_ms(1_700_000_000_123), iso_time_ms(None)
    ('2023-11-14T22:13:20.123Z', None)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        stamp = pd.Timestamp(value, unit="ms", tz="UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return value
