"""``opsloop demo``: the project's main job on generated credit data.

Training data comes from :func:`opsloop.datasets.credit`; serving data from the same
generator with a covariate shift (richer, older applicants applying more on mobile) and two
kinds of schema skew injected (an unseen device, out-of-range ages). The job infers the
training schema, validates serving data against it, profiles both sides, compares them for
drift and writes the reports, printing where each file is. It then trains, tracks and
registers two models, deploys the champion with the challenger in shadow and answers
held-out applications through the data plane, gates the challenger against the champion
and, when it passes, puts it in a canary whose sequential gates ramp it or roll it back
as labels come back. Last, it closes the loop: monitoring watches the served traffic,
whose labelling rule changes part way; the policy that fires retrains on the data since
the change, gates the new version against the one serving and starts its canary, which
ramps while its gates hold; once it has all the traffic, the promotion policy makes it the
primary and moves the ``champion`` alias to it (or a gate rolls it back, with its evidence).
Its HTML reports (drift, the two error analyses, monitoring) are logged to the run ``demo
reports`` of the ``credit-demo`` experiment in the demo's store, so the dashboard's Reports
page lists and opens them.

With ``transient_change`` (``opsloop demo --transient-change``) the labelling rule changes
back to the first one an hour after it changed, as the retrained version's canary starts:
that version learnt a rule that no longer holds, answers worse than the champion, and its
canary's metric gate rolls it back, with the evidence printed and in the audit log. It is
the way to see a rollback; the loop closes that way too. (A model trained on shuffled
labels would not show one: the release gate's AUC floor stops it before any canary.)

:func:`run_demo` raises :class:`DemoFailed` with the reason when a step fails or the loop
does not close. The demo sends its traffic as an application would: over HTTP, to a server
(control plane and data plane in one app, :mod:`opsloop.cli.demo_server`) it starts on its
store as it deploys, so the canary's steps and rollbacks it prints are those the served
runtime made. It changes its deployment as a user of that server would, through the control
plane's REST API (:meth:`~opsloop.cli.demo_server.DemoServer.deployments`): deploying, the
shadow, the canary and its rollout, the approver's sign-offs (with the approver's API
token), and the monitoring policies' canary and promotion; it reads the ramp's state and
its gates' evidence back the same way, so the deployment's history names the demo's user
and the approver. The monitoring windows are evaluated in the demo's process (see
:func:`_close_loop`). :func:`serve_demo` then keeps that server serving the demo's store (control
plane, data plane and dashboard) until interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from rich.console import Console

from opsloop.cli.demo_server import DEMO_TRUSTED_TYPES, DemoServer


class DemoFailed(Exception):
    """A step of the demo failed, or the loop did not close; the message says which and why."""


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    """A numbered step: its rule on the console, and any error it raises as
    :class:`DemoFailed` naming the step."""
    console.rule(title)
    try:
        yield
    except DemoFailed:
        raise
    except Exception as error:
        raise DemoFailed(f"step {title} failed: {type(error).__name__}: {error}") from error


def run_demo(
    output: Path,
    *,
    rows: int = 50_000,
    seed: int = 0,
    console: Console,
    transient_change: bool = False,
    server: DemoServer | None = None,
) -> dict:
    """Run the demo, writing into ``output``; return the paths written. Its traffic goes
    over HTTP to ``server`` (a :class:`~opsloop.cli.demo_server.DemoServer` not yet
    started, which the demo starts on its store and leaves running; by default one of its
    own, stopped before this returns). Raises
    :class:`DemoFailed` with the reason when a step fails or the loop does not close (the
    retrained version never reaches a canary, or its canary is neither completed and
    promoted nor rolled back). ``transient_change``: the labelling rule changes back an
    hour after it changed (see the module docstring: the retrained version's canary is
    rolled back).

    >>> run_demo(Path("demo-output"), rows=10, console=Console())
    Traceback (most recent call last):
    ...
    ValueError: rows must be at least 100, got 10
    """
    if rows < 100:
        raise ValueError(f"rows must be at least 100, got {rows}")
    output.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if server is None:
            server = stack.enter_context(DemoServer())
        return _run_steps(output, rows, seed, console, transient_change, server)


def _run_steps(
    output: Path, rows: int, seed: int, console: Console, transient_change: bool, server
) -> dict:
    """The demo's steps (see :func:`run_demo`), sending its traffic to ``server``."""
    from opsloop.cli.drift_table import print_drift
    from opsloop.data.profile import profile
    from opsloop.data.schema import infer_schema, validate
    from opsloop.datasets import CovariateShift, credit, inject_schema_skew
    from opsloop.reports.drift import drift_report
    from opsloop.reports.standalone import PLOTLY_FILE

    with _step(console, "1. data"):
        training = credit(rows, seed)
        shift = CovariateShift(
            0,
            salary_scale=1.15,
            age_range=(25, 85),
            device_mix={"mobile": 0.7, "desktop": 0.2, "tablet": 0.1},
        )
        serving = credit(rows, seed + 1, changes=[shift]).drop(columns=["default"])
        serving = inject_schema_skew(serving, "new_category", "device", fraction=0.02, seed=seed)
        serving = inject_schema_skew(serving, "out_of_range", "age", fraction=0.01, seed=seed)
        train_path, serve_path = output / "training.parquet", output / "serving.parquet"
        training.to_parquet(train_path)
        serving.to_parquet(serve_path)
        console.print(f"training data: {len(training):,} rows -> {train_path}")
        console.print(f"serving data:  {len(serving):,} rows (covariate shift, schema skew)")

    with _step(console, "2. schema"):
        schema = infer_schema(training, environments={"serving": ["default"]})
        schema_path = output / "schema.yaml"
        schema_path.write_text(schema.to_yaml())
        console.print(f"schema of {len(schema.columns)} columns inferred -> {schema_path}")
        result = validate(serving, schema, environment="serving")
        console.print(f"serving data against the schema: {len(result)} anomalies")
        for anomaly in result:
            rows_word = "row" if anomaly.count == 1 else "rows"
            console.print(f"  {anomaly.column}: {anomaly.kind} ({anomaly.count:,} {rows_word})")

    with _step(console, "3. profiles"):
        profiles = {"training": profile(training), "serving": profile(serving)}
        profile_path = output / "profiles.json"
        profile_path.write_text(
            json.dumps({k: v.to_dict() for k, v in profiles.items()}, indent=1, default=str)
        )
        console.print(f"profiles of both sides -> {profile_path}")

    with _step(console, "4. drift"):
        report = drift_report(training.drop(columns=["default"]), serving)
        print_drift(report)
        # The three reports share one plotly.min.js beside them instead of 4.8 MB each.
        html_path = report.to_html(output / "drift.html", plotly="beside")
        # The copies logged to the store carry plotly.js inside: the dashboard shows a report
        # in a sandbox that loads nothing beside it.
        pages = {"drift.html": report.render_html(plotly="inline")}
        json_path = output / "drift.json"
        json_path.write_text(report.to_json(indent=1))
        console.print(f"drift report -> {html_path} and {json_path}")

    with _step(console, "5. error stream"):
        stream_path = _error_stream(training, rows, seed, output, console)

    with _step(console, "6. track, register, approve, deploy"):
        models = _track_and_register(training, seed, output, console, server)

    with _step(console, "7. error analysis"):
        analysis_paths = _analyse(training, models, seed, output, console, pages)

    with _step(console, "8. monitor, retrain, gate, canary, promote"), _own_store(output / "store"):
        monitoring_path = _close_loop(
            models["registry"],
            server,
            seed,
            output,
            console,
            pages,
            reverts=transient_change,
        )

    with _step(console, "9. reports logged"), _own_store(output / "store"):
        run_id = log_demo_reports(pages)
        console.print(
            f"{len(pages)} reports logged to the run 'demo reports' ({run_id}) of credit-demo: "
            "the dashboard's Reports page lists them"
        )
    return {
        "training": train_path,
        "serving": serve_path,
        "schema": schema_path,
        "profiles": profile_path,
        "drift_html": html_path,
        "plotly_js": output / PLOTLY_FILE,
        "drift_json": json_path,
        "error_stream": stream_path,
        **analysis_paths,
        "monitoring": monitoring_path,
    }


