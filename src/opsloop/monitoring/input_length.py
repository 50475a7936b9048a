"""Input length of a window: how long its text values are and how many records each request
carried.

"Input length" here is two things:

* **Text length,** per text feature: the length in characters (Unicode code points,
  Python's ``len``) of each non-null value of a feature the reference profiles as text
  (logical type ``string`` or ``category``: both hold strings, and the profile gives both
  the same length distribution). Count, mean, minimum and maximum are exact over every row of
  the window; the median and 95th percentile come from the KLL sketch of the window's
  profile (:mod:`opsloop.data.profile.text`), so parts from several workers merge. Beside
  them, the reference's mean length (from its profile) and the two-sample
  Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) between the lengths of the reference's
  sample and of the window's reservoir sample, with p-values adjusted by Holm's method over
  the text features. ``length_drift_share`` is the share of the compared text features whose
  adjusted p-value is below ``alpha`` (``None`` when none could be compared: no text
  feature, or a sample expired).
* **Records per request** (the batch size): how many rows each request of the window carried,
  failed requests included, summarised mergeably (:attr:`WindowPart.batch_sizes
  <opsloop.monitoring.window_part.WindowPart.batch_sizes>`): count, mean, minimum, maximum
  exact, median and 95th percentile from the sketch. A reference is a frame of rows, not of
  requests, so this has nothing to compare against; a rule watches it directly
  (``records_per_request_max > 100 -> alert``). A window kept before parts counted it has
  ``None``.

>>> import pandas as pd
>>> from opsloop.monitoring.reference import set_reference
>>> from opsloop.monitoring.window_part import parts_of_events
>>> from opsloop.monitoring.windowing import Windowing
>>> ref = set_reference(db, "api", pd.DataFrame({"t": ["ab", "abcd"] * 10}))
>>> events = pd.DataFrame({"variant": ["a", "a"], "request_id": ["r1", "r2"],
...     "inputs_json": ['[{"t": "abc"}, {"t": "x"}]', '[{"t": "hello"}]'],
...     "output_json": [None, None], "error": [None, None],
...     "latency_ms": [1.0, 1.0], "at_ms": [0, 0]})
>>> window = parts_of_events(events, Windowing())[("a", 0)]
>>> found = input_length_metrics(window, ref, window.sample.frame())
>>> found["text"]["t"]["mean"], found["text"]["t"]["reference_mean"]
(3.0, 3.0)
>>> found["records_per_request"]["mean"], found["records_per_request"]["max"]
(1.5, 2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from opsloop.data.drift.correction import adjust_p_values
from opsloop.data.profile.numeric import NumericSummary
from opsloop.monitoring.reference import Reference
from opsloop.monitoring.window_part import WindowPart


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _spread(summary: NumericSummary | None) -> dict[str, Any] | None:
    """Count, mean, min, max and sketched median and 95th percentile of ``summary``."""
    if summary is None or summary.count == 0:
        return None
    return {
        "count": int(summary.count),
        "mean": _finite(summary.mean),
        "min": summary.minimum,
        "max": summary.maximum,
        "p50": _finite(summary.quantile(0.5)),
        "p95": _finite(summary.quantile(0.95)),
    }


def text_features(reference: Reference) -> tuple[str, ...]:
    """The reference's features that hold text (profiled with a length distribution).

    >>> import pandas as pd
    >>> from opsloop.monitoring.reference import set_reference
    >>> ref = set_reference(db, "txt", pd.DataFrame({"t": ["a", "b"], "x": [1.0, 2.0]}))
    >>> text_features(ref)
    ('t',)
    """
    return tuple(
        f
        for f in reference.features
        if f in reference.profile and reference.profile[f].text is not None
    )


def _lengths(values: pd.Series) -> np.ndarray:
    present = values[values.notna()]
    return np.fromiter((len(v) for v in present if isinstance(v, str)), dtype=np.int64, count=-1)


def input_length_metrics(
    window: WindowPart,
    reference: Reference,
    sample: pd.DataFrame | None,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The window's input length (see the module docstring): ``text`` per text feature,
    ``length_drift_share``, and ``records_per_request``; ``sample`` is the window's
    reservoir sample as a frame (``None`` once expired)."""
    text: dict[str, Any] = {}
    tested: list[tuple[str, float]] = []
    features = text_features(reference)
    # Read once per window, and only when there is text to measure.
    base_rows = reference.sample.frame() if features and sample is not None else None
    for feature in features:
        has = window.profile is not None and feature in window.profile
        column = window.profile[feature] if has else None
        found = _spread(None if column is None or column.text is None else column.text.characters)
        if found is None:
            continue
        found["reference_mean"] = _finite(reference.profile[feature].text.characters.mean)
        found["ks_statistic"], found["p_value"], found["p_adjusted"] = None, None, None
        found["drifted"] = None
        if sample is not None and feature in sample.columns:
            current = _lengths(sample[feature])
            base = _lengths(base_rows[feature])
            if current.size and base.size:
                result = stats.ks_2samp(base, current)
                found["ks_statistic"] = float(result.statistic)
                found["p_value"] = float(result.pvalue)
                tested.append((feature, float(result.pvalue)))
        text[feature] = found
    share = None
    if tested:
        adjusted = adjust_p_values([p for _, p in tested], "holm")
        for (feature, _), p in zip(tested, adjusted.tolist(), strict=True):
            text[feature]["p_adjusted"] = float(p)
            text[feature]["drifted"] = bool(p < alpha)
        share = sum(text[f]["drifted"] for f, _ in tested) / len(tested)
    return {
        "text": text,
        "length_drift_share": share,
        "records_per_request": _spread(window.batch_sizes),
    }
