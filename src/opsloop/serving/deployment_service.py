"""The deployments service's contract: its operations, and how each crosses HTTP.

:class:`DeploymentService` names what every implementation of deployments offers: the local
:class:`~opsloop.serving.Deployments` on a database and
:class:`~opsloop.serving.http_deployments.HttpDeployments` on a server both satisfy it (a
test checks their signatures against it). :data:`DEPLOYMENT_OPERATIONS` places each
operation on the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`), so an operation is written once here and once in the library.

Parameters carry the wire's bounds (:mod:`opsloop.contract.wire_types`): a deployment or
variant name longer than a name may be, a NUL character, a version that is not a positive
integer or more than a thousand variants get a 422 naming the field before anything is
read.

>>> [(op.verb, op.path) for op in DEPLOYMENT_OPERATIONS.operations][:2]
[('GET', '/deployments'), ('GET', '/deployments/{name:path}/lineage')]
>>> DEPLOYMENT_OPERATIONS.body_model(DEPLOYMENT_OPERATIONS.operation("deploy"))(
...     variants=[{"name": "a", "model": "m", "version": 0}])
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for DeploymentDeployIn
variants.0.version
  Input should be greater than or equal to 1 ...
...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, Protocol, Required

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from opsloop.analysis.assertions import ACTIONS
from opsloop.analysis.rate_baseline import MIN_BASELINE_REQUESTS
from opsloop.contract.operation import (
    Answer,
    Operation,
    ServiceTable,
    optional_record,
    record,
    records,
    wrapped,
)
from opsloop.contract.wire_types import (
    MAX_LIST_LENGTH,
    Approvals,
    AskedTimeMs,
    EntryId,
    Flag,
    Key,
    Name,
    Number,
    Offset,
    OneOf,
    PageRows,
    Text,
    Version,
    integral,
)
from opsloop.learn.robustness.portable_detector import MAX_FEATURES
from opsloop.registry.registry_service import (
    APPROVAL_COUNT,
    AuditEntry,
    GateRequirement,
    LineageDocument,
    audit_rows,
)
from opsloop.reports.frame_records import frame_records
from opsloop.serving.ab_report import OUTCOMES, ABReport
from opsloop.serving.deployment_records import (
    AUTOMATION_LEVELS,
    STRATEGIES,
    Deployment,
    Variant,
    VariantLineage,
    check_definition,
)
from opsloop.serving.deployment_settings import (
    DeploymentSettings,
    MicroBatching,
    OutputRestriction,
)
from opsloop.serving.deployments import LIST_COLUMNS
from opsloop.serving.event_documents import (
    MAX_EVENTS,
    EventDocument,
    Events,
    RequestId,
    Share,
    check_event_arguments,
)
from opsloop.serving.input_detector_settings import ACTIONS as DETECTOR_ACTIONS
from opsloop.serving.input_detector_settings import InputDetectorSetting
from opsloop.serving.lapsed_approvals import LapsedApprovals, LapsedApprovalsDocument
from opsloop.serving.record_validation import MAX_RECORDS
from opsloop.serving.rollout_policy import (
    BANDIT_POLICIES,
    DEFAULT_STEPS,
    GATES,
    MAX_BASELINE_REQUESTS,
    MAX_BASELINE_WINDOW_MS,
    METRIC_LOSSES,
    RECORDED,
)
from opsloop.serving.shadow_agreement import ShadowAgreement
from opsloop.serving.traffic_series import MAX_BUCKETS, TrafficSeries
from opsloop.tracking.limits import INT32_MAX, INT64_MAX

Variants = Annotated[Sequence[Variant], Field(min_length=1, max_length=MAX_LIST_LENGTH)]
Strategy = Annotated[str, OneOf(STRATEGIES)]
Automation = Annotated[str, OneOf(AUTOMATION_LEVELS)]
Bandit = Annotated[str, OneOf(tuple(sorted(BANDIT_POLICIES)))]
Outcome = Annotated[str, OneOf(OUTCOMES)]
Probability = Annotated[float, Field(gt=0, lt=1)]
#: A definition's revision a change is conditional on (see ``Deployment.revision``).
Revision = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX), BeforeValidator(integral)]

logger = logging.getLogger("opsloop.serving.deployments")


@with_config(ConfigDict(extra="forbid"))
class AssertionRule(TypedDict, total=False):
    """A model assertion (see :mod:`opsloop.analysis.assertions`): ``when`` is an
    expression in its language or its structure; ``override`` needs a ``value``."""

    name: Required[Annotated[Name, Field(min_length=1)]]
    when: Required[Text | dict[str, Any]]
    action: Required[Annotated[str, OneOf(ACTIONS)]]
    value: Any
    description: Text


Rules = Annotated[Sequence[AssertionRule], Field(max_length=MAX_LIST_LENGTH)]
Threshold = Annotated[float, Field(strict=True, ge=0, le=1)]
Steps = Annotated[Sequence[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1, max_length=20)]
Params = Annotated[dict[Name, float], Field(max_length=20)]
_Probability = Annotated[float, Field(gt=0, lt=1)]
#: A baseline given by hand: the primary's events and requests before the canary.
_BaselineCounts = tuple[
    Annotated[int, Field(strict=True, ge=0, le=INT64_MAX), BeforeValidator(integral)],
    Annotated[
        int, Field(strict=True, ge=MIN_BASELINE_REQUESTS, le=INT64_MAX), BeforeValidator(integral)
    ],
]


@with_config(ConfigDict(extra="forbid"))
class GateParams(TypedDict, total=False):
    """A canary gate's parameters: a rate gate's (see
    :class:`~opsloop.analysis.sequential.RateGate`; ``bound_ms`` belongs to the latency
    gate), the drift gate's ``alpha`` and ``min_rows``
    (:class:`~opsloop.analysis.drift_gate.DriftGate`), the estimate gate's ``effect``,
    ``alpha``, ``margin``, ``ratio_margin`` and ``min_samples``
    (:class:`~opsloop.analysis.sequential.MeanGate`), the disagreement gate's ``max_rate``
    (:class:`~opsloop.analysis.one_sample_rate_gate.OneSampleRateGate`), the metric
    gate's ``loss`` (a
    regression's ``effect`` and ``margin`` are in the loss's units, so unbounded here; the
    rollout policy checks each gate's own range), and the quality gates' ``every``. A rate
    gate's ``baseline`` is ``[events, requests]`` or, for the errors gate and the latency
    gate with an explicit ``bound_ms``, ``"recorded"``
    (counted from the primary's recorded events in the ``baseline_window_ms`` before the
    rollout is set, at least ``baseline_min_requests``; see
    :mod:`~opsloop.serving.recorded_baseline`), with its ``baseline_alpha`` and ``guard``
    (:class:`~opsloop.analysis.rate_baseline.BaselineArm`)."""

    alpha: _Probability
    max_rate: _Probability
    beta: _Probability | None
    detect_ratio: Annotated[float, Field(gt=1)]
    ratio_margin: Annotated[float, Field(gt=0)]
    margin: Annotated[float, Field(ge=0)]
    bound_ms: Annotated[float, Field(gt=0)]
    min_rows: Annotated[int, Field(strict=True, ge=2, le=INT32_MAX), BeforeValidator(integral)]
    effect: Annotated[float, Field(gt=0)]
    loss: Annotated[str, OneOf(METRIC_LOSSES)]
    min_samples: Annotated[int, Field(strict=True, ge=2, le=INT32_MAX), BeforeValidator(integral)]
    every: Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]
    baseline: _BaselineCounts | Annotated[str, OneOf((RECORDED,))]
    baseline_alpha: _Probability
    guard: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    baseline_window_ms: Annotated[
        int, Field(strict=True, ge=1, le=MAX_BASELINE_WINDOW_MS), BeforeValidator(integral)
    ]
    baseline_min_requests: Annotated[
        int,
        Field(strict=True, ge=MIN_BASELINE_REQUESTS, le=MAX_BASELINE_REQUESTS),
        BeforeValidator(integral),
    ]


Gates = Annotated[dict[Annotated[str, OneOf(GATES)], GateParams], Field(max_length=len(GATES))]
_DetectorNumber = Annotated[float, Field(strict=False, allow_inf_nan=False)]
_Row = Annotated[list[_DetectorNumber], Field(min_length=1, max_length=MAX_FEATURES)]
_Positive = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]


@with_config(ConfigDict(extra="forbid"))
class DetectorDocument(TypedDict):
    """An input anomaly detector on the wire (see
    :class:`~opsloop.learn.robustness.portable_detector.PortableInputDetector`): at most
    :data:`~opsloop.learn.robustness.portable_detector.MAX_FEATURES` features; the shapes
    (``location`` one number per feature, ``precision`` a square symmetric matrix) are
    checked when it is set, naming the field."""

    features: Annotated[
        list[Annotated[Name, Field(min_length=1)]], Field(min_length=1, max_length=MAX_FEATURES)
    ]
    location: _Row
    precision: Annotated[list[_Row], Field(min_length=1, max_length=MAX_FEATURES)]
    threshold: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    fpr: Annotated[float, Field(gt=0, lt=1)]
    rank: _Positive
    calibration_rows: _Positive


@with_config(ConfigDict(extra="forbid"))
class QuietCount(TypedDict):
    """Primary requests on which no gate's event happened, at one candidate share."""

    share: Share
    requests: Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]


