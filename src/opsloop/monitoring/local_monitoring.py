"""Monitoring on a store, as one object: the operations of
:class:`~opsloop.monitoring.monitoring_service.MonitoringService` over the module functions
(:func:`~opsloop.monitoring.event_log.log_predictions`, :func:`~opsloop.monitoring.
evaluation.evaluate`, ...), so that code written against the service runs the same on a
store and, with :class:`~opsloop.monitoring.http_monitoring.HttpMonitoring`, on a server.

>>> import pandas as pd
>>> db.clock = lambda: 7_200_000  # two hours after the epoch: the first hour has closed
>>> monitoring = Monitoring(db, actor="ana")
>>> monitoring.set_reference("api", [{"x": i * 0.37} for i in range(200)]).rows
200
>>> ids = monitoring.log_predictions("api", [{"x": 5.0 + i} for i in range(60)], [1] * 60,
...                                  at_ms=60_000)
>>> monitoring.log_labels("api", ids, [1] * 30 + [0] * 30).accepted
60
>>> (window,) = monitoring.evaluate("api", policies=["task_metric < 0.9 -> alert"])
>>> window.metrics["task_metric"], monitoring.alerts("api")["rule"].tolist()
(0.5, ['task_metric < 0.9 -> alert'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.evaluation import (
    WindowEvaluation,
    evaluate,
    read_alerts,
    read_evaluations,
)
from opsloop.monitoring.event_log import (
    LabelReceipt,
    log_labels,
    log_predictions,
    logged_request_ids,
)
from opsloop.monitoring.feature_distribution import FeatureDistribution, feature_distribution
from opsloop.monitoring.feature_stream import (
    DEFAULT_DETECTOR,
    MAX_FEATURES,
    set_feature_detectors,
)
from opsloop.monitoring.monitor_report import monitor_status
from opsloop.monitoring.monitored_names import check_monitored
from opsloop.monitoring.monitoring_gauges import gauge_readings
from opsloop.monitoring.monitoring_service import ALERT_COLUMNS
from opsloop.monitoring.page_cursor import (
    checked_before_id,
    checked_before_ms,
    checked_before_variant,
)
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.policy_record import read_actions
from opsloop.monitoring.reference import (
    REFERENCE_SAMPLE_SIZE,
    ReferenceSummary,
    checked_predicted_by,
    get_reference,
    set_reference,
    stored_reference,
)
from opsloop.monitoring.retrain_queue import (
    DEFAULT_LEASE_S,
    MAX_ROWS_PER_PAGE,
    claim_retrain,
    report_retrain,
    retrain_requests,
    retrain_rows,
)
from opsloop.monitoring.stored_policy import PolicySetting, read_policy, set_policy
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.monitoring.window_store import read_window, window_starts
from opsloop.monitoring.windowing import Windowing
from opsloop.store import Database, open_database
from opsloop.tracking.capture import current_user

__all__ = ["Monitoring"]


class Monitoring:
    """The monitoring of a store (``db``: default the configured store); ``actor`` is who
    logs labels, sets references and acts on policies (default: the OS user). Each method
    is the :class:`~opsloop.monitoring.monitoring_service.MonitoringService` operation of
    the same name.

    The policies' actions act through ``deployments`` (default: the store's) and
    ``registry`` (a :class:`~opsloop.registry.ModelRegistry` on the same store), as the
    acting user: with a registry a ``promote`` runs (without one it stays pending). A
    ``retrain`` is never run here: it is queued for a follower that runs the user's
    training function where the user trusts it (:mod:`.retrain_queue`), which is how a
    server runs the same monitoring without running anybody's code.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        actor: str | None = None,
        registry: Any = None,
        deployments: Any = None,
    ) -> None:
        self.db = db if db is not None else open_database()
        self.actor = actor or current_user()
        self.registry = registry
        self.deployments = deployments

    def __repr__(self) -> str:
        return f"Monitoring({self.db!r}, actor={self.actor!r})"

    def log_predictions(
        self,
        deployment: str,
        records: pd.DataFrame | Sequence[dict],
        predictions: Sequence | np.ndarray,
        *,
        variant: str = "default",
        request_ids: Sequence[str] | None = None,
        at_ms: int | Sequence[int] | np.ndarray | None = None,
        latency_ms: float | Sequence[float] | np.ndarray = 0.0,
        model: str = "external",
        version: int = 0,
        probabilities: Sequence | np.ndarray | None = None,
        classes: Sequence | None = None,
    ) -> list[str]:
        """Record one prediction event per record (see
        :func:`~opsloop.monitoring.event_log.log_predictions`)."""
        return log_predictions(
            self.db,
            deployment,
            records,
            predictions,
            variant=variant,
            request_ids=request_ids,
            at_ms=at_ms,
            latency_ms=latency_ms,
            model=model,
            version=version,
            probabilities=probabilities,
            classes=classes,
            read_joined=self._read_joined,
            read_joined_labels=self._read_joined_labels,
        )

    def _read_joined_labels(self, connection: Any, joined: list) -> Callable[[], None]:
        """Read the labels of feedback that waited for logged answers into the rollouts'
        gates, in the transaction that logs them; what to do once it committed."""
        from opsloop.serving.deployments import Deployments
        from opsloop.serving.rollout_observer import RolloutObserver

        return RolloutObserver(self.db, Deployments(self.db)).read_joined_labels(connection, joined)

    def _read_joined(self, joined: list) -> None:
        """Read feedback that waited for logged answers into the deployment's rollouts."""
        from opsloop.serving.deployments import Deployments
        from opsloop.serving.rollout_observer import RolloutObserver

        RolloutObserver(self.db, Deployments(self.db)).read_joined(joined)

    def log_labels(
        self,
        deployment: str,
        request_ids: Sequence[str],
        labels: Sequence | np.ndarray,
        *,
        window: str = "1h",
        actor: str | None = None,
    ) -> LabelReceipt:
        """Join labels by request id (see :func:`~opsloop.monitoring.event_log.log_labels`);
        ``window`` says when a window closes, for counting late labels."""
        return log_labels(
            self.db,
            deployment,
            request_ids,
            labels,
            windowing=Windowing(window),
            actor=actor or self.actor,
        )

    def logged_request_ids(self, deployment: str, request_ids: Sequence[str]) -> set[str]:
        """The ids among ``request_ids`` already logged for ``deployment`` (see
        :func:`~opsloop.monitoring.event_log.logged_request_ids`).

        >>> Monitoring(db).logged_request_ids("nobody", ["a"])
        set()
        """
        return logged_request_ids(self.db, deployment, request_ids)

    def windows(self, deployment: str, *, window: str = "1h") -> pd.DataFrame:
        """The windows folded so far (see :func:`~opsloop.monitoring.window_store.
        window_starts`).

        >>> Monitoring(db).windows("nothing-yet").columns.tolist()
        ['variant', 'start_ms', 'workers']
        """
        return window_starts(self.db, deployment, Windowing(window))

    def evaluations(
        self,
        deployment: str,
        *,
        window: str = "1h",
        variant: str | None = None,
        last: int | None = None,
        before_ms: int | None = None,
        before_variant: str | None = None,
    ) -> list[WindowEvaluation]:
        """The evaluated windows, oldest first (one ``variant``'s, or every variant's): the
        newest ``last`` of them, or all; with ``before_ms`` (and ``before_variant``), of
        those before that window in the order of start and variant (see
        :func:`~opsloop.monitoring.evaluation.read_evaluations`)."""
        _check_last(last)
        return read_evaluations(
            self.db,
            deployment,
            Windowing(window),
            variant=variant,
            last=last,
            before_ms=checked_before_ms(before_ms),
            before_variant=checked_before_variant(before_variant),
        )

    def evaluate(
        self,
        deployment: str,
        *,
        window: str = "1h",
        policies: Sequence[str] | None = None,
        alpha: float = 0.05,
        actor: str | None = None,
    ) -> list[WindowEvaluation]:
        """Evaluate the closed windows not evaluated yet (see
        :func:`~opsloop.monitoring.evaluation.evaluate`) with ``policies``, or the stored
        policy's rules when ``None`` (rules given here win over the stored ones); the
        actions act as ``actor`` (default: the monitoring's), and a retrain is queued."""
        context = ActionContext(
            self.db,
            deployments=self.deployments,
            registry=self.registry,
            actor=actor or self.actor,
            queue_retrains=True,
        )
        return evaluate(
            self.db,
            deployment,
            windowing=Windowing(window),
            policies=policies,
            alpha=alpha,
            actions=context,
        )

    def set_feature_detectors(
        self,
        deployment: str,
        *,
        enabled: bool,
        max_features: int = MAX_FEATURES,
        detector: str = DEFAULT_DETECTOR,
    ) -> dict:
        """Turn ``deployment``'s per-feature detectors on or off (see
        :func:`~opsloop.monitoring.feature_stream.set_feature_detectors`).

        >>> Monitoring(db).set_feature_detectors("api", enabled=True)["max_features"]
        50
        """
        return set_feature_detectors(
            self.db, deployment, enabled=enabled, max_features=max_features, detector=detector
        )

    def set_policy(
        self,
        deployment: str,
        *,
        rules: Sequence[str] = (),
        error_detector: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> PolicySetting:
        """Store ``deployment``'s monitoring policy: the rules every evaluation applies
        unless it gives its own, and the error-stream detector (see
        :mod:`~opsloop.monitoring.stored_policy`); set as ``actor`` (default: the
        monitoring's).

        >>> Monitoring(db).set_policy("api", rules=["error_drift > 0 -> alert"],
        ...                           error_detector="PageHinkley").error_detector
        'PageHinkley'
        """
        return set_policy(
            self.db,
            deployment,
            rules,
            error_detector=error_detector,
            actor=actor or self.actor,
            reason=reason,
        )

    def policy(self, deployment: str) -> PolicySetting:
        """``deployment``'s stored monitoring policy (see
        :mod:`~opsloop.monitoring.stored_policy`).

        >>> Monitoring(db).policy("nothing-yet").rules
        ()
        """
        return read_policy(self.db, deployment)

    def status(self, deployment: str, *, window: str = "1h", last: int = 10) -> dict:
        """The latest windows, label counts and alerts (see
        :func:`~opsloop.monitoring.monitor_report.monitor_status`);
        :class:`~opsloop.errors.NotFoundError` for a deployment the monitoring does not
        know (:func:`~opsloop.monitoring.monitored_names.check_monitored`), rather than an
        empty status for a misspelled name.

        >>> Monitoring(db).status("nosuch")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: unknown deployment 'nosuch'; known: none
        """
        check_monitored(self.db, deployment)
        return monitor_status(self.db, deployment, Windowing(window), last=last)

    def gauges(self, *, deployment: str | None = None) -> dict:
        """What the Prometheus gauges show (see
        :func:`~opsloop.monitoring.monitoring_gauges.gauge_readings`), of ``deployment``
        or of all.

        >>> Monitoring(db).gauges(deployment="nothing-yet")
        {'windows': [], 'alerts': [], 'labels': []}
        """
        return gauge_readings(self.db, None if deployment is None else [deployment])

    def alerts(
        self,
        deployment: str,
        *,
        variant: str | None = None,
        last: int | None = None,
        before_id: int | None = None,
    ) -> pd.DataFrame:
        """The alerts, oldest first (one ``variant``'s, or every variant's): the newest
        ``last`` of them, or all; with ``before_id``, of those raised before the alert of
        that id.

        >>> Monitoring(db).alerts("nothing-yet").columns.tolist()
        ['variant', 'rule', 'action', 'start_ms', 'at_ms', 'evidence', 'id']
        """
        _check_last(last)
        found = read_alerts(
            self.db, deployment, variant=variant, last=last, before_id=checked_before_id(before_id)
        )
        return found[list(ALERT_COLUMNS)]

    def actions(
        self,
        deployment: str,
        *,
        window: str = "1h",
        variant: str | None = None,
        last: int = 50,
    ) -> dict:
        """The policies' streaks, the pending actions and the newest ``last`` action
        outcomes (see :func:`~opsloop.monitoring.policy_record.read_actions`).

        >>> Monitoring(db).actions("nothing-yet")["outcomes_total"]
        0
        """
        return read_actions(self.db, deployment, Windowing(window), variant=variant, last=last)

    def set_reference(
        self,
        deployment: str,
        records: pd.DataFrame | Sequence[dict[str, Any]],
        *,
        predictions: Sequence | np.ndarray | None = None,
        labels: Sequence | np.ndarray | None = None,
        probabilities: Sequence | np.ndarray | None = None,
        classes: Sequence | None = None,
        sample_size: int = REFERENCE_SAMPLE_SIZE,
        seed: int = 0,
        actor: str | None = None,
        predicted_by: tuple[str, int] | None = None,
    ) -> ReferenceSummary:
        """Make ``records`` the reference (see
        :func:`~opsloop.monitoring.reference.set_reference`); what it holds."""
        frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(records)
        if frame.empty:
            raise InvalidArgumentError("records: the reference needs at least one row and column")
        by = None if predicted_by is None else checked_predicted_by(predicted_by)
        reference = set_reference(
            self.db,
            deployment,
            frame,
            predictions=predictions,
            labels=labels,
            probabilities=probabilities,
            classes=classes,
            sample_size=sample_size,
            seed=seed,
            actor=actor or self.actor,
            predicted_by=by,
        )
        return ReferenceSummary.of(reference, predicted_by=by)

    def reference(self, deployment: str) -> ReferenceSummary:
        """What the reference holds.

        >>> Monitoring(db).reference("nowhere")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; ...
        """
        found = stored_reference(self.db, deployment)
        return ReferenceSummary.of(found.reference, found.origin, found.predicted_by)

    def retrain_requests(self, deployment: str, *, state: str | None = None) -> list[dict]:
        """The retrain requests queued for followers, oldest first (see
        :func:`~opsloop.monitoring.retrain_queue.retrain_requests`).

        >>> Monitoring(db).retrain_requests("nothing-yet")
        []
        """
        return retrain_requests(self.db, deployment, state=state)

    def claim_retrain(
        self,
        deployment: str,
        *,
        train: str,
        label: str,
        follower: str = "follower",
        lease_s: int = DEFAULT_LEASE_S,
        actor: str | None = None,
    ) -> dict | None:
        """Claim the oldest request that trains with ``train`` (see
        :func:`~opsloop.monitoring.retrain_queue.claim_retrain`).

        >>> print(Monitoring(db).claim_retrain("nothing-yet", train="m:f", label="y"))
        None
        """
        return claim_retrain(
            self.db,
            deployment,
            train=train,
            label=label,
            follower=follower,
            lease_s=lease_s,
            actor=actor or self.actor,
        )

    def retrain_rows(
        self,
        deployment: str,
        request_id: int,
        *,
        claim: str,
        offset: int = 0,
        limit: int = MAX_ROWS_PER_PAGE,
    ) -> dict:
        """A page of a claimed request's training rows (see
        :func:`~opsloop.monitoring.retrain_queue.retrain_rows`)."""
        return retrain_rows(
            self.db, deployment, request_id, claim=claim, offset=offset, limit=limit
        )

    def report_retrain(
        self,
        deployment: str,
        request_id: int,
        *,
        claim: str,
        status: str,
        reason: str,
        details: dict | None = None,
        actor: str | None = None,
    ) -> dict:
        """Finish a claimed request with its outcome (see
        :func:`~opsloop.monitoring.retrain_queue.report_retrain`)."""
        return report_retrain(
            self.db,
            deployment,
            request_id,
            claim=claim,
            status=status,
            reason=reason,
            details=details,
            actor=actor or self.actor,
        )

    def feature_distribution(
        self,
        deployment: str,
        feature: str,
        *,
        start_ms: int,
        variant: str,
        window: str = "1h",
        bins: int = 20,
    ) -> FeatureDistribution:
        """``feature``'s histogram in a window's sample against the reference's sample (see
        :mod:`~opsloop.monitoring.feature_distribution`); ``feature`` may be ``prediction``,
        the model's output, where the reference holds the model's predictions.

        >>> Monitoring(db).feature_distribution("nowhere", "x", start_ms=0, variant="a")
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; ...
        """
        reference = get_reference(self.db, deployment)
        # The model's output is drawn like a feature once the reference holds its
        # predictions on the reference rows (the output-drift test compares the same two).
        output = feature == PREDICTION_COLUMN and reference.has_predictions
        if feature not in reference.features and not output:
            raise NotFoundError(
                f"feature: the reference of {deployment!r} has no feature {feature!r}"
                + ("" if feature != PREDICTION_COLUMN else " and holds no predictions")
            )
        part = read_window(self.db, deployment, variant, Windowing(window), start_ms)
        if part is None:
            raise NotFoundError(
                f"start_ms: variant {variant!r} of {deployment!r} has no {window} window "
                f"starting at {start_ms}"
            )
        if part.sample is None:
            raise NotFoundError(
                f"start_ms: the sample of the window starting at {start_ms} has expired "
                "(its profile and drift results stay)"
            )
        rows = part.sample.frame()
        values = rows[feature] if feature in rows else pd.Series([None] * len(rows))
        try:
            return feature_distribution(values, reference.sample.frame()[feature], bins=bins)
        except ValueError as error:
            raise InvalidArgumentError(str(error)) from None


def _check_last(last: int | None) -> None:
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise InvalidArgumentError(f"last: must be a whole number of at least 1, got {last!r}")
