"""A release gate's result for people and for CI: one standalone HTML page (the verdict,
what was compared, every check with its statistic, p-value, threshold, why and its evidence
as JSON), a markdown summary for a pull-request comment, and JUnit XML (one test case per
check) for CI systems that show test reports.

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
import xml.etree.ElementTree as ET
from pathlib import Path

from opsloop.analysis.gate import GateResult
from opsloop.reports.formatting import format_p_value, format_statistic
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
    >>> out = tmp_path / "gate.html"
    >>> write_gate_html(GateResult("g", 1, None, "c", "b", "d", 1, ()), out).stat().st_size > 500
    True
    """
    return write_report(render_gate_html(result, title), path, "inline")


def gate_markdown(result: GateResult) -> str:
    """A markdown summary: the headline and one table row per check.

    >>> from opsloop.analysis.gate import CheckResult, GateResult
    >>> check = CheckResult("floor", "auc >= 0.75", False, "auc 0.71 | low", statistic=0.71)
    >>> print(gate_markdown(GateResult("g", 1, None, "m v2", "m v1", "d", 9, (check,))))
    **gate g v1: FAILED**, m v2 against m v1 on d (9 rows, 1 checks); failed: auc >= 0.75
    <BLANKLINE>
    | check | verdict | statistic | p-value | threshold | why |
    | --- | --- | ---: | ---: | ---: | --- |
    | auc >= 0.75 | ❌ fail | 0.71 | — | — | auc 0.71 \\| low |
    """
    head, _, rest = result.headline().partition(": ")
    verdict, _, tail = rest.partition(", ")
    lines = [
        f"**{head}: {verdict}**, {tail}",
        "",
        "| check | verdict | statistic | p-value | threshold | why |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for check in result.checks:
        mark = "✅ pass" if check.passed else "❌ fail"
        cells = [
            _cell(check.name),
            mark,
            format_statistic(check.statistic),
            format_p_value(check.p_value),
            format_statistic(check.threshold),
            _cell(check.reason),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gate_junit_xml(result: GateResult) -> str:
    """JUnit XML: one test suite (the gate), one test case per check, a failure element
    carrying the reason for each failed check.

    >>> from opsloop.analysis.gate import CheckResult, GateResult
    >>> check = CheckResult("floor", "auc >= 0.75", False, "auc 0.71 < 0.75")
    >>> text = gate_junit_xml(GateResult("g", 1, None, "m v2", "m v1", "d", 9, (check,)))
    >>> text.splitlines()[0]
    "<?xml version='1.0' encoding='utf-8'?>"
    >>> suite = ET.fromstring(text.split("?>", 1)[1])
    >>> suite.get("name"), suite.get("failures"), suite[0].get("name"), suite[0][0].get("message")
    ('gate g v1: m v2 against m v1', '1', 'auc >= 0.75', 'auc 0.71 < 0.75')
    """
    suite = ET.Element(
        "testsuite",
        name=f"gate {result.gate} v{result.gate_version}: {result.candidate} against "
        f"{result.baseline}",
        tests=str(len(result.checks)),
        failures=str(len(result.failed())),
    )
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=check.kind, name=check.name)
        if not check.passed:
            ET.SubElement(case, "failure", message=check.reason)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def _cell(text: str) -> str:
    """Text for a markdown table cell: a pipe would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")
