"""How many threads the library's repeated model fits and predictions use.

The classifier drift tests fit a gradient-boosted model per fold, and the explanations call
a model hundreds of times on small batches. scikit-learn's histogram gradient boosting
parallelises its fits and predictions with OpenMP, and on a machine shared with other work
its idle threads spin while they wait: on a busy two-core machine ten small fits cost
46.7 CPU-s with the default thread count against 2.7 CPU-s with one thread. These calls
therefore run with one thread unless told otherwise (``n_jobs``); the fitted models and the
predictions, and so the results, are the same whatever the thread count.

>>> from sklearn.ensemble import HistGradientBoostingClassifier  # loads OpenMP
>>> from threadpoolctl import threadpool_info
>>> with fit_threads(1):
...     {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}
{1}
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from threadpoolctl import threadpool_limits


def fit_threads(n_jobs: int | None) -> AbstractContextManager:
    """A context in which OpenMP runs at most ``n_jobs`` threads (``None``: its default).

    >>> fit_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: n_jobs must be a positive integer or None, got 0
    """
    if n_jobs is None:
        return nullcontext()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return threadpool_limits(limits=n_jobs, user_api="openmp")
