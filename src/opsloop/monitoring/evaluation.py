"""Evaluate a deployment's closed windows: fold new events in, compute each window's metrics
against the reference, run the error-stream detector, apply the policies, record alerts.

:func:`evaluate` takes the closed windows (ended by the store's clock) not evaluated yet, per
variant and oldest first. Each window's evaluation, the detector's new state, the policies'
streaks and the alerts it raises are written in one transaction, so a process stopped
between two windows resumes at the next one with the detector where it was. One evaluator
per deployment and window length is expected at a time (a second one's write of the same
window fails on the unique window key rather than counting it twice).

The detector is ADWIN on its calibrated ``"monitoring"`` preset
(:mod:`opsloop.detect.presets`: rare false alarms on error-rate streams), reading the
per-row errors of each window's labelled rows in event order; its alarms in a window are the
signal ``error_drift``. A window is evaluated once: labels that arrive after it are counted
late (:mod:`.event_log`) and are not in its task metric.

An alert is kept in ``monitoring_alerts`` with its evidence (the windows of the streak and
the signal's value in each; for drift, the drifted features with statistic and p-value; for
``error_drift``, the detector's alarm positions) and appended to the audit log (action
``alert``, entity ``monitor:DEPLOYMENT``).

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

from opsloop.detect import ADWIN, detector_from_state
from opsloop.monitoring.monitor_state import get_state, put_state
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.reference import Reference, get_reference
from opsloop.monitoring.window_metrics import window_metrics
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

_events, _feedback = tables.prediction_events, tables.prediction_feedback
_evaluations, _alerts = tables.monitoring_evaluations, tables.monitoring_alerts


@dataclass(frozen=True)
class WindowEvaluation:
    """One evaluated window: its ``variant`` and ``start_ms``, the ``metrics`` (see
    :mod:`.window_metrics`, with ``error_drift``) and the rules whose ``alerts`` it fired."""

    variant: str
    start_ms: int
    metrics: dict[str, Any]
    alerts: tuple[str, ...]


def _labelled_rows(db: Database, deployment: str, variant: str, start: int, end: int):
    query = (
        sa.select(_events.c.output_json, _feedback.c.label_json)
        .select_from(
            _events.join(
                _feedback,
                sa.and_(
                    _feedback.c.request_id == _events.c.request_id,
                    _feedback.c.deployment == _events.c.deployment,
                ),
            )
        )
        .where(
            _events.c.deployment == deployment,
            _events.c.variant == variant,
            _events.c.role == "primary",
            _events.c.at_ms >= start,
            _events.c.at_ms < end,
            _feedback.c.label_json.is_not(None),
        )
        .order_by(_events.c.at_ms, _events.c.id)
    )
    with db.read() as connection:
        rows = connection.execute(query).all()
    predictions, labels = [], []
    for output_json, label_json in rows:
        output = None if output_json is None else json.loads(output_json)
        values = output.get("predictions") if isinstance(output, dict) else None
        label = json.loads(label_json)
        if not isinstance(values, list):
            continue
        if len(values) == 1 and not isinstance(label, list):
            predictions.append(values[0])
            labels.append(label)
        elif isinstance(label, list) and len(label) == len(values):
            predictions.extend(values)
            labels.extend(label)
    keep = [p is not None and y is not None for p, y in zip(predictions, labels, strict=True)]
    return pd.DataFrame(
        {
            "prediction": [p for p, k in zip(predictions, keep, strict=True) if k],
            "label": [y for y, k in zip(labels, keep, strict=True) if k],
        }
    )


def _evidence(policy: Policy, streak: list[dict], metrics: dict, positions: list) -> dict:
    evidence: dict[str, Any] = {"signal": policy.signal, "windows": streak}
    if policy.signal == "drift_share":
        evidence["drifted"] = {
            name: {k: drift[k] for k in ("test", "statistic", "p_value", "p_adjusted")}
            for name, drift in metrics["drift"].items()
            if drift["drifted"]
        }
    if policy.signal == "error_drift":
        evidence["detector"] = {"name": "ADWIN", "preset": "monitoring", "positions": positions}
    return evidence


def evaluate(
    db: Database,
    deployment: str,
    *,
    windowing: Windowing | None = None,
    policies: Sequence[str | Policy] = (),
    worker: str = DEFAULT_WORKER,
    alpha: float = 0.05,
) -> list[WindowEvaluation]:
    """Fold new events into windows, then evaluate every closed window not evaluated yet
    (see the module docstring); return the evaluations, oldest first per variant."""
    windowing = windowing or Windowing()
    rules = [p if isinstance(p, Policy) else Policy.parse(p) for p in policies]
    update_windows(db, deployment, windowing, worker=worker)
    reference = get_reference(db, deployment)
    now = db.clock()
    done = []
    starts = window_starts(db, deployment, windowing)
    for variant, group in starts.groupby("variant", sort=True):
        key = f"{variant}:{windowing.window_ms}"
        with db.read() as connection:
            last = get_state(connection, deployment, f"evaluated:{key}", {"start_ms": None})
        starts_of_variant = group["start_ms"].tolist()
        for index, start in enumerate(starts_of_variant):
            closed = start + windowing.window_ms <= now
            if not closed or (last["start_ms"] is not None and start <= last["start_ms"]):
                continue
            previous = int(starts_of_variant[index - 1]) if index else None
            done.append(
                _evaluate_window(
                    db, deployment, variant, int(start), windowing, reference, rules, alpha,
                    previous,
                )
            )  # fmt: skip
    return done


def _evaluate_window(
    db, deployment, variant, start, windowing, reference: Reference, rules, alpha, previous=None
):
    key = f"{variant}:{windowing.window_ms}"
    window = read_window(db, deployment, variant, windowing, start)
    labelled = _labelled_rows(db, deployment, variant, start, start + windowing.window_ms)
    # The variant's window before this one (the last that had events), for drift between
    # consecutive windows.
    before = None if previous is None else read_window(db, deployment, variant, windowing, previous)
    metrics, errors = window_metrics(window, reference, labelled, alpha=alpha, previous=before)
    metrics["previous_start_ms"] = previous
    fired = []
    with db.write() as connection:
        now = clock_of(connection)
        state = get_state(connection, deployment, f"detector:{key}")
        detector = ADWIN.preset("monitoring") if state is None else detector_from_state(state)
        result = detector.update_many(np.asarray(errors, dtype=float))
        positions = [int(p) for p in result.stream_positions()]
        metrics["error_drift"] = result.n_drifts
        metrics["error_drift_positions"] = positions
        put_state(connection, deployment, f"detector:{key}", detector.to_state())
        streaks = get_state(connection, deployment, f"policies:{key}", {})
        for rule in rules:
            streak = streaks.get(rule.text, [])
            if rule.holds(metrics):
                streak = [*streak, {"start_ms": start, "value": rule.value(metrics)}]
            else:
                streak = []
            streaks[rule.text] = streak
            # Fires once when the streak reaches its length; again only after it breaks.
            if len(streak) == rule.windows:
                evidence = _evidence(rule, streak, metrics, positions)
                evidence["window_ms"] = windowing.window_ms
                evidence["start_ms"] = start
                connection.execute(
                    _alerts.insert().values(
                        deployment=deployment,
                        variant=variant,
                        rule=rule.text,
                        action=rule.action,
                        evidence_json=json.dumps(evidence),
                        at_ms=now,
                    )
                )
                append_audit(
                    connection,
                    "monitoring",
                    "alert",
                    f"monitor:{deployment}",
                    f"policy {rule.text!r} held in {rule.windows} window(s)",
                    None,
                    {"variant": variant, "rule": rule.text, "evidence": evidence},
                    at_ms=now,
                )
                fired.append(rule.text)
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
    db: Database, deployment: str, windowing: Windowing | None = None
) -> list[WindowEvaluation]:
    """The evaluated windows of ``deployment``, oldest first.

    >>> read_evaluations(db, "nothing-yet")
    []
    """
    windowing = windowing or Windowing()
    with db.read() as connection:
        rows = connection.execute(
            sa.select(_evaluations.c.variant, _evaluations.c.start_ms, _evaluations.c.metrics_json)
            .where(
                _evaluations.c.deployment == deployment,
                _evaluations.c.window_ms == windowing.window_ms,
            )
            .order_by(_evaluations.c.start_ms, _evaluations.c.variant)
        ).all()
    return [WindowEvaluation(v, int(s), json.loads(m), ()) for v, s, m in rows]


def read_alerts(db: Database, deployment: str) -> pd.DataFrame:
    """The alerts of ``deployment``, oldest first: ``variant``, ``rule``, ``action``,
    ``start_ms`` (of the window that fired it), ``at_ms`` and the ``evidence``.

    >>> read_alerts(db, "nothing-yet").columns.tolist()
    ['variant', 'rule', 'action', 'start_ms', 'at_ms', 'evidence']
    """
    with db.read() as connection:
        rows = connection.execute(
            sa.select(
                _alerts.c.variant,
                _alerts.c.rule,
                _alerts.c.action,
                _alerts.c.evidence_json,
                _alerts.c.at_ms,
            )
            .where(_alerts.c.deployment == deployment)
            .order_by(_alerts.c.id)
        ).all()
    records = []
    for variant, rule, action, evidence_json, at_ms in rows:
        evidence = json.loads(evidence_json)
        records.append(
            {
                "variant": variant,
                "rule": rule,
                "action": action,
                "start_ms": evidence.get("start_ms"),
                "at_ms": at_ms,
                "evidence": evidence,
            }
        )
    return pd.DataFrame(
        records, columns=["variant", "rule", "action", "start_ms", "at_ms", "evidence"]
    )
