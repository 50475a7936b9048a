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
* with ``shadow_isolation`` ``"process"`` or ``"auto"``, each shadow in a process of its
  own that reaches the control plane in the same way
  (:mod:`.control_plane_shadow_host`); ``"thread"`` (the default here), a thread of this
  process;
* routing state shared with every other worker, on the store or not: a bandit's
  posteriors are read before each choice and rewards sent as feedback; a ramping canary's
  gates read each answer that carries an event (a candidate's answer, an error, a slow
  answer) at once and the others in batches, as on a store
  (:class:`RemoteRollouts`), while the locked update of the gates' statistics and the
  step or rollback they decide are the control plane's.

* the monitoring's gauges on this data plane's ``/metrics`` (drift shares, task metric,
  estimate, alerts: the same names and labels as a worker on the store shows), read
  through the control plane's monitoring ``gauges`` operation and asked for at most every
  ``gauge_refresh_s`` seconds whatever the scrape rate
  (:class:`~opsloop.monitoring.remote_gauges.RemoteMonitoringGauges`).

The token needs the editor role (recording events and review items writes); a caller's
feedback is kept as the token owner's.

>>> remote_runtime("ftp://ops.example.com")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opsloop.errors import InvalidArgumentError, NotFoundError, OverLimitError
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.serving.control_plane_shadow_host import ControlPlaneShadowHost
from opsloop.serving.control_plane_sink import ControlPlaneSink
from opsloop.serving.http_deployments import HttpDeployments
from opsloop.serving.http_review_queue import HttpReviewQueue
from opsloop.serving.rollout_observer import RolloutObserver
from opsloop.serving.serving_metrics import ServingMetrics
from opsloop.serving.serving_runtime import ServingRuntime


class RemoteRollouts(RolloutObserver):
    """What a data plane on a control plane's URL tells the rollouts (see the module): a
    ramping canary's gates read its answers as on a store, but the store's part (reading
    the rollout, the locked update, the ramp's step or rollback) is the control plane's,
    through ``deployments``' ``rollout``, ``observe_rollout`` and ``feedback``.

    >>> from opsloop.serving import Deployments
    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> RemoteRollouts(Deployments(db)).record("api", [(0.1, 3)], None)
    """

    def __init__(self, deployments: Any) -> None:
        super().__init__(None, deployments)

    def _rollout(self, name: str) -> dict | None:
        try:
            return self.deployments.rollout(name)
        except NotFoundError:
            return None

    def record(
        self,
        name: str,
        quiet: list[tuple[float, int]],
        request: dict[str, Any] | None,
        *,
        judge: bool = True,
    ) -> None:
        """Send the answers to the control plane (see
        :meth:`~.rollout_observer.RolloutObserver.record`), which judges the quality gates
        on its store whatever ``judge`` says."""
        self.deployments.observe_rollout(
            name,
            quiet=[{"share": share, "requests": count} for share, count in quiet],
            request=request,
        )

    def record_feedback(
        self, deployment: str, request_id: str, *, label: Any, reward: Any, actor: str
    ) -> str | None:
        """Send the feedback to the control plane, which keeps it (as the token's owner,
        not ``actor``) and passes it to the rollout; whether it was ``joined`` or is
        ``waiting``, as the control plane says (``None`` from one that says neither).
        A bound of the control plane's refusal (429) is passed on with its Retry-After
        but without the user it names: that is this data plane's own token owner, whose
        name is not its clients' to know (:func:`forwarded_refusal`)."""
        try:
            return self.deployments.feedback(deployment, request_id, label=label, reward=reward)
        except OverLimitError as error:
            raise forwarded_refusal(error, deployment) from None


def forwarded_refusal(error: OverLimitError, deployment: str) -> OverLimitError:
    """The control plane's refusal ``error`` of feedback this data plane forwarded, as its
    client gets it: the bound (this data plane's feedback at ``deployment`` or across all
    deployments, or all feedback of ``deployment``) and the Retry-After, never the user
    the control plane names (the data plane's token owner: all the feedback it forwards
    counts as that user's).

    >>> refused = OverLimitError(
    ...     "feedback: 5000 feedback of user 'worker-7' across all deployments wait for "
    ...     "their answers already (the bound); retry after 30 s", retry_after_s=30)
    >>> passed = forwarded_refusal(refused, "api")
    >>> "worker-7" in str(passed), passed.retry_after_s
    (False, 30)
    >>> print(passed)
    feedback: the control plane's bound on waiting feedback of this data plane across all deployments is reached; retry after 30 s, or once the answer is recorded
    """  # noqa: E501 - a doctest's expected output is one line
    detail = str(error)
    if "across all deployments" in detail:
        bound = "of this data plane across all deployments"
    elif "in all of deployment" in detail:
        bound = f"of all callers of deployment {deployment!r}"
    else:
        bound = f"of this data plane at deployment {deployment!r}"
    retry = "" if error.retry_after_s is None else f"retry after {error.retry_after_s} s, or "
    return OverLimitError(
        f"feedback: the control plane's bound on waiting feedback {bound} is reached; "
        f"{retry}once the answer is recorded",
        retry_after_s=error.retry_after_s,
    )


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
    gauge_refresh_s: float | None = None,
    shadow_isolation: str = "thread",
) -> ServingRuntime:
    """A serving runtime on the control plane at ``server_url``, acting with ``token``
    (default ``$OPSLOOP_TRACKING_TOKEN``; see the module), whose ``/metrics`` shows the
    monitoring's gauges read from the control plane at most every ``gauge_refresh_s``
    seconds (default :data:`~opsloop.monitoring.remote_gauges.REFRESH_S`). The other
    arguments are :class:`~.serving_runtime.ServingRuntime`'s. Its
    :meth:`~.serving_runtime.ServingRuntime.close` closes the HTTP clients it made.

    Against a server (``server_url``, one with no users, so it acts as the OS user):

    >>> runtime = remote_runtime(server_url, names=["api"])
    >>> runtime.revision() >= 0, runtime.ready()
    (True, False)
    >>> runtime.close()
    """
    if shadow_isolation not in ("thread", "process", "auto"):
        raise InvalidArgumentError(
            f"shadow_isolation must be 'thread', 'process' or 'auto', got {shadow_isolation!r}"
        )
    names = None if names is None else tuple(names)
    # Imported here: monitoring acts on deployments through this package.
    from opsloop.monitoring.http_monitoring import HttpMonitoring
    from opsloop.monitoring.remote_gauges import REFRESH_S, RemoteMonitoringGauges

    if gauge_refresh_s is None:
        gauge_refresh_s = REFRESH_S

    deployments = HttpDeployments(server_url, token=token, timeout_s=timeout_s)
    monitoring = HttpMonitoring(server_url, token=token, timeout_s=timeout_s)
    gauges = RemoteMonitoringGauges(monitoring, names, refresh_s=gauge_refresh_s)
    registry = HttpModelRegistry(server_url, token=token, timeout_s=timeout_s)
    review_queue = HttpReviewQueue(server_url, token=token, timeout_s=timeout_s)
    host = None
    if shadow_isolation != "thread":  # a child reaches the control plane as this process does
        host = ControlPlaneShadowHost(
            server_url, token, trust, tuple(trusted_types), timeout_s=timeout_s
        )
    runtime = ServingRuntime(
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
        registry=registry,
        review_queue=review_queue,
        rollouts=RemoteRollouts(deployments),
        shadow_host=host,
        clients=(deployments, registry, review_queue, monitoring),
    )
    runtime.metrics.add_collector(gauges)
    return runtime