def _error_stream(training, rows: int, seed: int, output: Path, console: Console) -> Path:
    """Train on the training data, serve a stream whose labelling rule changes half-way, and
    run the error-rate detectors over the model's errors as labels arrive."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from opsloop.datasets import ConceptShift, credit
    from opsloop.detect import ADWIN, CUSUM, DDM, HDDM_A, HDDM_W, PageHinkley

    features = [
        "age",
        "salary",
        "commission",
        "loan_amount",
        "house_value",
        "house_years",
        "education",
        "region",
        "device",
        "gender",
    ]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    model.fit(training[features], training["default"])
    n = max(rows, 2_000)
    change_at = n // 2
    stream = credit(n, seed + 2, changes=[ConceptShift(change_at, rule=2)])
    errors = (model.predict(stream[features]) != stream["default"].to_numpy()).astype(float)
    before, after = errors[:change_at].mean(), errors[change_at:].mean()
    console.print(
        f"{n:,} served applications; the labelling rule changes at row {change_at:,}: "
        f"error rate {before:.1%} before, {after:.1%} after"
    )
    detectors = {
        "ADWIN (monitoring preset)": ADWIN.preset("monitoring"),
        "PageHinkley (error_rate preset)": PageHinkley.preset("error_rate"),
        "CUSUM (monitoring preset)": CUSUM.preset("monitoring"),
        "DDM": DDM(),
        "HDDM_A": HDDM_A(),
        "HDDM_W": HDDM_W(),
    }
    alarms = []
    for name, detector in detectors.items():
        found = detector.update_many(errors).drift_indices
        early, late = found[found < change_at], found[found >= change_at]
        first = f"row {late[0]:,} (delay {late[0] - change_at:,})" if late.size else "none"
        console.print(
            f"  {name:32s} first alarm after the change: {first}; "
            f"false alarms before it: {early.size}"
        )
        alarms.append({"detector": name, "alarms": found.tolist()})
    path = output / "error_stream.json"
    path.write_text(json.dumps({"change_at": change_at, "detectors": alarms}, indent=1))
    console.print(f"alarms -> {path}")
    return path


FEATURES = [
    "age",
    "salary",
    "commission",
    "loan_amount",
    "house_value",
    "house_years",
    "education",
    "region",
    "device",
    "gender",
]


@contextmanager
def _own_store(home: Path) -> Iterator[None]:
    """Point the store at ``home`` while the demo tracks and registers, whatever store or
    server the environment names (the demo must not write into a real one); then restore."""
    names = ("OPSLOOP_HOME", "OPSLOOP_STORE_URI", "OPSLOOP_TRACKING_URI", "OPSLOOP_ARTIFACT_URI")
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ["OPSLOOP_HOME"] = str(home)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _track_and_register(training, seed: int, output: Path, console: Console, server) -> dict:
    """Train a baseline and a candidate, track both runs, register both versions and move
    the protected ``champion`` alias to the better one once an approver has signed off;
    start ``server`` on the store, deploy the champion with the challenger in its shadow,
    and send the held-out applications to it (then the gate, and the canary)."""
    import getpass
    import shutil

    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import opsloop
    from opsloop.registry import ModelRegistry
    from opsloop.registry.users import add_user, get_user
    from opsloop.serving import Variant

    home = output / "store"
    shutil.rmtree(home, ignore_errors=True)  # the demo's own store starts empty each time
    cut = int(len(training) * 0.7)
    fit_rows, test_rows = training.iloc[:cut], training.iloc[cut:]
    numeric = [c for c in FEATURES if c not in ("education", "region", "device", "gender")]
    baseline = make_pipeline(
        make_column_transformer(
            (StandardScaler(), numeric),
            (OneHotEncoder(handle_unknown="ignore"), ["education", "region", "device", "gender"]),
        ),
        LogisticRegression(max_iter=1000),
    )
    candidate = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    results = {}
    with _own_store(home):
        registry = ModelRegistry()
        me = getpass.getuser()
        for user, role in ((me, "admin"), ("risk-officer", "approver")):
            if get_user(registry.db, user) is None:
                add_user(registry.db, user, role)
        for name, model in (("baseline", baseline), ("candidate", candidate)):
            with opsloop.start_run(experiment="credit-demo", name=name) as run:
                run.log_params({"model": type(model).__name__, "rows": len(fit_rows)})
                run.log_dataset(fit_rows, name="train")
                model.fit(fit_rows[FEATURES], fit_rows["default"])
                proba = model.predict_proba(test_rows[FEATURES])[:, 1]
                metrics = {
                    "auc": float(roc_auc_score(test_rows["default"], proba)),
                    "accuracy": float(accuracy_score(test_rows["default"], proba > 0.5)),
                }
                run.log_metrics(metrics)
            version = registry.register(
                "credit-default",
                model,
                flavor="sklearn",
                run_id=run.run_id,
                metrics=metrics,
                description=f"{name} on {len(fit_rows):,} applications",
                input_schema=fit_rows[FEATURES],
                output_type="int",
            )
            results[name] = {"model": model, "version": version.version, **metrics}
            console.print(
                f"{name:9s} run {run.run_id[:8]}  auc {metrics['auc']:.4f}  "
                f"accuracy {metrics['accuracy']:.4f}  -> credit-default v{version.version}"
            )
        registry.protect_alias("credit-default", "champion", 1, reason="production traffic")
        best = max(results, key=lambda k: results[k]["auc"])
        version = results[best]["version"]
        registry.approve(
            "credit-default",
            "champion",
            version,
            actor="risk-officer",
            comment="better AUC on the held-out applications",
        )
        registry.set_alias("credit-default", "champion", version, reason="best held-out AUC")
        other = next(k for k in results if k != best)
        registry.set_alias("credit-default", "challenger", results[other]["version"])
        lineage = registry.lineage("credit-default", alias="champion")
        audit = registry.verify_audit_log()
        console.print(
            f"champion -> v{version} ({best}) after approval by risk-officer; audit log: "
            f"{audit.entries} entries, hash chain {'intact' if audit.ok else 'BROKEN'}"
        )
        data = ", ".join(f"{name} {digest[:12]}" for name, digest in lineage.datasets)
        console.print(
            f"lineage of the champion: artifact {lineage.artifact_sha256[:12]}, "
            f"run {lineage.run_id[:8]}, commit "
            f"{(lineage.git_commit or 'none')[:12]}, python {lineage.python_version}, "
            f"{len(lineage.packages or ())} packages, data: {data}"
        )
        server.start(registry.db, registry.artifacts, me)
        console.print(
            f"server (control plane and data plane) at {server.url}: the demo's traffic "
            "goes there over HTTP, as an application's would"
        )
        # The endpoint follows the champion alias; the challenger watches in shadow mode.
        # Deployed through the control plane's API, as the demo's user (admin).
        deployments = server.deployments()
        deployments.deploy(
            "credit-api",
            [
                Variant("live", "credit-default", alias="champion"),
                Variant(
                    "shadow",
                    "credit-default",
                    version=results[other]["version"],
                    role="shadow",
                    weight=0.0,
                ),
            ],
            strategy="shadow",
            automation="partial_automation",
            reason="champion answers, challenger recorded beside it",
        )
        for served in deployments.lineage("credit-api"):
            console.print(
                f"credit-api {served.variant} ({served.role}, weight {served.weight:g}) serves "
                f"credit-default v{served.lineage.version}: run {served.lineage.run_id[:8]}, "
                f"data {served.lineage.datasets[0][1][:12]}"
            )
        _serve(registry, server, test_rows, console)
        half = len(test_rows) // 2  # the gate and the canary see different applications
        passed = _gate(
            registry,
            test_rows.iloc[:half],
            results[best]["version"],
            results[other]["version"],
            console,
        )
        if passed:
            _canary(
                registry,
                server,
                test_rows.iloc[half:],
                results[best]["version"],
                results[other]["version"],
                console,
            )
        else:
            console.print(f"the gate blocks credit-default v{results[other]['version']}: no canary")
    return {
        "champion": results[best],
        "challenger": results[other],
        "test_rows": test_rows,
        "registry": registry,
    }


def _serve(registry, server, rows, console: Console, requests: int = 300) -> None:
    """Send held-out applications to the data plane one request at a time, then read back
    what the served runtime recorded: the champion's answers and the shadow's beside them."""
    from opsloop.serving import read_prediction_events

    records = rows[FEATURES].head(requests).to_dict("records")
    answers = [server.predict("credit-api", [record]) for record in records]
    # The shadow answers off the request path, behind the champion: let it catch up.
    counts = server.settle("credit-api", len(answers)).get("shadow", {})
    events = read_prediction_events(registry.db, "credit-api")
    shadow = server.deployments().shadow_agreement("credit-api", since_ms=0).variants[0]
    latency = events.loc[events["role"] == "primary", "latency_ms"].median()
    agreed = "no answer" if shadow.agreement is None else f"{shadow.agreement:.1%}"
    dropped = counts.get("dropped", 0)
    console.print(
        f"credit-api answered {len(answers)} requests (median {latency:.2f} ms in the model "
        f"path); the shadow answered {shadow.answered} copies off the request path (dropped "
        f"{dropped}) and agreed with the champion on {agreed}; {len(events)} prediction "
        "events recorded"
    )


def _gate(registry, rows, champion: int, challenger: int, console: Console) -> bool:
    """The release gate the challenger passes (or not) before its canary: AUC not worse
    than the champion's by more than 0.05 (DeLong's paired test), at least 0.75, and no
    region's error rate up by more than 5 points (Benjamini-Hochberg across regions). The
    verdict lands in the challenger's audit trail either way; whether it passed."""
    from opsloop.analysis.gate import parse_gate
    from opsloop.registry.release_gate import run_gate

    gate = parse_gate(
        {
            "version": 1,
            "name": "credit release",
            "label": "default",
            "checks": [
                {"kind": "non_inferiority", "metric": "auc", "test": "delong", "margin": 0.05},
                {"kind": "floor", "metric": "auc", "min": 0.75},
                {"kind": "slices", "tags": ["region"], "margin": 0.05},
            ],
        }
    )
    result = run_gate(
        registry,
        gate,
        f"models:/credit-default/{challenger}",
        rows,
        baseline=f"models:/credit-default/{champion}",
        data_name="held-out applications",
        trusted_types=["functools.partial", "sklearn.utils.validation.check_array"],
    )
    verdict = "passed" if result.passed else "FAILED"
    console.print(f"release gate on credit-default v{challenger}: {verdict} ({result.n_rows} rows)")
    for check in result.checks:
        console.print(f"  {check.name}: {'pass' if check.passed else 'FAIL'}, {check.reason}")
    return result.passed


