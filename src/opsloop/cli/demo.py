"""``opsloop demo``: the project's main job on generated credit data.

Training data comes from :func:`opsloop.datasets.credit`; serving data from the same
generator with a covariate shift (richer, older applicants applying more on mobile) and two
kinds of schema skew injected (an unseen device, out-of-range ages). The job infers the
training schema, validates serving data against it, profiles both sides, compares them for
drift and writes the reports, printing where each file is.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console


def run_demo(output: Path, *, rows: int = 50_000, seed: int = 0, console: Console) -> dict:
    """Run the demo, writing into ``output``; return the paths written."""
    from opsloop.cli.app import print_drift
    from opsloop.data.profile import profile
    from opsloop.data.schema import infer_schema, validate
    from opsloop.datasets import CovariateShift, credit, inject_schema_skew
    from opsloop.reports.drift import drift_report

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
    html_path = report.to_html(output / "drift.html")
    json_path = output / "drift.json"
    json_path.write_text(report.to_json(indent=1))
    console.print(f"drift report -> {html_path} and {json_path}")

    console.rule("5. error stream")
    stream_path = _error_stream(training, rows, seed, output, console)
    return {
        "training": train_path,
        "serving": serve_path,
        "schema": schema_path,
        "profiles": profile_path,
        "drift_html": html_path,
        "drift_json": json_path,
        "error_stream": stream_path,
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
