"""Runs holding HTML reports for the reports pages: a real drift report (breast cancer
features against a shifted copy, plotly.js inline), a report whose scripts try to reach
the dashboard, a report whose name is markup, and an artifact that is not a report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sklearn.datasets import load_breast_cancer

from opsloop.reports.drift import drift_report
from opsloop.tracking import LocalTrackingStore

#: A report whose script tries what a hostile report would and writes what it got into its
#: own page: the dashboard's document, its cookies, its storage.
HOSTILE = b"""<!doctype html><html lang="en"><head><title>hostile</title></head><body>
<p id="tried">not run</p>
<script>
var found = [];
try { found.push("parent title " + parent.document.title); parent.document.title = "owned"; }
catch (e) { found.push("parent blocked"); }
try { found.push("cookie " + JSON.stringify(document.cookie)); }
catch (e) { found.push("cookie blocked"); }
try { found.push("storage " + window.localStorage.length); }
catch (e) { found.push("storage blocked"); }
found.push("origin " + window.origin);
document.getElementById("tried").textContent = found.join("; ");
</script></body></html>"""
MARKUP_NAME = "<img src=x onerror=alert(1)>.html"


@dataclass
class Reports:
    drift_run: str
    hostile_run: str
    drift_bytes: bytes


def populate_reports(tracking: LocalTrackingStore, folder: Path) -> Reports:
    """Log the reports, each in its own run, the drift report's run newest."""
    data = load_breast_cancer(as_frame=True).frame
    features = ["mean radius", "mean texture", "worst area"]
    reference, current = data[features].iloc[:250], data[features].iloc[250:].copy()
    current["mean radius"] += 2 * reference["mean radius"].std()
    path = drift_report(reference, current).to_html(folder / "drift.html")
    hostile = tracking.create_run("audits", name="hostile", start_ms=1_000)
    tracking.log_artifact(hostile, HOSTILE, "hostile.html")
    tracking.log_artifact(hostile, b"<p>odd name</p>", MARKUP_NAME)
    tracking.log_artifact(hostile, b"\x00weights", "model/weights.bin")
    drift = tracking.create_run("churn", name="drift check", start_ms=2_000)
    tracking.log_artifact(drift, path, "reports/drift.html")
    return Reports(drift, hostile, path.read_bytes())