def _canary(
    registry,
    server,
    rows,
    champion: int,
    challenger: int,
    console: Console,
    requests: int = 1500,
) -> None:
    """Put the challenger in a canary that ramps 10% -> 50% -> 100% while its gates hold,
    send labelled traffic to the data plane (each label through its feedback endpoint),
    and print each step or the rollback as the served runtime makes it. Every change, and
    every read of the ramp, goes through the control plane's API: the approval as the
    approver, the rest as the demo's user."""
    from opsloop.serving import Variant
    from opsloop.serving.rollout_decisions import decision_of

    deployments = server.deployments()
    # Pinned to the champion's version number, so the ramp's own changes need no sign-off;
    # leaving the protected champion alias does, once, from the approver.
    canary = [
        Variant("live", "credit-default", version=champion, weight=0.9),
        Variant("canary", "credit-default", version=challenger, role="candidate", weight=0.1),
    ]
    server.deployments("risk-officer").approve(
        "credit-api",
        canary,
        strategy="canary",
        automation="full_automation",
        comment="a canary of the challenger, gated",
    )
    deployments.deploy(
        "credit-api",
        canary,
        strategy="canary",
        automation="full_automation",
        reason="the challenger takes a share of the traffic",
    )
    # Gates against the champion: the challenger's errors, its answers' disagreement with
    # the champion's on the same records (2% allowed), and its wrong answers once labels
    # come back as feedback. Each is a sequential test; a failing one rolls back at once.
    deployments.set_rollout(
        "credit-api",
        steps=[0.1, 0.5, 1.0],
        min_requests=60,
        gates={"errors": {}, "disagreement": {"max_rate": 0.02}, "metric": {}},
        reason="ramp while the gates hold",
    )
    console.print("credit-api: canary at 10% (steps 10% -> 50% -> 100%, 60 requests a step)")
    shown = None
    chosen = rows.head(requests)
    records = chosen[FEATURES].to_dict("records")
    for number, (record, label) in enumerate(
        zip(records, chosen["default"].astype(int).tolist(), strict=True), start=1
    ):
        answer = server.predict("credit-api", [record])
        server.feedback("credit-api", answer["request_id"], label)
        now = deployments.get("credit-api")
        state = (now.strategy, tuple(v.weight for v in now.variants))
        if state != shown:
            if shown is not None:
                weights = ", ".join(f"{v.name} {v.weight:g}" for v in now.variants)
                console.print(f"  after {number} requests: {now.strategy}, {weights}")
            shown = state
        if now.strategy != "canary":
            break
    server.settle("credit-api")  # the primary's quiet requests, counted in batches
    last = deployments.history("credit-api").iloc[-1]
    rollout = deployments.rollout("credit-api")
    if decision_of(last.to_dict()) is not None:
        # The rollout's own change: its entry carries the decision; the reason says it in
        # a sentence, then gives the evidence as JSON.
        console.print(f"  last change: {last['reason'].split(' evidence=')[0]}")
    else:
        share = rollout["state"].get("share")
        console.print(f"  the traffic ran out with the canary still at {share:.0%}")
    _print_gates(console, rollout, "  ")


