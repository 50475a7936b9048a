"""Monitoring: prediction events and labels cut into windows, compared with a reference,
watched by a detector and by policies that raise alerts.

Modules: :mod:`.windowing` (window length, sample size, retention), :mod:`.event_log`
(``log_predictions``, ``log_labels``), :mod:`opsloop.data.row_sample` (the mergeable sample),
:mod:`.software_metrics`, :mod:`.window_part` (one worker's share of a window),
:mod:`.window_store` (windows in the store), :mod:`.reference`, :mod:`.window_metrics`
(with :mod:`.input_length` and a regression's :mod:`.residuals`),
:mod:`.policy`, :mod:`.stored_policy` (a deployment's rules and error-stream detector,
set once for every evaluator), :mod:`.evaluation` (windows evaluated, detector, alerts),
:mod:`.error_stream` (the detector of a variant's errors, ADWIN, CUSUM, PageHinkley or DDM,
restarted when its model version changes), :mod:`.feature_stream` (a detector per input
feature, on where a deployment turns it on), :mod:`.iso_time` (times in reasons people
read),
:mod:`.decay_kind` (data or concept drift), :mod:`.window_estimate` (metrics estimated
before labels, calibrated on :mod:`opsloop.data.reference_scores`; :mod:`.estimate_check` once they
come), :mod:`.process_metrics` (the serving workers' memory and CPU), :mod:`.alert_log`,
:mod:`.running_actions` (actions in flight, and those a dead process left),
:mod:`.retired_monitoring` (what a deployment's retire does to its history),
:mod:`.policy_actions` (what a rule does: :mod:`.webhook_action`, :mod:`.rollback_action`,
:mod:`.promote_action`, :mod:`.retrain_action` on a :mod:`.training_window` (the older rows
still correct: :mod:`.still_correct`), also on request:
:mod:`.retrain_request`; queued for a follower where no user code may run:
:mod:`.retrain_queue`, :mod:`.retrain_follower`), :mod:`.action_outcome` (an action's
audit entry and alert), :mod:`.policy_record` (the policies' streaks, the actions
pending and what the actions did), :mod:`.monitor_state`, :mod:`.monitor_report` (status and HTML
report), and the service over them: :mod:`.monitoring_service` (its operations),
:mod:`.local_monitoring` (``Monitoring`` on a store), :mod:`.http_monitoring`
(``HttpMonitoring`` on a server).

>>> import pandas as pd
>>> db.clock = lambda: 7_200_000  # two hours after the epoch: the first hour has closed
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> ids = log_predictions(db, "api", [{"x": 5.0 + i} for i in range(60)], [1] * 60,
...                       at_ms=60_000)
>>> log_labels(db, "api", ids, [1] * 30 + [0] * 30).accepted
60
>>> (window,) = evaluate(db, "api", policies=["task_metric < 0.9 -> alert"])
>>> window.metrics["task_metric"], window.alerts
(0.5, ('task_metric < 0.9 -> alert',))
"""

from opsloop.monitoring.estimate_check import estimate_check
from opsloop.monitoring.evaluation import (
    WindowEvaluation,
    evaluate,
    read_alerts,
    read_evaluations,
)
from opsloop.monitoring.event_log import LabelReceipt, label_counts, log_labels, log_predictions
from opsloop.monitoring.feature_stream import set_feature_detectors
from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitor_report import monitor_report, monitor_status
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import Reference, get_reference, set_reference
from opsloop.monitoring.retrain_request import retrain_on_request
from opsloop.monitoring.stored_policy import PolicySetting, read_policy, set_policy
from opsloop.monitoring.training_window import TrainingWindow, training_window
from opsloop.monitoring.webhook_action import post_alert
from opsloop.monitoring.window_store import read_window, update_windows, window_starts
from opsloop.monitoring.windowing import Windowing

__all__ = [
    "ActionContext",
    "HttpMonitoring",
    "LabelReceipt",
    "Monitoring",
    "Policy",
    "PolicySetting",
    "Reference",
    "TrainingWindow",
    "WindowEvaluation",
    "Windowing",
    "estimate_check",
    "evaluate",
    "get_reference",
    "label_counts",
    "log_labels",
    "log_predictions",
    "monitor_report",
    "monitor_status",
    "post_alert",
    "read_actions",
    "read_alerts",
    "read_evaluations",
    "read_policy",
    "read_window",
    "retrain_on_request",
    "run_action",
    "set_feature_detectors",
    "set_policy",
    "set_reference",
    "training_window",
    "update_windows",
    "window_starts",
]
