"""search_runs on runs tracked over scikit-learn's bundled wine data, as the README shows it."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

import opsloop
from opsloop.errors import InvalidArgumentError


@pytest.fixture
def wine_runs(isolated_home) -> dict[float, str]:
    frame = load_wine(as_frame=True)
    run_ids = {}
    for c in (0.5, 2.0, 10.0):
        model = LogisticRegression(C=c, max_iter=5_000).fit(frame.data, frame.target)
        with opsloop.start_run(experiment="wine", capture=False) as run:
            run.log_params({"C": c, "model": "logreg"})
            run.log_metric("accuracy", model.score(frame.data, frame.target))
        run_ids[c] = run.run_id
    return run_ids


@pytest.mark.parametrize("operator", ["<", "<=", ">", ">="])
def test_a_param_ordered_against_a_number_is_refused(wine_runs, operator):
    # As text '10.0' < '2.0', so `params.C > 2` would silently select by the wrong order.
    with pytest.raises(InvalidArgumentError, match=r"params\.C is text .* quoted string"):
        opsloop.search_runs("wine", filter=f"params.C {operator} 2")


def test_a_param_ordered_against_a_quoted_string_compares_text(wine_runs):
    found = opsloop.search_runs("wine", filter="params.C > '2.0'")
    # Text order by hand: '0.5' < '10.0' < '2.0'; nothing sorts after '2.0'.
    assert found["run_id"].tolist() == []
    found = opsloop.search_runs("wine", filter="params.C < '2.0'", order_by=["params.C"])
    assert found["run_id"].tolist() == [wine_runs[0.5], wine_runs[10.0]]


def test_a_param_equal_to_a_number_matches_its_logged_text(wine_runs):
    found = opsloop.search_runs("wine", filter="params.C = 10.0 and params.model = 'logreg'")
    assert found["run_id"].tolist() == [wine_runs[10.0]]


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        ("accuracy DESC", r"^order_by: unknown attribute 'accuracy' at position 0; known: "),
        ("metrics.accuracy SIDEWAYS", r"^order_by: expected ASC, DESC or the end of"),
    ],
)
def test_a_wrong_order_by_item_is_named_as_order_by(wine_runs, order_by, message):
    with pytest.raises(InvalidArgumentError, match=message):
        opsloop.search_runs("wine", order_by=[order_by])


@pytest.mark.parametrize(
    ("step", "timestamp_ms", "message"),
    [
        (2**63, None, r"metric 'accuracy': step must be an integer from -9223372036854775808 to"),
        (-(2**63) - 1, None, r"metric 'accuracy': step must be an integer from"),
        (0, 10**19, r"metric 'accuracy': timestamp_ms must be an integer from -9223372036854 to"),
        (0, 1.5, r"metric 'accuracy': timestamp_ms must be an integer, got float"),
    ],
)
def test_a_step_or_timestamp_beyond_64_bits_is_refused_when_logged(
    isolated_home, step, timestamp_ms, message
):
    frame = load_wine(as_frame=True)
    model = LogisticRegression(max_iter=5_000).fit(frame.data, frame.target)
    with opsloop.start_run(experiment="wine", capture=False) as run:
        with pytest.raises((InvalidArgumentError, TypeError), match=message):
            run.log_metric("accuracy", model.score(frame.data, frame.target), step, timestamp_ms)
        run.log_metric("accuracy", model.score(frame.data, frame.target), step=1)
    # The refused point left nothing behind: the run ended with the one valid point.
    assert opsloop.get_run(run.run_id).metrics == {
        "accuracy": model.score(frame.data, frame.target)
    }
