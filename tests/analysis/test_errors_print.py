"""Error analysis results print as tables, not as dataclass reprs."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from opsloop.analysis import error_analysis


def analysis():
    rng = np.random.default_rng(0)
    n = 2_000
    device = rng.choice(["web", "ios", "android"], n, p=[0.5, 0.3, 0.2])
    truth = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(device == "android", 0.3, 0.1)
    predicted = np.where(wrong, 1 - truth, truth)
    return error_analysis(truth, predicted, {"device": device}, hlp=0.05), device, wrong


def test_top_prints_one_line_per_slice_with_its_numbers():
    result, device, wrong = analysis()
    text = str(result.top(3))
    lines = text.splitlines()
    assert "TagErrors(" not in text and len(lines) == 4
    assert lines[0].split() == [
        "tag", "value", "n", "errors", "error", "rate", "share", "of", "errors",
        "share", "of", "data", "room",
    ]  # fmt: skip
    first = result.top(3)[0]
    assert first.value == "android"
    n, errors = int((device == "android").sum()), int(wrong[device == "android"].sum())
    low, high = proportion_confint(errors, n, alpha=0.05, method="wilson")
    cells = lines[1].split()
    assert cells[:4] == ["device", "android", str(n), str(errors)]
    assert cells[4:7] == [f"{errors / n:.1%}", f"[{low:.1%},", f"{high:.1%}]"]
    assert cells[7] == f"{errors / wrong.sum():.1%}" and cells[8] == f"{n / len(device):.1%}"
    room = (errors / n - 0.05) * n / len(device)
    assert cells[9] == f"{room:.1%}"
    # Still the tuple it was: indexing and iteration unchanged.
    assert result.top(3)[0] is not None and len(tuple(result.top(2))) == 2


def test_the_whole_analysis_and_one_slice_print_readably():
    result, _, wrong = analysis()
    lines = str(result).splitlines()
    assert lines[0] == (
        f"{int(wrong.sum())} of 2000 rows wrong (error rate {wrong.mean():.1%}, "
        "baseline 5.0%); slices under 30 rows are small"
    )
    assert len(lines) == 2 + len(result.rows)
    assert str(result.rows[0]).startswith(f"device=android: {result.rows[0].errors} of ")
