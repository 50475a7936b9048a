"""Run ids shortened as git shortens commit hashes: an unambiguous prefix finds the run,
through the Python API, a server, and the command line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from opsloop.cli.tracking import runs_app
from opsloop.store import Database, tables
from opsloop.tracking import (
    AmbiguousRunIdError,
    UnknownRunError,
    compare_runs,
    get_run,
    start_run,
)

IDS = ("4d6edadb" + "0" * 24, "4d6e1111" + "0" * 24, "9f00aaaa" + "1" * 24)


@pytest.fixture
def known_ids(store_uri):
    """Three runs whose ids are set to known values, two of them sharing '4d6e'."""
    created = []
    for name in ("a", "b", "c"):
        with start_run("prefix", name=name, capture=False) as run:
            run.log_param("name", name)
            run.log_metric("loss", float(len(created)), step=0)
        created.append(run.run_id)
    database = Database(store_uri)
    with database.write() as connection:
        for old, new in zip(created, IDS, strict=True):
            connection.execute(
                sa.update(tables.runs).where(tables.runs.c.run_id == old).values(run_id=new)
            )
    database.dispose()
    return IDS


def test_an_unambiguous_prefix_finds_the_run(known_ids, tracking_target):
    assert get_run("4d6edadb").run_id == known_ids[0]
    assert get_run("4D6EDA").params == {"name": "a"}
    assert get_run("9f00").run_id == known_ids[2]
    assert get_run(known_ids[1]).run_id == known_ids[1]


def test_compare_runs_takes_short_ids_with_their_histories(known_ids, tracking_target):
    comparison = compare_runs(["4d6edadb", "9f00"])
    assert comparison.to_dict() == compare_runs([known_ids[0], known_ids[2]]).to_dict()
    histories = comparison.to_dict()["histories"]
    assert sorted(h["run_id"] for h in histories) == [known_ids[0], known_ids[2]]


def test_an_ambiguous_prefix_lists_the_candidates(known_ids, tracking_target):
    with pytest.raises(ValueError) as raised:
        get_run("4d6e")
    assert str(raised.value) == (
        f"run id '4d6e' is ambiguous: 2 runs have ids starting with it "
        f"({known_ids[1]}, {known_ids[0]}); give more characters"
    )
    if tracking_target == "local":
        assert isinstance(raised.value, AmbiguousRunIdError)
        assert raised.value.candidates == (known_ids[1], known_ids[0])


def test_too_short_or_unknown_prefixes_are_unknown_runs(known_ids, tracking_target):
    for given in ("4d6", "4d6edadc", "zzzz"):
        with pytest.raises(UnknownRunError, match=f"unknown run id '{given}'"):
            get_run(given)


def test_runs_show_takes_the_short_id(known_ids):
    app = typer.Typer()
    app.add_typer(runs_app, name="runs")
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "show", "4d6edadb", "--json"])
    assert shown.exit_code == 0, shown.output
    assert f'"run_id": "{known_ids[0]}"' in shown.output
    ambiguous = runner.invoke(app, ["runs", "show", "4d6e"])
    assert ambiguous.exit_code == 2
    assert f"ambiguous: 2 runs have ids starting with it ({known_ids[1]}" in ambiguous.output
