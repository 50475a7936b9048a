"""The reports: HTML files the CLI, the loop and people logged as run artifacts (drift,
analysis, gate, robustness reports), listed newest run first and opened in the dashboard.

A report is a page someone else wrote: it carries its own scripts (plotly.js and the
figures, inline) and data that may hold markup. So it is never served as a page of the
dashboard's origin. Its bytes (read through the tracking service, checked against their
sha256) come from :func:`report_file` with a Content-Security-Policy whose ``sandbox``
directive (scripts allowed, same origin not) gives the document an opaque origin of its
own: its scripts run, but cannot read the dashboard's pages, cookies or storage, cannot
call the API with the session, submit forms, open popups or navigate the dashboard, and
``default-src 'none'`` stops them from fetching or sending anything. The dashboard's page
shows it in an ``<iframe sandbox="allow-scripts">``, the same rule a second time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from opsloop.errors import NotFoundError
from opsloop.registry import User
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: How the path of a report ends (in any case).
REPORT_SUFFIX = ".html"
#: Reports a page lists.
REPORTS_PER_PAGE = 50
RunId = Annotated[str, Path(min_length=1, max_length=250)]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
#: The headers of a report's bytes: a sandboxed document with an opaque origin (see the
#: module docstring), shown only inside the dashboard's own pages.
REPORT_HEADERS = {
    "Content-Security-Policy": (
        "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_report(path: str) -> bool:
    """Whether an artifact's path names an HTML report (ends with ``.html``, any case).

    >>> is_report("reports/drift.HTML"), is_report("model.onnx")
    (True, False)
    """
    return path.lower().endswith(REPORT_SUFFIX)


def _report(request: Request, run_id: str, path: str):
    """The run and the artifact record of its report at ``path`` (404s naming which)."""
    if not is_report(path):
        raise NotFoundError(f"path: {path[:80]!r} is not an HTML report (.html)")
    run = request.app.state.tracking.get_run(run_id)
    for artifact in run.artifacts:
        if artifact.path == path:
            return run, artifact
    raise NotFoundError(f"path: run {run.run_id} has no artifact {path[:80]!r}")


@router.get("/reports")
def reports_page(request: Request, user: Viewer, page: PageNumber = 1) -> Response:
    """The HTML reports logged in runs, newest run first, 50 a page."""
    found = request.app.state.tracking.search_artifacts(
        suffix=REPORT_SUFFIX, max_results=REPORTS_PER_PAGE + 1, offset=(page - 1) * REPORTS_PER_PAGE
    )
    if page > 1 and found.empty:
        raise NotFoundError(f"page: there is no report on page {page}")
    return render(
        request,
        "reports.html.j2",
        reports=found.iloc[:REPORTS_PER_PAGE].to_dict("records"),
        page=page,
        more=len(found) > REPORTS_PER_PAGE,
    )


@router.get("/reports/{run_id}/{path:path}")
def report_page(request: Request, user: Viewer, run_id: RunId, path: str) -> Response:
    """One report inside the dashboard, with the run it belongs to."""
    run, artifact = _report(request, run_id, path)
    return render(request, "report.html.j2", run=run, artifact=artifact)


@router.get("/report-files/{run_id}/{path:path}")
def report_file(request: Request, user: Viewer, run_id: RunId, path: str) -> Response:
    """A report's bytes, checked against their sha256, as a sandboxed document."""
    _, artifact = _report(request, run_id, path)
    data = request.app.state.tracking.read_artifact(artifact.sha256)
    return Response(data, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)
