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

__all__ = [
    "AUTOMATION_LEVELS",
    "STRATEGIES",
    "VARIANT_ROLES",
    "Deployment",
    "Deployments",
    "HttpDeployments",
    "UnknownDeploymentError",
    "Variant",
    "VariantLineage",
    "open_deployments",
]