@with_config(ConfigDict(extra="forbid"))
class RequestObservation(TypedDict):
    """One answered request a ramping canary's gates read (see
    :func:`~opsloop.serving.canary_rollout.observe_request`)."""

    candidate: Flag
    failed: Flag
    latency_ms: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    share: Share
    # Each record's: does the candidate's answer differ from the primary's (a single flag
    # is a request of one record); the disagreement gate reads the fraction that differ.
    disagrees: Flag | Annotated[list[Flag], Field(min_length=1, max_length=MAX_RECORDS)] | None
    anomalous: NotRequired[Flag | None]
    flagged: NotRequired[Flag | None]


class DeploymentService(Protocol):
    """Named endpoints, each serving one or more model versions (see
    :class:`~opsloop.serving.Deployments` for the rules). ``actor`` is the acting user:
    locally it defaults to the current user, over HTTP the token's owner acts."""

    def list(
        self,
        *,
        limit: PageRows | None = None,
        offset: Offset = 0,
        model: Key | None = None,
        version: Version | None = None,
    ) -> pd.DataFrame:
        """One row per deployment by name, its strategy, automation level and variants: the
        ``limit`` deployments (default: all) after the first ``offset``; with ``model`` or
        ``version``, those serving that model, or that version (of that model if given),
        now."""
        ...

    def lineage(self, name: Key, variant: Key | None = None) -> tuple[VariantLineage, ...]:
        """For each variant (or the one named): the lineage of the version it serves now."""
        ...

    def history(
        self,
        name: Key,
        *,
        last: PageRows | None = None,
        before: EntryId | None = None,
        action: Key | None = None,
    ) -> pd.DataFrame:
        """Every change of the deployment, oldest first; with ``action``, those of that
        action only; with ``before``, those whose entry id is lower; with ``last``, the
        newest ``last`` of those."""
        ...

    def lapsed_approvals(self, name: Key) -> LapsedApprovals:
        """The deployment's pending approvals whose approvers can no longer approve
        (disabled, or no longer approvers), by kind: of a definition (by approver, with
        why) and of lowering its protection (each with why and what it approves)."""
        ...

    def traffic(
        self,
        name: Key,
        *,
        since_ms: AskedTimeMs,
        until_ms: AskedTimeMs | None = None,
        buckets: Annotated[
            int, Field(strict=True, ge=1, le=MAX_BUCKETS), BeforeValidator(integral)
        ] = 60,
    ) -> TrafficSeries:
        """Answers per variant over time (requests/s, latency p50 and p99, errors), from the
        recorded prediction events, in equal buckets up to ``until_ms`` (default: now)."""
        ...

    def ab_report(
        self,
        name: Key,
        *,
        outcome: Outcome | None = None,
        alpha: Probability = 0.05,
        power: Probability = 0.8,
    ) -> ABReport:
        """Each live arm against the primary: requests, outcomes, their mean, the
        difference with its interval, the p-value and the sample size each arm needs."""
        ...

    def shadow_agreement(
        self, name: Key, *, since_ms: AskedTimeMs, until_ms: AskedTimeMs | None = None
    ) -> ShadowAgreement:
        """Per shadow variant over the primary's answers from ``since_ms`` to ``until_ms``
        (default: now): copies sent, answered, failed, unanswered, and agreement."""
        ...

    def protect(
        self,
        name: Key,
        required_approvals: Approvals,
        *,
        require_gate: GateRequirement = False,
        actor: str | None = None,
        reason: Text | None = None,
    ) -> None:
        """Require approvals by distinct approvers before the deployment changes (admin),
        and with ``require_gate`` a passed release gate of each version a new definition
        puts traffic on, against the version its primary serves now (``true``: any gate;
        text: the gate's name or file sha256). Lowering or removing a protection needs
        approvals of it first (``approve_protection``), by people other than the admin."""
        ...

    def approve_protection(
        self,
        name: Key,
        required_approvals: Approvals,
        *,
        require_gate: GateRequirement = False,
        actor: str | None = None,
        comment: Text | None = None,
    ) -> int:
        """Approve lowering or removing the deployment's protection to exactly this one
        (approver); the approvals of that change so far. An admin applies it with
        ``protect``; an approval never counts toward a change its approver applies."""
        ...

    def approve(
        self,
        name: Key,
        variants: Variants,
        *,
        strategy: Strategy = "single",
        automation: Automation = "full_automation",
        actor: str | None = None,
        comment: Text | None = None,
        expected_revision: Revision | None = None,
    ) -> int:
        """Approve deploying exactly this definition (approver); the approvals so far (an
        approval never counts toward a change its approver applies). With
        ``expected_revision``, only as a change of the definition of that revision (409
        otherwise)."""
        ...

    def at(self, name: Key, at_ms: AskedTimeMs) -> Deployment | None:
        """The deployment as it was at ``at_ms`` (null if it did not exist then)."""
        ...

    def get(self, name: Key) -> Deployment:
        """The deployment as defined now, with the version each variant serves."""
        ...

    def deploy(
        self,
        name: Key,
        variants: Variants,
        *,
        strategy: Strategy = "single",
        automation: Automation = "full_automation",
        description: Text | None = None,
        actor: str | None = None,
        reason: Text | None = None,
        expected_revision: Revision | None = None,
    ) -> Deployment:
        """Create the deployment or replace its definition; the deployment as stored. With
        ``expected_revision``, only if its definition is still that revision's (0: only if it
        does not exist); a 409 naming the change made since otherwise. A protected one needs
        approvals of the definition by people other than the deployer; the definition in
        place already is a no-op."""
        ...

    def retire(self, name: Key, *, actor: str | None = None, reason: Text | None = None) -> None:
        """Remove the deployment (its history stays in the audit log). A protected one
        (approvals or a release gate) needs an admin; its protection stays with the name,
        and a deployment created again is judged by its gate against the retired one's
        primary version."""
        ...

    def rollback(
        self,
        name: Key,
        *,
        away_from: Key | None = None,
        actor: str | None = None,
        reason: Text | None = None,
        expected_revision: Revision | None = None,
    ) -> Deployment:
        """Restore the definition the last change replaced (or the newest earlier one in
        which ``away_from`` answers nothing); approvals that covered it then still do. With
        ``expected_revision``, only from that revision's definition (409 otherwise)."""
        ...

    def switch(
        self,
        name: Key,
        *,
        actor: str | None = None,
        reason: Text | None = None,
        expected_revision: Revision | None = None,
    ) -> Deployment:
        """Switch a blue/green deployment: the standby variant takes all the traffic and the
        other goes on standby, in one audited change (a protected one needs approvals of the
        swapped definition); switching again switches back. With ``expected_revision``,
        only from that revision's definition (409 otherwise)."""
        ...

    def settings(self, name: Key) -> DeploymentSettings:
        """The deployment's confidence threshold and model assertion rules."""
        ...

    def configure(
        self,
        name: Key,
        *,
        confidence_threshold: Threshold | None = None,
        assertions: Rules = (),
        batching: MicroBatching | None = None,
        outputs: dict[Key, OutputRestriction] | None = None,
        routing_key_field: Key | None = None,
        actor: str | None = None,
        reason: Text | None = None,
    ) -> DeploymentSettings:
        """Replace the deployment's confidence threshold, assertion rules, micro-batching,
        its variants' output restrictions and the records' field that routes a request
        without a routing key (audited)."""

    def input_detector(self, name: Key) -> InputDetectorSetting:
        """The deployment's input anomaly detector and the action on a flagged request."""
        ...

    def set_input_detector(
        self,
        name: Key,
        detector: DetectorDocument | None = None,
        *,
        action: Annotated[str, OneOf(DETECTOR_ACTIONS)] = "flag",
        actor: str | None = None,
        reason: Text | None = None,
    ) -> InputDetectorSetting:
        """Replace the deployment's input anomaly detector (null removes it) and the action
        on a flagged request (audited); its features must be numeric columns of every
        variant's input signature."""
        ...

    def set_rollout(
        self,
        name: Key,
        *,
        steps: Steps = DEFAULT_STEPS,
        min_requests: Annotated[int, Field(ge=1, le=INT32_MAX)] = 100,
        gates: Gates | None = None,
        bandit: Bandit = "bernoulli_thompson",
        bandit_params: Params | None = None,
        seed: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None,
        actor: str | None = None,
        reason: Text | None = None,
    ) -> dict:
        """Let a canary ramp by its gates, or a bandit learn from rewards; the rollout."""
        ...

    def rollout(self, name: Key) -> dict:
        """The rollout's policy, state and evidence (a bandit's shares)."""
        ...

    def observe_rollout(
        self,
        name: Key,
        *,
        quiet: Annotated[Sequence[QuietCount], Field(max_length=MAX_LIST_LENGTH)] = (),
        request: RequestObservation | None = None,
    ) -> None:
        """Read a data plane's answers into the deployment's ramping canary: ``quiet``
        primary requests (no gate's event) per candidate share, and one ``request`` that
        carries an event; the ramp steps or rolls back when its gates decide."""
        ...

    def revision(self) -> int:
        """The newest audit entry's id: it moves with every change of a deployment, its
        settings or rollout, an alias, a user or a token (0 for an empty log)."""
        ...

    def record_events(self, events: Events) -> int:
        """Keep prediction events a data plane answered; how many were kept."""
        ...

    def feedback(
        self,
        name: Key,
        request_id: RequestId,
        *,
        label: Any = None,
        reward: Number | None = None,
        actor: str | None = None,
    ) -> str:
        """Keep the label and/or reward of the answer ``request_id`` and pass it to the
        deployment's rollout (a ramping canary's metric gate, a bandit); ``joined`` to its
        recorded answer, or ``waiting`` for the answer's event."""
        ...


