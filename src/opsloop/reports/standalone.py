"""What every standalone HTML report shares: the template environment, plotly.js inlined once,
and figures embedded as inline scripts, so that one file opens offline with nothing beside it.

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

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from opsloop.reports.formatting import format_p_value, format_share, format_statistic

#: Passed to every embedded figure: no link to plotly's site, resize with the page.
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}


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
