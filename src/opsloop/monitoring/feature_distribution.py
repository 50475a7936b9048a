"""One feature's distribution in a monitoring window against the reference: the histogram
a person looks at after a drift test flags the feature.

Both sides come from rows, not summaries: the window's bounded sample (every row of the
window while it has fewer than the sample's size) and the reference's kept sample, the rows
the drift tests compare. A numeric feature is cut into ``bins`` equal intervals over the
range of both sides (``numpy.histogram_bin_edges`` of the values together), each side counted
with ``numpy.histogram`` on those edges; a categorical one is counted per value, the
:data:`MAX_CATEGORIES` most frequent over both sides by name and the rest as ``other``.
Missing values are counted apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

#: Categories named in a categorical feature's distribution; the rest are counted together.
MAX_CATEGORIES = 30


@dataclasses.dataclass(frozen=True)
class FeatureDistribution:
    """``feature``'s histogram in the window (``window``) and the reference (``reference``):
    for a ``numeric`` feature the ``edges`` of the bins (one more than the counts), for a
    ``categorical`` one the ``categories`` counted and the rows of any other value
    (``window_other``, ``reference_other``); the rows each side had and how many lacked
    the feature.

    >>> d = feature_distribution(pd.Series([1.0, 2.0, None]), pd.Series([0.0, 2.0]), bins=2)
    >>> d.kind, d.edges, d.window, d.reference, d.window_missing
    ('numeric', [0.0, 1.0, 2.0], [0, 2], [1, 1], 1)
    """

    kind: str
    edges: list[float] | None
    categories: list[str] | None
    window: list[int]
    reference: list[int]
    window_rows: int
    reference_rows: int
    window_missing: int
    reference_missing: int
    window_other: int = 0
    reference_other: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The distribution as a JSON-safe dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> FeatureDistribution:
        """The distribution :meth:`to_dict` wrote."""
        return cls(**{name: document[name] for name in cls.__dataclass_fields__})


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def feature_distribution(
    window: pd.Series, reference: pd.Series, bins: int = 20
) -> FeatureDistribution:
    """The histograms of one feature's ``window`` and ``reference`` values (see the module).

    >>> d = feature_distribution(pd.Series(["a", "b", "b"]), pd.Series(["a", "c"]))
    >>> d.kind, d.categories, d.window, d.reference
    ('categorical', ['a', 'b', 'c'], [1, 2, 0], [1, 0, 1])
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
        raise ValueError(f"bins must be an integer from 1 to 1000, got {bins!r}")
    present_w, present_r = window.dropna(), reference.dropna()
    missing = (len(window) - len(present_w), len(reference) - len(present_r))
    numeric = _is_numeric(present_w.infer_objects()) or len(present_w) == 0
    numeric = numeric and (_is_numeric(present_r.infer_objects()) or len(present_r) == 0)
    if numeric and len(present_w) + len(present_r):
        w = present_w.to_numpy(np.float64)
        r = present_r.to_numpy(np.float64)
        edges = np.histogram_bin_edges(np.concatenate([w, r]), bins=bins)
        return FeatureDistribution(
            "numeric",
            edges.tolist(),
            None,
            np.histogram(w, edges)[0].tolist(),
            np.histogram(r, edges)[0].tolist(),
            len(window),
            len(reference),
            *missing,
        )
    w_counts = present_w.astype(str).value_counts()
    r_counts = present_r.astype(str).value_counts()
    total = w_counts.add(r_counts, fill_value=0)
    # Most frequent first, ties by name, so the order does not depend on hashing.
    named = sorted(total.index, key=lambda c: (-total[c], c))[:MAX_CATEGORIES]
    w_named = [int(w_counts.get(c, 0)) for c in named]
    r_named = [int(r_counts.get(c, 0)) for c in named]
    return FeatureDistribution(
        "categorical",
        None,
        [str(c) for c in named],
        w_named,
        r_named,
        len(window),
        len(reference),
        *missing,
        int(w_counts.sum()) - sum(w_named),
        int(r_counts.sum()) - sum(r_named),
    )
