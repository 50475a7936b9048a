"""A deployment whose two variants' error streams are those of
:mod:`tests.monitoring.planted_errors` (variant ``a``'s answers go wrong from a planted
row), pushed through a monitoring service and evaluated with the rule that alerts on the
error-stream detector's alarms, for the monitoring page's throughput chart and alarm marks."""

from __future__ import annotations

from tests.monitoring.planted_errors import RULE, Planted, populate_planted_errors
from tests.ui.monitoring_data import START_MS

from opsloop.registry import ModelRegistry
from opsloop.serving import Deployments, Variant

NAME = "errors-api"


def populate_alarmed(database, artifacts, monitoring) -> Planted:
    """Deploy :data:`NAME` (an A/B test of two variants of one version), log both variants'
    answers and labels through ``monitoring`` in the hours from
    :data:`~tests.ui.monitoring_data.START_MS` and evaluate them with the alarm rule."""
    ModelRegistry(database, artifacts, actor="ana").register("errors-model", b"m", flavor="onnx")
    Deployments(database, actor="ana").deploy(
        NAME,
        [
            Variant("a", "errors-model", version=1, weight=0.5),
            Variant("b", "errors-model", version=1, role="candidate", weight=0.5),
        ],
        strategy="ab",
    )
    planted = populate_planted_errors(monitoring, NAME, START_MS)
    monitoring.evaluate(NAME, policies=[RULE])
    return planted
