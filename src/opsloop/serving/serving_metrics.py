"""The data plane's Prometheus metrics, per deployment and variant.

Each runtime keeps its own ``prometheus_client`` registry (two runtimes in one process,
as in tests, never share counts):

* ``opsloop_predictions_total{deployment, variant, role}``: answers given (``role`` is
  ``primary`` for the variant that answered, ``shadow`` for a shadow's copy);
* ``opsloop_prediction_errors_total{deployment, variant, role, kind}``: requests refused
  (``invalid_input``) and answers that failed (``model_error``; ``process_ended`` for a
  shadow's copies lost with its process);
* ``opsloop_prediction_latency_seconds{deployment, variant, role}``: a histogram of the time
  the model took, validation included;
* ``opsloop_shadow_dropped_total{deployment, variant}``: request copies a full shadow queue
  dropped;
* ``opsloop_shadow_sampled_out_total{deployment, variant}``: requests whose copy a shadow's
  ``shadow_sample`` left out (:mod:`.shadow_sampling`), apart from the drops;
* ``opsloop_shadow_restarts_total{deployment, variant}``: shadow processes started again
  after a crash or a hang (:mod:`.shadow_process`);
* ``opsloop_events_dropped_total``: prediction events a full event buffer dropped;
* ``opsloop_assertion_firings_total{deployment, rule, action}``: records a model assertion
  fired on;
* ``opsloop_review_queued_total{deployment, reason}``: requests sent to the review queue.

The runtime adds the monitoring's gauges to the same registry (the latest evaluated
window's drift share and task metric, and the alerts, per deployment and variant; see
:mod:`opsloop.monitoring.monitoring_gauges`), and the canary rollouts' step, weights,
status and gate evidence (statistic, threshold, samples per arm; see
:mod:`.rollout_gauges`).

Labels come from the store's deployment, variant and rule names only, never from a
request, so their number stays bounded.

**Several worker processes** (``opsloop serve --workers N``) share one count: when
``PROMETHEUS_MULTIPROC_DIR`` names a directory before ``prometheus_client`` is imported,
the counters and histograms of every process are written to files there
(``prometheus_client``'s multiprocess mode), and :meth:`ServingMetrics.exposition` sums
them over every process that ever counted, so a scrape of any worker shows the whole
server's counts (a worker that ended keeps its counts; none goes backwards). The gauges read
from the store or the control plane (:meth:`ServingMetrics.add_collector`) are shown once,
as the answering worker reads them.

>>> metrics = ServingMetrics()
>>> metrics.answered("api", "stable", "primary", 0.002)
>>> b'opsloop_predictions_total{deployment="api",role="primary",variant="stable"} 1.0' in (
...     metrics.exposition())
True
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

#: The media type of :meth:`ServingMetrics.exposition`.
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The variable naming the directory where worker processes write their counts.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory() -> str | None:
    """The directory the counts of every worker process go to (``$PROMETHEUS_MULTIPROC_DIR``,
    or the lower-case name ``prometheus_client`` also reads), ``None`` in a single process.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": "/tmp/counts"}):
    ...     multiprocess_directory()
    '/tmp/counts'
    """
    # The lower-case name is the one prometheus_client read first, and still reads.
    return os.environ.get(MULTIPROCESS_VARIABLE) or os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112


# From 0.25 ms: a small model answers in well under a millisecond.
_LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class ServingMetrics:
    """The counters and histogram of one data plane (see the module docstring).

    >>> ServingMetrics().registry is not ServingMetrics().registry
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: What a scrape reads: the registry, or in multiprocess mode the counts of every
        #: process (summed from their files) and the collectors given to add_collector.
        self._scraped = self.registry
        directory = multiprocess_directory()
        if directory is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            self._scraped = CollectorRegistry()
            MultiProcessCollector(self._scraped, path=directory)
        variant_labels = ("deployment", "variant", "role")
        self.predictions = Counter(
            "opsloop_predictions",
            "Answers given, per deployment, variant and role.",
            variant_labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "opsloop_prediction_errors",
            "Requests refused (invalid_input) and answers that failed (model_error).",
            (*variant_labels, "kind"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "opsloop_prediction_latency_seconds",
            "Seconds a variant took to answer, validation included.",
            variant_labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "opsloop_shadow_dropped",
            "Request copies dropped because a shadow's queue was full.",
            ("deployment", "variant"),
            registry=self.registry,
        )
        self.shadow_sampled_out = Counter(
            "opsloop_shadow_sampled_out",
            "Requests whose copy a shadow's sample left out (not sent, not a drop).",
            ("deployment", "variant"),
            registry=self.registry,
        )
        self.shadow_restarts = Counter(
            "opsloop_shadow_restarts",
            "Shadow processes started again after a crash or a hang.",
            ("deployment", "variant"),
            registry=self.registry,
        )
        self.batch_records = Histogram(
            "opsloop_batch_records",
            "Records per model call of a micro-batched variant.",
            ("deployment", "variant"),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "opsloop_events_dropped",
            "Prediction events dropped because the event buffer was full.",
            registry=self.registry,
        )

        self.assertion_firings = Counter(
            "opsloop_assertion_firings",
            "Records a model assertion fired on, per deployment, rule and action.",
            ("deployment", "rule", "action"),
            registry=self.registry,
        )
        self.review_queued = Counter(
            "opsloop_review_queued",
            "Requests sent to the review queue, per deployment and reason.",
            ("deployment", "reason"),
            registry=self.registry,
        )

    def answered(self, deployment: str, variant: str, role: str, seconds: float) -> None:
        """Count an answer and its latency."""
        self.predictions.labels(deployment, variant, role).inc()
        self.latency.labels(deployment, variant, role).observe(seconds)

    def failed(self, deployment: str, variant: str, role: str, kind: str) -> None:
        """Count a refused request or a failed answer (``kind``)."""
        self.errors.labels(deployment, variant, role, kind).inc()

    def fired(self, deployment: str, counts: dict[str, int], actions: dict[str, str]) -> None:
        """Count each rule's firings (``counts``: records per rule, ``actions``: its action).

        >>> metrics = ServingMetrics()
        >>> metrics.fired("api", {"minor": 2}, {"minor": "override"})
        >>> metrics.assertion_firings.labels("api", "minor", "override")._value.get()
        2.0
        """
        for rule, count in counts.items():
            self.assertion_firings.labels(deployment, rule, actions.get(rule, "")).inc(count)

    def add_collector(self, collector: Collector) -> None:
        """Show ``collector``'s metrics (gauges read from the store or a control plane) at
        each scrape, beside the counts.

        >>> from prometheus_client.core import GaugeMetricFamily
        >>> class Answer:
        ...     def collect(self):
        ...         yield GaugeMetricFamily("answer", "The answer.", value=42)
        >>> metrics = ServingMetrics()
        >>> metrics.add_collector(Answer())
        >>> b"answer 42.0" in metrics.exposition()
        True
        """
        self.registry.register(collector)
        if self._scraped is not self.registry:
            self._scraped.register(collector)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text exposition format (in multiprocess mode the
        counts of every process, see the module)."""
        return generate_latest(self._scraped)
