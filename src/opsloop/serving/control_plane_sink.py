"""Prediction events sent through a control plane: the sink of a data plane with no store
of its own (:mod:`.remote_serving`) and of its shadow processes
(:mod:`.control_plane_shadow_host`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsloop.serving.deployment_service import MAX_EVENTS
from opsloop.serving.prediction_events import PredictionEvent


class ControlPlaneSink:
    """Writes prediction events through ``deployments``' ``record_events``, at most
    :data:`~.deployment_service.MAX_EVENTS` a call.

    >>> from opsloop.serving import Deployments
    >>> from opsloop.serving.prediction_events import read_prediction_events
    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> ControlPlaneSink(Deployments(db)).write([PredictionEvent("api", "a", "primary",
    ...     "m", 1, "r1", None, [{"x": 1}], {"predictions": [0]}, None, 0.4, 1000)])
    >>> read_prediction_events(db, "api")["request_id"].tolist()
    ['r1']
    """

    def __init__(self, deployments: Any) -> None:
        self.deployments = deployments

    def write(self, events: Sequence[PredictionEvent]) -> None:
        """Send ``events`` in batches, each as its document
        (:meth:`~.prediction_events.PredictionEvent.to_document`: a control plane older
        than a field left out keeps the event)."""
        for start in range(0, len(events), MAX_EVENTS):
            batch = events[start : start + MAX_EVENTS]
            self.deployments.record_events([event.to_document() for event in batch])


__all__ = ["ControlPlaneSink"]
