"""Evaluate a deployment's closed windows: fold new events in, compute each window's metrics
against the reference, run the error-stream detector, apply the policies, record alerts.

:func:`evaluate` takes the closed windows (ended by the store's clock) not evaluated yet, per
variant and oldest first. Each window's evaluation, the detector's new state, the policies'
streaks and the alerts it raises are written in one transaction, so a process stopped
between two windows resumes at the next one with the detector where it was. Several
evaluators of one deployment may run at once (a server's workers, a command line): each
window's transaction holds the deployment's monitor lock (:func:`.monitor_state.lock_monitor`)
and first checks that no other evaluator wrote the window, so each window is evaluated
once, in order, and each action it records runs once.

The rules applied are the deployment's stored policy (:mod:`.stored_policy`, read again
for each window, under the lock its evaluation holds, with the error-stream detector of the
same revision: a change of the policy while a call evaluates several windows applies from
the next window), unless the call gives ``policies``: rules given to a call win over the
stored ones (an empty list applies none). Each window says which it applied (``policy``:
``from`` ``"stored"`` with the stored ``revision``, or ``"call"``; ``detector_revision``,
the stored revision whose detector read its errors).

The error-stream detector is the one the deployment's policy chose (ADWIN on its calibrated
``"monitoring"`` preset by default; CUSUM, PageHinkley or DDM, :mod:`.error_stream`), read
in the window's transaction, reading the per-row errors of each window's labelled rows in
event order; its alarms in a window are the signal ``error_drift`` (``None`` where it reads
nothing: PageHinkley and DDM on a regression's errors), and the window names it
(``error_detector``: ``name``, ``preset``, ``read``, ``reason``). The detector watches one
model version's errors: when the variant starts serving another version it starts afresh
at that version's first labelled row, and the restart is kept in the window's
``error_stream_restarts`` and in the audit log (action ``detector_restart``). When the
policy chooses another detector, it starts afresh at the next evaluated window, kept in
its ``error_detector_switch`` and in the audit log (action ``detector_restart`` too). A
window is evaluated once: labels that arrive after it are counted late (:mod:`.event_log`)
and are not in its task metric.

With labels, each window also says which kind of decay it shows (``decay``, and the
signals ``data_drift`` and ``concept_drift``; :mod:`.decay_kind`): inputs that moved with
a stable error, or an error that rose with stable inputs, judged against the error
stream's history that the detector holds before the window (of the same model version);
when both moved, whether the move of the inputs explains the rise, by the reference's
labelled errors weighted to the window's inputs (:mod:`.reweighted_reference`,
:mod:`.shift_explained`): data drift, data and concept drift, or cannot tell. A concept
drift goes on in the windows after it while their error stays above what the weighted
reference expects, though the history has absorbed the change (the ``concept_drift`` of
the last window before with labels, of the same model version, says it is going on: a
window without labels decides nothing and is passed over). The reference's errors are
those of the version whose rows are judged: when the reference's predictions are another
version's, that version predicts the reference again, loaded through the ``actions``
context's registry (:mod:`.reference_predictions`); without one, the window says it
cannot tell, and why.

Each window also holds the memory and CPU time of the serving workers that answered in it
(``process``, and the signals ``process_rss_bytes`` and ``process_cpu_seconds``;
:mod:`.process_metrics`).

Each window also holds the requests the deployment's input anomaly detector scored and
flagged in it (``input_anomaly``, :mod:`.input_anomalies`, judged against the detector the
deployment carries when the window is evaluated; the signals ``input_anomaly_rate`` and
``input_anomaly_p_value``, and the counts ``input_scored`` and ``input_flagged``, ``None``
when the deployment carries no detector and none of the window's requests was scored).

Where the deployment has them on (:func:`.feature_stream.set_feature_detectors`; off by
default, for their cost), each numeric input feature has its own ADWIN (or, where the
setting says, CUSUM) reading its values' normal scores against the reference in event order
across windows (:mod:`.feature_stream`: calibrated whatever the feature's distribution);
the window holds their alarms
(``feature_stream``, each with the feature, the detector, its position in the feature's
stream and the estimated change point) and their count, the signal ``feature_alarms``
(``None`` where they are off), with the alarms in a rule's evidence. Their state is kept per
variant beside the error stream's, in the same transaction, and they do not restart when
the model version changes: the inputs do not depend on it.

When the reference keeps the model's probabilities and labels, each window also holds the
estimate of its metrics from the model's confidence (``estimate``, :mod:`.window_estimate`),
and its estimated accuracy (``estimated_accuracy``): the signals ``estimated_<metric>`` (and
``_low``, ``_high`` for the interval) and ``estimate_trusted`` act before labels arrive.
A window without an estimate says why in ``estimate_note`` (``None`` when it has one).

An alert is kept in ``monitoring_alerts`` with its evidence (the latest windows of the
streak, at most :data:`~.policy_streak.MAX_LISTED_HELD`, with the signal's value in each,
``held_count`` counting all those that held and ``streak_start_ms`` the start of the first,
and the ``skipped`` windows between them where the signal was undefined, at most
:data:`~.policy_streak.MAX_LISTED_SKIPPED` listed and ``skipped_count`` counting them all,
:mod:`.policy_streak`; for drift, the drifted features with statistic
and p-value; for ``error_drift``, the detector's alarm positions; for the decay signals,
the decay) and appended to the audit log (action ``alert``, entity ``monitor:DEPLOYMENT``).
The evidence names the ``change_point_ms``: for ``error_drift``, the estimated change of
the error rate inside the window ADWIN kept at the detector's last alarm
(:mod:`.change_point`; the time of the first labelled row after it, which may lie in an
earlier window; ADWIN reads the stream whichever detector is chosen); for any other
signal, the start of the streak's first window. For the input anomaly signals the evidence holds the
scored and flagged requests of every window of the streak and the last window's
``input_anomaly`` (with the detector's stated false-positive rate). A rule whose action is
not ``alert`` then acts (:mod:`.policy_actions`) with ``actions``, an
:class:`~opsloop.monitoring.policy_actions.ActionContext` (by default one on ``db``, which
can call webhooks and roll back; ``retrain`` needs a registry and a gate in it).

>>> import pandas as pd
>>> from opsloop.monitoring.event_log import log_predictions
>>> from opsloop.monitoring.reference import set_reference
>>> db.clock = lambda: 7_200_000
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> _ = log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60,
...                     at_ms=60_000)
>>> [e.alerts for e in evaluate(db, "api", policies=["drift_share > 0.5 -> alert"])]
[('drift_share > 0.5 -> alert',)]
>>> read_alerts(db, "api")[["variant", "rule", "start_ms"]].values.tolist()
[['default', 'drift_share > 0.5 -> alert', 0]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.detect import detector_from_state
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.action_outcome import record_outcome_in
from opsloop.monitoring.alert_log import record_alert
from opsloop.monitoring.change_point import mean_shift_point
from opsloop.monitoring.decay_kind import decay_kind, decay_signals, inputs_moved
from opsloop.monitoring.earlier_windows import EarlierWindows
from opsloop.monitoring.error_stream import ERROR_DETECTORS, RESTART_REASON, read_errors
from opsloop.monitoring.event_log import labelled_events
from opsloop.monitoring.feature_stream import (
    SCALE,
    FeatureReference,
    feature_detector_setting,
    read_features,
    window_inputs,
)
from opsloop.monitoring.input_anomalies import (
    StatedDetector,
    input_anomaly_metrics,
    stated_detector,
)
from opsloop.monitoring.iso_time import utc_iso
from opsloop.monitoring.monitor_state import get_state, lock_monitor, put_state
from opsloop.monitoring.policy import Policy, rule_action
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.policy_streak import advance, held, skipped
from opsloop.monitoring.process_metrics import window_process
from opsloop.monitoring.reference import Reference, StoredReference, stored_reference
from opsloop.monitoring.reference_predictions import window_reference
from opsloop.monitoring.reweighted_reference import reweighted_reference
from opsloop.monitoring.running_actions import start_action, take_interrupted, webhook_deadline_ms
from opsloop.monitoring.stored_policy import PolicySetting, policy_in, read_policy
from opsloop.monitoring.window_estimate import no_estimate_reason, scored_rows, window_estimate
from opsloop.monitoring.window_labels import usable_labels
from opsloop.monitoring.window_metrics import task_errors, window_metrics
from opsloop.monitoring.window_store import (
    DEFAULT_WORKER,
    read_window,
    update_windows,
    window_starts,
)
from opsloop.monitoring.windowing import Windowing
from opsloop.registry.audit import append_audit
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.label_values import answer_label, per_record_labels, recorded_answer

_evaluations, _alerts = tables.monitoring_evaluations, tables.monitoring_alerts


@dataclass(frozen=True)
class WindowEvaluation:
    """One evaluated window: its ``variant`` and ``start_ms``, the ``metrics`` (see
    :mod:`.window_metrics`, with ``error_drift`` and ``decay``), the rules whose ``alerts``
    it fired and the outcomes of their ``actions``."""

    variant: str
    start_ms: int
    metrics: dict[str, Any]
    alerts: tuple[str, ...]
    actions: tuple[dict[str, Any], ...] = ()


def _labelled_rows(db: Database, deployment: str, variant: str, start: int, end: int):
    rows = labelled_events(
        db, deployment, variant, start, end, "output_json", "at_ms", "model", "version"
    )
    predictions, labels, times, versions = [], [], [], []
    answers: list[int] = []  # each value's answer, in order
    rejected = 0
    for number, (output_json, at_ms, model, version, label_json) in enumerate(rows):
        values, classes = recorded_answer(output_json)
        if values is None:
            continue
        # A label kept in a shape or kind that does not fit the answer (before labels were
        # checked when they came in) is counted and left out, never breaking the window;
        # one of integer classes is read as the class it equals (0.0 as 0). The training
        # window reads a label by this one rule too (answer_label).
        label = per_record_labels(label_json, len(values))
        label = None if label is None else answer_label(label, values, classes)
        if label is None:
            rejected += 1
            continue
        predictions.extend(values)
        labels.extend(label)
        times.extend([at_ms] * len(values))
        versions.extend([(model, version)] * len(values))
        answers.extend([number] * len(values))
    # The window's kind is judged by one rule with the training window's (usable_labels):
    # a label that cannot be scored the way the window is (a label 0.5 where the model
    # answers text classes, a text label where it answers numbers) is left out, each
    # answer with one counted once, never the window's other rows.
    usable, unfit = usable_labels(predictions, labels, answers)
    rejected += unfit
    keep = [u and p is not None for p, u in zip(predictions, usable, strict=True)]
    frame = pd.DataFrame(
        {
            "prediction": [p for p, k in zip(predictions, keep, strict=True) if k],
            "label": [y for y, k in zip(labels, keep, strict=True) if k],
            "at_ms": [t for t, k in zip(times, keep, strict=True) if k],
            # Which model version answered: the error stream restarts when it changes.
            "version": [v for v, k in zip(versions, keep, strict=True) if k],
        },
        columns=["prediction", "label", "at_ms", "version"],
    )
    frame.attrs["labels_rejected"] = rejected
    return frame


def _stream_before(db, deployment, variant, earlier: EarlierWindows, first: int, start_ms: int):
    """The times and errors of a variant's error stream from position ``first`` up to the
    window starting at ``start_ms``, read back from the evaluated windows that fed them
    (``None`` when none is recorded, or when labels that came later moved their rows)."""
    for window_start, metrics in earlier:
        stream_start = metrics.get("error_stream_start")
        if stream_start is None or stream_start > first:
            continue
        labelled = _labelled_rows(db, deployment, variant, window_start, start_ms)
        if not len(labelled):
            return None
        _, _, errors = task_errors(labelled)
        kept = first - stream_start
        if kept >= len(errors):
            return None
        return labelled["at_ms"].to_numpy()[kept:], errors[kept:]
    return None


def _change_point(db, deployment, variant, earlier, start, read, errors, labelled):
    """The estimated change in the error stream at the detector's last alarm in this
    window: its stream position and time (see :mod:`.change_point`), or ``None``."""
    segment = next(s for s in reversed(read.segments) if s.result is not None and s.result.n_drifts)
    errors = errors[segment.begin : segment.end]
    times = labelled["at_ms"].to_numpy()[segment.begin : segment.end]
    assert segment.result is not None
    last = int(segment.result.drift_indices[-1])
    # Replayed from the state before the segment: the window ADWIN (the history, whichever
    # detector signalled) kept at the alarm.
    replay = detector_from_state(segment.state_before)
    replay.update_many(np.asarray(errors[: last + 1], dtype=float))
    begin = segment.position
    first = begin + last - replay.width + 1
    times, stream = times[: last + 1], np.asarray(errors[: last + 1], dtype=float)
    if first >= begin:
        times, stream = times[first - begin :], stream[first - begin :]
    else:
        # Kept from before this window: only a detector that did not restart in it.
        before = _stream_before(db, deployment, variant, earlier, first, start)
        if before is None or len(before[0]) != begin - first:
            return None
        times, stream = np.r_[before[0], times], np.r_[before[1], stream]
    point = mean_shift_point(stream, min_length=replay.min_window_length)
    return first + point, int(times[point])


def _evidence(policy: Policy, streak: dict, metrics: dict, positions: list) -> dict:
    # The latest windows that held (listed up to a bound) and how many held since which
    # window, those passed over between them without a verdict (listed up to a bound), and
    # how many were passed over: it fires at a window that held, so every one the streak
    # counts lies between two that held.
    windows = held(streak)
    evidence: dict[str, Any] = {
        "signal": policy.signal,
        "windows": windows,
        "held_count": streak["held"],
        "streak_start_ms": streak["since_ms"],
        "skipped": skipped(streak, trailing=False),
        "skipped_count": streak["skipped"],
    }
    if policy.signal == "drift_share":
        evidence["drifted"] = {
            name: {k: drift[k] for k in ("test", "statistic", "p_value", "p_adjusted")}
            for name, drift in metrics["drift"].items()
            if drift["drifted"]
        }
    if policy.signal == "error_drift":
        chosen = metrics["error_detector"]
        evidence["detector"] = {
            "name": chosen["name"],
            "preset": chosen["preset"],
            "positions": positions,
            "change_point": metrics.get("error_change_point"),
            # Whose errors it read: the alarm is about that version since that row.
            "source": metrics.get("error_stream_source"),
            "restarts": metrics.get("error_stream_restarts", []),
            "switch": metrics.get("error_detector_switch"),
        }
    if policy.signal in ("data_drift", "concept_drift"):
        evidence["decay"] = metrics["decay"]
    if policy.signal.startswith("estimate"):
        evidence["estimate"] = metrics["estimate"]
    if policy.signal.startswith("input_"):
        evidence["input_anomaly"] = metrics["input_anomaly"]
    if policy.signal == "feature_alarms":
        evidence["feature_alarms"] = metrics["feature_stream"]["alarms"]
    found = metrics.get("error_change_point_ms") if policy.signal == "error_drift" else None
    evidence["change_point_ms"] = streak["since_ms"] if found is None else found
    return evidence


def _alert_reason(rule: Policy, passed_over: int) -> str:
    """The alert's reason in the audit log, with the count of windows passed over.

    >>> _alert_reason(Policy.parse("concept_drift > 0 for 2 windows -> alert"), 1)
    "policy 'concept_drift > 0 for 2 windows -> alert' held in 2 window(s), 1 window(s) without a verdict passed over"
    """  # noqa: E501 - a doctest's expected output is one line
    reason = f"policy {rule.text!r} held in {rule.windows} window(s)"
    if passed_over:
        reason += f", {passed_over} window(s) without a verdict passed over"
    return reason


def evaluate(
    db: Database,
    deployment: str,
    *,
    windowing: Windowing | None = None,
    policies: Sequence[str | Policy] | None = None,
    worker: str = DEFAULT_WORKER,
    alpha: float = 0.05,
    actions: ActionContext | None = None,
) -> list[WindowEvaluation]:
    """Fold new events into windows, then evaluate every closed window not evaluated yet
    and run the actions of the rules that fire (``policies``, or the deployment's stored
    ones when ``None``; see the module docstring); return the evaluations, oldest first per
    variant."""
    windowing = windowing or Windowing()
    context = actions if actions is not None else ActionContext(db)
    # The call's rules, or None: each window then applies the stored policy it reads under
    # the monitor's lock, rules and detector of one revision (a change of the policy during
    # the call applies from the next window). Refused now if this context cannot act on
    # them, as stored at the start.
    given = None if policies is None else _parsed(policies)
    context.check(given if given is not None else _stored(read_policy(db, deployment)))
    # Actions a dead process left in flight get their outcome first (webhooks run again).
    _record_interrupted(db, deployment, context)
    _run_pending(db, deployment, context, final=False)
    update_windows(db, deployment, windowing, worker=worker)
    stored = stored_reference(db, deployment)
    reference, origin = stored.reference, stored.origin
    # Fitted once for every window of this call: the reference's calibration is the same.
    estimator = None if reference.scores is None else reference.scores.estimator()
    detector = stated_detector(db, deployment)
    features = feature_detector_setting(db, deployment)
    if features["enabled"]:
        # What the feature detectors score the inputs against: the same for every window.
        features = {**features, "reference": FeatureReference.of_reference(reference)}
    now = db.clock()
    done = []
    # Outcomes of actions run after a window another evaluator wrote: reported with the
    # next window this one writes.
    carried: tuple[dict[str, Any], ...] = ()
    starts = window_starts(db, deployment, windowing)
    for variant, group in starts.groupby("variant", sort=True):
        key = f"{variant}:{windowing.window_ms}"
        starts_of_variant = group["start_ms"].tolist()
        for index, start in enumerate(starts_of_variant):
            # Read again for each window: another evaluator may have gone past it.
            if start + windowing.window_ms > now or _evaluated(db, deployment, key, start):
                continue
            previous = int(starts_of_variant[index - 1]) if index else None
            evaluation = _evaluate_window(
                db,
                deployment,
                variant,
                int(start),
                windowing,
                reference,
                given,
                alpha,
                previous,
                estimator,
                detector,
                features,
                origin,
                context,
                stored,
            )
            ran = _run_pending(db, deployment, context, final=False)
            outcomes, carried = carried + tuple(o for _, o in ran), ()
            if evaluation is None:  # another evaluator wrote it first
                carried = outcomes
                continue
            done.append(
                WindowEvaluation(
                    evaluation.variant,
                    evaluation.start_ms,
                    evaluation.metrics,
                    evaluation.alerts,
                    outcomes,
                )
            )  # fmt: skip
    # Promotions compare a challenger's windows with the primary's: now all are evaluated.
    for item, outcome in _run_pending(db, deployment, context, final=True):
        at = (item["variant"], item["evidence"]["start_ms"])
        for i, e in enumerate(done):
            if (e.variant, e.start_ms) == at:
                done[i] = WindowEvaluation(
                    e.variant, e.start_ms, e.metrics, e.alerts, (*e.actions, outcome)
                )
    return done


def _parsed(rules: Sequence[str | Policy]) -> list[Policy]:
    return [r if isinstance(r, Policy) else Policy.parse(r) for r in rules]


def _stored(setting: PolicySetting) -> list[Policy]:
    """The rules of a stored policy, parsed; a rule this version no longer reads (stored
    before a bound it breaks, such as ``for N windows`` past
    :data:`~.policy.MAX_RULE_WINDOWS`) is refused naming it and what to do.

    >>> _stored(PolicySetting("api", ("requests > 0 for 0 windows -> alert",), revision=3))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: the stored policy of 'api' (revision 3), rules.0: policy 'requests > 0 for 0 windows -> alert': for N windows: N must be between 1 and 10000, got '0'; set the policy again
    """  # noqa: E501 - a doctest's expected output is one line
    rules = []
    for position, text in enumerate(setting.rules):
        try:
            rules.append(Policy.parse(text))
        except InvalidArgumentError as error:
            raise InvalidArgumentError(
                f"the stored policy of {setting.deployment!r} (revision {setting.revision}), "
                f"rules.{position}: {error}; set the policy again"
            ) from None
    return rules


def _applied(
    connection, deployment: str, given: list[Policy] | None, context: ActionContext
) -> tuple[list[Policy], str, dict[str, Any]]:
    """The rules a window applies, its error-stream detector and what the window records of
    them (``policy``: ``from`` the call or the ``stored`` policy at its ``revision``, and
    ``detector_revision``, the stored revision whose detector read the errors), read on
    ``connection`` under the monitor's lock: one revision for the rules and the detector.
    Stored rules this context cannot act on (a change since the call began) are refused, and
    so is a stored rule this version no longer reads (:func:`_stored`)."""
    setting = policy_in(connection, deployment)
    if given is not None:
        record = {"from": "call", "revision": None, "detector_revision": setting.revision}
        return given, setting.error_detector, record
    rules = _stored(setting)
    context.check(rules)
    record = {"from": "stored", "revision": setting.revision, "detector_revision": setting.revision}
    return rules, setting.error_detector, record


def _concept_drift_before(earlier: EarlierWindows, version: tuple[str, int] | None) -> bool:
    """Whether the variant's last window (of this length, before the one evaluated) that
    decided its kind read as concept drift: one that goes on while the error stays above
    what the reference expects. Windows without labels (no kind decided, nothing judged)
    are passed over: they neither end a drift nor show one, so a drift goes on across them.
    A window of another model version than ``version`` (the one whose rows this window
    judges) ends it: its errors are another model's, and a new version's error stream
    starts afresh."""
    for _, metrics in earlier:
        if metrics.get("concept_drift") is None and not metrics.get("labelled"):
            continue
        if metrics.get("concept_drift") != 1:
            return False
        source = metrics.get("error_stream_source")
        if version is None or source is None:
            return True
        return (source["model"], int(source["version"])) == version
    return False


def _evaluated(db: Database, deployment: str, key: str, start: int) -> bool:
    """Whether the window starting at ``start`` (of the variant and length ``key``) was
    evaluated: the last one evaluated starts there or later."""
    with db.read() as connection:
        last = get_state(connection, deployment, f"evaluated:{key}", {"start_ms": None})
    return last["start_ms"] is not None and start <= last["start_ms"]


def _run_pending(
    db: Database, deployment: str, context: ActionContext, *, final: bool
) -> list[tuple[dict, dict]]:
    """Run the actions recorded as pending, oldest first; each leaves the list for the
    actions in flight before it runs, under the deployment's monitor lock, so that of
    evaluators running at once only one takes it. One this context cannot run (a retrain
    without a registry) stays pending, and so does a promotion until the ``final`` pass.
    Each item with its outcome."""
    outcomes = []
    # The items left pending, by their text: another evaluator may change the list between
    # two of these transactions, so positions in it are not kept.
    kept: set[str] = set()
    while True:
        with db.write() as connection:
            lock_monitor(connection, deployment)
            pending = get_state(connection, deployment, "pending_actions", [])
            texts = [json.dumps(item, sort_keys=True) for item in pending]
            runnable = [i for i, text in enumerate(texts) if text not in kept]
            if not runnable:
                break
            item = pending[runnable[0]]
            try:
                rule = Policy.parse(item["rule"])
            except InvalidArgumentError as error:
                # Queued under a version that accepted the rule (a webhook's retries, a
                # promotion's window count past today's bounds): it leaves the queue with
                # its outcome and an alert, rather than stop every later evaluation.
                outcome = {
                    "action": rule_action(item["rule"]),
                    "rule": item["rule"],
                    "status": "refused",
                    "reason": f"not run: its rule is no longer accepted ({error}); "
                    "set the policy again",
                }
                record_outcome_in(
                    connection,
                    context.acting,
                    deployment,
                    item["variant"],
                    item["rule"],
                    item["evidence"],
                    outcome,
                )
                put_state(
                    connection,
                    deployment,
                    "pending_actions",
                    [x for i, x in enumerate(pending) if i != runnable[0]],
                )
                outcomes.append((item, outcome))
                continue
            if not context.can_run(rule) or (rule.action == "promote" and not final):
                kept.add(texts[runnable[0]])
                continue
            put_state(
                connection,
                deployment,
                "pending_actions",
                [x for i, x in enumerate(pending) if i != runnable[0]],
            )
            deadline = None
            if rule.action == "webhook":
                deadline = webhook_deadline_ms(
                    rule.option("timeout_s"), rule.option("retries"), context.webhook_backoff_s
                )
            entry = start_action(
                connection, deployment, item, now_ms=db.clock(), deadline_ms=deadline
            )
        outcome = run_action(
            context, deployment, item["variant"], rule, item["evidence"], action_id=entry["id"]
        )
        outcomes.append((item, outcome))
    return outcomes


def _record_interrupted(
    db: Database, deployment: str, context: ActionContext
) -> list[tuple[dict, dict]]:
    """Give the actions whose process died in flight their outcome, ``interrupted``, and
    put a webhook back first in the pending list with its ``id``, to be sent again with the
    same ``Idempotency-Key`` (see :mod:`.running_actions`). Each item with its outcome."""
    found = []
    with db.write() as connection:
        lock_monitor(connection, deployment)
        interrupted = take_interrupted(connection, deployment, now_ms=db.clock())
        if not interrupted:
            return found
        again = []
        for entry in interrupted:
            action = rule_action(entry["rule"])
            process = entry["process"]
            resent = action == "webhook"
            then = (
                "sent again with the same Idempotency-Key"
                if resent
                else "not run again: its own audit entries say what it did"
            )
            outcome = {
                "action": action,
                "rule": entry["rule"],
                "status": "interrupted",
                "reason": f"the process that ran it ({process['host']}:{process['pid']}, from "
                f"{utc_iso(entry['started_ms'])}) stopped before it recorded an outcome; {then}",
                "action_id": entry["id"],
                "started_ms": entry["started_ms"],
                "process": process,
            }
            record_outcome_in(
                connection,
                context.acting,
                deployment,
                entry["variant"],
                entry["rule"],
                entry["evidence"],
                outcome,
            )
            found.append((entry, outcome))
            if resent:
                item = {k: entry[k] for k in ("rule", "variant", "evidence", "id")}
                again.append({**item, "interrupted": entry.get("interrupted", 0) + 1})
        if again:
            pending = get_state(connection, deployment, "pending_actions", [])
            put_state(connection, deployment, "pending_actions", [*again, *pending])
    return found


def _evaluate_window(
    db,
    deployment,
    variant,
    start,
    windowing,
    reference: Reference,
    given: list[Policy] | None,
    alpha,
    previous=None,
    estimator=None,
    input_detector: StatedDetector | None = None,
    features: dict[str, Any] | None = None,
    origin: str | None = None,
    context: ActionContext | None = None,
    stored: StoredReference | None = None,
) -> WindowEvaluation | None:
    key = f"{variant}:{windowing.window_ms}"
    window = read_window(db, deployment, variant, windowing, start)
    labelled = _labelled_rows(db, deployment, variant, start, start + windowing.window_ms)
    # The variant's window before this one (the last that had events), for drift between
    # consecutive windows.
    before = None if previous is None else read_window(db, deployment, variant, windowing, previous)
    metrics, errors = window_metrics(
        window, reference, labelled, alpha=alpha, previous=before, window_ms=windowing.window_ms
    )
    metrics["previous_start_ms"] = previous
    # Labelled answers whose stored label does not fit the answer, left out of the task metric.
    metrics["labels_rejected"] = labelled.attrs["labels_rejected"]
    # Which reference the drift was judged against: "set explicitly", or the training data
    # registered with the version the primary variant served when the window was evaluated.
    metrics["reference"] = origin
    metrics["process"] = window_process(db, deployment, start, start + windowing.window_ms)
    for name in ("process_rss_bytes", "process_cpu_seconds"):
        metrics[name] = None if metrics["process"] is None else metrics["process"][name]
    anomalies = input_anomaly_metrics(window.anomalies, input_detector)
    metrics["input_anomaly"] = anomalies
    counted = input_detector is not None or anomalies["scored"] > 0
    # Without a detector and with nothing scored there is nothing to count: no gauge shows
    # zeros for every deployment that never had one.
    metrics["input_scored"] = anomalies["scored"] if counted else None
    metrics["input_flagged"] = anomalies["flagged"] if counted else None
    metrics["input_anomaly_rate"] = anomalies["rate"]
    metrics["input_anomaly_p_value"] = anomalies["p_value"]
    metrics["estimate"], metrics["estimated_accuracy"] = None, None
    metrics["estimate_note"] = None
    if estimator is None:
        metrics["estimate_note"] = no_estimate_reason(None, None)
    else:
        rows = scored_rows(
            db,
            deployment,
            variant,
            start,
            start + windowing.window_ms,
            with_inputs=reference.scores.inputs is not None,
        )
        metrics["estimate"] = window_estimate(estimator, reference.scores, rows)
        if metrics["estimate"] is not None:
            metrics["estimated_accuracy"] = metrics["estimate"]["metrics"]["accuracy"]["value"]
        else:
            metrics["estimate_note"] = no_estimate_reason(reference.scores, rows)
    # The reference's errors weighted to the window's inputs, for telling whether the
    # window errs more than the reference's relationship allows on them: fitted before the
    # lock (a density ratio takes a moment), in labelled windows whose inputs moved or that
    # follow a concept drift. The errors are those of the version that answered the
    # window's judged rows (its last), made again on the reference when the reference's
    # predictions are another version's.
    reweighted = None
    model, version = labelled["version"].iloc[-1] if len(labelled) else (None, None)
    judged = None if model is None else (str(model), int(version))
    # The windows before this one, read once for both look-backs (the concept drift going
    # on, and the error stream ADWIN kept when the detector signals).
    earlier = EarlierWindows(db, deployment, variant, windowing, start)
    ongoing = _concept_drift_before(earlier, judged)
    if metrics["task"] is not None and (inputs_moved(metrics["drift_share"]) or ongoing):
        sample = None if window.sample is None else window.sample.frame()
        if stored is None:
            reweighted = reweighted_reference(reference, sample, metrics["task"])
        else:
            acting = context if context is not None else ActionContext(db)
            reweighted = window_reference(
                stored,
                judged,
                sample,
                metrics["task"],
                registry=acting.registry,
                trust=acting.trust,
                trusted_types=acting.trusted_types,
            )
    watch = features is not None and features["enabled"]
    # Read before the lock: the inputs of a closed window do not change.
    inputs = (
        window_inputs(db, deployment, variant, start, start + windowing.window_ms)
        if watch
        else None
    )
    fired = []
    with db.write() as connection:
        lock_monitor(connection, deployment)
        last = get_state(connection, deployment, f"evaluated:{key}", {"start_ms": None})
        if last["start_ms"] is not None and start <= last["start_ms"]:
            return None  # another evaluator wrote this window while it was computed here
        now = clock_of(connection)
        # Read under the lock: evaluators of one deployment read each window with one choice,
        # and the window records the revision it applied.
        rules, chosen, metrics["policy"] = _applied(
            connection, deployment, given, context if context is not None else ActionContext(db)
        )
        alarm = get_state(connection, deployment, f"error_detector:{key}")
        read = read_errors(
            get_state(connection, deployment, f"detector:{key}"),
            get_state(connection, deployment, f"detector_source:{key}"),
            errors,
            labelled["version"].tolist(),
            labelled["at_ms"].tolist(),
            detector=chosen,
            alarm=alarm,
            zero_one=metrics["task"] in (None, "accuracy"),
        )
        positions = read.positions
        metrics["error_detector"] = {
            "name": read.detector,
            "preset": ERROR_DETECTORS[read.detector],
            "read": read.reason is None,
            "reason": read.reason,
        }
        metrics["error_detector_switch"] = read.switch
        metrics["error_drift"] = None if read.reason is not None else len(positions)
        metrics["error_drift_positions"] = positions
        metrics["error_stream_start"] = read.start
        metrics["error_stream_restarts"] = read.restarts
        metrics["error_stream_source"] = read.source
        if positions:
            found = _change_point(db, deployment, variant, earlier, start, read, errors, labelled)
            if found is not None:
                metrics["error_change_point"], metrics["error_change_point_ms"] = found
        # Judged against the history of the version that answered last in the window.
        metrics["decay"] = decay_kind(
            metrics["drift_share"],
            metrics["task"],
            errors[read.history_begin :],
            read.history,
            alpha=alpha,
            reweighted=reweighted,
            ongoing=ongoing,
        )
        metrics["data_drift"], metrics["concept_drift"] = decay_signals(metrics["decay"]["kind"])
        put_state(connection, deployment, f"detector:{key}", read.state)
        # ADWIN's state is the alarm detector's too when it is the one chosen: none apart.
        if read.alarm is not None or alarm is not None:
            put_state(connection, deployment, f"error_detector:{key}", read.alarm)
        metrics["feature_alarms"], metrics["feature_stream"] = None, None
        if watch:
            streams = read_features(
                get_state(connection, deployment, f"feature_detectors:{key}"),
                inputs,
                features["reference"],
                features["max_features"],
                features["detector"],
            )
            put_state(connection, deployment, f"feature_detectors:{key}", streams.state)
            metrics["feature_alarms"] = len(streams.alarms)
            metrics["feature_stream"] = {
                "detector": streams.detector,
                "preset": streams.preset,
                "scale": SCALE,
                "watched": streams.watched,
                "unwatched": streams.unwatched,
                "unreferenced": streams.unreferenced,
                "restarted": streams.restarted,
                "alarms": streams.alarms,
            }
        if read.source is not None:
            put_state(connection, deployment, f"detector_source:{key}", read.source)
        if read.switch is not None:
            switch = read.switch
            append_audit(
                connection,
                "monitoring",
                "detector_restart",
                f"monitor:{deployment}",
                f"{switch['to']} reads the error stream of variant {variant!r} from row "
                f"{switch['position']} (was {switch['from']}, after {switch['rows_read']} "
                f"rows); {read.switch['reason']}",
                None,
                {"variant": variant, "window_start_ms": start, **switch},
                at_ms=now,
            )
        for restart in read.restarts:
            append_audit(
                connection,
                "monitoring",
                "detector_restart",
                f"monitor:{deployment}",
                f"{read.detector} on the error stream of variant {variant!r} restarts at row "
                f"{restart['position']}: it now serves {restart['to']['model']} "
                f"v{restart['to']['version']} (was {restart['from']['model']} "
                f"v{restart['from']['version']}); {RESTART_REASON}",
                None,
                {"variant": variant, "window_start_ms": start, **restart},
                at_ms=now,
            )
        streaks = get_state(connection, deployment, f"policies:{key}", {})
        pending = get_state(connection, deployment, "pending_actions", [])
        for rule in rules:
            counts = None
            if rule.signal.startswith("input_"):
                counts = {"scored": anomalies["scored"], "flagged": anomalies["flagged"]}
            # A window where the signal is undefined neither extends nor breaks the streak
            # (:mod:`.policy_streak`); the rule fires once when the windows that held reach
            # its count, again only after the streak breaks.
            streak, fires = advance(rule, streaks.get(rule.text, []), metrics, start, counts)
            streaks[rule.text] = streak
            if fires:
                evidence = _evidence(rule, streak, metrics, positions)
                evidence["window_ms"] = windowing.window_ms
                evidence["start_ms"] = start
                record_alert(
                    connection,
                    deployment,
                    variant,
                    rule.text,
                    rule.action,
                    evidence,
                    _alert_reason(rule, evidence["skipped_count"]),
                )
                if rule.action != "alert":
                    pending.append({"rule": rule.text, "variant": variant, "evidence": evidence})
                fired.append(rule.text)
        put_state(connection, deployment, "pending_actions", pending)
        put_state(connection, deployment, f"policies:{key}", streaks)
        connection.execute(
            _evaluations.insert().values(
                deployment=deployment,
                variant=variant,
                window_ms=windowing.window_ms,
                start_ms=start,
                metrics_json=json.dumps(metrics),
                evaluated_ms=now,
            )
        )
        put_state(connection, deployment, f"evaluated:{key}", {"start_ms": start})
    return WindowEvaluation(variant, start, metrics, tuple(fired))


def read_evaluations(
    db: Database,
    deployment: str,
    windowing: Windowing | None = None,
    *,
    variant: str | None = None,
    last: int | None = None,
    before_ms: int | None = None,
    before_variant: str | None = None,
) -> list[WindowEvaluation]:
    """The evaluated windows of ``deployment`` (of one ``variant``, or all), oldest first:
    the newest ``last`` of them, or all. With ``before_ms``, only the windows before it in
    the listing's order (start, then variant): those starting before ``before_ms``, and
    with ``before_variant`` also those starting at ``before_ms`` of a variant named before
    it, so that the oldest window of one page is the cursor of the next.

    >>> read_evaluations(db, "nothing-yet")
    []
    >>> read_evaluations(db, "nothing-yet", before_variant="live")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: before_variant: needs before_ms (the start of the window it goes with)
    """  # noqa: E501 - a doctest's expected output is one line
    windowing = windowing or Windowing()
    query = sa.select(
        _evaluations.c.variant, _evaluations.c.start_ms, _evaluations.c.metrics_json
    ).where(
        _evaluations.c.deployment == deployment,
        _evaluations.c.window_ms == windowing.window_ms,
    )
    if variant is not None:
        query = query.where(_evaluations.c.variant == variant)
    if before_variant is not None and before_ms is None:
        raise InvalidArgumentError(
            "before_variant: needs before_ms (the start of the window it goes with)"
        )
    if before_ms is not None and before_variant is None:
        query = query.where(_evaluations.c.start_ms < before_ms)
    elif before_ms is not None:
        # (start, variant) before the cursor's, as one row comparison: a range of the index
        # on (deployment, window_ms, start_ms, variant), where "earlier start, or the same
        # start and an earlier variant" written as an OR is read as a filter over every row.
        query = query.where(
            sa.tuple_(_evaluations.c.start_ms, _evaluations.c.variant)
            < sa.tuple_(sa.literal(before_ms, sa.BigInteger), sa.literal(before_variant))
        )
    if last is None:
        query = query.order_by(_evaluations.c.start_ms, _evaluations.c.variant)
    else:
        query = query.order_by(_evaluations.c.start_ms.desc(), _evaluations.c.variant.desc()).limit(
            last
        )
    with db.read() as connection:
        rows = connection.execute(query).all()
    if last is not None:
        rows = rows[::-1]
    return [WindowEvaluation(v, int(s), json.loads(m), ()) for v, s, m in rows]


def read_alerts(
    db: Database,
    deployment: str,
    *,
    variant: str | None = None,
    last: int | None = None,
    before_id: int | None = None,
) -> pd.DataFrame:
    """The alerts of ``deployment`` (of one ``variant``, or all), oldest first: the newest
    ``last`` of them, or all, and with ``before_id`` only those raised before the alert of
    that ``id``; ``variant``, ``rule``, ``action``, ``start_ms`` (of the window that fired
    it), ``at_ms``, the ``evidence`` and the alert's ``id`` (increasing as alerts are
    raised).

    >>> read_alerts(db, "nothing-yet").columns.tolist()
    ['variant', 'rule', 'action', 'start_ms', 'at_ms', 'evidence', 'id']
    """
    query = sa.select(
        _alerts.c.variant,
        _alerts.c.rule,
        _alerts.c.action,
        _alerts.c.evidence_json,
        _alerts.c.at_ms,
        _alerts.c.id,
    ).where(_alerts.c.deployment == deployment)
    if variant is not None:
        query = query.where(_alerts.c.variant == variant)
    if before_id is not None:
        query = query.where(_alerts.c.id < before_id)
    if last is None:
        query = query.order_by(_alerts.c.id)
    else:
        query = query.order_by(_alerts.c.id.desc()).limit(last)
    with db.read() as connection:
        rows = connection.execute(query).all()
    if last is not None:
        rows = rows[::-1]
    records = []
    for variant, rule, action, evidence_json, at_ms, alert_id in rows:
        evidence = json.loads(evidence_json)
        records.append(
            {
                "variant": variant,
                "rule": rule,
                "action": action,
                "start_ms": evidence.get("start_ms"),
                "at_ms": at_ms,
                "evidence": evidence,
                "id": alert_id,
            }
        )
    return pd.DataFrame(
        records, columns=["variant", "rule", "action", "start_ms", "at_ms", "evidence", "id"]
    )
