"""``opsloop demo``: the project's main job on generated credit data.

Training data comes from :func:`opsloop.datasets.credit`; serving data from the same
generator with a covariate shift (richer, older applicants applying more on mobile) and two
kinds of schema skew injected (an unseen device, out-of-range ages). The job infers the
training schema, validates serving data against it, profiles both sides, compares them for
drift and writes the reports, printing where each file is. It then trains, tracks and
registers two models, deploys the champion with the challenger in shadow and answers
held-out applications through the data plane, gates the challenger against the champion
and, when it passes, puts it in a canary whose sequential gates ramp it or roll it back
as labels come back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console


def run_demo(output: Path, *, rows: int = 50_000, seed: int = 0, console: Console) -> dict:
    """Run the demo, writing into ``output``; return the paths written."""
    from opsloop.cli.drift_table import print_drift
    from opsloop.data.profile import profile
    from opsloop.data.schema import infer_schema, validate
    from opsloop.datasets import CovariateShift, credit, inject_schema_skew
    from opsloop.reports.drift import drift_report
    from opsloop.reports.standalone import PLOTLY_FILE

    if rows < 100:
        raise ValueError(f"rows must be at least 100, got {rows}")
    output.mkdir(parents=True, exist_ok=True)
    console.rule("1. data")
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

    console.rule("2. schema")
    schema = infer_schema(training, environments={"serving": ["default"]})
    schema_path = output / "schema.yaml"
    schema_path.write_text(schema.to_yaml())
    console.print(f"schema of {len(schema.columns)} columns inferred -> {schema_path}")
    result = validate(serving, schema, environment="serving")
    console.print(f"serving data against the schema: {len(result)} anomalies")
    for anomaly in result:
        rows_word = "row" if anomaly.count == 1 else "rows"
        console.print(f"  {anomaly.column}: {anomaly.kind} ({anomaly.count:,} {rows_word})")

    console.rule("3. profiles")
    profiles = {"training": profile(training), "serving": profile(serving)}
    profile_path = output / "profiles.json"
    profile_path.write_text(
        json.dumps({k: v.to_dict() for k, v in profiles.items()}, indent=1, default=str)
    )
    console.print(f"profiles of both sides -> {profile_path}")

    console.rule("4. drift")
    report = drift_report(training.drop(columns=["default"]), serving)
    print_drift(report)
    # The three reports share one plotly.min.js beside them instead of 4.8 MB each.
    html_path = report.to_html(output / "drift.html", plotly="beside")
    json_path = output / "drift.json"
    json_path.write_text(report.to_json(indent=1))
    console.print(f"drift report -> {html_path} and {json_path}")

    console.rule("5. error stream")
    stream_path = _error_stream(training, rows, seed, output, console)

    console.rule("6. track, register, approve, deploy")
    models = _track_and_register(training, seed, output, console)

    console.rule("7. error analysis")
    analysis_paths = _analyse(training, models, seed, output, console)
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


def _track_and_register(training, seed: int, output: Path, console: Console) -> dict:
    """Train a baseline and a candidate, track both runs, register both versions and move
    the protected ``champion`` alias to the better one once an approver has signed off."""
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
    from opsloop.serving import Deployments, Variant

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
        # The endpoint follows the champion alias; the challenger watches in shadow mode.
        deployments = Deployments(registry.db)
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
        _serve(registry, test_rows, console)
        half = len(test_rows) // 2  # the gate and the canary see different applications
        _gate(
            registry,
            test_rows.iloc[:half],
            results[best]["version"],
            results[other]["version"],
            console,
        )
        _canary(
            registry,
            test_rows.iloc[half:],
            results[best]["version"],
            results[other]["version"],
            console,
        )
    return {"champion": results[best], "challenger": results[other], "test_rows": test_rows}


def _serve(registry, rows, console: Console, requests: int = 300) -> None:
    """Answer held-out applications one request at a time through the data plane's runtime,
    then read back what it recorded: the champion's answers and the shadow's beside them."""
    import time

    from opsloop.serving import Deployments, ServingRuntime, read_prediction_events

    records = rows[FEATURES].head(requests).to_dict("records")
    # The challenger's file names two types beyond the fixed allow-list (gradient boosting
    # keeps a partial of check_array); this demo registered it, so it trusts exactly those.
    runtime = ServingRuntime(
        registry.db,
        registry.artifacts,
        names=["credit-api"],
        trusted_types=["functools.partial", "sklearn.utils.validation.check_array"],
    )
    try:
        answers = [runtime.predict("credit-api", [record]) for record in records]
        # The shadow answers off the request path, behind the champion: let it catch up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = runtime.shadow_counts("credit-api").get("shadow", {})
            if sum(counts.values()) >= len(answers):
                break
            time.sleep(0.05)
    finally:
        runtime.close()  # writes the buffered events
    events = read_prediction_events(registry.db, "credit-api")
    shadow = Deployments(registry.db).shadow_agreement("credit-api", since_ms=0).variants[0]
    latency = events.loc[events["role"] == "primary", "latency_ms"].median()
    agreed = "no answer" if shadow.agreement is None else f"{shadow.agreement:.1%}"
    dropped = counts.get("dropped", 0)
    console.print(
        f"credit-api answered {len(answers)} requests (median {latency:.2f} ms in the model "
        f"path); the shadow answered {shadow.answered} copies off the request path (dropped "
        f"{dropped}) and agreed with the champion on {agreed}; {len(events)} prediction "
        "events recorded"
    )


def _gate(registry, rows, champion: int, challenger: int, console: Console) -> None:
    """The release gate the challenger passes (or not) before its canary: AUC not worse
    than the champion's by more than 0.05 (DeLong's paired test), at least 0.75, and no
    region's error rate up by more than 5 points (Benjamini-Hochberg across regions). The
    verdict lands in the challenger's audit trail either way."""
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