class DeploymentRow(BaseModel):
    """One deployment in the list."""

    name: str
    strategy: str
    automation: str
    variants: str = Field(description="NAME=MODEL/VERSION or NAME=MODEL@ALIAS, role, weight")
    required_approvals: int
    updated_ms: int
    updated_by: str


class VariantLineageDocument(LineageDocument):
    """A variant and the lineage of the version it serves, in one object."""

    deployment: str
    variant: str
    role: str
    weight: float


class _FloatsAsText(BaseModel):
    # A difference of arms that never differ needs an infinite sample and a lone outcome
    # has no deviation: inf and nan travel as "Infinity" and "NaN", which read back as
    # floats, instead of turning into null.
    model_config = ConfigDict(ser_json_inf_nan="strings")


class ABArmDocument(_FloatsAsText):
    """One arm of an A/B report: the variant, the version it served, the requests it
    answered, the outcomes recorded, their mean and sample standard deviation."""

    variant: str
    role: str
    model: str
    version: int | None
    requests: int
    outcomes: int
    mean: float
    std: float


class ABComparisonDocument(_FloatsAsText):
    """An arm against arm A (see :class:`~opsloop.analysis.ab_test.ABTestResult`)."""

    kind: str
    n_a: int
    n_b: int
    estimate_a: float
    estimate_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    effect_size: float
    alpha: float
    power: float
    required_per_arm_exact: float
    required_per_arm: float
    test: str
    interval: str


