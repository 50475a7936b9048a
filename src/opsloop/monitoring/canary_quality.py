"""A canary's model-quality gates, judged by monitoring: drift and the estimated accuracy.

A ramping canary (:mod:`opsloop.serving.canary_rollout`) may declare two gates that need
what monitoring knows, on the rows each arm answered since the ramp began (the answered
prediction events of the primary and of the candidate, at most :data:`MAX_EVENTS` each):

* ``drift``: the candidate's inputs against the primary's, column by column, with the
  level spent over looks (:class:`~opsloop.analysis.drift_gate.DriftGate`): a candidate
  whose traffic differs from the primary's is failed;
* ``estimate``: the accuracy of each arm estimated from its confidence, before labels
  arrive, as monitoring's windows estimate it (:mod:`.window_estimate`): each row's
  probability of its predicted class, calibrated on the deployment's reference (its
  probabilities and labels, :mod:`.reference_scores`). Its mean over an arm's rows is
  that arm's estimated accuracy (confidence-based performance estimation); a
  :class:`~opsloop.analysis.sequential.MeanGate` (``worse="lower"``) reads the rows of
  both arms in the order they were answered and fails a candidate whose estimate is
  lower than the primary's by more than the margin. Both arms are calibrated on the one
  reference, so the candidate's probabilities are read as the primary's would be. Rows
  whose classes differ from the reference's are left out.

:func:`judge_quality` computes their new states from the store (read-only); the serving
side keeps them in the rollout's row and rolls back when one fails
(:func:`~opsloop.serving.canary_rollout.observe_quality`). :class:`~opsloop.serving.
rollout_observer.RolloutObserver` runs it beside the request path, every
:data:`~opsloop.serving.rollout_observer.QUALITY_EVERY` candidate requests and while a
step waits for it. Serving imports this module only inside its judging
function: monitoring acts on deployments through serving, never the other way at import.

>>> from opsloop.serving.rollout_policy import RolloutPolicy
>>> from opsloop.serving.canary_rollout import new_canary_state
>>> policy = RolloutPolicy(gates={"drift": {}})
>>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
>>> judge_quality(db, "api", policy, state)["drift"]["state"]["looks"]
-1
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.sequential import MeanGate
from opsloop.errors import NotFoundError
from opsloop.monitoring.reference import get_reference
from opsloop.serving.prediction_events import read_prediction_events
from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy
from opsloop.store.database import Database

#: The most answered requests read per arm (the first since the ramp began).
MAX_EVENTS = 10_000


def arm_events(db: Database, deployment: str, state: dict[str, Any]) -> pd.DataFrame:
    """The requests each arm of the ramp in ``state`` answered since it began (no model
    error), oldest first: ``candidate`` (a flag), ``inputs``, ``output``, ``at_ms``.

    >>> arm_events(db, "api", {"stable": "a", "candidate": "b",
    ...                        "steps_taken": [{"at_ms": 0}]}).columns.tolist()
    ['candidate', 'inputs', 'output', 'at_ms']
    """
    since = state["steps_taken"][0]["at_ms"]
    frames = []
    for variant, candidate in ((state["stable"], False), (state["candidate"], True)):
        events = read_prediction_events(
            db, deployment, variant=variant, role="primary", since_ms=since, limit=MAX_EVENTS
        )
        events = events[events["error"].isna() & events["output"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "candidate": candidate,
                    "inputs": events["inputs"],
                    "output": events["output"],
                    "at_ms": events["at_ms"],
                }
            )
        )
    both = pd.concat(frames, ignore_index=True)
    # Each arm's requests are in the order they were recorded; a stable sort keeps it.
    return both.sort_values("at_ms", kind="stable").reset_index(drop=True)


def _rows(events: pd.DataFrame) -> pd.DataFrame:
    records = [record for inputs in events["inputs"] for record in inputs]
    return pd.DataFrame.from_records(records)


def _drift(gate: DriftGate, events: pd.DataFrame) -> DriftGate:
    candidate = _rows(events[events["candidate"]])
    primary = _rows(events[~events["candidate"]])
    if len(candidate) and len(primary):
        gate.look(candidate, primary)
    return gate


def confidence_rows(events: pd.DataFrame, reference) -> tuple[np.ndarray, np.ndarray]:
    """Per answered row whose classes are the reference's: whether the candidate answered
    it, and its calibrated probability of the predicted class (the mean over rows is the
    estimated accuracy, as :class:`~opsloop.analysis.performance_estimation.
    PerformanceEstimator` gives it).

    >>> from opsloop.monitoring.reference_scores import ReferenceScores
    >>> scores = ReferenceScores.of([0.1, 0.3, 0.6, 0.9] * 5, [0, 0, 1, 1] * 5)
    >>> events = pd.DataFrame({"candidate": [True], "output": [
    ...     {"predictions": [1], "probabilities": [[0.2, 0.8]], "classes": [0, 1]}]})
    >>> confidence_rows(events, scores)[1].tolist()
    [1.0]
    """
    wanted = list(reference.classes)
    position = {c: i for i, c in enumerate(wanted)}
    arms, scores, predicted = [], [], []
    for candidate, output in zip(events["candidate"], events["output"], strict=True):
        if not isinstance(output, dict) or output.get("classes") != wanted:
            continue
        probabilities, predictions = output.get("probabilities"), output.get("predictions")
        if not isinstance(probabilities, list) or not isinstance(predictions, list):
            continue
        for probability, prediction in zip(probabilities, predictions, strict=False):
            if not isinstance(probability, list) or len(probability) != len(wanted):
                continue
            if prediction not in position:
                continue
            arms.append(bool(candidate))
            scores.append(probability)
            predicted.append(position[prediction])
    if not arms:
        return np.zeros(0, dtype=bool), np.zeros(0)
    array = np.asarray(scores, dtype=np.float64)
    estimator = reference.estimator()
    index = np.asarray(predicted)
    if reference.binary:
        positive = estimator.calibrate(array[:, 1])
        confidence = np.where(index == 1, positive, 1.0 - positive)
    else:
        confidence = estimator.calibrate(array)[np.arange(len(index)), index]
    return np.asarray(arms), confidence


def _estimate(gate: MeanGate, events: pd.DataFrame, db: Database, deployment: str) -> MeanGate:
    try:
        reference = get_reference(db, deployment).scores
    except NotFoundError:
        return gate
    if reference is None:
        return gate
    arms, confidence = confidence_rows(events, reference)
    if len(arms):
        gate.update_many(arms, confidence)
    return gate


def judge_quality(
    db: Database, deployment: str, policy: RolloutPolicy, state: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The new state (``to_dict``) of each quality gate of ``policy`` that has not decided
    in ``state``, judged on the rows each arm answered since the ramp began (see the
    module). The estimate gate is read afresh from those rows in their order; the drift
    gate takes the look their count opens, if any. Nothing is written."""
    wanted = [
        name
        for name in QUALITY_GATES
        if name in state["gates"] and state["gates"][name]["state"]["verdict"] == "continue"
    ]
    if not wanted:
        return {}
    events = arm_events(db, deployment, state)
    judged = {}
    if "drift" in wanted:
        judged["drift"] = _drift(DriftGate.from_dict(state["gates"]["drift"]), events).to_dict()
    if "estimate" in wanted:
        gate = policy.gate("estimate")
        judged["estimate"] = _estimate(gate, events, db, deployment).to_dict()
    return judged
