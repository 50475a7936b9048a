"""search_runs page by page: page_token, ties in order_by, locally and through a server."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from tests.server.running import running_server

import opsloop
from opsloop.errors import InvalidArgumentError
from opsloop.server import create_app
from opsloop.tracking.http_store import HttpTrackingStore, ServerConnection
from opsloop.tracking.metric_buffer import MetricBatch

# Seven runs, all started at the same millisecond, with many equal AUCs: only the creation
# order can break the ties, so a page order that is not total shows up here.
AUCS = (0.8, 0.9, 0.8, 0.9, 0.8, 0.7, 0.9)


def _tied_runs(store) -> list[str]:
    ids = []
    for index, auc in enumerate(AUCS):
        run_id = store.create_run("tied", name=f"r{index}", start_ms=1_000)
        store.write_batch(
            run_id,
            metrics=MetricBatch(("auc",), np.array([auc]), np.array([0]), np.array([1_000])),
        )
        ids.append(run_id)
    return ids


def _pages(store, size: int, order_by=None, filter=None) -> list[pd.DataFrame]:
    pages, token = [], None
    while True:
        page = store.search_runs("tied", filter, order_by, size, page_token=token)
        pages.append(page)
        token = page.attrs["next_page_token"]
        if token is None:
            return pages


def test_pages_follow_order_by_and_break_ties_newest_created_first(store):
    ids = _tied_runs(store)
    pages = _pages(store, 2, ["metrics.auc DESC"])
    # By hand: AUC 0.9 (runs 6, 3, 1: created last first), 0.8 (4, 2, 0), then 0.7 (5).
    expected = [f"r{i}" for i in (6, 3, 1, 4, 2, 0, 5)]
    assert [page["name"].tolist() for page in pages] == [
        expected[0:2],
        expected[2:4],
        expected[4:6],
        expected[6:7],
    ]
    whole = store.search_runs("tied", order_by=["metrics.auc DESC"])
    assert whole.attrs["next_page_token"] is None
    pd.testing.assert_frame_equal(pd.concat(pages, ignore_index=True), whole)
    assert sorted(whole["run_id"]) == sorted(ids)
    # Every call gives the same order: the tiebreak does not depend on the database's mood.
    assert [p["name"].tolist() for p in _pages(store, 2, ["metrics.auc DESC"])] == [
        p["name"].tolist() for p in pages
    ]


def test_default_order_and_ascending_ties(store):
    _tied_runs(store)
    default = [name for page in _pages(store, 3) for name in page["name"]]
    assert default == [f"r{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    ascending = [name for page in _pages(store, 3, ["metrics.auc"]) for name in page["name"]]
    assert ascending == [f"r{i}" for i in (5, 4, 2, 0, 6, 3, 1)]


def test_a_page_that_ends_exactly_at_the_last_run_has_no_next_token(store):
    _tied_runs(store)
    pages = _pages(store, 7, filter="metrics.auc >= 0.8")
    assert [len(page) for page in pages] == [6]
    sizes = [len(page) for page in _pages(store, 3, filter="metrics.auc >= 0.8")]
    assert sizes == [3, 3]
    # A token without max_results: every run after the position, and no further page.
    first = store.search_runs("tied", max_results=5)
    rest = store.search_runs("tied", page_token=first.attrs["next_page_token"])
    assert rest["name"].tolist() == ["r1", "r0"]
    assert rest.attrs["next_page_token"] is None


def test_a_bad_or_foreign_token_is_refused_naming_page_token(store):
    _tied_runs(store)
    token = store.search_runs("tied", "metrics.auc > 0.75", max_results=2).attrs["next_page_token"]
    for text in ("", "not-a-token", "e30", "x" * 500, 5):
        with pytest.raises(InvalidArgumentError, match=r"^page_token: not a page token"):
            store.search_runs("tied", max_results=2, page_token=text)
    for filter, order_by in ((None, None), ("metrics.auc > 0.75", ["metrics.auc"])):
        with pytest.raises(InvalidArgumentError, match=r"^page_token: this token belongs"):
            store.search_runs("tied", filter, order_by, 2, page_token=token)
    assert len(store.search_runs("tied", "metrics.auc > 0.75", max_results=2, page_token=token))


@pytest.fixture
def served(store, tmp_path):
    with running_server(create_app(store.db, store.artifacts)) as url:
        client = HttpTrackingStore(url)
        yield store, client, url
        client.close()


def test_pages_through_the_server_equal_the_local_pages(served):
    local, remote, url = served
    _tied_runs(local)
    for order_by in (None, ["metrics.auc DESC"], ["name DESC", "metrics.auc"]):
        local_pages, remote_pages = _pages(local, 3, order_by), _pages(remote, 3, order_by)
        assert len(remote_pages) == len(local_pages) == 3
        for found, expected in zip(remote_pages, local_pages, strict=True):
            pd.testing.assert_frame_equal(found, expected)
            assert found.attrs == expected.attrs
    with pytest.raises(ValueError, match="page_token: not a page token"):
        remote.search_runs("tied", max_results=2, page_token="bm9wZQ")
    # The wire bounds the token before the library sees it; the 422 names the field.
    answer = httpx.post(
        f"{url}/api/v1/runs/search",
        json={"experiments": "tied", "page_token": "x" * 201},
        headers=ServerConnection(url).headers,
    )
    assert answer.status_code == 422
    assert "page_token" in answer.text


@pytest.fixture
def wine_runs(tracking_target):
    """Logistic regressions on scikit-learn's wine data for several C, logged as a user would."""
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    scores = {}
    for C in (0.01, 0.1, 1.0, 10.0, 100.0):
        for max_iter in (50, 5_000):
            model = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)
            with opsloop.start_run("wine-pages", capture=False) as run:
                run.log_params({"C": C, "max_iter": max_iter})
                # Rounded: equal scores tie, as a table of accuracies often does.
                run.log_metric("accuracy", round(model.score(X_test, y_test), 2))
            scores[run.run_id] = round(model.score(X_test, y_test), 2)
    return scores


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_every_run_of_a_search_comes_exactly_once_page_by_page(wine_runs):
    order = ["metrics.accuracy DESC"]
    whole = opsloop.search_runs("wine-pages", order_by=order)
    seen, token, sizes = [], None, []
    while True:
        page = opsloop.search_runs("wine-pages", order_by=order, max_results=3, page_token=token)
        seen.append(page)
        sizes.append(len(page))
        token = page.attrs["next_page_token"]
        if token is None:
            break
    assert sizes == [3, 3, 3, 1]
    joined = pd.concat(seen, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)
    assert sorted(joined["run_id"]) == sorted(wine_runs)
    accuracies = joined["metrics.accuracy"].tolist()
    assert accuracies == sorted(wine_runs.values(), reverse=True)
    with pytest.raises(ValueError, match="page_token"):
        opsloop.search_runs("wine-pages", max_results=3, page_token="%%%")


def test_experiments_given_as_an_iterator_are_read_once(store):
    """An iterator of names pages like the list it yields (it was read twice: once for the
    token's search, once for the query, so the second page's token did not match)."""
    ids = _tied_runs(store)
    store.create_run("other", name="elsewhere")
    first = store.search_runs(iter(["tied"]), None, None, 4)
    second = store.search_runs(
        iter(["tied"]), None, None, 4, page_token=first.attrs["next_page_token"]
    )
    # newest created first (all started at the same millisecond)
    assert first["run_id"].tolist() + second["run_id"].tolist() == ids[::-1]
    assert second.attrs["next_page_token"] is None
    names = (name for name in ("tied", "other"))
    assert len(store.search_runs(names)) == len(ids) + 1
