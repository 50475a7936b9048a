"""Jinja2 rendering of the dashboard's pages, and the headers every page carries.

Pages load scripts only from the server itself (``script-src 'self'``): figures travel as
JSON data blocks that :file:`static/charts.js` hands to plotly.js, so no inline script
runs. plotly.js adds its own ``<style>`` elements, hence ``'unsafe-inline'`` for styles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import pandas as pd
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from opsloop import __version__
from opsloop.store.audit_origin import describe_origin
from opsloop.ui.form_posts import CSRF_FIELD, csrf_token
from opsloop.ui.refresh_query import with_refresh

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show a signed-in user's data: never kept by a shared cache.
    "Cache-Control": "no-store",
}


def format_time(milliseconds: object) -> str:
    """Milliseconds since the epoch (or a Timestamp) as ``YYYY-MM-DD HH:MM:SS`` UTC.

    >>> format_time(1_700_000_000_000), format_time(None)
    ('2023-11-14 22:13:20', '')
    """
    if milliseconds is None or (not isinstance(milliseconds, str) and pd.isna(milliseconds)):
        return ""
    if isinstance(milliseconds, pd.Timestamp):
        stamp = milliseconds
    else:
        stamp = pd.Timestamp(int(milliseconds), unit="ms", tz="UTC")  # type: ignore[call-overload]
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def format_value(value: object) -> str:
    """A table cell: numbers to 6 significant digits, missing values empty.

    >>> format_value(0.123456789), format_value(float("nan")), format_value("rf")
    ('0.123457', '', 'rf')
    >>> format_value([0.05, 0.25])
    '[0.05, 0.25]'
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, pd.Timestamp):
        return format_time(value)
    if not isinstance(value, str) and pd.isna(value):
        return ""
    return str(value)


def figure_json(figure: Mapping) -> Markup:
    """A figure (``{"data": [...], "layout": {...}}``) as JSON safe inside a ``<script>``.

    >>> str(figure_json({"data": [], "layout": {"title": {"text": "</script>"}}}))
    '{"data": [], "layout": {"title": {"text": "\\\\u003c/script\\\\u003e"}}}'
    """
    text = json.dumps(figure, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


TEMPLATES = Environment(
    loader=PackageLoader("opsloop.ui", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["time"] = format_time
TEMPLATES.filters["kept_refresh"] = with_refresh
TEMPLATES.filters["value"] = format_value
TEMPLATES.filters["figure"] = figure_json
TEMPLATES.filters["origin"] = describe_origin
TEMPLATES.globals["version"] = __version__
TEMPLATES.globals["csrf_field"] = CSRF_FIELD


def signed_in_name(request: Request) -> str | None:
    """The name of the user signed in to the dashboard for ``request`` (``None``: nobody),
    for counts that leave out what that user's own action would not count.

    >>> from starlette.requests import Request as Plain
    >>> print(signed_in_name(Plain({"type": "http", "state": {}})))
    None
    """
    user = getattr(request.state, "dashboard_user", None)
    return None if user is None else user.name


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """The page ``template`` rendered with ``context``, the signed-in user and the request.

    >>> TEMPLATES.get_template("login.html.j2").name
    'login.html.j2'
    """
    context.setdefault("user", getattr(request.state, "dashboard_user", None))
    secret = getattr(request.state, "dashboard_secret", None)
    # Every form that changes state carries it (see :mod:`.form_posts`).
    context.setdefault("csrf", None if secret is None else csrf_token(secret))
    page = TEMPLATES.get_template(template).render(request=request, **context)
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)
