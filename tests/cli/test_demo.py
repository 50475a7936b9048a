"""The demo, the project's main job, runs end to end and writes what it says."""

import json
import os
import re

from rich.console import Console

from opsloop.cli.demo import run_demo
from opsloop.data.schema import Schema


def test_demo_writes_every_artifact_and_finds_the_planted_problems(tmp_path, monkeypatch):
    # A configured store or server elsewhere is left alone: the demo keeps its own.
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("OPSLOOP_STORE_URI", elsewhere)
    monkeypatch.setenv("OPSLOOP_TRACKING_URI", "http://127.0.0.1:9")
    console = Console(record=True, width=200)
    paths = run_demo(tmp_path, rows=4_000, seed=3, console=console)
    assert not (tmp_path / "elsewhere.db").exists()
    assert os.environ["OPSLOOP_STORE_URI"] == elsewhere
    for path in paths.values():
        assert path.exists() and path.stat().st_size > 0
    text = console.export_text()
    # Schema skew planted in serving data: an unseen device and out-of-range ages.
    assert "device: unknown_category (80 rows)" in text
    assert "age: out_of_range" in text
    schema = Schema.from_yaml(paths["schema"])
    assert "default" in schema.names
    drift = json.loads(paths["drift_json"].read_text())
    drifted = {c["column"] for c in drift["columns"] if c["drifted"]}
    assert {"salary", "device", "age"} <= drifted
    stream = json.loads(paths["error_stream"].read_text())
    change = stream["change_at"]
    adwin = next(d for d in stream["detectors"] if d["detector"].startswith("ADWIN"))
    assert any(change <= a < change + 500 for a in adwin["alarms"])
    # Both models tracked and registered; the protected alias moved only after approval.
    assert "-> credit-default v1" in text and "-> credit-default v2" in text
    assert "after approval by risk-officer" in text and "hash chain intact" in text
    # The deployment follows the champion alias; the challenger runs in its shadow.
    champion = "v2" if "champion -> v2" in text else "v1"
    challenger = "v1" if champion == "v2" else "v2"
    assert f"credit-api live (primary, weight 1) serves credit-default {champion}" in text
    assert f"credit-api shadow (shadow, weight 0) serves credit-default {challenger}" in text
    # The data plane answered held-out rows; the shadow answered every copy off the path.
    flat = " ".join(text.split())  # long lines wrap at the console's width
    assert "credit-api answered 300 requests" in flat
    assert "the shadow answered 300 copies off the request path (dropped 0)" in flat
    assert "600 prediction events recorded" in flat
    # The challenger meets the release gate first; only if it passes, a canary follows that
    # ramps while its sequential gates hold (or one rolls it back).
    gate = re.search(r"release gate on credit-default v\d: (passed|FAILED)", flat)
    assert gate is not None and "auc non-inferiority (delong)" in flat
    if gate.group(1) == "FAILED":
        assert "the gate blocks credit-default" in flat and "canary at 10%" not in flat
    else:
        assert "credit-api: canary at 10%" in flat
        # Each gate's sequential statistic against its threshold, whatever the outcome.
        for gate_name in ("errors", "disagreement", "metric"):
            assert re.search(rf"gate {gate_name}: (continue|pass|fail), statistic", flat)
        outcome = re.search(r"last change: rollout: (.*?) gate errors:", flat)
        assert outcome is None or re.search(r"back on live|to \d+%", outcome.group(1))
    assert "the three slices with the most room for improvement" in text
    assert "plotly" in paths["analysis_champion"].read_text()
    # The loop closes: the labelling rule of the served traffic changes at window 2; the
    # windows before show no decay, window 2 shows concept drift (inputs unchanged), the
    # retraining policy fires on it, trains on that window's rows only, and the new version
    # meets the gate before its canary starts (or the gate stops it, and nothing deploys).
    loop = flat.split("8. monitor, retrain, gate, canary", 1)[1]
    for k in (0, 1):
        assert f"window {k} (before the change, live): accuracy" in loop
        assert re.search(rf"window {k} \(before the change, live\): [^)]*decay none", loop)
    assert re.search(r"window 2 \(after the change, live\): .*? decay concept_drift", loop)
    # ADWIN signals within a window of the change; the change is estimated near it.
    adwin = re.search(
        r"ADWIN on the error stream: alarm at row ([\d,]+); the change estimated at row "
        r"([\d,]+) \(injected at row 1,200\)",
        loop,
    )
    assert adwin is not None
    alarm, estimate = (int(g.replace(",", "")) for g in adwin.groups())
    assert 1_200 <= alarm < 1_800 and abs(estimate - 1_200) <= 50
    assert "alert: concept_drift > 0 -> retrain(train=opsloop.cli.demo:train_credit_model)" in loop
    assert "data window: 600 labelled rows served from 2.00 h to 3.00 h" in loop
    retrain = re.search(r"retrain (done|blocked): gate retrain release v1: (PASSED|FAILED)", loop)
    assert retrain is not None
    if retrain.group(1) == "done":
        assert "canary of credit-default v3 at 10%" in loop
        assert re.search(r"credit-api now: canary, live v\d 0.9, retrained v3 0.1", loop)
    else:
        assert "credit-api now: single" in loop
    assert "monitoring report ->" in loop
