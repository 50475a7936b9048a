"""The ``opsloop`` command line: a thin surface over the library's functions."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="opsloop: ML in production.")


def main() -> None:
    """Entry point of the ``opsloop`` console script."""
    app()
