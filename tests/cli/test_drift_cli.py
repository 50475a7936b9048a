"""What `opsloop drift` shows: both p-values labelled, verdicts that agree with their
reasons on every surface, and the columns it could not compare."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.data.drift import compare
from opsloop.reports.drift import drift_report

runner = CliRunner()


def borderline_frames():
    # Column c: chi-square p 0.0268 alone, 0.0536 after Holm over two tests: stable at 0.05.
    ref = pd.DataFrame({"c": ["a"] * 100 + ["b"] * 100, "d": ["a", "b"] * 100})
    cur = pd.DataFrame({"c": ["a"] * 77 + ["b"] * 123, "d": ["a", "b"] * 100})
    return ref, cur


def test_the_deciding_statistic_agrees_with_the_column_verdict():
    ref, cur = borderline_frames()
    column = compare(ref, cur)["c"]
    assert column.p_value == pytest.approx(0.026781116058925827, rel=1e-12)
    assert column.p_adjusted == pytest.approx(2 * column.p_value, rel=1e-12)
    assert not column.drifted
    (decider,) = [s for s in column.statistics if s.test == column.test]
    assert (decider.drifted, decider.p_adjusted) == (False, column.p_adjusted)
    assert column.reason == "chi2 p-value 0.0268, adjusted 0.0536 >= alpha 0.05: stable"
    entry = column.to_dict()
    assert entry["reason"] == column.reason
    assert entry["statistics"][0]["p_adjusted"] == entry["p_adjusted"]


def test_min_effect_is_named_when_it_overrules_the_p_value():
    ref, cur = borderline_frames()
    column = compare(ref, cur, correction="none", min_effect=0.5)["c"]
    assert column.p_adjusted < 0.05 and not column.drifted
    assert column.reason == (
        "chi2 p-value 0.0268, adjusted 0.0268 < alpha 0.05, but js 0.0984 < min_effect 0.5: stable"
    )


def test_cli_table_labels_both_p_values(tmp_path):
    ref, cur = borderline_frames()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    result = runner.invoke(app, ["drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "statistic" in line)
    assert "p-value" in header and "p adjusted (holm)" in header
    row = next(line for line in result.output.splitlines() if line.startswith("│ c "))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[4:6] == ["0.0268", "0.0536"] and cells[-1] == "no"


def test_html_shows_the_column_verdict_on_the_deciding_row(tmp_path):
    ref, cur = borderline_frames()
    page = drift_report(ref, cur).render_html()
    start = page.index('id="column-0"')
    section = page[start : page.index("</section>", start)]
    assert '<section class="column stable"' in page[start - 40 : start + 10]
    decides = section[
        section.index("(decides)") : section.index("</tr>", section.index("(decides)"))
    ]
    assert "<td>no</td>" in decides and "0.05356" in decides and "0.02678" in decides
    assert "Verdict: chi2 p-value 0.0268, adjusted 0.0536 &gt;= alpha 0.05: stable." in section


def test_one_sided_columns_are_reported_in_table_and_json(tmp_path):
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 30, "old": [1, 2, 3] * 30})
    cur = pd.DataFrame({"x": [1.0, 2.0, 3.0] * 30, "new": ["a", "b", "c"] * 30})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    out_json = tmp_path / "drift.json"
    result = runner.invoke(
        app,
        ["drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "--json", str(out_json)],
    )
    assert result.exit_code == 0, result.output
    assert "2 columns not compared" in result.output
    assert "│ old    │ missing from current   │" in result.output
    assert "│ new    │ missing from reference │" in result.output
    doc = json.loads(out_json.read_text())
    assert doc["skipped"] == [
        {"column": "old", "reason": "missing from current"},
        {"column": "new", "reason": "missing from reference"},
    ]
    assert (doc["dataset"]["n_columns"], doc["dataset"]["n_skipped"]) == (1, 2)


@pytest.mark.parametrize("fail_on_drift", [False, True])
def test_nothing_compared_exits_2_without_a_verdict(tmp_path, fail_on_drift):
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"a": [None, None], "b": [1, 2]}).to_csv(tmp_path / "cur.csv", index=False)
    arguments = ["drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")]
    result = runner.invoke(app, arguments + (["--fail-on-drift"] if fail_on_drift else []))
    assert result.exit_code == 2
    assert "no drift" not in result.output
    assert "nothing compared, no verdict" in result.output
    assert "error: no column could be compared (2 skipped" in result.output
    report = compare(pd.read_csv(tmp_path / "ref.csv"), pd.read_csv(tmp_path / "cur.csv"))
    assert not report.compared and report.to_dict()["dataset"]["compared"] is False


def test_columns_with_a_comma_are_named_escaped_or_by_repeating_the_option(tmp_path):
    from scipy.stats import ks_2samp
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).data.rename(columns={"bmi": "bmi, kg/m2"})
    ref, cur = frame.iloc[:200], frame.iloc[200:]
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    paths = [str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")]

    def compared(*options: str) -> dict:
        out = tmp_path / "drift.json"
        result = runner.invoke(app, ["drift", *paths, "--json", str(out), *options])
        assert result.exit_code == 0, result.output
        return {c["column"]: c for c in json.loads(out.read_text())["columns"]}

    columns = compared("--columns", r"bmi\, kg/m2", "--columns", "age")
    assert sorted(columns) == ["age", "bmi, kg/m2"]
    expected = ks_2samp(ref["bmi, kg/m2"], cur["bmi, kg/m2"])
    assert columns["bmi, kg/m2"]["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert columns["bmi, kg/m2"]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    # The comma-separated form as before.
    assert sorted(compared("--columns", "age, s1")) == ["age", "s1"]
    # A backslash before anything else is itself, as it was before escapes: a Windows path.
    windows = frame.rename(columns={"age": r"C:\temp"})
    windows.iloc[:200].to_csv(tmp_path / "ref.csv", index=False)
    windows.iloc[200:].to_csv(tmp_path / "cur.csv", index=False)
    assert sorted(compared("--columns", r"C:\temp")) == [r"C:\temp"]
    # Blank: every column, as before; only commas: refused by name.
    assert len(compared("--columns", "")) == 10
    bad = runner.invoke(app, ["drift", *paths, "--columns", ","])
    assert bad.exit_code == 2
    assert bad.output.strip() == "error: --columns named no column, got ','"
    # A folder given as the JSON file is refused before the work.
    folder = runner.invoke(app, ["drift", *paths, "--json", str(tmp_path)])
    assert folder.exit_code == 2
    assert (
        folder.output.strip()
        == f"error: --json: {str(tmp_path)!r} is a folder; give a file name in it"
    )


def test_the_printed_verdict_lists_a_complex_column_as_not_compared_with_why(capsys):
    # No file format the command reads holds complex numbers; a frame in Python does, and
    # the command and the demo print its result with the same table.
    from opsloop.cli.drift_table import print_drift

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400) * (1 + 2j)})
    with pytest.warns(UserWarning, match="'z' holds complex numbers"):
        result = compare(frame.iloc[:200], frame.iloc[200:])
    print_drift(result)
    printed = capsys.readouterr().out
    assert "1 columns not compared" in printed
    row = next(line for line in printed.splitlines() if line.startswith("│ z "))
    assert "holds complex numbers, which have no order to test" in row
    assert "0 of 1 columns drifted (alpha 0.05, holm correction), 1 not compared" in printed
