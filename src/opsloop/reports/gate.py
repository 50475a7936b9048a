"""A release gate's result as one standalone HTML page: the verdict, what was compared, and
every check with its statistic, p-value, threshold, why, and its evidence as JSON.

The page has no scripts and no figures, so it opens offline and is small enough to attach
to a CI run; the same result renders to the same text.

>>> from opsloop.analysis.gate import CheckResult, GateResult
>>> result = GateResult("credit", 2, None, "credit v7", "credit v6 (credit@champion)",
...                     "eval.csv", 500, (CheckResult("floor", "auc >= 0.75", False,
...                     "auc 0.71 is below the floor 0.75", statistic=0.71, threshold=0.75),))
>>> page = render_gate_html(result)
>>> "auc 0.71 is below the floor 0.75" in page, 'class="badge drifted">fail' in page
(True, True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsloop.analysis.gate import GateResult
from opsloop.reports.standalone import template_environment, write_report


def render_gate_html(result: GateResult, title: str | None = None) -> str:
    """The page as text; ``title`` defaults to ``Release gate NAME``.

    >>> from opsloop.analysis.gate import GateResult
    >>> "<title>Release gate g</title>" in render_gate_html(GateResult("g", 1, None, "c", "b",
    ...                                                                  "d", 1, ()))
    True
    """
    if not isinstance(result, GateResult):
        raise TypeError(f"result must be a GateResult, got {type(result).__name__}")
    evidence = [
        json.dumps(check.to_dict()["evidence"], indent=2, sort_keys=True) for check in result.checks
    ]
    return (
        template_environment()
        .get_template("gate.html.j2")
        .render(title=title or f"Release gate {result.gate}", result=result, evidence=evidence)
    )


def write_gate_html(result: GateResult, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write :func:`render_gate_html`'s page to ``path`` and return the path.

    >>> import tempfile, pathlib
    >>> from opsloop.analysis.gate import GateResult
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "gate.html"
    >>> write_gate_html(GateResult("g", 1, None, "c", "b", "d", 1, ()), out).stat().st_size > 500
    True
    """
    return write_report(render_gate_html(result, title), path, "inline")
