import re

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from opsloop.reports.standalone import figure_html, plotly_js, template_environment


def test_environment_escapes_every_value_and_formats_numbers():
    env = template_environment()
    out = env.from_string(
        "{{ name }}|{{ s | statistic }}|{{ p | p_value }}|{{ f | share }}"
    ).render(name="<script>x</script>", s=0.123456, p=2.5e-7, f=0.25)
    assert out == "&lt;script&gt;x&lt;/script&gt;|0.1235|2.50e-07|25%"


def test_plotly_js_is_the_installed_bundle():
    assert str(plotly_js()) == get_plotlyjs()


def test_figure_html_embeds_a_figure_without_the_library():
    fig = go.Figure(go.Bar(x=["</script><b>x"], y=[1.0]))
    snippet = str(figure_html(fig, "plot-7", height=250))
    assert 'id="plot-7"' in snippet
    assert "height:250px" in snippet
    assert re.search(r'Plotly\.newPlot\(\s*"plot-7"', snippet)
    # Data cannot end the script element early: plotly escapes '<' and '/' in its JSON.
    assert "</script><b>" not in snippet
    assert snippet.count("</script>") == 1
    assert len(snippet) < 20_000
