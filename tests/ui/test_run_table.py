"""Keyset pages of the runs table: walking every page gives each run once, in the order
``search_runs`` gives them all at once, for every kind of sort column and with ties."""

import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.store import ArtifactStore, Database
from opsloop.tracking import ActiveRun, LocalTrackingStore
from opsloop.ui.run_table import Cursor, run_page


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    store = LocalTrackingStore(
        Database("sqlite://"), ArtifactStore(tmp_path_factory.mktemp("artifacts"))
    )
    for i in range(23):
        run_id = store.create_run("churn" if i % 4 else "fraud", name=f"run {i % 5}")
        with ActiveRun(store, run_id) as run:
            # Ties (i % 3), runs lacking the key (every 7th), quotes in text values.
            if i % 7:
                run.log_metric("auc", [0.5, 0.75, 0.9][i % 3])
            run.log_params({"model": ["rf", "it's", "gbm"][i % 3], "depth": i % 4})
    return store


def walk(tracking, **query):
    seen, after = [], None
    while True:
        page = run_page(tracking, size=4, after=after, **query)
        assert len(page.runs) <= 4
        seen += page.runs["run_id"].tolist()
        after = page.next_cursor
        if after is None:
            return seen


@pytest.mark.parametrize(
    ("sort", "descending"),
    [
        (None, True),
        ("metrics.auc", True),
        ("metrics.auc", False),
        ("params.model", True),
        ("params.model", False),
        ("name", False),
        ("start_time", False),
        ("run_id", True),
    ],
)
def test_pages_follow_the_full_search_order(tracking, sort, descending):
    order = [] if sort is None else [f"{sort} {'DESC' if descending else 'ASC'}"]
    expected = tracking.search_runs(
        None, None, order_by=[*order, "start_time DESC", "run_id DESC"]
    )["run_id"].tolist()
    assert len(expected) == 23
    assert walk(tracking, sort=sort, descending=descending) == expected


def test_pages_keep_the_filter(tracking):
    expected = tracking.search_runs(
        "churn", "params.model = 'it''s' OR metrics.auc IS NULL", order_by=["metrics.auc ASC"]
    )
    walked = walk(
        tracking,
        experiment="churn",
        filter="params.model = 'it''s' OR metrics.auc IS NULL",
        sort="metrics.auc",
        descending=False,
    )
    assert sorted(walked) == sorted(expected["run_id"]) and len(walked) == len(set(walked))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"sort": "git_dirty"}, "sort: runs sort by"),
        ({"sort": "metrics."}, "sort: "),
        ({"after": "garbage!"}, "after: not a page cursor"),
        ({"after": Cursor(True, 1, "x").encode()}, "after: not a page cursor"),
        ({"size": 0}, "size must be a whole number from 1 to 200"),
        ({"size": 201}, "size must be a whole number from 1 to 200"),
        ({"filter": "metrics.auc >"}, "filter"),
    ],
)
def test_bad_queries_name_the_field(tracking, query, message):
    with pytest.raises(InvalidArgumentError, match=message):
        run_page(tracking, **query)