class ABReportDocument(_FloatsAsText):
    """An A/B report (see :class:`~opsloop.serving.ab_report.ABReport`)."""

    deployment: str
    strategy: str
    outcome: str
    kind: str
    arms: list[ABArmDocument]
    comparisons: dict[str, ABComparisonDocument]
    notes: list[str]


def _ab_report(document: dict) -> ABReport:
    return ABReport.from_dict(ABReportDocument.model_validate(document).model_dump())


_AB_REPORT = Answer(ABReportDocument, ABReport.to_dict, _ab_report)


def _check_definition(arguments: Mapping[str, Any]) -> None:
    check_definition(arguments["strategy"], arguments["automation"], tuple(arguments["variants"]))


def _list_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(LIST_COLUMNS))


_LINEAGE = records(
    "variants", VariantLineage, model=VariantLineageDocument, title="DeploymentLineage"
)
_AT = optional_record("deployment", Deployment, title="DeploymentAt")


class FeedbackStatusDocument(BaseModel):
    """Feedback kept by the control plane: ``joined`` to its recorded answer, or
    ``waiting`` for the answer's event (joined when it is written), as the data plane
    answers."""

    status: Literal["joined", "waiting"]


_FEEDBACK_STATUSES = ("joined", "waiting")


def _feedback_status(document: Any) -> str | None:
    """The status of a feedback answer; ``None`` from a control plane that answered none
    (one older than the status: 204), or one this side does not know (a newer control
    plane's): the feedback was kept all the same, so its answer must not fail the call,
    whose retry would then be refused as a second feedback.

    >>> _feedback_status({"status": "waiting"}), _feedback_status(None)
    ('waiting', None)
    >>> _feedback_status({"status": "deferred"}) is None
    True
    """
    status = document.get("status") if isinstance(document, dict) else None
    if status is None or status in _FEEDBACK_STATUSES:
        return status
    logger.warning(
        "feedback: the control plane answered status %.64r, which this data plane does "
        "not know; answered as none (the feedback was kept)",
        status,
    )
    return None