def _print_gates(console: Console, rollout: dict, indent: str) -> None:
    """Each gate's sequential statistic against its threshold, and the samples behind it."""
    for gate, decision in rollout.get("decisions", {}).items():
        # A rate gate counts events among requests; a mean or drift gate only samples.
        samples = [
            f"{arm} {decision.get(f'events_{side}', '')}"
            f"{'/' if f'events_{side}' in decision else ''}{decision[f'n_{side}']}"
            for arm, side in (("candidate", "candidate"), ("champion", "primary"))
            # A one-sample gate (disagreement) reads the candidate's requests only.
            if f"n_{side}" in decision
            and (decision[f"n_{side}"] or decision.get(f"events_{side}") is not None)
        ]
        if "max_rate" in decision:
            samples.append(f"accepted rate {decision['max_rate']:.1%}")
        # A drift gate has no statistic before its first look, nor a fixed threshold.
        statistic, threshold = decision.get("statistic"), decision.get("fail_threshold")
        console.print(
            f"{indent}gate {gate}: {decision['verdict']}, statistic "
            + ("not computed yet" if statistic is None else f"{statistic:.2f}")
            + ("" if threshold is None else f" (fails at {threshold:.2f})")
            + (f"; {', '.join(samples)}" if samples else "")
        )


def _analyse(
    training, models: dict, seed: int, output: Path, console: Console, pages: dict
) -> dict:
    """Error analysis of champion and challenger against human-level performance by gender,
    region and device; one HTML report each (its standalone page added to ``pages``)."""
    from opsloop.analysis import error_analysis, hlp
    from opsloop.datasets import human_labels
    from opsloop.reports.analysis import AnalysisReport

    test_rows = models["test_rows"]
    tags = test_rows[["gender", "region", "device"]]
    human = hlp(human_labels(test_rows, seed=seed), test_rows["default"], tags)
    paths = {}
    for role in ("champion", "challenger"):
        predicted = models[role]["model"].predict(test_rows[FEATURES])
        table = error_analysis(test_rows["default"], predicted, tags, hlp=human)
        analysis = AnalysisReport(errors=table, title=f"credit-default {role}")
        path = analysis.to_html(output / f"analysis_{role}.html", plotly="beside")
        pages[f"analysis_{role}.html"] = analysis.render_html(plotly="inline")
        paths[f"analysis_{role}"] = path
        console.print(f"{role}: the three slices with the most room for improvement")
        for row in table.top(3):
            console.print(
                f"  {row.tag} = {row.value}: error {row.error_rate:.1%} "
                f"vs human {row.baseline_error_rate:.1%}, {row.share_of_data:.1%} of the data, "
                f"room {row.room:.2%}"
            )
        console.print(f"  report -> {path}")
    return paths


