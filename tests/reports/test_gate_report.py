"""The release gate's HTML page: every check with its numbers, data escaped, stable output."""

from __future__ import annotations

import json

from opsloop.analysis.gate import CheckResult, GateResult
from opsloop.reports.gate import render_gate_html, write_gate_html


def _result(passed_slices: bool) -> GateResult:
    checks = (
        CheckResult(
            "non_inferiority",
            "auc non-inferiority (delong)",
            True,
            "auc 0.91 vs 0.90: not worse by 0.01 or more (p = 0.0012)",
            statistic=3.04,
            p_value=0.0012,
            threshold=0.01,
            evidence={"candidate": 0.91, "baseline": 0.9, "ci_low": -0.004},
        ),
        CheckResult(
            "slices",
            "no slice of region worse by more than 0.02 (level 0.05)",
            passed_slices,
            "1 slice(s) worse by more than 0.02: region = <script>alert(1)</script>",
            statistic=0.12,
            p_value=2.5e-7,
            threshold=0.02,
            evidence={"failing": [{"value": "<script>alert(1)</script>", "n": 40}]},
        ),
    )
    return GateResult("credit", 3, "ab" * 32, "credit v7", "credit v6", "eval.csv", 500, checks)


def test_the_page_shows_every_check_with_its_numbers_and_evidence():
    page = render_gate_html(_result(passed_slices=False))
    assert '<header class="verdict drifted">' in page
    assert "gate credit v3: FAILED, credit v7 against credit v6 on eval.csv" in page
    for text in (
        "auc non-inferiority (delong)",
        '<td class="num">3.04</td>',
        '<td class="num">0.0012</td>',
        '<td class="num">2.50e-07</td>',
        '<tr class="failed">',
        "sha256 " + "ab" * 32,
    ):
        assert text in page, text
    # Every kind of check runs now: the page lists nothing as not checked.
    assert "Not checked" not in page
    assert page.count('<span class="badge stable">pass</span>') == 1
    assert page.count('<span class="badge drifted">fail</span>') == 1
    assert "&#34;ci_low&#34;: -0.004" in page  # the evidence, as escaped JSON


def test_data_in_the_page_is_escaped():
    page = render_gate_html(_result(passed_slices=False))
    assert "<script>" not in page
    assert "region = &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_passed_gate_renders_the_same_text_each_time(tmp_path):
    result = _result(passed_slices=True)
    path = write_gate_html(result, tmp_path / "gate.html")
    assert path.read_text() == render_gate_html(result)
    assert '<header class="verdict stable">' in path.read_text()
    assert json.loads(result.to_json())["passed"] is True
