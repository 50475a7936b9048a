"""Checked by a type checker (``make lint`` runs mypy on it), never imported by the tests:
each implementation of a service satisfies its Protocol, parameter by parameter."""

from __future__ import annotations

from opsloop.monitoring.http_monitoring import HttpMonitoring
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitoring_service import MonitoringService
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.registry.http_users import HttpUsers
from opsloop.registry.local_users import LocalUsers
from opsloop.registry.model_registry import ModelRegistry
from opsloop.registry.registry_service import RegistryService
from opsloop.registry.user_service import UserService
from opsloop.serving.deployment_service import DeploymentService
from opsloop.serving.deployments import Deployments
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.tracking.http_store import HttpTrackingStore
from opsloop.tracking.local_store import LocalTrackingStore
from opsloop.tracking.tracking_service import TrackingService


def local_deployments(implementation: Deployments) -> DeploymentService:
    return implementation


def http_deployments(implementation: HttpDeployments) -> DeploymentService:
    return implementation


def local_registry(implementation: ModelRegistry) -> RegistryService:
    return implementation


def http_registry(implementation: HttpModelRegistry) -> RegistryService:
    return implementation


def local_tracking(implementation: LocalTrackingStore) -> TrackingService:
    return implementation


def http_tracking(implementation: HttpTrackingStore) -> TrackingService:
    return implementation


def local_monitoring(implementation: Monitoring) -> MonitoringService:
    return implementation


def http_monitoring(implementation: HttpMonitoring) -> MonitoringService:
    return implementation


def local_users(implementation: LocalUsers) -> UserService:
    return implementation


def http_users(implementation: HttpUsers) -> UserService:
    return implementation
