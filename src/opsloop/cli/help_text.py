"""Help texts as paragraphs the terminal wraps: a docstring's line breaks removed.

typer's rich help keeps every line break of a command's docstring after its first paragraph
and then wraps each line again at the terminal's width, so a docstring wrapped at 92
characters prints on an 80-column terminal as lines cut after one or two words. Joining each
paragraph's lines into one before typer sees it leaves the wrapping to the terminal. A line
that starts a list item (``- ``, ``1.``) or is indented (an example) keeps its own line, and
a paragraph opened by click's ``\\b`` line is kept as written.

>>> print(reflowed('''First line
... goes on.
...
... Second paragraph,
... wrapped in the source.
...
... - one item
...   continued
... - two'''))
First line goes on.
<BLANKLINE>
Second paragraph, wrapped in the source.
<BLANKLINE>
- one item continued
- two
"""

from __future__ import annotations

import inspect
import re

import typer

# a list item: "- ", "* ", "+ ", or a number with "." or ")" ("1. ", "2) ")
_ITEM = re.compile(r"(?:[-*+]|\d+[.)]) ")


def _joined(paragraph: str) -> str:
    if paragraph.lstrip(" \n").startswith("\b"):
        return paragraph  # click's mark of a block printed as written, line by line
    lines: list[str] = []
    for line in paragraph.splitlines():
        starts_line = not lines or line.startswith("    ") or _ITEM.match(line) is not None
        if starts_line:
            lines.append(line.rstrip())
        else:
            lines[-1] = f"{lines[-1]} {line.strip()}"
    return "\n".join(lines)


def reflowed(text: str) -> str:
    """``text`` (a docstring) with each paragraph's wrapped lines joined into one line.

    >>> reflowed("Serve the API\\n    on one port.\\n\\n    Use --workers N\\n    for more.")
    'Serve the API on one port.\\n\\nUse --workers N for more.'
    """
    help_text, cut, rest = inspect.cleandoc(text).partition("\f")
    paragraphs = [_joined(paragraph) for paragraph in help_text.split("\n\n")]
    return "\n\n".join(paragraphs) + cut + rest


def reflow_help(app: typer.Typer) -> None:
    """Reflow the help of every command and command group of ``app``, recursively.

    >>> app = typer.Typer()
    >>> @app.command()
    ... def hello() -> None:
    ...     '''Say hello
    ...     to everyone.'''
    >>> reflow_help(app)
    >>> app.registered_commands[0].help
    'Say hello to everyone.'
    """
    for command in app.registered_commands:
        text = command.help or inspect.getdoc(command.callback)
        if text:
            command.help = reflowed(text)
    for group in app.registered_groups:
        if group.help:
            group.help = reflowed(group.help)
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)
    info = app.info
    if isinstance(info.help, str):
        info.help = reflowed(info.help)