HOUR_MS = 3_600_000
#: The applications of the monitoring reference: enough that, weighted to the moved
#: applicants' inputs, they are worth the 100 rows the decay's test needs.
REFERENCE_ROWS = 3000
#: The covariate shift of the live traffic (:class:`opsloop.datasets.CovariateShift`): an
#: older clientele with higher salaries and loans, applying more on mobile and from the
#: capital's region. It moves seven of the ten features; the labelling rule stays.
LIVE_SHIFT = {
    "salary_scale": 1.2,
    "loan_scale": 1.3,
    "age_range": (40, 80),
    "device_mix": {"mobile": 0.7, "desktop": 0.2, "tablet": 0.1},
    # Every region keeps a share: a version retrained on the shifted windows must still know
    # each region its signature will be asked about.
    "region_mix": {
        "capital": 0.4,
        "north_metro": 0.15,
        "south_metro": 0.15,
        "coast": 0.1,
        "lakeside": 0.04,
        "midlands": 0.04,
        "valley": 0.04,
        "highlands": 0.04,
        "rural": 0.04,
    },
}


def _shift_text() -> str:
    """:data:`LIVE_SHIFT` in words."""
    low, high = LIVE_SHIFT["age_range"]
    return (
        f"salaries x{LIVE_SHIFT['salary_scale']:g}, loans x{LIVE_SHIFT['loan_scale']:g}, ages "
        f"{low}-{high}, more mobile, more from the capital's region"
    )


