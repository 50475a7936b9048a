"""A deployment's results page over HTTP against a real server on loopback: the canary's
ramp, gate and rollback, the bandit's posteriors and shares, the A/B report (the CLI's
numbers and statsmodels'), and the shadow's agreement, each equal to numbers derived by
hand or by a reference; a caller's mistake is a page naming the field."""

from __future__ import annotations

import html
import json
import math
import re
from types import SimpleNamespace

import pytest
from scipy import integrate, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from tests.server.running import running_server
from tests.ui.results_data import END, MIN_REQUESTS, REWARDS, STEPS, populate_results
from tests.ui.test_pages import session
from typer.testing import CliRunner

from opsloop.cli.deployments import deployments_app
from opsloop.registry import add_user
from opsloop.server import create_app
from opsloop.serving import Deployments, HttpDeployments, Variant
from opsloop.serving.rollout_observer import RolloutObserver


@pytest.fixture
def served(database, artifacts, isolated_home):
    results = populate_results(database, artifacts)
    app = create_app(database, artifacts)
    with running_server(app) as url, session(url, app.state.installation_token) as client:
        yield client, results, database


def rows(page: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def facts(page: str) -> dict[str, str]:
    block = re.search(r'<dl class="facts canary">(.*?)</dl>', page, re.S).group(1)
    return {
        dt: html.unescape(re.sub(r"<[^>]+>", "", dd)).strip()
        for dt, dd in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block, re.S)
    }


def test_the_canary_shows_its_ramp_its_gate_and_its_rollback(served):
    client, results, _ = served
    page = client.get("/deployments/canary-api/results")
    assert page.status_code == 200
    # By hand: a failing answer at 50% moves the SPRT by log(0.75 / 0.5) (the candidate's
    # share of errors if it fails 3 times as often, against its traffic share); the gate
    # fails at its exact threshold for the shares 20% and 50%, 2.914 (Ville's log(20) would
    # not change the count), after ceil(2.914 / log 1.5) = 8 failures. The 10 good answers
    # at 20% are no errors and move nothing.
    threshold = results.gate.fail_threshold
    assert threshold == pytest.approx(2.914) and threshold < math.log(20)
    assert results.failures_to_rollback == math.ceil(threshold / math.log(1.5)) == 8
    statistic = 8 * math.log(1.5)
    assert results.gate.log_likelihood_ratio == pytest.approx(statistic, rel=1e-12)
    assert facts(page.text) | {"set by": ""} == {
        "status": "rolled_back",
        "candidate": "canary against stable",
        "step": "2 of 3 (50.0%)",
        "candidate's traffic now": "0.0%",
        "ramp": "20.0% → 50.0% → 100.0%",
        "requests per step": "10 to the candidate (8 at this step so far)",
        "set by": "",
    }
    params = "alpha=0.05, detect_ratio=3, ratio_margin=1, margin=0, shares=[0.2, 0.5]"
    assert rows(page.text, "gates") == [
        ["errors", "fail", "rate_sprt", f"{statistic:.4f}", f"{threshold:.4f}", "",
         "8 / 18", "0 / 0", "", params]
    ]  # fmt: skip
    changes = rows(page.text, "ramp")
    assert [(row[3], row[4]) for row in changes] == [
        ("rolled back", "0.0%"),
        ("step", "50.0%"),
        ("step", "20.0%"),
        ("rollout set", ""),
    ]
    assert changes[0][5].startswith(
        f"rollout: gate 'errors' failed (rate_sprt statistic {statistic:.4f} >= "
        f"threshold {threshold:.4f}; candidate 8 of 18, primary 0 of 0)"
    )
    assert (
        "Last decision: <strong>rollback</strong> (gate errors failed at the candidate's 50.0%)"
        in page.text
    )
    assert '<strong class="outcome carried-out">carried out</strong>.</p>' in page.text
    assert 'id="decision-next"' not in page.text


