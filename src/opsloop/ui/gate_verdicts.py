"""The release-gate verdicts recorded on one version, read from that version's entries of
the audit log (the registry's ``audit(name, version=...)``) for the version page: each
run's verdict, gate, baseline and data, and each check with its statistic, threshold and
verdict (entries recorded before the checks' numbers were kept name only the failed
checks)."""

from __future__ import annotations

from typing import Any

import pandas as pd

#: The audit actions a gate's verdict is recorded as.
VERDICT_ACTIONS = {"gate_passed": "passed", "gate_failed": "failed"}


def version_gate_verdicts(audit: pd.DataFrame, model: str, version: int) -> list[dict[str, Any]]:
    """The gate verdicts recorded on ``model`` version ``version`` in ``audit`` (the
    registry's audit table: the version's own entries, or any more), newest first.

    >>> audit = pd.DataFrame([{"time": pd.Timestamp(0, unit="ms", tz="UTC"), "actor": "ci",
    ...     "action": "gate_failed", "entity": "model:m/version:2", "reason": None,
    ...     "after": {"gate": "release", "gate_version": 1, "baseline": {"model": "m",
    ...     "version": 1}, "data": "holdout", "n_rows": 300, "checks": 1,
    ...     "failed": ["auc >= 0.8"], "results": [{"kind": "floor", "name": "auc >= 0.8",
    ...     "verdict": "fail", "reason": "auc 0.7", "statistic": 0.7, "p_value": None,
    ...     "threshold": 0.8}]}}])
    >>> found = version_gate_verdicts(audit, "m", 2)
    >>> found[0]["verdict"], found[0]["checks"][0]["statistic"], found[0]["baseline"]
    ('failed', 0.7, 'm v1')
    >>> version_gate_verdicts(audit, "m", 1)
    []
    """
    entity = f"model:{model}/version:{version}"
    found = audit[audit["action"].isin(VERDICT_ACTIONS) & (audit["entity"] == entity)]
    verdicts = []
    for entry in found.iloc[::-1].to_dict("records"):
        after = entry["after"] if isinstance(entry["after"], dict) else {}
        baseline = after.get("baseline") or {}
        verdicts.append(
            {
                "time": entry["time"],
                "actor": entry["actor"],
                "verdict": VERDICT_ACTIONS[entry["action"]],
                "gate": after.get("gate"),
                "gate_version": after.get("gate_version"),
                "baseline": (
                    f"{baseline['model']} v{baseline['version']}"
                    if "model" in baseline and "version" in baseline
                    else None
                ),
                "data": after.get("data"),
                "n_rows": after.get("n_rows"),
                "n_checks": after.get("checks"),
                "failed": list(after.get("failed") or ()),
                "checks": after.get("results"),
                "reason": entry["reason"],
            }
        )
    return verdicts
