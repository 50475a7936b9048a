"""Monitoring through an opsloop server: :class:`~opsloop.monitoring.local_monitoring.
Monitoring` over REST.

:class:`HttpMonitoring` is generated from the service's operation table
(:data:`~opsloop.monitoring.monitoring_service.MONITORING_OPERATIONS`) and returns the same
records and frames as the local class. The connection, the Bearer token
(``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error policy are the tracking client's;
the acting user is the token's owner.

Logging predictions and setting the reference take what the local class takes, a DataFrame
or records and numpy arrays, and send them as JSON (missing values as null, other values
than numbers, text and flags as their text, as the local class writes them); more
prediction events than one call may carry (:data:`~opsloop.monitoring.monitoring_service.
MAX_LOGGED_ROWS`) are sent in several calls.

>>> HttpMonitoring("http://127.0.0.1:5005/", token="olp_x")
HttpMonitoring('http://127.0.0.1:5005')
>>> HttpMonitoring("http://127.0.0.1:1").log_labels("api", ["r1"], [1], actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from opsloop.contract.http_client import operation_call, over_http
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import WindowEvaluation
from opsloop.monitoring.monitoring_service import (
    MAX_LOGGED_ROWS,
    MONITORING_OPERATIONS,
    MonitoringService,
)
from opsloop.monitoring.page_cursor import (
    checked_before_id,
    checked_before_ms,
    checked_before_variant,
)
from opsloop.monitoring.reference import (
    REFERENCE_SAMPLE_SIZE,
    ReferenceSummary,
    checked_predicted_by,
)
from opsloop.registry.http_registry import ServerClient
from opsloop.registry.users import PermissionDenied

__all__ = ["HttpMonitoring"]

_ERRORS = {"PermissionDenied": PermissionDenied}


def _plain(value: Any) -> Any:
    """A value as JSON carries it: numpy scalars as Python's, missing as None, anything
    else than a number, a text or a flag as its text (as the local class stores it).

    >>> _plain(np.int64(3)), _plain(float("nan")), _plain(pd.Timestamp("2024-01-02"))
    (3, None, '2024-01-02 00:00:00')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _records(records: pd.DataFrame | Sequence[dict]) -> list[dict]:
    if isinstance(records, pd.DataFrame):
        frame = records.rename(columns=str)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{str(k): _plain(v) for k, v in record.items()} for record in records]


def _values(values: Any) -> Any:
    """One value, or a list of them, as JSON carries them."""
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        values = values.tolist()
    if isinstance(values, Sequence) and not isinstance(values, str):
        return [_plain(value) for value in values]
    return _plain(values)


def _probabilities(values: Any) -> list | None:
    """A model's probabilities as JSON carries them: a list of rows (or of numbers).

    >>> _probabilities(np.array([[0.25, 0.75]]))
    [[0.25, 0.75]]
    """
    if values is None:
        return None
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    if isinstance(values, np.ndarray | pd.Series):
        return values.tolist()
    return [_values(row) for row in values]


def _check_per_row(n: int, outputs: Any, ids: Any, times: Any, latency: Any) -> None:
    """Refuse, before a batch is split, what the server would refuse of it whole.

    >>> _check_per_row(3, [1, 2, 3], None, 5, [1.0, 2.0])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: latency_ms: 2 values for 3 rows; give one, or one per row
    """
    if not isinstance(outputs, list) or len(outputs) != n:
        given = len(outputs) if isinstance(outputs, list) else 1
        raise InvalidArgumentError(
            f"predictions: {given} values for {n} input rows; give one per row"
        )
    if ids is not None and len(ids) != n:
        raise InvalidArgumentError(f"request_ids: {len(ids)} ids for {n} rows; give one per row")
    for name, values in (("at_ms", times), ("latency_ms", latency)):
        if isinstance(values, list) and len(values) != n:
            raise InvalidArgumentError(
                f"{name}: {len(values)} values for {n} rows; give one, or one per row"
            )


@over_http(MONITORING_OPERATIONS)
class HttpMonitoring(ServerClient, MonitoringService):
    """The monitoring of the opsloop server at ``base_url``."""

    errors = _ERRORS
    _log_predictions = operation_call(MONITORING_OPERATIONS, "log_predictions")
    _set_reference = operation_call(MONITORING_OPERATIONS, "set_reference")
    _evaluations = operation_call(MONITORING_OPERATIONS, "evaluations")
    _alerts = operation_call(MONITORING_OPERATIONS, "alerts")

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
        """The evaluated windows, oldest first, with their metrics: the newest ``last``, or
        all; with ``before_ms`` (and ``before_variant``), of those before that window in
        the listing's order (start, then variant)."""
        return self._evaluations(
            deployment,
            window=window,
            variant=variant,
            last=last,
            before_ms=checked_before_ms(before_ms),
            before_variant=checked_before_variant(before_variant),
        )

    def alerts(
        self,
        deployment: str,
        *,
        variant: str | None = None,
        last: int | None = None,
        before_id: int | None = None,
    ) -> pd.DataFrame:
        """The alerts raised, oldest first, with their evidence and ``id``: the newest
        ``last``, or all; with ``before_id``, of those raised before the alert of that id."""
        return self._alerts(
            deployment, variant=variant, last=last, before_id=checked_before_id(before_id)
        )

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
        """Record one prediction event per record with its prediction; the request ids.
        A batch of more than :data:`MAX_LOGGED_ROWS` records is sent in several calls
        (each a transaction of its own)."""
        rows, outputs = _records(records), _values(predictions)
        ids = None if request_ids is None else [str(i) for i in request_ids]
        times, latency = _values(at_ms), _values(latency_ms)
        scores = _probabilities(probabilities)
        names = None if classes is None else _values(classes)
        n = len(rows)
        if n <= MAX_LOGGED_ROWS:
            parts = [slice(None)]
        else:
            _check_per_row(n, outputs, ids, times, latency)
            if scores is not None and len(scores) != n:
                raise InvalidArgumentError(
                    f"probabilities: {len(scores)} rows for {n} predictions; give one per row"
                )
            parts = [slice(lo, lo + MAX_LOGGED_ROWS) for lo in range(0, n, MAX_LOGGED_ROWS)]

        def part(values: Any, rows_of: slice) -> Any:
            # A value per row is split with the rows; one value for all goes with each part.
            return values[rows_of] if isinstance(values, list) else values

        found: list[str] = []
        for rows_of in parts:
            found += self._log_predictions(
                deployment,
                rows[rows_of],
                part(outputs, rows_of),
                variant=variant,
                request_ids=part(ids, rows_of),
                at_ms=part(times, rows_of),
                latency_ms=part(latency, rows_of),
                model=model,
                version=version,
                probabilities=None if scores is None else scores[rows_of],
                classes=names,
            )
        return found

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
        """Make the records (and the model's predictions, labels and probabilities on
        them, the predictions made by the model version ``predicted_by``) the reference."""
        # Checked here as the local side checks it (the same message), so that any integer
        # type of version is sent as the JSON number it is.
        by = checked_predicted_by(predicted_by)
        return self._set_reference(
            deployment,
            _records(records),
            predictions=None if predictions is None else _values(predictions),
            labels=None if labels is None else _values(labels),
            probabilities=_probabilities(probabilities),
            classes=None if classes is None else _values(classes),
            sample_size=sample_size,
            seed=seed,
            actor=actor,
            predicted_by=None if by is None else list(by),
        )
