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
  probabilities and labels, :mod:`opsloop.data.reference_scores`). Its mean over an arm's rows is
  that arm's estimated accuracy (confidence-based performance estimation); a
  :class:`~opsloop.analysis.sequential.MeanGate` (``worse="lower"``) reads the rows of
  both arms in the order they were answered and fails a candidate whose estimate is
  lower than the primary's by more than the margin. Both arms are calibrated on the one
  reference, so the candidate's probabilities are read as the primary's would be. Rows
  whose classes differ from the reference's are left out.

:func:`judge_quality` computes their new states from the store (read-only); the serving
side keeps them in the rollout's row and rolls back when one fails
(:func:`~opsloop.serving.canary_rollout.observe_quality`). :class:`~opsloop.serving.
rollout_observer.RolloutObserver` runs it beside the request path, every ``every``
candidate requests (a gate's parameter, default 50) and while a step waits for it. The
rows are kept in memory between judgements (:mod:`.canary_arms`), so a judgement reads
only the events answered since the last one; :func:`arm_events` reads them all, as a
process that kept nothing does, and gives the same rows. Serving imports this module only
inside its judging function: monitoring acts on deployments through serving, never the
other way at import.

>>> from opsloop.serving.rollout_policy import RolloutPolicy
>>> from opsloop.serving.canary_rollout import new_canary_state
>>> policy = RolloutPolicy(gates={"drift": {}})
>>> state = new_canary_state(policy, "stable", "canary", None, at_ms=0)
>>> judge_quality(db, "api", policy, state)["drift"]["state"]["looks"]
-1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.sequential import MeanGate
from opsloop.errors import NotFoundError
from opsloop.monitoring.canary_arms import MAX_EVENTS, CanaryArms, answer_rows, kept_arms
from opsloop.monitoring.reference import get_reference
from opsloop.serving.prediction_events import read_prediction_events
from opsloop.serving.rollout_policy import QUALITY_GATES, RolloutPolicy
from opsloop.store.database import Database


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


def _drift(gate: DriftGate, arms: CanaryArms) -> DriftGate:
    n_candidate, n_primary = arms.count(candidate=True), arms.count(candidate=False)
    # The frames are built only for a look that the rows open (what ``look`` would judge).
    if n_candidate and n_primary >= 2 and gate.due(n_candidate) is not None:
        gate.look(arms.rows(candidate=True), arms.rows(candidate=False))
    return gate


def _calibrated(reference, arms: np.ndarray, scores: Any, predicted: Any):
    """Each row's calibrated probability of its predicted class, by ``reference``."""
    if not len(arms):
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


def confidence_rows(events: pd.DataFrame, reference) -> tuple[np.ndarray, np.ndarray]:
    """Per answered row whose classes are the reference's: whether the candidate answered
    it, and its calibrated probability of the predicted class (the mean over rows is the
    estimated accuracy, as :class:`~opsloop.analysis.performance_estimation.
    PerformanceEstimator` gives it).

    >>> from opsloop.data.reference_scores import ReferenceScores
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
        for probability, index in answer_rows(output, wanted, position):
            arms.append(bool(candidate))
            scores.append(probability)
            predicted.append(index)
    return _calibrated(reference, np.asarray(arms, dtype=bool), scores, predicted)


def _estimate(gate: MeanGate, arms: CanaryArms, db: Database, deployment: str) -> MeanGate:
    try:
        reference = get_reference(db, deployment).scores
    except NotFoundError:
        return gate
    if reference is None:
        return gate
    flags, confidence = _calibrated(reference, *arms.scored_rows(list(reference.classes)))
    if len(flags):
        gate.update_many(flags, confidence)
    return gate


def judge_quality(
    db: Database,
    deployment: str,
    policy: RolloutPolicy,
    state: dict[str, Any],
    *,
    gates: Iterable[str] | None = None,
    arms: CanaryArms | None = None,
) -> dict[str, dict[str, Any]]:
    """The new state (``to_dict``) of each quality gate of ``policy`` (of those named in
    ``gates``, default all) that has not decided in ``state``, judged on the rows each arm
    answered since the ramp began (see the module). The estimate gate is read afresh from
    those rows in their order; the drift gate takes the look their count opens, if any.
    The rows are those this process keeps for the ramp (:func:`.canary_arms.kept_arms`),
    or ``arms``, brought up to date with the store's newer events. Nothing is written."""
    named = None if gates is None else set(gates)
    wanted = [
        name
        for name in QUALITY_GATES
        if name in state["gates"]
        and state["gates"][name]["state"]["verdict"] == "continue"
        and (named is None or name in named)
    ]
    if not wanted:
        return {}
    arms = kept_arms(db, deployment, state) if arms is None else arms
    judged = {}
    with arms.lock:
        arms.refresh(db)
        if "drift" in wanted:
            gate = DriftGate.from_dict(state["gates"]["drift"])
            judged["drift"] = _drift(gate, arms).to_dict()
        if "estimate" in wanted:
            gate = policy.gate("estimate")
            judged["estimate"] = _estimate(gate, arms, db, deployment).to_dict()
    return judged
