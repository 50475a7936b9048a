"""What every standalone HTML report shares: the template environment, plotly.js placed once,
figures embedded as inline scripts, and share axes whose tick labels stay distinct.

A report carries plotly.js one of two ways (the ``plotly`` argument of every report's
``to_html``): ``"inline"`` (the default) puts the library in the page, so one file opens
offline with nothing beside it; ``"beside"`` writes it once as :data:`PLOTLY_FILE` next to the
page and references it relatively, so reports written into one folder share one copy (4.8 MB
each otherwise) and the folder still opens offline.

Figures are embedded with ``plotly.io.to_html(include_plotlyjs=False)``: plotly writes the
figure's JSON with ``<``, ``>`` and ``/`` escaped, so data cannot close the script element.
The library is placed once in the page's head by the template, from :func:`plotly_js`.

>>> import plotly.graph_objects as go
>>> snippet = figure_html(go.Figure(go.Bar(x=["a"], y=[1])), "plot-0")
>>> 'id="plot-0"' in snippet, "<script" in snippet, "plotly.js v" in snippet
(True, True, False)
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from opsloop.reports.formatting import format_p_value, format_share, format_statistic

#: Passed to every embedded figure: no link to plotly's site, resize with the page.
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
#: The file name of plotly.js written beside reports that share it.
PLOTLY_FILE = "plotly.min.js"
#: How a report can carry plotly.js.
PLOTLY_MODES = ("inline", "beside")


@functools.cache
def template_environment() -> jinja2.Environment:
    """The jinja environment of the package's report templates, autoescaping every value.

    Autoescaping is on for every template, whatever its name: column names and category
    labels come from data and may contain markup.

    >>> template_environment().autoescape
    True
    >>> template_environment().from_string("{{ x }}").render(x="<b>")
    '&lt;b&gt;'
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("opsloop.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["statistic"] = format_statistic
    env.filters["p_value"] = format_p_value
    env.filters["share"] = format_share
    return env


@functools.cache
def plotly_js() -> Markup:
    """The plotly.js library bundled with the installed plotly, safe to place in a script.

    >>> plotly_js().startswith("/**")
    True
    """
    source = get_plotlyjs()
    # The library is inlined verbatim, as plotly itself does; a closing tag inside it would
    # end the script element early, so refuse rather than write a broken page.
    if "</script" in source.lower():
        raise RuntimeError("the bundled plotly.js contains '</script' and cannot be inlined")
    return Markup(source)


def figure_html(figure: go.Figure, div_id: str, height: int = 360) -> Markup:
    """A figure as a ``<div>`` and the inline script that draws it (plotly.js not included).

    ``div_id`` is chosen by the caller so that the same report renders to the same bytes;
    the figure fills the page's width and ``height`` pixels.

    >>> import plotly.graph_objects as go
    >>> figure_html(go.Figure(), "f1").count('id="f1"')
    1
    """
    html = pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=FIGURE_CONFIG,
        default_width="100%",
        default_height=f"{int(height)}px",
    )
    return Markup(html)


def plotly_head(plotly: str, needed: bool) -> dict[str, Markup | str | None]:
    """The template values that place plotly.js in a page's head: ``plotly_js`` (the inlined
    library) or ``plotly_src`` (the relative address of the shared file), at most one set.

    ``plotly`` is ``"inline"`` or ``"beside"``; a page without figures (``needed`` false)
    loads nothing.

    >>> plotly_head("beside", True)
    {'plotly_js': None, 'plotly_src': 'plotly.min.js'}
    >>> plotly_head("inline", False)
    {'plotly_js': None, 'plotly_src': None}
    >>> plotly_head("cdn", True)
    Traceback (most recent call last):
    ...
    ValueError: plotly must be one of ('inline', 'beside'), got 'cdn'
    """
    if plotly not in PLOTLY_MODES:
        raise ValueError(f"plotly must be one of {PLOTLY_MODES}, got {plotly!r}")
    if not needed:
        return {"plotly_js": None, "plotly_src": None}
    if plotly == "inline":
        return {"plotly_js": plotly_js(), "plotly_src": None}
    return {"plotly_js": None, "plotly_src": PLOTLY_FILE}


def write_report(page: str, path: str | os.PathLike, plotly: str) -> Path:
    """Write a rendered page to ``path``; with ``plotly="beside"`` and a page that loads
    :data:`PLOTLY_FILE`, also write the library into the same folder (only when the copy
    there differs, so reports written together share one file). Return the page's path.

    >>> import tempfile, pathlib
    >>> page = '<script src="plotly.min.js" charset="utf-8"></script>'
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_report(page, pathlib.Path(d) / "a.html", "beside")
    ...     sorted(p.name for p in out.parent.iterdir())
    ['a.html', 'plotly.min.js']
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    if plotly not in PLOTLY_MODES:
        raise ValueError(f"plotly must be one of {PLOTLY_MODES}, got {plotly!r}")
    out = Path(path)
    if plotly == "beside" and f'src="{PLOTLY_FILE}"' in page:
        library = out.parent / PLOTLY_FILE
        source = str(plotly_js())
        if not library.is_file() or library.read_text(encoding="utf-8") != source:
            library.write_text(source, encoding="utf-8")
    out.write_text(page, encoding="utf-8")
    return out


def share_axis(values) -> dict[str, Any]:
    """Axis settings for shares in [0, 1] shown as percentages: a tick step of 1, 2 or 5
    times a power of ten giving at most six ticks up to the largest value, and as many
    decimals as that step needs, so that no two tick labels read the same.

    Without a fixed step plotly may place ticks every 0.5% while a ``.0%`` format rounds
    them, which labels the axis "3%, 3%, 2%, 2%".

    >>> share_axis([0.0, 0.0301])
    {'tickformat': '.0%', 'tick0': 0, 'dtick': 0.01}
    >>> share_axis([0.0176])
    {'tickformat': '.1%', 'tick0': 0, 'dtick': 0.005}
    >>> share_axis([0.0021, 0.0004])
    {'tickformat': '.2%', 'tick0': 0, 'dtick': 0.0005}
    >>> share_axis([0.0])
    {'tickformat': '.0%'}
    """
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    top = max(finite, default=0.0)
    if top == 0.0:
        return {"tickformat": ".0%"}
    raw = top / 6
    power = math.floor(math.log10(raw))
    step = next(round(m * 10.0**power, 12 - power) for m in (1, 2, 5, 10) if m * 10.0**power >= raw)
    # Decimals of the percentage: a step of 0.5% needs one, 2% none.
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9))
    return {"tickformat": f".{decimals}%", "tick0": 0, "dtick": step}
