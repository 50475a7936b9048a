"""Serving: deployments of registered models (layer 4 of the architecture).

:class:`Deployments` keeps each named endpoint's definition (variants serving model
versions or aliases, their roles and traffic weights, the strategy and the automation level)
with its audited history and the lineage of what it serves. :mod:`.deployment_records`
holds the records and the rules a definition must obey. :class:`HttpDeployments` is the
same through an opsloop server, and :func:`open_deployments` picks one or the other by
``OPSLOOP_TRACKING_URI``.

>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> db = Database("sqlite://")
>>> _ = ModelRegistry(db, ArtifactStore(tmp_path)).register("credit", b"onnx", flavor="onnx")
>>> Deployments(db).deploy("api", [Variant("stable", "credit", version=1)]).serving
{'stable': 1}

The data plane's runtime answers requests by those definitions: :class:`ServingRuntime`
(:mod:`.serving_runtime`) loads the variants, validates records against their signatures,
routes by the strategy (:mod:`.routing`, where other policies register), mirrors requests
to shadows and records every answer as a :class:`PredictionEvent`
(:func:`read_prediction_events`, :func:`record_feedback`, :func:`read_feedback`).
:func:`remote_runtime` is the same runtime on a control plane's URL, with no store
(:mod:`.remote_serving`).
"""

from opsloop.serving.backend import open_deployments
from opsloop.serving.deployment_records import (
    AUTOMATION_LEVELS,
    STRATEGIES,
    VARIANT_ROLES,
    Deployment,
    Variant,
    VariantLineage,
)
from opsloop.serving.deployments import Deployments, UnknownDeploymentError
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.serving.lapsed_approvals import LapsedApprovals
from opsloop.serving.prediction_events import (
    EventRecorder,
    EventSink,
    PredictionEvent,
    StoreEventSink,
    read_prediction_events,
)
from opsloop.serving.prediction_feedback import read_feedback, record_feedback
from opsloop.serving.remote_serving import remote_runtime
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.routing import RoutingPolicy, WeightedSplit, register_policy
from opsloop.serving.serving_runtime import ServedAnswer, ServingRuntime

__all__ = [
    "AUTOMATION_LEVELS",
    "STRATEGIES",
    "VARIANT_ROLES",
    "Deployment",
    "Deployments",
    "EventRecorder",
    "EventSink",
    "HttpDeployments",
    "LapsedApprovals",
    "PredictionEvent",
    "RolloutPolicy",
    "RoutingPolicy",
    "ServedAnswer",
    "ServingRuntime",
    "StoreEventSink",
    "UnknownDeploymentError",
    "Variant",
    "VariantLineage",
    "WeightedSplit",
    "open_deployments",
    "read_feedback",
    "read_prediction_events",
    "record_feedback",
    "register_policy",
    "remote_runtime",
]
