"""``--run RUN_ID`` of the commands that write an HTML report (``drift``, ``gate run``,
``monitor report``, ``select``): the page is also logged as an artifact of that tracked run,
so the dashboard's Reports page lists it. As with ``opsloop analyse --run``, the run's status
and end time stay as they were, and runs go where the tracking API sends them
(``OPSLOOP_TRACKING_URI``, else the local store under ``OPSLOOP_HOME``).

>>> check_report_run("r1", None)
Traceback (most recent call last):
...
opsloop.cli.console.UsageProblem: --run needs --html: only an HTML report is logged to a run
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsloop.cli.console import UsageProblem, out

#: The option every report-writing command takes.
RunOption = Annotated[
    str | None,
    typer.Option("--run", help="Also log the HTML report to this existing tracked run."),
]


def check_report_run(run: str | None, html: Path | None) -> None:
    """Refuse ``--run`` without ``--html``, and a run that does not exist, before the work.

    >>> check_report_run(None, None)
    >>> check_report_run("no-such-run", Path("r.html"))
    Traceback (most recent call last):
    ...
    opsloop.tracking.local_store.UnknownRunError: unknown run id 'no-such-run'
    """
    if run is None:
        return
    if html is None:
        raise UsageProblem("--run needs --html: only an HTML report is logged to a run")
    from opsloop.tracking import tracking_backend

    tracking_backend().get_run(run)


def check_output_folders(paths: dict[str, Path | None]) -> None:
    """Refuse, before the work, an output file (by its option's name) that is a folder or
    whose folder does not exist: the report-writing commands write into an existing folder and create none,
    so a typo in the folder is not a new tree of folders.

    >>> check_output_folders({"--html": None, "--json": Path("report.json")})
    >>> check_output_folders({"--html": Path("no-such-folder/report.html")})
    Traceback (most recent call last):
    ...
    opsloop.cli.console.UsageProblem: --html: the folder 'no-such-folder' does not exist; create it first
    """  # noqa: E501 - a doctest's expected output is one line
    for option, path in paths.items():
        if path is None:
            continue
        if path.is_dir():
            raise UsageProblem(f"{option}: {str(path)!r} is a folder; give a file name in it")
        folder = path.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise UsageProblem(f"{option}: the folder {str(folder)!r} {what}; create it first")


def log_report(run: str | None, page: Path) -> None:
    """Log the HTML file ``page`` to ``run`` as the artifact named like the file (``.html``
    added when the name lacks it, since the Reports page lists ``.html`` artifacts only).

    >>> import opsloop
    >>> with opsloop.start_run(experiment="e") as run:
    ...     pass
    >>> page = tmp_path / "drift.html"
    >>> _ = page.write_text("<p>drift</p>")
    >>> log_report(run.run_id, page)
    Report logged to run ... as drift.html
    >>> from opsloop.tracking import tracking_backend
    >>> [a.path for a in tracking_backend().get_run(run.run_id).artifacts]
    ['drift.html']
    """
    if run is None:
        return
    from opsloop.tracking import tracking_backend

    name = page.name if page.name.lower().endswith(".html") else f"{page.name}.html"
    tracking_backend().log_artifact(run, page.read_bytes(), name)
    out.print(f"Report logged to run {run} as {name}", markup=False)