def _canary(
    registry, rows, champion: int, challenger: int, console: Console, requests: int = 1500
) -> None:
    """Put the challenger in a canary that ramps 10% -> 50% -> 100% while its gates hold,
    send labelled traffic, and print each step or the rollback as it happens."""
    import getpass

    from opsloop.serving import Deployments, ServingRuntime, Variant

    deployments = Deployments(registry.db)
    # Pinned to the champion's version number, so the ramp's own changes need no sign-off;
    # leaving the protected champion alias does, once, from the approver.
    canary = [
        Variant("live", "credit-default", version=champion, weight=0.9),
        Variant("canary", "credit-default", version=challenger, role="candidate", weight=0.1),
    ]
    deployments.approve(
        "credit-api",
        canary,
        strategy="canary",
        automation="full_automation",
        actor="risk-officer",
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
        gates={"errors": {}, "disagreement": {"margin": 0.02}, "metric": {}},
        reason="ramp while the gates hold",
    )
    console.print("credit-api: canary at 10% (steps 10% -> 50% -> 100%, 60 requests a step)")
    runtime = ServingRuntime(
        registry.db,
        registry.artifacts,
        names=["credit-api"],
        trusted_types=["functools.partial", "sklearn.utils.validation.check_array"],
    )
    me = getpass.getuser()
    shown = None
    try:
        for number, (_, row) in enumerate(rows.head(requests).iterrows(), start=1):
            answer = runtime.predict("credit-api", [row[FEATURES].to_dict()])
            runtime.feedback("credit-api", answer.request_id, label=int(row["default"]), actor=me)
            now = deployments.get("credit-api")
            state = (now.strategy, tuple(v.weight for v in now.variants))
            if state != shown:
                if shown is not None:
                    weights = ", ".join(f"{v.name} {v.weight:g}" for v in now.variants)
                    console.print(f"  after {number} requests: {now.strategy}, {weights}")
                shown = state
            if now.strategy != "canary":
                break
    finally:
        runtime.close()
    last = deployments.history("credit-api").iloc[-1]
    rollout = deployments.rollout("credit-api")
    if last["action"] == "deploy" and str(last["reason"]).startswith("rollout:"):
        # The audit entry's reason carries the full evidence as JSON after its sentence.
        console.print(f"  last change: {last['reason'].split(' evidence=')[0]}")
    else:
        share = rollout["state"].get("share")
        console.print(f"  the traffic ran out with the canary still at {share:.0%}")
    decisions = rollout.get("decisions", {})
    for gate, decision in decisions.items():
        console.print(
            f"  gate {gate}: {decision['verdict']}, statistic {decision['statistic']:.2f} "
            f"(fails at {decision['fail_threshold']:.2f}); candidate "
            f"{decision['events_candidate']}/{decision['n_candidate']}, champion "
            f"{decision['events_primary']}/{decision['n_primary']}"
        )


def _analyse(training, models: dict, seed: int, output: Path, console: Console) -> dict:
    """Error analysis of champion and challenger against human-level performance by gender,
    region and device; one HTML report each."""
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
        path = AnalysisReport(errors=table, title=f"credit-default {role}").to_html(
            output / f"analysis_{role}.html", plotly="beside"
        )
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