def test_a_rollout_whose_candidate_is_gone_still_shows(served, database):
    # A promotion can redeploy the candidate's version under another name; the rollout's
    # record stays and names a variant the deployment no longer has.
    client, _, _ = served
    Deployments(database).deploy(
        "canary-api", [Variant("live", "m", version=2)], reason="version 2 answers alone"
    )
    page = client.get("/deployments/canary-api/results")
    assert page.status_code == 200, page.text[-500:]
    assert facts(page.text)["candidate's traffic now"] == "none: canary is no longer a variant"


def test_a_canary_that_stepped_shows_its_last_step(served, database):
    # Every decision but a rollback names no failed gate.
    client, _, _ = served
    deployments = Deployments(database)
    deployments.deploy(
        "step-api",
        [
            Variant("stable", "m", version=1, weight=0.8),
            Variant("canary", "m", version=2, role="candidate", weight=0.2),
        ],
        strategy="canary",
        reason="try version 2",
    )
    deployments.set_rollout("step-api", steps=STEPS, min_requests=MIN_REQUESTS)
    observer = RolloutObserver(database, deployments)
    for _ in range(MIN_REQUESTS):
        served_now = SimpleNamespace(definition=deployments.get("step-api"))
        observer.observe(served_now, "canary", failed=False, latency_ms=1.0)
    page = client.get("/deployments/step-api/results")
    assert page.status_code == 200, page.text[-500:]
    assert facts(page.text)["step"] == "2 of 3 (50.0%)"
    assert "Last decision: <strong>step</strong>, candidate to 50.0%" in page.text


class RaisesOnDeploy(Deployments):
    """A control plane whose deploy raises the same unexpected error each time."""

    def _deploy(self, *args, **kwargs):
        raise RuntimeError("disk full")


def test_a_halted_canary_says_its_rollback_was_not_made_why_and_what_to_do(served, database):
    client, _, _ = served
    deployments = Deployments(database)
    deployments.deploy(
        "halt-api",
        [
            Variant("stable", "m", version=1, weight=0.8),
            Variant("canary", "m", version=2, role="candidate", weight=0.2),
        ],
        strategy="canary",
        reason="try version 2",
    )
    deployments.set_rollout("halt-api", steps=STEPS, min_requests=10_000)
    observer = RolloutObserver(database, RaisesOnDeploy(database))
    request = {"candidate": True, "failed": True, "latency_ms": 1.0, "share": 0.2,
               "disagrees": None, "anomalous": None}  # fmt: skip
    for _ in range(100):
        observer.record("halt-api", [], request)
    assert deployments.rollout("halt-api")["state"]["status"] == "halted"
    page = client.get("/deployments/halt-api/results")
    assert page.status_code == 200, page.text[-500:]
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.text)))
    assert facts(page.text)["status"] == "halted"
    assert facts(page.text)["candidate's traffic now"] == "20.0%"
    assert (
        "Last decision: rollback (gate errors failed at the candidate's 20.0%)" in text
        and ": not carried out (RuntimeError: disk full). The ramp is halted: it changes the "
        "deployment no more. Decide yourself: take the candidate out (its weight to 0 on the "
        "deployment page) or restore an earlier definition, or keep the traffic as it is; set "
        "the rollout again to start a new ramp. It was tried 5 times; the first cause: "
        "RuntimeError: disk full."
        in text
    )
    assert "on the candidate's requests alone, each a trial scored by the share of its records" in (
        text
    )