def train_credit_model(frame):
    """The demo's training function, which the retraining policy names
    (``opsloop.cli.demo:train_credit_model``): gradient boosting on the window's rows, whose
    categorical columns come back from the event log as text. One thread: on a window of a
    few hundred rows, more threads cost far more than they save (20 times, measured on a
    loaded 2-core machine)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    inputs = frame[FEATURES].copy()
    for column in inputs.columns:
        if not pd.api.types.is_numeric_dtype(inputs[column]):
            inputs[column] = inputs[column].astype("category")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    with threadpool_limits(1):
        return model.fit(inputs, frame["default"].astype(int))


def _close_loop(
    registry,
    server,
    seed: int,
    output: Path,
    console: Console,
    pages: dict,
    windows: int = 5,
    shift_window: int = 1,
    change_window: int = 2,
    per_window: int = 600,
    per_request: int = 100,
    reverts: bool = False,
) -> Path:
    """Send hourly windows of applications (on a simulated clock, an hour a window) to
    ``server``'s data plane, their labels coming back through its feedback endpoint; the
    applicants move (:data:`LIVE_SHIFT`, a covariate shift) at the start of window
    ``shift_window`` and the labelling rule changes at the start of window
    ``change_window``. The reference is :data:`REFERENCE_ROWS` fresh applications from the
    training data's generator (rows the model did not train on, whatever ``rows`` the demo
    was given) with the model's answers and their labels, so that monitoring can tell
    whether the move of the inputs explains a rise of the error. Each closed window
    is evaluated; the retraining policy acts on the window that shows concept drift and
    starts the new version's canary. The detection table then says, for each change, the
    window it was injected in and the first window each signal fired in, as the store holds
    them. While the canary ramps, each request carries one application
    (``per_request`` before), so its gates see enough requests to decide within a window;
    each step is printed as it happens. Once it has all the traffic, the approver signs off
    the new version as champion and the promotion policy makes it the primary. With
    ``reverts`` the rule changes back a window later, as the canary starts, and the canary's
    gates roll it back. Writes the monitoring report; raises :class:`DemoFailed` when the
    loop did not close."""
    from opsloop.analysis.gate import parse_gate
    from opsloop.datasets import DEFAULT_RULE, ConceptShift, CovariateShift, credit
    from opsloop.monitoring import ActionContext, Windowing, evaluate, monitor_report
    from opsloop.monitoring.reference import set_reference
    from opsloop.serving import Variant
    from opsloop.store.database import now_ms

    db = registry.db
    # The deployment is changed and read through the control plane's API, as the demo's user.
    deployments = server.deployments()
    current = deployments.get("credit-api")
    primary = next(v for v in current.variants if v.role == "primary")
    version = current.serving[primary.name]
    alone = [Variant("live", "credit-default", version=version)]
    # When step 6's gate blocked the canary, the deployment still follows the protected
    # champion alias, so pinning its version needs the approver's sign-off.
    server.deployments("risk-officer").approve(
        "credit-api",
        alone,
        automation=current.automation,
        comment="the version serving now, pinned while monitoring watches",
    )
    deployments.deploy(
        "credit-api",
        alone,
        automation=current.automation,
        reason="the version serving now answers alone while monitoring watches",
    )
    model = registry.load("credit-default", version, trusted_types=DEMO_TRUSTED_TYPES)
    reference = credit(REFERENCE_ROWS, seed + 5)
    set_reference(
        db,
        "credit-api",
        reference[FEATURES],
        predictions=model.predict(reference[FEATURES]),
        labels=reference["default"].to_numpy(),
        predicted_by=("credit-default", version),
    )
    changes = [ConceptShift(change_window * per_window, rule=2)]
    if reverts:
        changes.append(ConceptShift((change_window + 1) * per_window, rule=DEFAULT_RULE))
    covariate = CovariateShift(shift_window * per_window, **LIVE_SHIFT)
    stream = credit(windows * per_window, seed + 4, changes=[covariate, *changes])
    # The error detector's alarms are compared with the rows where the rule changed.
    injected = [c.start for c in changes]
    gate = parse_gate(
        {
            "version": 1,
            "name": "retrain release",
            "label": "default",
            "checks": [
                {"kind": "non_inferiority", "metric": "auc", "test": "delong", "margin": 0.02},
                {"kind": "floor", "metric": "auc", "min": 0.75},
            ],
        }
    )
    rules = [
        "drift_share >= 0.5 -> alert",
        "error_drift > 0 -> alert",
        "concept_drift > 0 -> retrain(train=opsloop.cli.demo:train_credit_model)",
    ]
    # On only while a challenger that completed its canary runs beside the primary: a
    # promote rule judges every variant's windows, and the primary's own would be refused.
    promote_rule = "task_metric >= 0.8 -> promote"
    # The windows are evaluated in this process, on the store the server shares: they close
    # on the demo's simulated clock, which only this process's store object reads (a server
    # of its own would close and stamp them on the wall clock, hours before their end), and
    # with the demo's windowing (a seeded sample of each hour), which the server's evaluate
    # operation does not take; the server's would also queue the retraining for a follower.
    # The actions the policies take on them change the deployment through the control
    # plane's API as the demo's user (``remote``: the token's owner acts), as `opsloop
    # monitor follow --server` does; the retraining trains, registers and gates the new
    # version on the shared store, as the retraining action does in-process.
    context = ActionContext(
        db,
        deployments=deployments,
        actor=server.user,
        remote=True,
        registry=registry,
        gate=gate,
        trusted_types=DEMO_TRUSTED_TYPES,
        experiment="credit-demo",
        canary_steps=(0.1, 0.5, 1.0),
        canary_min_requests=20,
        # Its errors, and its wrong answers once labels come back, against the primary's.
        canary_gates={"errors": {}, "metric": {}},
        seed=seed,
    )
    windowing = Windowing("1h", sample_size=per_window, seed=seed)
    # An hour a window on a simulated clock, so the demo takes seconds, not hours.
    start = windowing.start_of(now_ms()) + HOUR_MS
    simulated = [start]
    db.clock = lambda: simulated[0]
    console.print(
        f"credit-api serves credit-default v{version}; {windows} hourly windows of "
        f"{per_window} applications (simulated time); the applicants move (covariate shift: "
        f"{_shift_text()}) at the start of window {shift_window}; the labelling rule changes "
        f"at the start of window {change_window}"
        + (f" and back at the start of window {change_window + 1}" if reverts else "")
    )
    console.print(f"policies: {'; '.join(rules)}")
    answered: dict[str, int] = {}
    first_rows: dict[str, int] = {}  # per variant, the error stream's position at window 0
    ramp = _Ramp(deployments, server.registry("risk-officer"), console)
    outcomes: list[dict] = []
    try:
        # Step 6's requests close their windows under the same rules, before the loop's.
        earlier = len(
            evaluate(db, "credit-api", windowing=windowing, policies=rules, actions=context)
        )
        for k in range(windows):
            rows = stream.iloc[k * per_window : (k + 1) * per_window]
            i = 0
            while i < per_window:
                size = 1 if ramp.ramping else per_request
                simulated[0] = start + k * HOUR_MS + i * (HOUR_MS // per_window)
                part = rows.iloc[i : i + size]
                answer = server.predict("credit-api", part[FEATURES].to_dict("records"))
                answered[answer["variant"]] = answered.get(answer["variant"], 0) + 1
                server.feedback(
                    "credit-api", answer["request_id"], part["default"].astype(int).tolist()
                )
                i += size
                if ramp.ramping:
                    ramp.after_request()
            simulated[0] = start + (k + 1) * HOUR_MS
            policies = rules
            if ramp.completed and deployments.get("credit-api").strategy != "single":
                ramp.approve_champion()
                policies = [*rules, promote_rule]
                console.print(f"  policy on while the challenger runs beside: {promote_rule}")
            for e in evaluate(
                db, "credit-api", windowing=windowing, policies=policies, actions=context
            ):
                _print_window(
                    console, e, start, (shift_window, change_window, injected), first_rows
                )
                outcomes.extend(e.actions)
            ramp.follow()
        # The served runtime's buffered counts are written on the simulated clock too.
        server.settle("credit-api")
    finally:
        db.clock = now_ms
    if earlier:
        console.print(f"  (and {earlier} window(s) of step 6's requests, per variant)")
    _print_detection(db, console, windowing, start, shift_window, change_window)
    now = deployments.get("credit-api")
    weights = ", ".join(f"{v.name} v{now.serving[v.name]} {v.weight:g}" for v in now.variants)
    requests = ", ".join(f"{name} {count}" for name, count in sorted(answered.items()))
    console.print(f"credit-api now: {now.strategy}, {weights}; requests answered: {requests}")
    by_variant = ", ".join(f"{name} {count}" for name, count in sorted(server.sent.items()))
    console.print(
        f"the demo sent {sum(server.sent.values())} prediction requests over HTTP to the data "
        f"plane at {server.url} (answered by {by_variant}) and {server.labels} labels to its "
        "feedback endpoint"
    )
    champion = registry.get_version("credit-default", alias="champion").version
    console.print(f"credit-default champion -> v{champion}")
    monitoring = monitor_report(db, "credit-api", windowing)
    path = monitoring.write(output / "monitoring.html", plotly="beside")
    pages["monitoring.html"] = monitoring.to_html(plotly="inline")
    console.print(f"monitoring report -> {path}")
    problem = _loop_problem(ramp, outcomes, now, champion)
    if problem is not None:
        raise DemoFailed(f"the loop did not close: {problem}")
    console.print(f"the loop closed: {ramp.summary(now, champion)}")
    return path


class _Ramp:
    """Follows the retrained version's canary from the deployment's definition, read through
    the control plane's API (``deployments``): prints each change as it happens with the
    rollout's evidence, and says how the canary ended. ``approver``: the registry's API as
    the approver, who signs the completed canary's version off as champion."""

    def __init__(self, deployments, approver, console: Console) -> None:
        self.deployments, self.approver, self.console = deployments, approver, console
        self.shown: tuple | None = None
        self.requests = 0  # answered since the canary started
        self.ramping = self.completed = self.rolled_back = self.halted = False
        self.candidate: int | None = None
        self.approved = False

    def follow(self) -> None:
        """After a window's evaluation: has a canary started?"""
        now = self.deployments.get("credit-api")
        if now.strategy == "canary" and not (
            self.ramping or self.completed or self.rolled_back or self.halted
        ):
            self.ramping, self.shown = True, self._state(now)
            candidate = next(v for v in now.variants if v.role == "candidate")
            self.candidate = now.serving[candidate.name]

    def after_request(self) -> None:
        """After each request of the canary: print a change of the definition with why."""
        self.requests += 1
        now = self.deployments.get("credit-api")
        state = self._state(now)
        if state == self.shown:
            # A ramp that halts changes no definition: only its status says so.
            if self.ramping:
                rollout = self.deployments.rollout("credit-api")
                if rollout["state"].get("status") == "halted":
                    self._print_halt(now, rollout)
            return
        self.shown = state
        weights = ", ".join(f"{v.name} {v.weight:g}" for v in now.variants)
        self.console.print(
            f"  after {self.requests} requests of the canary: {now.strategy}, {weights}"
        )
        last = self.deployments.history("credit-api").iloc[-1]
        # The audit entry's reason carries the full evidence as JSON after its sentence.
        self.console.print(f"    {str(last['reason']).split(' evidence=')[0]}")
        rollout = self.deployments.rollout("credit-api")
        _print_gates(self.console, rollout, "    ")
        status = rollout["state"].get("status")
        if status == "halted":
            self._print_halt(now, rollout)
        elif status != "ramping":
            self.ramping = False
            self.completed, self.rolled_back = status == "completed", status == "rolled_back"

    def _print_halt(self, now, rollout: dict) -> None:
        """Say that the ramp halted: which change it could not make, why, and what the
        deployment serves now (a person decides what follows)."""
        self.ramping, self.halted = False, True
        decision = rollout["state"].get("decision") or {}
        note = decision.get("not_carried_out") or {}
        weights = ", ".join(f"{v.name} {v.weight:g}" for v in now.variants)
        self.console.print(
            f"  after {self.requests} requests of the canary: the ramp halted: its "
            f"{decision.get('action')} was not carried out ({note.get('why')}); credit-api "
            f"keeps {now.strategy}, {weights} until a person decides"
        )

    def approve_champion(self) -> None:
        """The protected ``champion`` alias moves only with an approver's sign-off, given
        once the canary has carried all the traffic with every gate holding."""
        if self.approved:
            return
        self.approver.approve(
            "credit-default",
            "champion",
            self.candidate,
            comment="its canary took all the traffic with every gate holding",
        )
        self.approved = True
        self.console.print(
            f"  risk-officer approves credit-default v{self.candidate} as champion: its canary "
            "completed"
        )

    def summary(self, now, champion: int) -> str:
        if self.halted:
            return (
                f"the canary of credit-default v{self.candidate} halted: a change its gates "
                "decided was not carried out, and a person decides"
            )
        if self.rolled_back:
            return f"the canary of credit-default v{self.candidate} was rolled back by its gates"
        return (
            f"credit-default v{self.candidate} went through its canary and was promoted: "
            f"credit-api serves it alone ({now.strategy}), champion -> v{champion}"
        )

    @staticmethod
    def _state(definition) -> tuple:
        return definition.strategy, tuple(v.weight for v in definition.variants)


