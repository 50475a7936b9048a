"""The monitoring service's contract: its operations, and how each crosses HTTP.

:class:`MonitoringService` names what monitoring offers a client: the local
:class:`~opsloop.monitoring.local_monitoring.Monitoring` on a store and
:class:`~opsloop.monitoring.http_monitoring.HttpMonitoring` on a server both satisfy it (a
test checks their signatures against it). :data:`MONITORING_OPERATIONS` places each
operation on the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`). Reading needs the viewer role; logging events and labels,
setting the reference, setting the policy, turning the per-feature detectors on or off,
evaluating, and claiming, reading and reporting a retrain request need the editor role (a
protected deployment's policy, an admin); the token's owner acts.

A call logs at most :data:`MAX_LOGGED_ROWS` prediction events or labels and sets a
reference of at most :data:`MAX_REFERENCE_ROWS` rows: ingest over HTTP is bounded, and a
larger batch is sent in several calls (or logged from Python, which has no such bound).

>>> [(op.verb, op.path) for op in MONITORING_OPERATIONS.operations][:2]
[('POST', '/monitoring/{deployment:path}/predictions'), ('POST', '/monitoring/{deployment:path}/labels')]
>>> MONITORING_OPERATIONS.body_model(MONITORING_OPERATIONS.operation("log_labels"))(
...     request_ids=[""], labels=[1])
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for MonitoringLogLabelsIn
request_ids.0
  String should have at least 1 character ...
...
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol

import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from opsloop.contract.operation import Answer, Operation, ServiceTable, record, wrapped
from opsloop.contract.wire_types import (
    NO_NUL_PATTERN,
    Flag,
    Name,
    Number,
    OneOf,
    Text,
    TimeMs,
    integral,
    no_nul,
)
from opsloop.monitoring.error_stream import ERROR_DETECTORS
from opsloop.monitoring.evaluation import WindowEvaluation
from opsloop.monitoring.event_log import LabelReceipt
from opsloop.monitoring.feature_distribution import FeatureDistribution
from opsloop.monitoring.reference import REFERENCE_SAMPLE_SIZE, ReferenceSummary
from opsloop.monitoring.retrain_queue import (
    DEFAULT_LEASE_S,
    FINISHED,
    MAX_ROWS_PER_PAGE,
    STATES,
)
from opsloop.monitoring.stored_policy import MAX_RULE_LENGTH, MAX_RULES, PolicySetting
from opsloop.monitoring.windowing import DURATION_PATTERN
from opsloop.reports.frame_records import frame_records
from opsloop.tracking.limits import INT32_MAX, MAX_NAME_LENGTH

#: The most prediction events (or labels) one call logs.
MAX_LOGGED_ROWS = 10_000
#: The most rows of a reference set in one call.
MAX_REFERENCE_ROWS = 20_000
#: The most features a record holds.
MAX_FEATURES = 1_000
#: The most policies one evaluation applies.
MAX_POLICIES = 100
#: The most classes a model's probabilities have.
MAX_CLASSES = 1_000

_NO_NUL = {"pattern": NO_NUL_PATTERN}
RequestId = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=64, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
WindowLength = Annotated[
    str,
    Field(
        strict=True, min_length=1, max_length=32, json_schema_extra={"pattern": DURATION_PATTERN}
    ),
]
# A prediction is a number, a class name or a flag (a bounded text, so that a batch of the
# most rows fits in the server's bound on a JSON body).
Prediction = (
    Annotated[int, Field(strict=True)]
    | Annotated[float, Field(strict=True)]
    | Annotated[str, Field(strict=True, max_length=MAX_NAME_LENGTH)]
    | bool
    | None
)
Feature = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
# A record is a flat object of feature values, as the windows' profiles read them.
Record = Annotated[dict[Feature, Prediction], Field(max_length=MAX_FEATURES)]
Records = Annotated[Sequence[Record], Field(max_length=MAX_LOGGED_ROWS)]
ReferenceRows = Annotated[
    Sequence[Annotated[Record, Field(min_length=1)]],
    Field(min_length=1, max_length=MAX_REFERENCE_ROWS),
]
Predictions = Annotated[Sequence[Prediction], Field(max_length=MAX_LOGGED_ROWS)]
ReferencePredictions = Annotated[Sequence[Prediction], Field(max_length=MAX_REFERENCE_ROWS)]
#: The model version whose predictions a reference keeps: its model's name and version.
PredictedBy = tuple[
    Annotated[str, Field(strict=True, min_length=1, max_length=250), AfterValidator(no_nul)],
    Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)],
]
ReferenceLabels = Annotated[Sequence[Prediction], Field(max_length=MAX_REFERENCE_ROWS)]
Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
ProbabilityRow = Annotated[Sequence[Probability], Field(min_length=2, max_length=MAX_CLASSES)]
# One row per row (one column per class), or the second class's probability alone.
Probabilities = Annotated[
    Sequence[ProbabilityRow] | Sequence[Probability], Field(max_length=MAX_LOGGED_ROWS)
]
ReferenceProbabilities = Annotated[
    Sequence[ProbabilityRow] | Sequence[Probability], Field(max_length=MAX_REFERENCE_ROWS)
]
Classes = Annotated[Sequence[Prediction], Field(min_length=2, max_length=MAX_CLASSES)]
RequestIds = Annotated[Sequence[RequestId], Field(max_length=MAX_LOGGED_ROWS)]
Labels = Annotated[Sequence[Any], Field(max_length=MAX_LOGGED_ROWS)]
Times = TimeMs | Annotated[Sequence[TimeMs], Field(max_length=MAX_LOGGED_ROWS)]
Latencies = Number | Annotated[Sequence[Number], Field(max_length=MAX_LOGGED_ROWS)]
ModelVersion = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
Last = Annotated[int, Field(strict=True, ge=1, le=10_000), BeforeValidator(integral)]
#: An alert's id (the store's integer key, 32 bits in PostgreSQL).
AlertId = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]
PolicyText = Annotated[
    str,
    Field(strict=True, max_length=MAX_RULE_LENGTH, json_schema_extra=_NO_NUL),
    AfterValidator(no_nul),
]
Policies = Annotated[Sequence[PolicyText], Field(max_length=MAX_POLICIES)]
StoredRules = Annotated[Sequence[PolicyText], Field(max_length=MAX_RULES)]
ErrorDetector = Annotated[str, OneOf(tuple(ERROR_DETECTORS))]
Alpha = Annotated[float, Field(strict=True, gt=0.0, lt=1.0)]
#: How many features the per-feature detectors watch at most.
FeatureLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_FEATURES), BeforeValidator(integral)]
FeatureDetector = Literal["ADWIN", "CUSUM"]
SampleSize = Annotated[int, Field(strict=True, ge=1, le=100_000), BeforeValidator(integral)]
#: Bins of a numeric feature's histogram.
Bins = Annotated[int, Field(strict=True, ge=1, le=1000), BeforeValidator(integral)]
Seed = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
RequestState = Literal[STATES]  # type: ignore[valid-type]
FinishedState = Literal[FINISHED]  # type: ignore[valid-type]
EntryPoint = Annotated[
    str,
    Field(strict=True, max_length=MAX_NAME_LENGTH, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"),
]
LeaseSeconds = Annotated[int, Field(strict=True, ge=1, le=7 * 86_400), BeforeValidator(integral)]
RetrainRequestId = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX), BeforeValidator(integral)]
ClaimToken = Annotated[str, Field(strict=True, pattern="^[0-9a-f]{32}$")]
Offset = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
PageSize = Annotated[int, Field(strict=True, ge=1, le=MAX_ROWS_PER_PAGE), BeforeValidator(integral)]
Details = Annotated[dict[Feature, Any], Field(max_length=100)]


class MonitoringService(Protocol):
    """Prediction events and labels cut into windows, compared with a reference, watched by
    policies (see :mod:`opsloop.monitoring`). ``window`` is the window length (``"5min"``,
    ``"1h"``, ``"1d"``). ``actor`` is the acting user: locally it defaults to the
    monitoring's, over HTTP the token's owner acts."""

    def log_predictions(
        self,
        deployment: Name,
        records: Records,
        predictions: Predictions,
        *,
        variant: Name = "default",
        request_ids: RequestIds | None = None,
        at_ms: Times | None = None,
        latency_ms: Latencies = 0.0,
        model: Name = "external",
        version: ModelVersion = 0,
        probabilities: Probabilities | None = None,
        classes: Classes | None = None,
    ) -> list[str]:
        """Record one prediction event per record with its prediction (and a classifier's
        probabilities, one column per class); the request ids."""
        ...

    def log_labels(
        self,
        deployment: Name,
        request_ids: RequestIds,
        labels: Labels,
        *,
        window: WindowLength = "1h",
        actor: str | None = None,
    ) -> LabelReceipt:
        """Join labels to the deployment's answers by request id; what was kept and not."""
        ...

    def windows(self, deployment: Name, *, window: WindowLength = "1h") -> pd.DataFrame:
        """The windows folded so far: one row per variant and start, with its workers."""
        ...

    def evaluations(
        self,
        deployment: Name,
        *,
        window: WindowLength = "1h",
        variant: Name | None = None,
        last: Last | None = None,
        before_ms: TimeMs | None = None,
        before_variant: Name | None = None,
    ) -> list[WindowEvaluation]:
        """The evaluated windows, oldest first, with their metrics: the newest ``last``, or
        all; with ``before_ms``, of those before it in the listing's order (start, then
        variant): starting before ``before_ms``, or at it with a variant named before
        ``before_variant`` where that is given. The oldest window of one page, as
        ``before_ms`` and ``before_variant``, asks for the page before it."""
        ...

    def evaluate(
        self,
        deployment: Name,
        *,
        window: WindowLength = "1h",
        policies: Policies | None = None,
        alpha: Alpha = 0.05,
        actor: str | None = None,
    ) -> list[WindowEvaluation]:
        """Fold new events into windows and evaluate the closed ones; the new evaluations.
        The rules are ``policies`` when given (they win over the stored ones; ``[]`` applies
        none), else the deployment's stored policy. Their actions act as ``actor``: a
        rollback or a promotion goes through the deployments' and the registry's rules
        (protection, approvals, a protected alias's gate); a retrain is queued for a
        follower (:mod:`~opsloop.monitoring.retrain_queue`),
        since no user code runs here."""
        ...

    def set_feature_detectors(
        self,
        deployment: Name,
        *,
        enabled: Flag,
        max_features: FeatureLimit = 50,
        detector: FeatureDetector = "ADWIN",
    ) -> dict[str, Any]:
        """Turn the deployment's per-feature streaming detectors on or off (off by default),
        watching at most ``max_features`` numeric features with ``detector`` (CUSUM or
        ADWIN); the setting."""
        ...

    def set_policy(
        self,
        deployment: Name,
        *,
        rules: StoredRules = (),
        error_detector: ErrorDetector | None = None,
        reason: Text | None = None,
        actor: str | None = None,
    ) -> PolicySetting:
        """Store the deployment's monitoring policy, applied by every evaluation that gives
        no rules of its own: its rules (each checked by the policy parser; a bad one is
        refused naming its position) and the detector of its error stream (ADWIN, CUSUM,
        PageHinkley, or DDM on River's defaults, not calibrated: see ``warning``; none
        given keeps the stored one, ADWIN when none is); audited and versioned."""
        ...

    def policy(self, deployment: Name) -> PolicySetting:
        """The deployment's stored monitoring policy (no rules and ADWIN when never set)."""
        ...

    def status(self, deployment: Name, *, window: WindowLength = "1h", last: Last = 10) -> dict:
        """The latest evaluated windows, the label counts and the alerts."""
        ...

    def alerts(
        self,
        deployment: Name,
        *,
        variant: Name | None = None,
        last: Last | None = None,
        before_id: AlertId | None = None,
    ) -> pd.DataFrame:
        """The alerts raised, oldest first, with their evidence and ``id``: the newest
        ``last``, or all; with ``before_id``, of those raised before the alert of that id
        (the oldest alert of one page asks for the page before it)."""
        ...

    def actions(
        self,
        deployment: Name,
        *,
        window: WindowLength = "1h",
        variant: Name | None = None,
        last: Last = 50,
    ) -> dict:
        """Each policy's rule with its current streak on windows of length ``window``, the
        actions pending, and the newest ``last`` outcomes of the actions the policies took
        (see :mod:`~opsloop.monitoring.policy_record`)."""
        ...

    def set_reference(
        self,
        deployment: Name,
        records: ReferenceRows,
        *,
        predictions: ReferencePredictions | None = None,
        labels: ReferenceLabels | None = None,
        probabilities: ReferenceProbabilities | None = None,
        classes: Classes | None = None,
        sample_size: SampleSize = REFERENCE_SAMPLE_SIZE,
        seed: Seed = 0,
        actor: str | None = None,
        predicted_by: PredictedBy | None = None,
    ) -> ReferenceSummary:
        """Make the records (and the model's predictions, labels and probabilities on
        them, the predictions made by the model version ``predicted_by``) the reference."""
        ...

    def reference(self, deployment: Name) -> ReferenceSummary:
        """What the deployment's reference holds."""
        ...

    def retrain_requests(
        self, deployment: Name, *, state: RequestState | None = None
    ) -> list[dict[str, Any]]:
        """The retrain requests queued for followers, oldest first (those in ``state``, or
        all), with their outcomes."""
        ...

    def claim_retrain(
        self,
        deployment: Name,
        *,
        train: EntryPoint,
        label: Feature,
        follower: Name = "follower",
        lease_s: LeaseSeconds = DEFAULT_LEASE_S,
        actor: str | None = None,
    ) -> dict[str, Any] | None:
        """Claim the oldest retrain request that trains with ``train`` (queued, or claimed
        under a lease that ran out) for ``lease_s`` seconds, the gate's label column named
        ``label``; the request with its ``claim`` token and its data ``window``, or
        ``None``. Of two followers claiming at once, one gets it."""
        ...

    def retrain_rows(
        self,
        deployment: Name,
        request_id: RetrainRequestId,
        *,
        claim: ClaimToken,
        offset: Offset = 0,
        limit: PageSize = MAX_ROWS_PER_PAGE,
    ) -> dict[str, Any]:
        """A page of a claimed request's training rows (records, the label among them) with
        the window's range, counts and sha256."""
        ...

    def report_retrain(
        self,
        deployment: Name,
        request_id: RetrainRequestId,
        *,
        claim: ClaimToken,
        status: FinishedState,
        reason: Text,
        details: Details | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Finish a claimed request with what the retraining did (``status``, ``reason``,
        ``details``: version, run, gate report); audited as the action's outcome, an alert
        unless it is ``done``. The request as finished."""

    def gauges(self, *, deployment: Name | None = None) -> dict:
        """What the Prometheus gauges show (:mod:`~opsloop.monitoring.monitoring_gauges`):
        the latest evaluated window of each variant and window length with its drift
        shares and per-feature drift tests, task metric, estimate, process figures, input
        quality, throughput and decay, the alerts counted per variant, and the labels
        counted per deployment and outcome; of ``deployment``, or of every deployment."""
        ...

    def feature_distribution(
        self,
        deployment: Name,
        feature: Name,
        *,
        start_ms: TimeMs,
        variant: Name,
        window: WindowLength = "1h",
        bins: Bins = 20,
    ) -> FeatureDistribution:
        """One feature's histogram in the window of ``variant`` starting at ``start_ms``
        (from its sample) against the reference's sample."""
        ...


#: The columns of :meth:`MonitoringService.windows` and :meth:`MonitoringService.alerts`.
WINDOW_COLUMNS = ("variant", "start_ms", "workers")
ALERT_COLUMNS = ("variant", "rule", "action", "start_ms", "at_ms", "evidence", "id")


class WindowRow(BaseModel):
    """One folded window of a variant."""

    variant: str
    start_ms: int
    workers: int = Field(description="how many workers wrote a part of it")


class AlertRow(BaseModel):
    """One alert: the rule that fired, in which window, and why."""

    variant: str
    rule: str
    action: str
    start_ms: int | None = Field(description="the start of the window that fired it")
    at_ms: int
    evidence: dict[str, Any]
    id: int = Field(description="the alert's id, increasing as alerts are raised: a page's cursor")


class WindowEvaluationDocument(BaseModel):
    """One evaluated window: its metrics, the rules whose alerts it fired and the outcomes
    of the actions run after it."""

    variant: str
    start_ms: int
    metrics: dict[str, Any]
    alerts: list[str]
    actions: list[dict[str, Any]] = Field(
        default=[], description="what each action did: action, rule, status, reason, ..."
    )


class FeatureDetectorSetting(BaseModel):
    """Whether a deployment's per-feature detectors run, how many features they watch, and
    with which detector."""

    enabled: bool
    max_features: int
    detector: str


class MonitorStatus(BaseModel):
    """The latest windows, the label counts and the alerts of a deployment."""

    deployment: str
    window_ms: int
    reference: str | None = Field(
        default=None,
        description='where the reference comes from: "set explicitly", "registered with '
        'MODEL vN" (the version the primary variant serves), or null without one',
    )
    windows: list[dict[str, Any]]
    labels: dict[str, int]
    alerts: list[dict[str, Any]]


class EstimateBounds(BaseModel):
    """An estimated metric and its interval."""

    value: float | None
    low: float | None
    high: float | None


class DriftFigures(BaseModel):
    """A drift test's statistic and its (Holm-adjusted, for features) p-value."""

    statistic: float | None
    p_value: float | None


class GaugeMetrics(BaseModel):
    """The metrics of an evaluated window that the gauges show."""

    drift_share: float | None = None
    previous_drift_share: float | None = None
    task: str | None = None
    task_metric: float | None = None
    process_rss_bytes: float | None = None
    process_cpu_seconds: float | None = None
    input_anomaly_rate: float | None = None
    input_scored: int | None = None
    input_flagged: int | None = None
    residual_mean: float | None = None
    residual_mean_low: float | None = None
    residual_mean_high: float | None = None
    residual_std: float | None = None
    records_per_request_mean: float | None = None
    text_length_drift_share: float | None = None
    missing_share: float | None = None
    out_of_schema_rate: float | None = None
    requests_per_second: float | None = None
    estimate: dict[str, EstimateBounds] = {}
    feature_drift: dict[str, DriftFigures | None] = {}
    output_drift: DriftFigures | None = None
    decay: str | None = None


class GaugeWindow(BaseModel):
    """The latest evaluated window of a variant for one window length."""

    deployment: str
    variant: str
    window_ms: int
    start_ms: int
    metrics: GaugeMetrics


class AlertCount(BaseModel):
    """The alerts raised for a variant."""

    deployment: str
    variant: str
    count: int


class LabelCount(BaseModel):
    """The labels a deployment received, per outcome."""

    deployment: str
    accepted: int
    late: int
    duplicate: int
    unknown: int


class GaugeReadings(BaseModel):
    """What the monitoring's Prometheus gauges show."""

    windows: list[GaugeWindow]
    alerts: list[AlertCount]
    labels: list[LabelCount] = []


class StreakWindow(BaseModel):
    """A window of a streak: its start and the signal's value in it."""

    start_ms: int
    value: Any


class PolicyStanding(BaseModel):
    """One rule on one variant's windows: its streak so far and its firings."""

    variant: str
    rule: str
    signal: str | None
    op: str | None
    threshold: float | None
    windows: int | None = Field(
        description="how many windows the condition must hold in to fire, with no window "
        "between where it is false (windows where the signal is undefined are passed over)"
    )
    action: str | None
    streak: int = Field(
        description="how many windows held since the streak began, up to the last window "
        "evaluated; a window where the signal is undefined is passed over, one where the "
        "condition is false breaks the streak"
    )
    streak_windows: list[StreakWindow] = Field(
        description="the streak's latest windows that held, as many as the rule needs at "
        "most, and 100 at most (policy_streak.MAX_LISTED_HELD); streak counts them all"
    )
    streak_first_listed: int = Field(
        default=0,
        description="how many of streak_windows, the oldest, are the first windows of a "
        "streak an earlier version saved (it listed its first windows, not its latest): not "
        "known to be the latest until as many more windows hold; 0 when streak_windows are "
        "the latest",
    )
    streak_start_ms: int | None = Field(
        default=None, description="the start of the streak's first window that held"
    )
    streak_skipped: list[int] = Field(
        default=[],
        description="the starts of the windows where the signal was undefined (no labels for "
        "a signal judged on labels...), passed over, not breaking the streak: those among "
        "streak_windows that came before the streak reached the windows the rule needs, 100 "
        "at most (policy_streak.MAX_LISTED_SKIPPED)",
    )
    streak_skipped_count: int = Field(
        default=0, description="how many windows were passed over since the streak began"
    )
    fired: int = Field(description="how many times it fired on windows of this length")
    last_fired_ms: int | None
    last_fired_start_ms: int | None = Field(description="the window that fired it last")


class PendingAction(BaseModel):
    """An action recorded with its alert, not run yet."""

    variant: str
    rule: str
    action: str | None
    start_ms: int | None = Field(description="the start of the window that fired it")
    evidence: dict[str, Any]


class RunningAction(BaseModel):
    """An action in flight: its outcome is not recorded yet."""

    variant: str
    rule: str
    action: str | None
    action_id: str = Field(description="its id; a webhook's Idempotency-Key")
    started_ms: int
    worker: str = Field(description="the process that runs it, HOST:PID")


class ActionOutcome(BaseModel):
    """What an action did, as the audit log keeps it."""

    at_ms: int
    actor: str
    variant: str | None
    rule: str | None
    action: str | None
    status: str = Field(
        description="done, failed, refused, blocked, queued (a retrain) or interrupted (its "
        "process died while it ran)"
    )
    reason: str
    why: str | None = Field(description="the policy's evidence in words")
    evidence: dict[str, Any] = Field(description="what the action reported")


class PolicyActions(BaseModel):
    """The policies' streaks, the pending actions and the newest action outcomes."""

    deployment: str
    window_ms: int
    policies: list[PolicyStanding]
    pending: list[PendingAction]
    running: list[RunningAction] = Field(
        default_factory=list, description="the actions in flight, oldest first"
    )
    outcomes: list[ActionOutcome] = Field(description="newest first")
    outcomes_total: int = Field(description="how many outcomes there are in all")


class RetrainRequestDocument(BaseModel):
    """A retrain request queued for a follower, and what became of it."""

    id: int
    deployment: str
    variant: str
    rule: str
    train: str = Field(description="the training function the request runs, MODULE:FUNCTION")
    reference_share: float
    holdout: float
    min_rows: int
    window_policy: str = Field(
        "since_change_point",
        description="the data-window policy: since_change_point, since_date, new_only or "
        "keep_correct",
    )
    neighbours: int = Field(5, description="keep_correct: the new rows that judge an older one")
    tolerance: float = Field(
        3.0, description="keep_correct on numeric labels: agreement in noise deviations"
    )
    start_ms: int = Field(
        description="the data window's start: the change point, the policy's date, or the "
        "first window of the rule's streak"
    )
    end_ms: int = Field(description="the data window's end: the end of the window that fired")
    evidence: dict[str, Any]
    state: str = Field(
        description="queued, claimed, done, failed, blocked, refused or cancelled (its "
        "deployment was retired)"
    )
    queued_ms: int
    queued_by: str
    claimed_by: str | None
    follower: str | None
    claimed_ms: int | None
    expires_ms: int | None = Field(description="when the claim's lease runs out")
    claims: int = Field(description="how many times it was claimed")
    label: str | None = Field(description="the label column the claim named")
    finished_ms: int | None
    outcome: dict[str, Any] | None


class RetrainClaim(RetrainRequestDocument):
    """A claimed request: its ``claim`` token and its data window."""

    claim: str = Field(description="shown to read the rows and to report")
    window: dict[str, Any] = Field(description="start_ms, end_ms, rows, new_rows, sha256, ...")


class RetrainRows(BaseModel):
    """A page of a claimed request's training rows."""

    request_id: int
    window: dict[str, Any]
    columns: list[str]
    offset: int
    total: int = Field(description="how many rows the window has in all")
    rows: list[dict[str, Any]]


def _evaluation_document(evaluation: WindowEvaluation) -> dict[str, Any]:
    document = dataclasses.asdict(evaluation)
    document["alerts"] = list(evaluation.alerts)
    document["actions"] = list(evaluation.actions)
    return document


def _evaluation(document: dict[str, Any]) -> WindowEvaluation:
    alerts, actions = tuple(document["alerts"]), tuple(document.get("actions", ()))
    return WindowEvaluation(**{**document, "alerts": alerts, "actions": actions})


def _frame(columns: tuple[str, ...]):
    def build(rows: list[dict]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=list(columns))

    return build


_EVALUATIONS = wrapped(
    "windows",
    list[WindowEvaluationDocument],
    lambda found: [_evaluation_document(e) for e in found],
    lambda rows: [_evaluation(row) for row in rows],
    title="WindowEvaluations",
)

#: Monitoring on the wire.
MONITORING_OPERATIONS = ServiceTable(
    MonitoringService,
    [
        Operation(
            "log_predictions",
            "POST",
            "/monitoring/{deployment:path}/predictions",
            role="editor",
            answer=wrapped("request_ids", list[str], title="LoggedRequestIds"),
            created=True,
        ),
        Operation(
            "log_labels",
            "POST",
            "/monitoring/{deployment:path}/labels",
            role="editor",
            answer=record(LabelReceipt),
        ),
        Operation(
            "windows",
            "GET",
            "/monitoring/{deployment:path}/windows",
            answer=wrapped(
                "windows",
                list[WindowRow],
                frame_records,
                _frame(WINDOW_COLUMNS),
                title="MonitoringWindows",
            ),
            query=("window",),
        ),
        Operation(
            "evaluations",
            "GET",
            "/monitoring/{deployment:path}/evaluations",
            answer=_EVALUATIONS,
            query=("window", "variant", "last", "before_ms", "before_variant"),
        ),
        Operation(
            "evaluate",
            "POST",
            "/monitoring/{deployment:path}/evaluations",
            role="editor",
            answer=_EVALUATIONS,
        ),
        Operation(
            "set_feature_detectors",
            "PUT",
            "/monitoring/{deployment:path}/feature-detectors",
            role="editor",
            answer=Answer(FeatureDetectorSetting),
        ),
        Operation(
            "set_policy",
            "PUT",
            "/monitoring/{deployment:path}/policy",
            role="editor",
            answer=record(PolicySetting),
        ),
        Operation(
            "policy",
            "GET",
            "/monitoring/{deployment:path}/policy",
            answer=record(PolicySetting),
        ),
        Operation(
            "status",
            "GET",
            "/monitoring/{deployment:path}/status",
            answer=Answer(MonitorStatus),
            query=("window", "last"),
        ),
        Operation(
            "alerts",
            "GET",
            "/monitoring/{deployment:path}/alerts",
            answer=wrapped(
                "alerts",
                list[AlertRow],
                frame_records,
                _frame(ALERT_COLUMNS),
                title="MonitoringAlerts",
            ),
            query=("variant", "last", "before_id"),
        ),
        Operation(
            "actions",
            "GET",
            "/monitoring/{deployment:path}/actions",
            answer=Answer(PolicyActions),
            query=("window", "variant", "last"),
        ),
        Operation(
            "set_reference",
            "PUT",
            "/monitoring/{deployment:path}/reference",
            role="editor",
            answer=record(ReferenceSummary),
        ),
        Operation(
            "reference",
            "GET",
            "/monitoring/{deployment:path}/reference",
            answer=record(ReferenceSummary),
        ),
        Operation(
            "retrain_requests",
            "GET",
            "/monitoring/{deployment:path}/retrain-requests",
            answer=wrapped("requests", list[RetrainRequestDocument], title="RetrainRequests"),
            query=("state",),
        ),
        Operation(
            "claim_retrain",
            "POST",
            "/monitoring/{deployment:path}/retrain-requests/claims",
            role="editor",
            answer=wrapped("request", RetrainClaim | None, title="MaybeRetrainClaim"),
        ),
        Operation(
            "retrain_rows",
            "POST",
            "/monitoring/{deployment:path}/retrain-requests/{request_id}/rows",
            role="editor",
            answer=Answer(RetrainRows),
        ),
        Operation(
            "report_retrain",
            "PUT",
            "/monitoring/{deployment:path}/retrain-requests/{request_id}/outcome",
            role="editor",
            answer=Answer(RetrainRequestDocument),
        ),
        Operation(
            "gauges",
            "GET",
            "/monitoring/gauges",
            answer=Answer(GaugeReadings),
            query=("deployment",),
        ),
        Operation(
            "feature_distribution",
            "GET",
            "/monitoring/{deployment:path}/distribution",
            answer=record(FeatureDistribution),
            query=("feature", "start_ms", "variant", "window", "bins"),
        ),
    ],
    # The client sends frames and numpy arrays as JSON, and a batch too large for one call
    # in several; it checks a page's cursor as the library does (the same refusals) and
    # sends the NumPy integer a page gives back as the number it is.
    composed=["log_predictions", "set_reference", "evaluations", "alerts"],
)

__all__ = ["MAX_LOGGED_ROWS", "MAX_REFERENCE_ROWS", "MONITORING_OPERATIONS", "MonitoringService"]
