"""``python -m opsloop.server [--host H] [--port P]``: the same as ``opsloop server``."""

import typer

from opsloop.cli.tracking import server_command

if __name__ == "__main__":
    typer.run(server_command)