def test_a_persons_reason_written_like_the_rollouts_is_not_a_rollout_step(served, database):
    # Anyone who may deploy can type any reason, the rollout's sentence and evidence as JSON
    # included, in Python or through the REST API: only an entry carrying the rollout
    # controller's decision is a decision to show.
    client, _, _ = served
    deployments = Deployments(database)
    variants = [
        Variant("stable", "m", version=1, weight=0.8),
        Variant("canary", "m", version=2, role="candidate", weight=0.2),
    ]
    deployments.deploy("typed-api", variants, strategy="canary", reason="try version 2")
    deployments.set_rollout("typed-api", steps=STEPS, min_requests=MIN_REQUESTS)
    observer = RolloutObserver(database, deployments)
    for _ in range(MIN_REQUESTS):
        served_now = SimpleNamespace(definition=deployments.get("typed-api"))
        observer.observe(served_now, "canary", failed=False, latency_ms=1.0)
    stepped = deployments.get("typed-api").variants
    for reason in ("rollout: forged evidence=notjson", "rollout: forged evidence=1",
                   'rollout: forged evidence=["failed_gate"]'):  # fmt: skip
        deployments.deploy("typed-api", stepped, strategy="canary", reason=reason)
    editor = add_user(database, "eda", "editor")[1]
    remote = HttpDeployments(str(client.base_url), token=editor)
    forged = {"failed_gate": "errors", "step": 1, "share": 0.5, "gates": {}}
    remote.deploy(
        "typed-api",
        [v.with_weight(1.0 if v.role == "primary" else 0.0) for v in stepped],
        strategy="blue_green",
        reason=f"rollout: gate 'errors' failed (forged); all traffic back on stable "
        f"evidence={json.dumps(forged)}",
    )
    remote.deploy(
        "typed-api",
        [v.with_weight(0.0 if v.role == "primary" else 1.0) for v in stepped],
        strategy="blue_green",
        reason='rollout: canary to 100% (forged) evidence={"step": 2}',
    )
    history = remote.history("typed-api")
    remote.close()
    assert history["reason"].iloc[-1].startswith("rollout: canary to 100% (forged)")
    assert history["decision"].iloc[-2:].tolist() == [None, None]
    # Once a user exists, the page is read in that user's session.
    with session(str(client.base_url), editor) as editors:
        page = editors.get("/deployments/typed-api/results")
    assert page.status_code == 200, page.text[-500:]
    assert "Last decision: <strong>step</strong>, candidate to 50.0%" in page.text
    assert "forged" not in page.text
    # The ramp's own changes: setting it, and the step it took (to 50%).
    assert [(row[3], row[4]) for row in rows(page.text, "ramp")] == [
        ("step", "50.0%"),
        ("rollout set", ""),
    ]


def test_the_bandit_shows_each_arms_posterior_and_share(served):
    client, _, database = served
    page = client.get("/deployments/bandit-api/results").text
    shares = Deployments(database).rollout("bandit-api")["shares"]
    # Beta(1 + successes, 1 + failures): a won 2 of 4, b 4 of 5.
    assert rows(page, "arms") == [
        ["a", "4", "2", "0.5000", "Beta(3, 3)", "0.5000", f"{shares['a'] * 100:.1f}%"],
        ["b", "5", "4", "0.8000", "Beta(5, 2)", "0.7143", f"{shares['b'] * 100:.1f}%"],
    ]
    # The share is b's chance of the larger draw, estimated from 10,000 draws.
    exact, _ = integrate.quad(lambda x: stats.beta(5, 2).pdf(x) * stats.beta(3, 3).cdf(x), 0, 1)
    assert shares["b"] == pytest.approx(exact, abs=0.02)
    assert sum(REWARDS["b"]) == 4


