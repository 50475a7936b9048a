"""Evaluation at each window close (:mod:`opsloop.monitoring.evaluation_schedule`) on a real
store whose clock the schedule's sleep moves: one round per window close, an alert on data
logged in window k raised in the round right after window k closes, a failed round reported
with the next one evaluating what it missed, and a bad rule ending the loop at once."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.evaluator_process import evaluate_until_first_round
from tests.server.running import running_server

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.evaluation_schedule import evaluate_on_schedule
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.store import ArtifactStore
from opsloop.store.database import Database
from opsloop.tracking.capture import current_user

from .conftest import HOUR_MS, T0

RULE = "drift_share > 0.5 -> alert"
#: Rows like the reference's (uniform on [0, 73.6]) and rows moved far out of it.
STEADY = [{"x": i * 1.2} for i in range(60)]
MOVED = [{"x": 50.0 + i} for i in range(60)]


@pytest.fixture
def api(db):
    set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
    return db


def test_each_window_close_runs_one_round_and_the_alert_comes_right_after_its_window(api, clock):
    traffic = [STEADY, STEADY, MOVED, STEADY]  # window 2's inputs moved
    slept = []

    def sleep(seconds: float) -> None:
        # While the process sleeps, the traffic of the window it is in arrives, one row a
        # second from now; then the time moves on.
        window = (clock.now_ms - T0) // HOUR_MS
        if window < len(traffic):
            at = clock.now_ms + 1000 * pd.RangeIndex(60).to_numpy()
            log_predictions(api, "api", traffic[window], [0] * 60, at_ms=at)
        slept.append(seconds)
        clock.advance(round(seconds * 1000))

    rounds = []

    def evaluate_round():
        done = evaluate(api, "api", windowing=Windowing("1h"), policies=[RULE])
        return clock.now_ms, [((e.start_ms - T0) // HOUR_MS, e.alerts) for e in done]

    clock.now_ms = T0 + HOUR_MS // 2
    results = evaluate_on_schedule(
        evaluate_round,
        window_ms=HOUR_MS,
        clock=clock,
        sleep=sleep,
        on_result=rounds.append,
        rounds=5,
    )
    assert results == rounds
    assert slept == [1801.0, 3600.0, 3600.0, 3600.0]  # to 1 s past each close
    assert rounds == [
        (T0 + HOUR_MS // 2, []),
        (T0 + 1 * HOUR_MS + 1000, [(0, ())]),
        (T0 + 2 * HOUR_MS + 1000, [(1, ())]),
        (T0 + 3 * HOUR_MS + 1000, [(2, (RULE,))]),  # 1 s after window 2 closed
        (T0 + 4 * HOUR_MS + 1000, [(3, ())]),
    ]


def test_a_failed_round_is_reported_and_the_next_round_evaluates_what_it_missed(
    api, clock, tmp_path
):
    for k, rows in enumerate([STEADY, MOVED]):
        log_predictions(api, "api", rows, [0] * 60, at_ms=T0 + k * HOUR_MS)
    clock.now_ms = T0 + HOUR_MS + 1000  # window 0 closed, window 1 open
    # The store the second round reads cannot be opened: its path is a folder.
    (tmp_path / "folder").mkdir()
    missing = f"sqlite:///{tmp_path / 'folder'}"
    stores = iter([lambda: api, lambda: Database(missing, clock=clock), lambda: api])
    errors = []

    def evaluate_round():
        done = evaluate(next(stores)(), "api", windowing=Windowing("1h"), policies=[RULE])
        return [((e.start_ms - T0) // HOUR_MS, e.alerts) for e in done]

    results = evaluate_on_schedule(
        evaluate_round,
        window_ms=HOUR_MS,
        clock=clock,
        sleep=lambda s: clock.advance(round(s * 1000)),
        on_error=errors.append,
        rounds=3,
    )
    (error,) = errors
    assert "unable to open database file" in str(error)
    # Round 1 (1:00:01): window 0; round 2 (2:00:01) failed; round 3 (3:00:01): window 1.
    assert results == [[(0, ())], [(1, (RULE,))]]
    assert clock.now_ms == T0 + 3 * HOUR_MS + 1000


def test_a_bad_rule_ends_the_loop_before_any_sleep(api, clock):
    slept = []
    with pytest.raises(InvalidArgumentError, match="retrain needs the option train="):
        evaluate_on_schedule(
            lambda: evaluate(api, "api", policies=["drift_share > 1 -> retrain"]),
            window_ms=HOUR_MS,
            clock=clock,
            sleep=slept.append,
            on_error=lambda error: None,
        )
    assert slept == []


@pytest.fixture
def server(api, tmp_path):
    """A server on loopback over the ``api`` store, and an editor's token."""
    add_user(api, current_user(), "admin")
    _, token = add_user(api, "eda", "editor")
    with running_server(create_app(api, ArtifactStore(tmp_path / "artifacts"))) as url:
        yield url, token


def test_the_command_line_follows_a_server_until_sigterm(api, clock, server):
    """``opsloop monitor evaluate --server URL --every 0.2`` in its own process: the server
    evaluates each round (by its store's clock) and SIGTERM ends the loop with exit 0."""
    url, token = server
    log_predictions(api, "api", MOVED, [0] * 60, at_ms=T0)
    clock.now_ms = T0 + HOUR_MS
    options = ["--server", url, "--token-env", "EVALUATOR_TOKEN", "--every", "0.2"]
    stopped = evaluate_until_first_round(
        api, "api", [*options, "--rule", RULE], {"EVALUATOR_TOKEN": token}
    )
    assert stopped.evaluation.start_ms == T0
    assert stopped.returncode == 0, stopped.output
    assert "1 window(s) evaluated, 1 alert(s) raised" in stopped.output
    assert stopped.output.rstrip().endswith("stopped")
    assert read_alerts(api, "api")[["rule", "start_ms"]].values.tolist() == [[RULE, T0]]
