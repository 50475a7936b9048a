"""Reading a value back from a server's ``/metrics`` text, for the tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_value(text: str, name: str, labels: dict) -> float | None:
    """The value of sample ``name`` whose labels include ``labels`` in the Prometheus
    exposition ``text``; ``None`` when there is none."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None