def test_the_ab_report_gives_the_clis_numbers_and_statsmodels(served):
    client, _, _ = served
    page = client.get("/deployments/ab-api/results").text
    cli = CliRunner().invoke(deployments_app, ["ab-report", "ab-api", "--json"])
    assert cli.exit_code == 0, cli.output
    report = json.loads(cli.output)
    b = report["comparisons"]["b"]
    # By hand: a (even requests) earned 1, 0, 1, 1, 0; b (odd) 1, 1, 1, 1, 0.
    assert [(arm["outcomes"], arm["mean"]) for arm in report["arms"]] == [(5, 0.6), (5, 0.8)]
    _, p_value = proportions_ztest([4, 3], [5, 5])
    low, high = confint_proportions_2indep(4, 5, 3, 5, method="newcomb", compare="diff")
    assert (b["p_value"], b["ci_low"], b["ci_high"]) == pytest.approx(
        (p_value, low, high), abs=1e-12
    )
    assert rows(page, "ab") == [
        ["a", "primary", "m/1", "5", "5", "0.6000", "reference arm"],
        ["b", "candidate", "m/2", "5", "5", "0.8000", f"{b['difference']:.4f}",
         f"[{b['ci_low']:.4f}, {b['ci_high']:.4f}]", f"{b['p_value']:.4f}",
         str(int(b["required_per_arm"]))],
    ]  # fmt: skip
    assert "Outcome <strong>reward</strong> compared as a proportion" in page
    assert "with the 95% interval of the difference" in page


def test_the_shadows_agreement_over_a_window(served):
    client, _, _ = served
    page = client.get(f"/deployments/ab-api/results?window=1h&until={END}").text
    # 10 copies: 8 answered of which 1 failed, 2 unanswered; of the 7 answers all but the
    # one on request 2 agree: 6 / 7. Each request is one record: the same per record.
    assert rows(page, "shadows") == [
        ["s", "1.0", "0", "10", "7", "1", "2", "6", f"{6 / 7 * 100:.1f}%", "7", "6",
         f"{6 / 7 * 100:.1f}%"]
    ]  # fmt: skip
    earlier = client.get("/deployments/ab-api/results?window=5m&until=2025-12-31T23:00:00")
    assert rows(earlier.text, "shadows") == [
        ["s", "1.0", "0", "0", "0", "0", "0", "0", "", "0", "0", ""]
    ]
    assert "No rollout is set" in page


def test_a_mistake_is_a_page_naming_the_field(served):
    client, _, _ = served
    for path, status, message in [
        ("/deployments/ab-api/results?outcome=clicks", 422, "outcome: must be one of reward"),
        ("/deployments/ab-api/results?window=2d", 422, "window: must be one of 5m"),
        ("/deployments/ab-api/results?until=soon", 422, "until: needs an ISO time"),
        ("/deployments/nope/results", 404, "no deployment named &#39;nope&#39;"),
    ]:
        response = client.get(path)
        assert response.status_code == status and message in response.text, path


def test_the_ab_report_shows_while_another_connection_holds_the_sqlite_write_lock(served, tmp_path):
    """Viewing the page may keep the report's sums; a writer holding SQLite's lock makes the
    page skip that, not wait out the busy timeout and answer 500."""
    import sqlite3

    client, _, database = served
    if database.dialect != "sqlite":
        pytest.skip("SQLite's write lock")
    import sqlalchemy as sa

    from opsloop.serving.ab_arm_sums import KEEP_RETRY_AFTER_MS
    from opsloop.store import tables

    before = rows(client.get("/deployments/ab-api/results").text, "ab")
    # With no kept sums the next view writes them.
    with database.write() as connection:
        connection.execute(tables.ab_report_sums.delete())
    writer = sqlite3.connect(str(tmp_path / "store.db"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        response = client.get("/deployments/ab-api/results")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert response.status_code == 200
    assert rows(response.text, "ab") == before
    with database.read() as connection:
        kept = connection.execute(sa.select(sa.func.count()).select_from(tables.ab_report_sums))
        assert kept.scalar_one() == 0  # skipped under the lock
    # The reports leave the store's row alone for a while after one could not write it.
    client.get("/deployments/ab-api/results")
    with database.read() as connection:
        kept = connection.execute(sa.select(sa.func.count()).select_from(tables.ab_report_sums))
        assert kept.scalar_one() == 0
    clock = database.clock
    database.clock = lambda: clock() + KEEP_RETRY_AFTER_MS
    client.get("/deployments/ab-api/results")
    with database.read() as connection:
        kept = connection.execute(sa.select(sa.func.count()).select_from(tables.ab_report_sums))
        assert kept.scalar_one() == 1
