"""What each arm of a ramping canary answered, read from the store once and kept in memory.

The canary's quality gates (:mod:`.canary_quality`) judge the rows each arm answered since
the ramp began: the first :data:`MAX_EVENTS` answered requests of each arm (by event id),
those without a model error. Reading all of them from the store at every judgement costs
a fraction of a second to seconds (decoding the inputs of up to 20,000 events) and grows
with the ramp, so :class:`CanaryArms` keeps what it read and, at the next judgement, reads
only the events newer than the last one it read, per arm. The gates then judge the rows
kept, the same rows in the same order as a read of all of them gives
(:func:`~.canary_quality.arm_events`), so their verdicts and evidence are the same.

Memory is bounded: per arm at most :data:`MAX_EVENTS` events (their input records and
outputs), one ramp per deployment, and what a deployment kept goes with its store's
:class:`~opsloop.store.database.Database` object. Nothing is written: a restarted process
(or another worker) reads the arms from the store again at its first judgement and then
judges the same way.

An event committed with an id below the last one read (two writers inserting at once on
PostgreSQL may commit out of id order) would be missed by reading only newer ids, so each
read first counts the arm's events up to the last id read, and when that count is not what
was read, the arm is read again from the start.

>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> db = Database("sqlite://")
>>> def answer(variant, i):
...     return PredictionEvent("api", variant, "primary", "m", 1, f"{variant}{i}", None,
...                            [{"x": float(i)}], {"predictions": [0]}, None, 1.0, 10 + i)
>>> StoreEventSink(db, sampler=None).write([answer("a", 0), answer("b", 1)])
>>> arms = kept_arms(db, "api", {"stable": "a", "candidate": "b",
...                              "steps_taken": [{"at_ms": 0}]})
>>> arms.refresh(db)
2
>>> StoreEventSink(db, sampler=None).write([answer("b", 2)])
>>> arms.refresh(db), arms.rows(candidate=True)["x"].tolist()
(1, [1.0, 2.0])
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database
from opsloop.store.input_batches import event_inputs

#: The most answered requests read per arm (the first since the ramp began).
MAX_EVENTS = 10_000

_events = tables.prediction_events


def _answered(error: Any, output: Any) -> bool:
    """Whether an event counts for the gates: no model error and an output (as a frame's
    ``isna`` reads them, where a JSON ``NaN`` output is missing)."""
    if error is not None or output is None:
        return False
    return not (isinstance(output, float) and math.isnan(output))


def answer_rows(output: Any, classes: list, position: dict) -> list[tuple[list, int]]:
    """The rows of one answer whose classes are ``classes`` (``position``: each class's
    index): each row's probabilities and the predicted class's index. Rows of another
    model's classes, without probabilities or with a prediction not among the classes are
    left out.

    >>> answer_rows({"predictions": [1, 2], "probabilities": [[0.2, 0.8], [0.5, 0.5]],
    ...              "classes": [0, 1]}, [0, 1], {0: 0, 1: 1})
    [([0.2, 0.8], 1)]
    """
    if not isinstance(output, dict) or output.get("classes") != classes:
        return []
    probabilities, predictions = output.get("probabilities"), output.get("predictions")
    if not isinstance(probabilities, list) or not isinstance(predictions, list):
        return []
    found = []
    for probability, prediction in zip(probabilities, predictions, strict=False):
        if not isinstance(probability, list) or len(probability) != len(classes):
            continue
        if prediction not in position:
            continue
        found.append((probability, position[prediction]))
    return found


@dataclass
class _Arm:
    """One arm's answered events, in id order."""

    variant: str
    last_id: int = 0  # the newest event read
    read: int = 0  # events read, with the failed ones (the limit counts them)
    at_ms: list[int] = field(default_factory=list)
    inputs: list[list[dict]] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    records: int = 0  # input records of the answered events