def _loop_problem(ramp: _Ramp, outcomes: list[dict], now, champion: int) -> str | None:
    """Why the loop did not close, or ``None``: a retrained version reached a canary, and
    the canary was rolled back by a gate, or completed and promoted."""
    retrains = [o for o in outcomes if o.get("action") == "retrain"]
    if ramp.candidate is None:
        if not retrains:
            return "no retraining policy fired"
        return f"the retrained version reached no canary: {retrains[-1]['reason']}"
    if ramp.rolled_back:
        return None
    if ramp.halted:
        return (
            f"the canary of v{ramp.candidate} halted: a change its gates decided was not "
            "carried out (the rollout's state says why)"
        )
    if ramp.ramping:
        share = ramp.deployments.rollout("credit-api")["state"].get("share")
        return f"the traffic ran out with the canary of v{ramp.candidate} still at {share:.0%}"
    promotions = [o for o in outcomes if o.get("action") == "promote"]
    serves = set(now.serving.values())
    if serves != {ramp.candidate} or champion != ramp.candidate:
        why = promotions[-1]["reason"] if promotions else "no promotion ran"
        return (
            f"the canary of v{ramp.candidate} completed, but credit-api serves "
            f"{sorted(serves)} and champion is v{champion}: {why}"
        )
    return None


