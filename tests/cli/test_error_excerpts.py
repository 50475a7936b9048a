"""Error lines quote what they reject in a short excerpt, never a whole file."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opsloop.cli.app import app
from opsloop.data.schema import ColumnSchema, Schema

runner = CliRunner()


def test_a_data_file_given_as_the_schema_gives_a_short_error(tmp_path):
    data = tmp_path / "data.csv"
    pd.DataFrame({"a": np.arange(1_000), "b": ["x" * 10] * 1_000}).to_csv(data, index=False)
    size = data.stat().st_size
    assert size > 10_000
    result = runner.invoke(app, ["schema", "validate", str(data), "--schema", str(data)])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("error: schema: expected a mapping at the top level, got 'a,b 0,")
    # YAML folds the file's lines into one string of (size - 1) characters: named, not shown.
    assert line.endswith(f"…' ({size - 1:,} characters)")
    assert len(line) < 150


def test_schema_errors_quote_long_values_in_excerpts():
    with pytest.raises(TypeError) as raised:
        ColumnSchema("x", "category", domain="abc" * 1_000)
    message = str(raised.value)
    assert message == (
        "column 'x', field 'domain': expected a list of values, got "
        f"'{'abc' * 20}…' (3,000 characters)"
    )
    with pytest.raises(ValueError, match=r"unknown key 'ownerownerowner.*' \(500 characters\)"):
        Schema.from_dict({"columns": {}, "owner" * 100: 1})


def test_any_long_error_is_cut_to_one_readable_line(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(data, index=False)
    schema = tmp_path / "s.yaml"
    schema.write_text("columns:\n  a:\n    type: int\n" + "    # " + "y" * 5_000 + "\n  : [")
    result = runner.invoke(app, ["schema", "validate", str(data), "--schema", str(schema)])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("error: schema: not valid YAML")
    assert len(line) <= len("error: ") + 300 + len("… (99,999 more characters cut)")
