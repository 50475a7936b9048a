"""A canary with quality gates (drift, the estimated accuracy) beside a rate gate, on the
deployment page, its live status and the results page of a real server: each page renders
every kind of gate, with the evidence of its kind, whatever the ramp's status (ramping from
the moment the rollout is set, completed, rolled back, halted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.server.running import running_server
from tests.ui.test_pages import session
from tests.ui.test_results_page import facts, rows

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.sequential import MeanGate
from opsloop.registry import ModelRegistry
from opsloop.server import create_app
from opsloop.serving import Deployments, Variant
from opsloop.serving.canary_rollout import observe_quality
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.rollout_state import locked_rollout, write_rollout_state

PAGES = ("/deployments/q-api", "/deployments/q-api/status", "/deployments/q-api/results")
GATES = {"drift": {"min_rows": 50}, "estimate": {}, "errors": {}}


@pytest.fixture
def served(database, artifacts, isolated_home):
    registry = ModelRegistry(database, artifacts, actor="ana")
    registry.register("m", b"v1", flavor="onnx")
    registry.register("m", b"v2", flavor="onnx")
    deployments = Deployments(database, actor="ana")
    deployments.deploy(
        "q-api",
        [
            Variant("stable", "m", version=1, weight=0.9),
            Variant("canary", "m", version=2, role="candidate", weight=0.1),
        ],
        strategy="canary",
    )
    deployments.set_rollout("q-api", steps=[0.2, 1.0], min_requests=10, gates=GATES)
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        yield client, database


def gate_rows(page: str) -> dict[str, list[str]]:
    return {row[0]: row for row in rows(page, "gates")}


def test_a_fresh_rollout_with_quality_gates_renders_on_every_page(served):
    client, _ = served
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        gates = gate_rows(page.text)
        assert sorted(gates) == ["drift", "errors", "estimate"]
        # gate, verdict, test, statistic, fail, pass, candidate, primary, evidence, params
        drift = gates["drift"]
        assert drift[:8] == ["drift", "continue", "drift_spending", "", "0.0250", "",
                             "0 rows", "0 rows"]  # fmt: skip
        assert drift[8] == "no look yet: the first comes at 50 candidate rows"
        assert drift[9] == "alpha=0.05, min_rows=50"
        estimate = gates["estimate"]
        assert estimate[1:3] == ["continue", "mean_msprt"]
        assert estimate[6:9] == ["0 rows", "0 rows", "no interval yet"]
        assert gates["errors"][6:9] == ["0 / 0", "0 / 0", ""]


def _judged(database) -> tuple[dict, MeanGate, pd.DataFrame, pd.DataFrame]:
    """The quality gates judged on rows as monitoring would give them: the candidate's
    inputs shifted by three standard deviations (the drift gate fails at its look 1, on 100
    candidate rows), and the arms' confidences (the estimate gate reads them in order)."""
    with database.write() as c:
        _, state, _ = locked_rollout(c, "q-api")
    rng = np.random.default_rng(7)
    primary = pd.DataFrame({"x": rng.normal(size=400)})
    candidate = pd.DataFrame({"x": rng.normal(3.0, size=100)})
    drift = DriftGate.from_dict(state["gates"]["drift"])
    drift.look(candidate, primary)
    estimate = MeanGate.from_dict(state["gates"]["estimate"])
    arms = rng.random(60) < 0.5
    estimate.update_many(arms, np.where(arms, 0.80, 0.95) + rng.normal(0, 0.02, 60))
    return {"drift": drift.to_dict(), "estimate": estimate.to_dict()}, estimate, candidate, primary


@pytest.mark.parametrize("status", ["ramping", "completed", "rolled_back", "halted"])
def test_judged_quality_gates_render_in_every_status(served, status):
    client, database = served
    judged, estimate, candidate, primary = _judged(database)
    policy = RolloutPolicy(steps=(0.2, 1.0), min_requests=10, gates=GATES)
    with database.write() as c:
        _, state, _ = locked_rollout(c, "q-api")
        transition = observe_quality(policy, state, judged, at_ms=1_000)
        assert transition is not None and transition.action == "rollback"
        # What the ramp holds once the rollback is carried out, refused, or (had the drift
        # gate held) the ramp completed.
        state["status"] = status
        if status == "completed":
            state["step"], state["share"] = 1, 1.0
        write_rollout_state(c, "q-api", state)
    # By hand: look k = 1 opens at min_rows * 2 = 100 rows and spends alpha / 4; looks 0
    # and 1 spend at most alpha / 2 + alpha / 4 = 0.0375. One feature: Holm changes nothing.
    ks = stats.ks_2samp(primary["x"], candidate["x"])
    est = estimate.decision()
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert facts(page.text)["status"] == status
        gates = gate_rows(page.text)
        drift = gates["drift"]
        assert drift[:8] == ["drift", "fail", "drift_spending", f"{ks.statistic:.4f}",
                             "0.0125", "", "100 rows", "400 rows"]  # fmt: skip
        assert drift[8] == (
            "look 1 at level 0.0125 (at most 0.0375 of alpha 0.05 spent); "
            f"feature 'x', adjusted p-value {ks.pvalue:.3g}"
        )
        assert gates["estimate"][6:8] == [f"{est.n_candidate} rows", f"{est.n_primary} rows"]
        # The estimate gate's bounds are of the primary's accuracy minus the candidate's.
        assert gates["estimate"][8] == (
            f"candidate minus primary in [{-est.upper:.4f}, {-est.lower:.4f}]"
        )
        # It holds the true difference, 0.80 - 0.95, on these 60 rows.
        assert est.n_candidate + est.n_primary == 60 and -est.upper < -0.15 < -est.lower
        if path != "/deployments/q-api/status":
            assert "(gate drift failed at the candidate's " in page.text