_FEEDBACK = Answer(
    FeedbackStatusDocument,
    lambda status: {"status": status},
    _feedback_status,
    bodiless_as_none=True,  # a control plane older than the status answered 204
)

#: The deployments service on the wire. More specific paths come first: the server matches
#: routes in this order, and a name may end in what looks like a sub-path.
DEPLOYMENT_OPERATIONS = ServiceTable(
    DeploymentService,
    [
        Operation(
            "list",
            "GET",
            "/deployments",
            query=("limit", "offset", "model", "version"),
            answer=wrapped(
                "deployments",
                list[DeploymentRow],
                frame_records,
                _list_frame,
                title="DeploymentList",
            ),
        ),
        Operation(
            "lineage",
            "GET",
            "/deployments/{name:path}/lineage",
            answer=_LINEAGE,
            query=("variant",),
        ),
        Operation(
            "lapsed_approvals",
            "GET",
            "/deployments/{name:path}/approvals/lapsed",
            answer=Answer(
                LapsedApprovalsDocument, LapsedApprovals.to_dict, LapsedApprovals.from_dict
            ),
        ),
        Operation(
            "history",
            "GET",
            "/deployments/{name:path}/history",
            query=("last", "before", "action"),
            answer=wrapped(
                "entries",
                list[AuditEntry],
                frame_records,
                audit_rows,
                title="DeploymentHistory",
            ),
        ),
        Operation(
            "traffic",
            "GET",
            "/deployments/{name:path}/traffic",
            answer=record(TrafficSeries),
            query=("since_ms", "until_ms", "buckets"),
        ),
        Operation(
            "ab_report",
            "GET",
            "/deployments/{name:path}/ab-report",
            answer=_AB_REPORT,
            query=("outcome", "alpha", "power"),
        ),
        Operation(
            "shadow_agreement",
            "GET",
            "/deployments/{name:path}/shadow-agreement",
            answer=record(ShadowAgreement),
            query=("since_ms", "until_ms"),
        ),
        Operation("protect", "PUT", "/deployments/{name:path}/protection", role="admin"),
        Operation(
            "approve_protection",
            "POST",
            "/deployments/{name:path}/protection/approvals",
            answer=APPROVAL_COUNT,
        ),
        Operation(
            "approve",
            "POST",
            "/deployments/{name:path}/approvals",
            answer=APPROVAL_COUNT,
            check=_check_definition,
        ),
        Operation(
            "settings",
            "GET",
            "/deployments/{name:path}/settings",
            answer=record(DeploymentSettings),
        ),
        Operation(
            "configure",
            "PUT",
            "/deployments/{name:path}/settings",
            role="editor",
            answer=record(DeploymentSettings),
        ),
        Operation(
            "input_detector",
            "GET",
            "/deployments/{name:path}/input-detector",
            answer=record(InputDetectorSetting),
        ),
        Operation(
            "set_input_detector",
            "PUT",
            "/deployments/{name:path}/input-detector",
            role="editor",
            answer=record(InputDetectorSetting),
        ),
        Operation("at", "GET", "/deployments/{name:path}/at", answer=_AT, query=("at_ms",)),
        Operation(
            "set_rollout",
            "PUT",
            "/deployments/{name:path}/rollout",
            role="editor",
            answer=wrapped("rollout", dict[str, Any], title="Rollout"),
        ),
        Operation(
            "rollout",
            "GET",
            "/deployments/{name:path}/rollout",
            answer=wrapped("rollout", dict[str, Any], title="Rollout"),
        ),
        Operation("feedback", "POST", "/deployments/{name:path}/feedback", answer=_FEEDBACK),
        Operation(
            "observe_rollout",
            "POST",
            "/deployments/{name:path}/rollout/observations",
            role="editor",
        ),
        Operation("get", "GET", "/deployments/{name:path}", answer=record(Deployment)),
        Operation(
            "deploy",
            "PUT",
            "/deployments/{name:path}",
            role="editor",
            answer=record(Deployment),
            check=_check_definition,
        ),
        Operation(
            "rollback",
            "POST",
            "/deployments/{name:path}/rollback",
            role="editor",
            answer=record(Deployment),
        ),
        Operation(
            "switch",
            "POST",
            "/deployments/{name:path}/switch",
            role="editor",
            answer=record(Deployment),
        ),
        Operation("retire", "DELETE", "/deployments/{name:path}", role="editor", query=("reason",)),
        Operation("revision", "GET", "/serving/revision", answer=wrapped("revision", int)),
        Operation(
            "record_events",
            "POST",
            "/serving/events",
            role="editor",
            answer=wrapped("recorded", int, title="RecordedEvents"),
            check=check_event_arguments,
            created=True,
        ),
    ],
)

__all__ = ["DEPLOYMENT_OPERATIONS", "MAX_EVENTS", "DeploymentService", "EventDocument"]