@dataclass
class _Scored:
    """One arm's rows whose classes are ``classes``: the event each came from, its
    probabilities and the predicted class's position; ``events``: the events parsed."""

    classes: tuple
    scores: np.ndarray
    events: int = 0
    event: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class CanaryArms:
    """The events each arm of one ramp answered (``stable`` and ``candidate`` variants of
    ``deployment`` since ``since_ms``), read incrementally (see the module).

    >>> CanaryArms("api", "a", "b", 0).rows(candidate=False).shape
    (0, 0)
    """

    def __init__(self, deployment: str, stable: str, candidate: str, since_ms: int) -> None:
        self.deployment = deployment
        self.since_ms = since_ms
        self.stable = _Arm(stable)
        self.candidate = _Arm(candidate)
        #: Held by a judgement while it reads and judges.
        self.lock = threading.Lock()
        self._parsed: dict[str, _Scored] = {}

    def key(self) -> tuple[str, str, int]:
        """Which ramp these arms belong to."""
        return (self.stable.variant, self.candidate.variant, self.since_ms)

    def _where(self, arm: _Arm) -> list:
        return [
            _events.c.deployment == self.deployment,
            _events.c.variant == arm.variant,
            _events.c.role == "primary",
            _events.c.at_ms >= self.since_ms,
        ]

    def _read(self, connection, candidate: bool) -> int:
        arm = self._arm(candidate)
        if arm.read:
            counted = connection.execute(
                sa.select(sa.func.count()).where(*self._where(arm), _events.c.id <= arm.last_id)
            ).scalar()
            if counted != arm.read:  # an event committed below the last id read
                arm = _Arm(arm.variant)
                setattr(self, "candidate" if candidate else "stable", arm)
                self._parsed.pop(arm.variant, None)
        wanted = MAX_EVENTS - arm.read
        if wanted <= 0:
            return 0
        rows = connection.execute(
            sa.select(
                _events.c.id,
                _events.c.at_ms,
                _events.c.error,
                _events.c.output_json,
                _events.c.inputs_json,
                _events.c.input_batch_id,
                _events.c.input_row,
            )
            .where(*self._where(arm), _events.c.id > arm.last_id)
            .order_by(_events.c.id)
            .limit(wanted)
        ).all()
        if not rows:
            return 0
        arm.read += len(rows)
        arm.last_id = int(rows[-1].id)
        kept = []
        for row in rows:
            output = None if row.output_json is None else json.loads(row.output_json)
            if _answered(row.error, output):
                kept.append((row, output))
        inputs = event_inputs(
            connection, [(r.inputs_json, r.input_batch_id, r.input_row) for r, _ in kept]
        )
        for (row, output), found in zip(kept, inputs, strict=True):
            arm.at_ms.append(int(row.at_ms))
            arm.outputs.append(output)
            arm.inputs.append(found)
            arm.records += len(found)
        return len(rows)

    def refresh(self, db: Database) -> int:
        """Read each arm's events newer than those kept; how many were read."""
        with db.read() as connection:
            return self._read(connection, False) + self._read(connection, True)

    def _arm(self, candidate: bool) -> _Arm:
        return self.candidate if candidate else self.stable

    def count(self, *, candidate: bool) -> int:
        """The input records the arm answered."""
        return self._arm(candidate).records

    def rows(self, *, candidate: bool) -> pd.DataFrame:
        """The arm's input records as a frame, in the order the events were answered (by
        time, ties by id), as :func:`~.canary_quality.arm_events` orders them."""
        arm = self._arm(candidate)
        order = np.argsort(np.asarray(arm.at_ms, dtype=np.int64), kind="stable")
        records = [record for i in order for record in arm.inputs[i]]
        return pd.DataFrame.from_records(records)

    def _scored(self, arm: _Arm, classes: list) -> _Scored:
        """The arm's rows whose classes are ``classes``, parsed once per arm and classes:
        only the events answered since the last call are parsed."""
        found = self._parsed.get(arm.variant)
        if found is None or found.classes != tuple(classes):
            found = _Scored(tuple(classes), np.zeros((0, len(classes))))
            self._parsed[arm.variant] = found
        position = {c: i for i, c in enumerate(classes)}
        events, scores, predicted = [], [], []
        for index in range(found.events, len(arm.outputs)):
            for probability, at in answer_rows(arm.outputs[index], classes, position):
                events.append(index)
                scores.append(probability)
                predicted.append(at)
        found.events = len(arm.outputs)
        if events:
            found.event = np.concatenate([found.event, np.asarray(events, dtype=np.int64)])
            new = np.asarray(scores, dtype=np.float64).reshape(len(events), len(classes))
            found.scores = np.concatenate([found.scores, new])
            found.predicted = np.concatenate(
                [found.predicted, np.asarray(predicted, dtype=np.int64)]
            )
        return found

    def scored_rows(self, classes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every answered row of both arms whose classes are ``classes``, in the order
        the events were answered (by time; at one time the stable arm's first, each by
        id): whether the candidate answered it, its probabilities (one column per class)
        and the predicted class's position.

        >>> CanaryArms("api", "a", "b", 0).scored_rows([0, 1])[1].shape
        (0, 2)
        """
        stable, candidate = self.stable, self.candidate
        times = np.asarray(stable.at_ms + candidate.at_ms, dtype=np.int64)
        rank = np.empty(len(times), dtype=np.int64)
        rank[np.argsort(times, kind="stable")] = np.arange(len(times))
        ours, theirs = self._scored(stable, classes), self._scored(candidate, classes)
        keys = rank[np.concatenate([ours.event, theirs.event + len(stable.at_ms)])]
        order = np.argsort(keys, kind="stable")
        flags = np.concatenate(
            [np.zeros(len(ours.event), dtype=bool), np.ones(len(theirs.event), dtype=bool)]
        )
        scores = np.concatenate([ours.scores, theirs.scores])
        predicted = np.concatenate([ours.predicted, theirs.predicted])
        return flags[order], scores[order], predicted[order]


# The arms kept per store object and deployment: one ramp each.
_kept: weakref.WeakKeyDictionary[Database, dict[str, CanaryArms]] = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def kept_arms(db: Database, deployment: str, state: dict[str, Any]) -> CanaryArms:
    """The arms this process keeps for the ramp in ``state`` (a canary rollout's state:
    ``stable``, ``candidate``, ``steps_taken``) of ``deployment`` on ``db``; new (empty)
    when the deployment's ramp changed.

    >>> state = {"stable": "a", "candidate": "b", "steps_taken": [{"at_ms": 0}]}
    >>> kept_arms(db, "api", state) is kept_arms(db, "api", state)
    True
    """
    key = (state["stable"], state["candidate"], int(state["steps_taken"][0]["at_ms"]))
    with _kept_lock:
        per_deployment = _kept.setdefault(db, {})
        arms = per_deployment.get(deployment)
        if arms is None or arms.key() != key:
            arms = CanaryArms(deployment, *key)
            per_deployment[deployment] = arms
        return arms


def forget_arms(db: Database) -> None:
    """Drop what this process keeps for ``db`` (as a restart does).

    >>> forget_arms(Database("sqlite://"))
    """
    with _kept_lock:
        _kept.pop(db, None)
