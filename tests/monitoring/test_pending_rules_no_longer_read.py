"""An action queued under a rule a later version no longer accepts leaves the queue with its
outcome and an alert; it does not stop the deployment's evaluations."""

from __future__ import annotations

from opsloop.monitoring.evaluation import evaluate, read_alerts
from opsloop.monitoring.reference import set_reference
from opsloop.monitoring.stored_policy import set_policy
from opsloop.store.monitor_state import get_state, put_state

# Accepted before webhook retries were bounded (at most 5 now).
QUEUED = "task_metric < 0.9 -> webhook(url=http://127.0.0.1:9/x, retries=10)"


def test_a_queued_action_whose_rule_is_no_longer_accepted_is_refused_once(db, cancer):
    X, y = cancer
    set_reference(db, "api", X.iloc[:200], labels=y[:200])
    set_policy(db, "api", ["task_metric < 0.9 for 2 windows -> alert"], actor="ana")
    evidence = {"signal": "task_metric", "windows": [], "start_ms": 1_799_000_000_000}
    with db.write() as connection:
        put_state(
            connection,
            "api",
            "pending_actions",
            [{"rule": QUEUED, "variant": "default", "evidence": evidence}],
        )
    evaluate(db, "api")
    evaluate(db, "api")  # and the next one runs too
    with db.read() as connection:
        assert get_state(connection, "api", "pending_actions", []) == []
    alerts = read_alerts(db, "api")
    assert len(alerts) == 1
    text = str(alerts.iloc[0].to_dict())
    assert "refused" in text and "no longer accepted" in text
    assert "retries: a whole number from 0 to 5, got '10'" in text
