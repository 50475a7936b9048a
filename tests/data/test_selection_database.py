"""Null fractions counted inside SQLite, DuckDB and PostgreSQL, and the funnel started there."""

import sqlite3
import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.data.selection import (
    FeatureFunnel,
    NearZeroVariance,
    NullFraction,
    NumericRedundancy,
    Relevance,
    null_fractions,
    read_columns,
)
from opsloop.data.selection.database import GROUP_SIZE


def table_frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "x_twice": 2 * x,
            "sparse": np.where(rng.random(n) < 0.9, np.nan, rng.normal(size=n)),
            "empty": np.full(n, np.nan),
            "same": np.full(n, 7.0),
            "label": np.where(rng.random(n) < 0.2, None, rng.choice(["a", "b", "c"], n)),
            "count": rng.integers(0, 5, n),
            'weird name; "quoted"': rng.normal(size=n),
            "target": (x > 0).astype(int),
        }
    )


def expected_counts(frame):
    return frame.isna().mean().to_dict(), frame.nunique(dropna=True).to_dict()


def check_stats(stats, frame):
    fractions, distinct = expected_counts(frame)
    assert stats.n_rows == len(frame)
    assert stats.columns == tuple(frame.columns)
    for name in frame.columns:
        assert stats.null_fraction[name] == pytest.approx(fractions[name], abs=1e-12)
        assert stats.n_distinct[name] == distinct[name]


@pytest.fixture
def sqlite_url(tmp_path):
    frame = table_frame()
    with sqlite3.connect(tmp_path / "sel.db") as db:
        frame.to_sql("sel_wide", db, index=False)
    return f"sqlite:///{tmp_path / 'sel.db'}", frame


def test_sqlite_null_fractions_one_query_per_group(sqlite_url):
    url, frame = sqlite_url
    stats = null_fractions(url, "sel_wide", group_size=4)
    check_stats(stats, frame)
    assert stats.queries == 3  # 9 columns in groups of 4
    assert null_fractions(url, "sel_wide").queries == 1
    table = stats.to_frame()
    assert table.columns.tolist() == ["column", "type", "n_null", "null_fraction", "n_distinct"]
    assert stats.to_dict()["columns"][0]["column"] == "x"
    assert GROUP_SIZE == 500


def test_sqlite_engine_connection_and_column_subset(sqlite_url):
    url, frame = sqlite_url
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        stats = null_fractions(connection, "sel_wide", columns=["sparse", "label"])
        assert stats.columns == ("sparse", "label")
        assert connection.closed is False  # a given connection is left open
    check_stats(null_fractions(engine, "sel_wide"), frame)
    engine.dispose()


def test_errors_name_the_table_or_column(sqlite_url, tmp_path):
    url, _ = sqlite_url
    with pytest.raises(ValueError, match="no table 'nope' in the database"):
        null_fractions(url, "nope")
    with pytest.raises(ValueError, match=r"table 'sel_wide' has no column\(s\) \['zzz'\]"):
        null_fractions(url, "sel_wide", columns=["zzz"])
    with pytest.raises(ValueError, match="group_size must be an integer >= 1"):
        null_fractions(url, "sel_wide", group_size=0)
    with pytest.raises(TypeError, match="source must be a database URL"):
        null_fractions(42, "sel_wide")
    with sqlite3.connect(tmp_path / "sel.db") as db:
        db.execute("CREATE TABLE sel_empty (a REAL, b TEXT)")
    with pytest.raises(ValueError, match="table 'sel_empty' is empty"):
        null_fractions(url, "sel_empty")


def test_duckdb_url_and_connection(tmp_path):
    frame = table_frame(seed=1)
    path = tmp_path / "sel.duckdb"
    with duckdb.connect(str(path)) as db:
        db.register("source", frame)
        db.execute("CREATE TABLE sel_wide AS SELECT * FROM source")
    check_stats(null_fractions(f"duckdb:///{path}", "sel_wide", group_size=2), frame)
    db = duckdb.connect(str(path))
    stats = null_fractions(db, "sel_wide")
    check_stats(stats, frame)
    assert stats.types["label"] == "VARCHAR"
    loaded = read_columns(db, "sel_wide", ["label", "x"])
    assert loaded.columns.tolist() == ["label", "x"]
    assert np.allclose(loaded["x"], frame["x"])
    db.close()


def test_fit_table_reads_only_the_columns_that_can_pass(sqlite_url, monkeypatch):
    url, frame = sqlite_url
    import opsloop.data.selection.database as database

    requested = []
    original = database.read_columns

    def spy(source, table, columns, **kwargs):
        requested.append(list(columns))
        return original(source, table, columns, **kwargs)

    monkeypatch.setattr(database, "read_columns", spy)
    steps = [NullFraction(), NearZeroVariance(), NumericRedundancy(), Relevance(k=2)]
    funnel = FeatureFunnel(steps=steps).fit_table(url, "sel_wide", target="target")
    assert requested == [["x", "x_twice", "label", "count", 'weird name; "quoted"', "target"]]
    report = funnel.report_
    assert report.counts == [8, 6, 5, 4, 2]
    assert report["sparse"].reason.endswith("measured in the database")
    assert report["empty"].step == "null_fraction" and report["empty"].value == 1.0
    assert report["same"].step == "near_zero_variance" and report["same"].value == 1.0
    assert report["x_twice"].redundant_with == "x"
    assert report["sparse"].kind == "REAL"
    assert list(funnel.feature_names_in_) == [c for c in frame.columns if c != "target"]
    assert funnel.get_feature_names_out()[0] == "x"
    selected = funnel.transform(frame.drop(columns="target"))
    assert selected.shape == (len(frame), 2)


def test_fit_table_errors(sqlite_url):
    url, _ = sqlite_url
    with pytest.raises(ValueError, match="table 'sel_wide' has no column 'y' \\(the target\\)"):
        FeatureFunnel(steps=[NullFraction()]).fit_table(url, "sel_wide", target="y")


def test_sqlite_mixed_type_column_is_refused(tmp_path):
    path = tmp_path / "mixed.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sel_mixed (code, target INTEGER)")
        db.executemany(
            "INSERT INTO sel_mixed VALUES (?, ?)", [(1, 0), ("x", 1), (2.5, 0), (3, 1)] * 5
        )
    with pytest.raises(TypeError, match="column 'code' mixes value types"):
        FeatureFunnel(steps=[NullFraction()]).fit_table(f"sqlite:///{path}", "sel_mixed", "target")


@pytest.mark.postgres
def test_postgres_null_fractions_and_fit_table(postgres_uri):
    frame = table_frame(seed=2)
    name = f"sel_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_uri)
    try:
        frame.to_sql(name, engine, index=False)
        stats = null_fractions(postgres_uri, name, group_size=3)
        check_stats(stats, frame)
        assert stats.queries == 3
        funnel = FeatureFunnel(steps=[NullFraction(), NearZeroVariance(), NumericRedundancy()])
        funnel.fit_table(engine, name, target="target")
        assert funnel.report_.dropped_by("null_fraction") == ["sparse", "empty"]
        assert funnel.report_["x_twice"].redundant_with == "x"
        assert read_columns(postgres_uri, name, ["count"]).shape == (len(frame), 1)
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()
