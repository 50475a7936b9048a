"""The data plane on a control plane's URL: a serving runtime with no store of its own.

KServe and Seldon split serving the same way: a control plane keeps the definitions, and
data plane workers, as many as the traffic needs, answer requests by them.
:func:`remote_runtime` builds a :class:`~.serving_runtime.ServingRuntime` that reaches
everything through an ``opsloop server`` with an API token and needs no database
credentials:

* the definitions, their settings and rollouts, and the revision number that moves with
  every change, through :class:`~.http_deployments.HttpDeployments`;
* the model versions through :class:`~opsloop.registry.http_registry.HttpModelRegistry`:
  the artifact is downloaded, its sha256 checked here against the version's recorded hash,
  and it is loaded here by the same trust rules as local loading (a pickle needs the
  serving user's ``trust``, skops types beyond the allow-list ``trusted_types``);
* prediction events through :class:`ControlPlaneSink`, from the recorder's own thread in
  batches (the request path never waits; a full buffer drops and counts, a failed batch is
  counted as lost), into the control plane's ``prediction_events`` table, where its
  monitoring, traffic, A/B and shadow reports read them;
* requests a person decides, into the control plane's review queue;
* feedback (labels and rewards) through :class:`RemoteRollouts`: the control plane keeps
  it and passes it to the deployment's rollout, so a bandit's posteriors are those every
  worker reads before each choice, as on a store.

What this mode refuses: a canary that ramps by its gates. Its gates' statistics move with
every request, under a lock on the store, and decide the ramp's steps and rollback; a
worker on another host cannot take that lock, so :meth:`RemoteRollouts.admit` refuses such
a deployment (503, naming it and why) rather than serve it with gates nobody feeds. A canary
with fixed weights, shadows, blue/green, A/B and bandits are served. The monitoring's
gauges (drift share, task metric, alerts) are absent from this data plane's ``/metrics``:
they are read from the store; the control plane's monitoring has them.

The token needs the editor role (recording events and review items writes); a caller's
feedback is kept as the token owner's.

>>> remote_runtime("ftp://ops.example.com")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opsloop.errors import NotFoundError, UnavailableError
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.deployment_service import MAX_EVENTS
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.serving.http_review_queue import HttpReviewQueue
from opsloop.serving.prediction_events import PredictionEvent
from opsloop.serving.serving_metrics import ServingMetrics
from opsloop.serving.serving_runtime import ServingRuntime


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
        """Send ``events`` in batches."""
        for start in range(0, len(events), MAX_EVENTS):
            self.deployments.record_events(list(events[start : start + MAX_EVENTS]))


class RemoteRollouts:
    """What a data plane on a control plane's URL tells the rollouts (see the module):
    feedback goes to the control plane, and a canary that ramps by its gates is refused.

    >>> from opsloop.serving import Deployments, Variant
    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> _ = ModelRegistry(db, ArtifactStore(tmp_path)).register("m", b"x", flavor="onnx")
    >>> _ = ModelRegistry(db, ArtifactStore(tmp_path)).register("m", b"y", flavor="onnx")
    >>> deployments = Deployments(db)
    >>> canary = deployments.deploy("api", [Variant("a", "m", version=1, weight=0.9),
    ...     Variant("b", "m", version=2, role="candidate", weight=0.1)], strategy="canary")
    >>> RemoteRollouts(deployments).admit(canary)
    >>> _ = deployments.set_rollout("api", steps=[0.5, 1.0])
    >>> RemoteRollouts(deployments).admit(deployments.get("api"))
    Traceback (most recent call last):
    opsloop.errors.UnavailableError: deployment 'api': its canary ramps by gates that ...
    """

    def __init__(self, deployments: Any) -> None:
        self.deployments = deployments

    def admit(self, definition: Deployment) -> None:
        """Refuse ``definition`` when it is a canary ramping by its gates."""
        if definition.strategy != "canary":
            return
        try:
            state = self.deployments.rollout(definition.name)["state"]
        except NotFoundError:
            return
        if state.get("kind") == "canary" and state.get("status") == "ramping":
            raise UnavailableError(
                f"deployment {definition.name!r}: its canary ramps by gates that every "
                "request updates in the store, which a data plane on a control plane's URL "
                "cannot do; serve it with 'opsloop serve' on the store (or 'opsloop server "
                "--serve'), or give the canary fixed weights"
            )

    def observe(self, served: Any, variant: str, **answer: Any) -> None:
        """Nothing to feed: only a ramping canary's gates read answers, and
        :meth:`admit` refused those."""

    def flush(self) -> None:
        """Nothing is held here."""

    def record_feedback(
        self, deployment: str, request_id: str, *, label: Any, reward: Any, actor: str
    ) -> None:
        """Send the feedback to the control plane, which keeps it (as the token's owner,
        not ``actor``) and passes it to the rollout."""
        self.deployments.feedback(deployment, request_id, label=label, reward=reward)


def remote_runtime(
    server_url: str,
    *,
    token: str | None = None,
    names: Iterable[str] | None = None,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    event_capacity: int = 10_000,
    shadow_capacity: int = 1_000,
    check_interval_s: float = 0.0,
    metrics: ServingMetrics | None = None,
    timeout_s: float = 60.0,
) -> ServingRuntime:
    """A serving runtime on the control plane at ``server_url``, acting with ``token``
    (default ``$OPSLOOP_TRACKING_TOKEN``; see the module). The other arguments are
    :class:`~.serving_runtime.ServingRuntime`'s.

    Against a server (``server_url``, one with no users, so it acts as the OS user):

    >>> runtime = remote_runtime(server_url, names=["api"])
    >>> runtime.revision() >= 0, runtime.ready()
    (True, False)
    >>> runtime.close()
    """
    deployments = HttpDeployments(server_url, token=token, timeout_s=timeout_s)
    return ServingRuntime(
        None,
        None,
        names=names,
        trust=trust,
        trusted_types=trusted_types,
        sink=ControlPlaneSink(deployments),
        event_capacity=event_capacity,
        shadow_capacity=shadow_capacity,
        check_interval_s=check_interval_s,
        metrics=metrics,
        deployments=deployments,
        registry=HttpModelRegistry(server_url, token=token, timeout_s=timeout_s),
        review_queue=HttpReviewQueue(server_url, token=token, timeout_s=timeout_s),
        rollouts=RemoteRollouts(deployments),
    )
