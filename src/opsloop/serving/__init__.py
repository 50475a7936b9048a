"""Serving: deployments of registered models (layer 4 of the architecture).

:class:`Deployments` keeps each named endpoint's definition (variants serving model
versions or aliases, their roles and traffic weights, the strategy and the automation level)
with its audited history and the lineage of what it serves. :mod:`.deployment_records`
holds the records and the rules a definition must obey.

>>> from opsloop.store import Database
>>> Deployments(Database("sqlite://")).list().empty
True
"""

from opsloop.serving.deployment_records import (
    AUTOMATION_LEVELS,
    STRATEGIES,
    VARIANT_ROLES,
    Deployment,
    Variant,
    VariantLineage,
)
from opsloop.serving.deployments import Deployments, UnknownDeploymentError

__all__ = [
    "AUTOMATION_LEVELS",
    "STRATEGIES",
    "VARIANT_ROLES",
    "Deployment",
    "Deployments",
    "UnknownDeploymentError",
    "Variant",
    "VariantLineage",
]
