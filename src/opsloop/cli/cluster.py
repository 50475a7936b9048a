"""The ``--dask [SCHEDULER]`` option of ``opsloop profile``, ``drift`` and ``schema``:
the command reads its Parquet data lazily as a ``dask.dataframe`` and computes on a Dask
cluster, a new local one (worker processes on this machine) when no address is given.

Without ``--dask`` the data is read into memory: a file, a directory of Parquet files, or a
quoted glob pattern of Parquet files (``"logs/day=*/*.parquet"``).

A bare ``--dask`` (at the end, or before another option or a path) means ``--dask local``:
:func:`expand_bare_dask` rewrites the command line before it is parsed. A scheduler address
is ``tcp://host:port`` (any ``scheme://``) or ``host:port``.
"""

from __future__ import annotations

import contextlib
import glob
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from opsloop.cli.console import UsageProblem

#: The option, shared by the commands that read data.
DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="[SCHEDULER]",
        help="Compute on Dask: on the scheduler at this address (tcp://host:8786), or on a "
        "new local cluster when no address is given. DATA must be Parquet (a file, a "
        "directory or a quoted glob).",
    ),
]


_ADDRESS = re.compile(r"^([a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+)$", re.IGNORECASE)


def expand_bare_dask(argv: list[str]) -> list[str]:
    """``argv`` with ``local`` after each ``--dask`` that no scheduler address follows.

    >>> expand_bare_dask(["profile", "data/", "--dask"])
    ['profile', 'data/', '--dask', 'local']
    >>> expand_bare_dask(["profile", "--dask", "data/", "--json"])
    ['profile', '--dask', 'local', 'data/', '--json']
    >>> expand_bare_dask(["profile", "data/", "--dask", "tcp://10.0.0.5:8786"])
    ['profile', 'data/', '--dask', 'tcp://10.0.0.5:8786']
    """
    out: list[str] = []
    for position, token in enumerate(argv):
        out.append(token)
        if token != "--dask":
            continue
        following = argv[position + 1] if position + 1 < len(argv) else None
        if following is None or not (following == "local" or _ADDRESS.match(following)):
            out.append("local")
    return out


def read_data(path: Path, dask: str | None):
    """The table at ``path``: a lazy Dask frame of its Parquet files with ``--dask``,
    otherwise read into memory (a glob of Parquet files concatenated in name order)."""
    if dask is not None:
        from opsloop.data.distributed.frames import read_parquet_dask

        return read_parquet_dask(path)
    text = str(path)
    if glob.has_magic(text) and not Path(text).exists():
        import pandas as pd

        from opsloop.data.distributed.frames import parquet_files

        files = parquet_files(text)
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    from opsloop.data.io import read_table

    return read_table(path)


@contextlib.contextmanager
def computing_on(dask: str | None) -> Iterator[None]:
    """Inside the block, Dask computes on ``dask``'s cluster (nothing changes without it);
    a cluster that fails the computation (a worker lost too often, the scheduler gone) ends
    the command with one line naming the failure."""
    if dask is None:
        yield
        return
    try:
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker
    except ImportError as error:  # the dask extra is not installed
        raise UsageProblem(
            f"--dask needs the dask extra (pip install 'opsloop[dask]'): {error}"
        ) from None

    from opsloop.data.distributed.frames import dask_client

    try:
        with dask_client(None if dask == "local" else dask):
            yield
    except ConnectionError as error:
        raise UsageProblem(str(error)) from error
    except (KilledWorker, FutureCancelledError) as error:
        raise UsageProblem(
            f"the Dask computation failed: {type(error).__name__}: {error}"
        ) from error
