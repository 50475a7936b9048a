"""What retiring a deployment does to what was recorded and watched under its name.

Everything the monitoring keeps is keyed by the deployment's name: the prediction events,
their input batches, labels and process samples, the windows, their evaluations, the
alerts, the reference, the stored policy (:mod:`.stored_policy`: rules and error-stream
detector) and the monitor's state (cursors, detectors, streaks, pending actions, retrain
requests). A deployment later created under the same name must start from none of
it: its windows would merge the old events, its drift would be judged against the old
model's reference, its detectors would resume the old error stream, the old policy's
rules would judge it, and the old policy's pending rollback would act on it.

So :func:`retire_monitoring`, in the retire's write transaction:

* **cancels** what was still to happen: each pending action gets the outcome
  ``cancelled`` (audited as every outcome, entity ``monitor:NAME``), and each retrain
  request still queued or claimed the state ``cancelled`` (a follower's later report of it
  is refused);
* **keeps the rest as history** under the name ``NAME/retired-N`` (N counts the
  deployment's retires: 1 for the first, :func:`history_name`), which no deployment can
  take (a deployment's name holds no ``/``), where every reader finds it:
  ``read_alerts(db, "api/retired-1")``, ``read_evaluations``, ``read_policy``,
  ``Deployments.traffic``.
  Nothing is deleted: the events are what was served, and the audit log (which is not
  rewritten) still names them by the deployment's name and time.

The audit log's monitor entries (``monitor:NAME``) cannot move: the retire adds one
(action ``retire``, entity ``monitor:NAME``, naming the history), and the action outcomes
a deployment's monitor shows (:func:`~.policy_record.read_actions`) are those after the
last of these.

A prediction event a data plane answered before the retire but writes after it (buffered,
or answered by a definition it had not yet read again) carries the generation of the
deployment that answered it, and is written with that deployment's history
(:mod:`opsloop.serving.retired_names`), never with a deployment created later under the
name; so are a review item it sends late (cancelled) and the later rows of a batch it was
scoring. A label given under the name for one of its answers is joined with that answer in
the history and counted with the history's labels.

An action in flight when the deployment is retired (:mod:`.running_actions`) is left to
finish; it moves with the history, and its outcome is recorded there (audit entity
``monitor:NAME/retired-N``, and its alert), never with a deployment created later under
the name.

>>> from opsloop.store import Database
>>> from opsloop.monitoring.evaluation import read_alerts
>>> from opsloop.monitoring.alert_log import record_alert
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     record_alert(c, "api", "v", "error_rate > 0.1 -> alert", "alert", {}, "fired")
...     retire_monitoring(c, "api", "api/retired-1", "ana", "moved")
{'pending_actions_cancelled': 0, 'retrain_requests_cancelled': 0}
>>> len(read_alerts(db, "api")), len(read_alerts(db, "api/retired-1"))
(0, 1)
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.monitoring.action_outcome import record_outcome_in
from opsloop.monitoring.monitor_state import get_state, put_state
from opsloop.monitoring.policy import rule_action
from opsloop.monitoring.retrain_queue import PREFIX as RETRAIN_PREFIX
from opsloop.serving.retired_names import history_name as named_history
from opsloop.serving.retired_names import retires
from opsloop.store import tables
from opsloop.store.database import clock_of

#: The tables whose rows are a deployment's, by its name in the column ``deployment``.
KEPT_TABLES = (
    tables.prediction_events,
    tables.prediction_input_batches,
    tables.prediction_feedback,
    tables.waiting_feedback,
    tables.process_samples,
    tables.monitoring_windows,
    tables.monitoring_evaluations,
    tables.monitoring_alerts,
    tables.monitoring_references,
    tables.monitoring_policies,
    tables.monitoring_state,
)
_state = tables.monitoring_state


def _cancel_retrain_requests(connection: Connection, deployment: str, at: int) -> int:
    rows = connection.execute(
        sa.select(_state.c.name, _state.c.state_json).where(
            _state.c.deployment == deployment, _state.c.name.like(RETRAIN_PREFIX + "%")
        )
    ).all()
    cancelled = 0
    for name, text in rows:
        request = json.loads(text)
        if request["state"] in ("queued", "claimed"):
            request.update(state="cancelled", finished_ms=at, claim=None)
            put_state(connection, deployment, name, request)
            cancelled += 1
    return cancelled


def history_name(connection: Connection, deployment: str) -> str:
    """The name ``deployment``'s history takes at the retire being written:
    ``NAME/retired-N``, N one more than its retires so far (a name too long for the store
    keeps its start and a digest of the whole, so two never meet; see
    :func:`opsloop.serving.retired_names.history_name`).

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     history_name(c, "api"), len(history_name(c, "x" * 250))
    ('api/retired-1', 250)
    """
    return named_history(deployment, retires(connection, deployment) + 1)


def retire_monitoring(
    connection: Connection,
    deployment: str,
    history: str,
    actor: str,
    reason: str | None,
) -> dict[str, Any]:
    """Cancel ``deployment``'s pending actions and retrain requests and keep what its
    monitoring recorded under the name ``history`` (see the module docstring), in the
    caller's write transaction, which holds the monitor's lock; what was cancelled."""
    pending = get_state(connection, deployment, "pending_actions", [])
    why = "its deployment was retired" + ("" if reason is None else f": {reason}")
    for item in pending:
        outcome = {
            "action": rule_action(item["rule"]),
            "rule": item["rule"],
            "status": "cancelled",
            "reason": f"not run: {why}",
        }
        record_outcome_in(
            connection, actor, deployment, item["variant"], item["rule"], item["evidence"], outcome
        )
    put_state(connection, deployment, "pending_actions", [])
    requests = _cancel_retrain_requests(connection, deployment, clock_of(connection))
    for table in KEPT_TABLES:
        connection.execute(
            table.update().where(table.c.deployment == deployment).values(deployment=history)
        )
    return {"pending_actions_cancelled": len(pending), "retrain_requests_cancelled": requests}


__all__ = ["KEPT_TABLES", "history_name", "retire_monitoring"]
