"""A user's mistake that reaches the CLI is one line on stderr and exit code 2, whatever
layer raised it: a conflicting change and an unknown name included."""

from __future__ import annotations

import pytest
import typer

from opsloop.cli.console import one_line_errors
from opsloop.errors import ConflictError, NotFoundError


@pytest.mark.parametrize(
    "error",
    [
        ConflictError("strategy: deployment 'one' is 'single'; only a 'blue_green' switches"),
        NotFoundError("deployment 'nope' does not exist"),
        ValueError("window: must be a duration"),
    ],
)
def test_the_error_is_one_line_and_exit_code_two(error, capsys):
    @one_line_errors
    def command():
        raise error

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err.strip() == f"error: {error}"