def _print_window(console: Console, e, start: int, change: tuple, first_rows: dict) -> None:
    """One line per evaluated window, then its alerts and what their actions did. ``change``
    is the window the inputs move in, the one the labelling rule changes in and the rows
    where it changed, counted from
    the first of window 0 (the error stream's position then, per variant; a variant that
    started later counts from its first window). An alarm is compared with those rows only
    when its detector read the rows through the change: after the variant's version
    changes, its detector starts afresh on the new version's errors (printed), and an
    alarm after that is about the new version, not the injected change."""
    shift_window, change_window, injected = change
    k = (e.start_ms - start) // HOUR_MS
    metrics = e.metrics
    first, since_window = first_rows.setdefault(e.variant, (metrics["error_stream_start"], k))
    moved = ["inputs moved"] if k >= shift_window else []
    changed = ["rule changed"] if k >= change_window else []
    if len(injected) > 1 and k > change_window:  # the rule changed back a window later
        changed = ["rule changed back"]
    when = ", ".join(moved + changed) or "before the changes"
    accuracy = metrics["task_metric"]
    decay = metrics["decay"]
    console.print(
        f"  window {k} ({when}, {e.variant}): accuracy "
        f"{'-' if accuracy is None else f'{accuracy:.3f}'}, drift share "
        f"{metrics['drift_share'] or 0:.2f}, decay {decay['kind']}"
    )
    shift = decay.get("shift") or {}
    if shift.get("test") and (decay["error"]["rose"] or shift["explained"] is False):
        # The error rose, or stays above what the reference allows: do the window's inputs
        # explain it? The error the reference's rows make, weighted to the window's inputs,
        # against the window's.
        verdict = {True: "explained", False: "not explained", None: "cannot tell"}
        p_value = "" if shift["p_value"] is None else f", p-value {shift['p_value']:.3g}"
        console.print(
            f"    error {shift['window_error']:.3f} against {shift['expected_error']:.3f} "
            f"expected from the reference weighted to the window's inputs "
            f"({shift['effective_rows']:.0f} effective rows{p_value}): "
            f"{verdict[shift['explained']]} by the "
            f"{'move' if decay['inputs_moved'] else 'inputs'}"
        )
    for restart in metrics.get("error_stream_restarts", []):
        console.print(
            f"    ADWIN on the error stream of {e.variant} restarts at row "
            f"{restart['position'] - first:,}: it now serves {restart['to']['model']} "
            f"v{restart['to']['version']} (was v{restart['from']['version']}), whose errors "
            "are another stream"
        )
    if metrics["error_drift_positions"]:
        alarm = metrics["error_drift_positions"][-1] - first
        found = metrics.get("error_change_point")
        estimate = "" if found is None else f"; the change estimated at row {found - first:,}"
        source = metrics.get("error_stream_source") or {}
        since = source.get("offset", first) - first
        of = f" of {source['model']} v{source['version']}" if source else ""
        # Only the changes the detector's current stream read through can explain it.
        seen = [row for row in injected if row > since] if since_window == 0 else []
        if seen:
            rows = ", ".join(f"{row:,}" for row in seen)
            against = f"injected at row {rows}" if len(seen) == 1 else f"injected at rows {rows}"
        elif since_window:
            against = f"a stream that starts in window {since_window}, after the injection"
        else:
            against = f"a stream that starts at row {since:,}, after the injection"
        console.print(
            f"    ADWIN on the error stream{of}: alarm at row {alarm:,}{estimate} ({against})"
        )
    for rule in e.alerts:
        console.print(f"    alert: {rule}")
    for action in e.actions:
        console.print(f"    {action['action']} {action['status']}: {action['reason']}")
        window, gate = action.get("window"), action.get("gate")
        if window:
            held = f", the latest {gate['n_rows']} held out for the gate" if gate else ""
            console.print(
                f"      data window: {window['new_rows']} labelled rows served from "
                f"{(window['start_ms'] - start) / HOUR_MS:.2f} h to "
                f"{(window['end_ms'] - start) / HOUR_MS:.2f} h "
                f"(sha256 {window['sha256'][:12]}){held}"
            )
        if gate:
            for check in gate["checks"]:
                verdict = "pass" if check["passed"] else "FAIL"
                console.print(f"      gate {check['name']}: {verdict}, {check['reason']}")


def _print_detection(
    db, console: Console, windowing, start: int, shift_window: int, change_window: int
) -> None:
    """The detection table (:mod:`.demo_detection`) of the live traffic's windows, read back
    from the store."""
    from opsloop.cli.demo_detection import detection_rows, print_detection
    from opsloop.monitoring import read_alerts, read_evaluations
    from opsloop.monitoring.iso_time import utc_iso

    windows = [
        ((e.start_ms - start) // HOUR_MS, e.metrics)
        for e in read_evaluations(db, "credit-api", windowing, variant="live")
        if e.start_ms >= start
    ]
    alerts = read_alerts(db, "credit-api", variant="live")
    raised = [
        ((int(a.start_ms) - start) // HOUR_MS, a.evidence["signal"], a.rule)
        for a in alerts.itertuples()
        if a.start_ms is not None and a.start_ms >= start
    ]
    changes = [("covariate shift", shift_window), ("concept shift", change_window)]
    print_detection(console, detection_rows(windows, raised, changes), utc_iso(start))


def log_demo_reports(pages: dict[str, str]) -> str:
    """Log the demo's reports (artifact name → standalone HTML page) to a new run named
    ``demo reports`` in the ``credit-demo`` experiment of the current store, so the
    dashboard's Reports page lists them; the run's id.

    >>> run_id = log_demo_reports({"drift.html": "<p>drift</p>"})
    >>> from opsloop.tracking import tracking_backend
    >>> run = tracking_backend().get_run(run_id)
    >>> run.name, run.status, [a.path for a in run.artifacts]
    ('demo reports', 'FINISHED', ['drift.html'])
    """
    import opsloop

    with opsloop.start_run(experiment="credit-demo", name="demo reports") as run:
        for name, page in pages.items():
            run.backend.log_artifact(run.run_id, page.encode("utf-8"), name)
    return run.run_id


def print_reports(paths: dict, console: Console) -> None:
    """The reports a person opens, one path a line."""
    console.print("reports:")
    for key in ("drift_html", "analysis_champion", "analysis_challenger", "monitoring"):
        if key in paths:
            console.print(f"  {paths[key]}")


def serve_demo(output: Path, server: DemoServer, *, console: Console) -> None:
    """Keep ``server``, which :func:`run_demo` started on the demo's store in ``output``
    and sent its traffic to (control plane, data plane and dashboard, as ``opsloop server
    --serve``), serving until Ctrl-C, then stop it. The store has users, so the dashboard
    needs an API token: one of the OS user (the demo's admin) is written to
    ``output/dashboard-token``, readable by that user only.

    >>> serve_demo(Path("demo-output"), DemoServer(), console=Console())
    Traceback (most recent call last):
    ...
    RuntimeError: the demo's server is not started (run_demo starts it)
    """
    import getpass

    if server.url is None:
        raise RuntimeError("the demo's server is not started (run_demo starts it)")
    with _own_store(output / "store"):
        me = getpass.getuser()
        token_path = output / "dashboard-token"
        token_path.unlink(missing_ok=True)
        descriptor = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{server.token}\n")
        console.rule("serving")
        console.print(f"dashboard: {server.url}/deployments/credit-api/monitoring")
        console.print(f"log in with the API token in {token_path} (user {me}, admin)")
        console.print(
            f"predictions: POST {server.url}/v1/deployments/credit-api/predict; "
            "Ctrl-C stops the server"
        )
        server.wait()
        server.stop()
        console.print("server stopped")
