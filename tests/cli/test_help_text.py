"""Every command's --help: paragraphs wrap at the terminal's width, never after a few words."""

from __future__ import annotations

from itertools import pairwise

import typer
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.cli.help_text import reflowed

WIDTH = 80


def _command_paths(command, path=()):
    yield list(path)
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def _description(output: str) -> list[list[str]]:
    """The help's prose (between the usage line and the first panel), as paragraphs of lines."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:end]:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [paragraph for paragraph in paragraphs if paragraph]


def test_every_help_wraps_only_where_the_next_word_does_not_fit():
    paths = list(_command_paths(typer.main.get_command(app)))
    assert len(paths) > 50  # the whole tree, not only the top level
    runner = CliRunner()
    broken = []
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=WIDTH)
        assert result.exit_code == 0, (path, result.output)
        for paragraph in _description(result.output):
            for line, following in pairwise(paragraph):
                # One space of padding on each side: a line is full when the next word
                # would not have fitted after it.
                if len(line) + 1 + len(following.split()[0]) <= WIDTH - 2:
                    broken.append((" ".join(path), line))
    assert broken == []


def test_the_approver_help_keeps_every_word_of_its_docstring():
    result = CliRunner().invoke(app, ["models", "approve", "--help"], terminal_width=WIDTH)
    words = " ".join(line.strip() for line in result.output.splitlines()).split()
    text = " ".join(words)
    assert "the OS login as Python's getpass.getuser() reads it" in text
    assert "owner of OPSLOOP_TRACKING_TOKEN." in text


def test_reflowed_keeps_list_items_and_indented_lines():
    text = "Head.\n\n    Body one\n    two.\n\n    - item\n      more\n    - next\n\n        code()"
    assert reflowed(text) == "Head.\n\nBody one two.\n\n- item more\n- next\n\n    code()"


def test_reflowed_keeps_numbered_items_and_clicks_verbatim_blocks():
    text = (
        "Steps:\n\n1. fit the model\n   on train.\n2) register it\n10. serve\n\n"
        "\b\nopsloop runs list\nopsloop runs show ID\n\nLast\nparagraph."
    )
    assert reflowed(text) == (
        "Steps:\n\n1. fit the model on train.\n2) register it\n10. serve\n\n"
        "\b\nopsloop runs list\nopsloop runs show ID\n\nLast paragraph."
    )
    # a number that only starts a wrapped line is not an item
    assert reflowed("Keeps the last\n3 versions.") == "Keeps the last 3 versions."


def test_a_verbatim_block_prints_line_by_line():
    demo = typer.Typer()

    @demo.command()
    def show() -> None:
        """Show runs.

        \b
        opsloop runs list
        opsloop runs show ID
        """

    @demo.command()
    def other() -> None:
        """Another command, so that show is a subcommand."""

    from opsloop.cli.help_text import reflow_help

    reflow_help(demo)
    output = CliRunner().invoke(demo, ["show", "--help"], terminal_width=WIDTH).output
    lines = [line.strip() for line in output.splitlines()]
    assert "opsloop runs list" in lines
    assert "opsloop runs show ID" in lines
