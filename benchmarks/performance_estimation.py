"""How close is the estimate of accuracy and ROC AUC without labels to the metric realised
once labels arrive, and how does it compare with NannyML's CBPE on the same windows?

For each seed, scikit-learn's ``make_classification`` (12,000 rows, 10 features, 5
informative, 5% of labels flipped) trains a logistic regression on 4,000 rows; 4,000 more
are the labelled reference; windows of ``--window`` rows are drawn without replacement from
the last 4,000 in three ways:

* ``none``: uniformly (the reference's distribution);
* ``score``: weighted by exp(2 · (score - 0.5)), a covariate shift that keeps P(label | score),
  which is all the method assumes;
* ``feature``: weighted by exp(0.5 · x0 / sd(x0)), a covariate shift on one input that the
  misspecified logistic model's score does not absorb, so P(label | score) moves and the
  calibration learned on the reference is off (the limit NannyML's documentation names).

Per window: opsloop's ``PerformanceEstimator`` (isotonic calibration, 95% intervals), given
the reference's and the window's inputs so that it reweights the calibration by their
density ratio where the inputs moved (``weighting="auto"``), the same estimator without
the inputs (plain isotonic calibration, NannyML's estimate) and,
when ``benchmarks/.envs/nannyml`` exists (``python benchmarks/envs.py nannyml``), NannyML's
CBPE fitted on the same reference with each window as one chunk. Reported: the median
absolute error against the realised metric, the share of windows within 2 points, the share
whose interval covers the realised metric, the median |opsloop - NannyML| and the time of
fit + estimate of all windows (median of ``--repeats`` runs).

    python benchmarks/performance_estimation.py --seeds 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from opsloop.analysis.performance_estimation import PerformanceEstimator

HERE = Path(__file__).resolve().parent
NANNYML = HERE / ".envs" / "nannyml" / "bin" / "python"
SHIFTS = ("none", "score", "feature")


def windows(seed: int, shift: str, count: int, rows: int):
    """The reference (scores, labels, inputs) and ``count`` windows (scores, labels, inputs)
    of one seed."""
    x, y = make_classification(
        12_000, n_features=10, n_informative=5, flip_y=0.05, random_state=seed
    )
    model = LogisticRegression(max_iter=1000).fit(x[:4000], y[:4000])
    reference = (model.predict_proba(x[4000:8000])[:, 1], y[4000:8000], x[4000:8000])
    pool_x, pool_y = x[8000:], y[8000:]
    score = model.predict_proba(pool_x)[:, 1]
    if shift == "none":
        weight = np.ones(len(score))
    elif shift == "score":
        weight = np.exp(2.0 * (score - 0.5))
    else:
        weight = np.exp(0.5 * pool_x[:, 0] / pool_x[:, 0].std())
    rng = np.random.default_rng(seed)
    drawn = [
        rng.choice(len(score), rows, replace=False, p=weight / weight.sum()) for _ in range(count)
    ]
    return (
        reference,
        np.stack([score[d] for d in drawn]),
        np.stack([pool_y[d] for d in drawn]),
        np.stack([pool_x[d] for d in drawn]),
    )


def run_opsloop(reference, window_score, window_inputs=None, calibration_draws=100):
    """Fit and estimate every window; with ``window_inputs`` the calibration is reweighted
    by the density ratio where the inputs moved (``weighting="auto"``)."""
    started = time.perf_counter()
    estimator = PerformanceEstimator(calibration_draws=calibration_draws)
    if window_inputs is None:
        estimator.fit(reference[1], reference[0])
        estimates = [estimator.estimate(s) for s in window_score]
    else:
        estimator.fit(reference[1], reference[0], inputs=reference[2])
        estimates = [
            estimator.estimate(s, inputs=x)
            for s, x in zip(window_score, window_inputs, strict=True)
        ]
    return estimates, time.perf_counter() - started


def run_nannyml(reference, window_score, repeats: int) -> dict | None:
    if not NANNYML.exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "in.npz", Path(folder) / "out.json"
        np.savez(
            data,
            reference_score=reference[0],
            reference_label=reference[1],
            window_score=window_score,
        )
        subprocess.run(
            [
                str(NANNYML),
                str(HERE / "peers" / "nannyml_cbpe.py"),
                str(data),
                "--out",
                str(out),
                "--repeats",
                str(repeats),
            ],
            check=True,
            capture_output=True,
        )
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--windows", type=int, default=5, help="windows per seed and shift")
    parser.add_argument("--window", type=int, default=1000, help="rows per window")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per seed (median)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    rows = {shift: [] for shift in SHIFTS}
    times = {
        shift: {"opsloop": [], "opsloop-no-bootstrap": [], "opsloop-unweighted": [], "nannyml": []}
        for shift in SHIFTS
    }
    nannyml_version = None
    for shift in SHIFTS:
        for seed in range(args.seeds):
            reference, score, label, inputs = windows(seed, shift, args.windows, args.window)
            ours_runs = [run_opsloop(reference, score, inputs) for _ in range(args.repeats)]
            ours = ours_runs[0][0]
            times[shift]["opsloop"].append(np.median([t for _, t in ours_runs]))
            lean = [run_opsloop(reference, score, inputs, 0)[1] for _ in range(args.repeats)]
            times[shift]["opsloop-no-bootstrap"].append(np.median(lean))
            plain_runs = [run_opsloop(reference, score) for _ in range(args.repeats)]
            plain = plain_runs[0][0]
            times[shift]["opsloop-unweighted"].append(np.median([t for _, t in plain_runs]))
            theirs = run_nannyml(reference, score, args.repeats)
            if theirs is not None:
                nannyml_version = theirs["nannyml"]
                times[shift]["nannyml"].append(np.median(theirs["seconds"]))
            for i, est in enumerate(ours):
                realised = {
                    "accuracy": accuracy_score(label[i], score[i] >= 0.5),
                    "roc_auc": roc_auc_score(label[i], score[i]),
                }
                row = {
                    "trusted": est.trusted,
                    "weighted": est.weighting == "density-ratio",
                    "ess": est.density_ratio["effective_sample_size"],
                }
                for metric, value in realised.items():
                    row[metric] = (est[metric].value - value, est[metric].covers(value))
                    row["unweighted_" + metric] = (
                        plain[i][metric].value - value,
                        plain[i][metric].covers(value),
                    )
                    if theirs is not None:
                        se = theirs[metric + "_sampling_error"][i]
                        row["nannyml_" + metric] = (
                            theirs[metric][i] - value,
                            abs(theirs[metric][i] - value) <= 1.96 * se,
                            est[metric].value - theirs[metric][i],
                        )
                rows[shift].append(row)
        print(f"{shift}: {len(rows[shift])} windows", flush=True)
    lines = report(args, rows, times, nannyml_version)
    print("\n".join(lines))
    with args.out.open("a") as handle:
        handle.write("\n" + "\n".join(lines) + "\n")


def report(args, rows, times, nannyml_version) -> list[str]:
    versions = (
        f"opsloop {metadata.version('opsloop')}, scikit-learn {metadata.version('scikit-learn')},"
        f" numpy {np.__version__}, NannyML {nannyml_version or 'not installed'},"
        f" Python {platform.python_version()}"
    )
    lines = [
        f"## Performance estimation without labels: {args.seeds} seeds × {args.windows} windows"
        f" of {args.window:,} rows per shift",
        "",
        f"`benchmarks/performance_estimation.py`; {versions}. Error = estimate - realised"
        " metric once labels arrive; |error| and |opsloop - NannyML| are medians over windows;"
        " coverage is the share of windows whose 95% interval holds the realised metric"
        " (NannyML: estimate ± 1.96 × its sampling error).",
        "",
        "| shift | metric | tool | median abs error | within 2 points | coverage |"
        " median abs (opsloop - NannyML) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for shift in SHIFTS:
        for metric in ("accuracy", "roc_auc"):
            for tool, key in (("opsloop", metric), ("opsloop unweighted", "unweighted_" + metric)):
                errors = np.array([r[key][0] for r in rows[shift]])
                covered = np.mean([r[key][1] for r in rows[shift]])
                lines.append(
                    f"| {shift} | {metric} | {tool} | {np.median(np.abs(errors)):.4f} |"
                    f" {np.mean(np.abs(errors) <= 0.02):.0%} | {covered:.0%} | |"
                )
            if nannyml_version:
                theirs = [r["nannyml_" + metric] for r in rows[shift]]
                errors = np.array([t[0] for t in theirs])
                lines.append(
                    f"| {shift} | {metric} | NannyML | {np.median(np.abs(errors)):.4f} |"
                    f" {np.mean(np.abs(errors) <= 0.02):.0%} |"
                    f" {np.mean([t[1] for t in theirs]):.0%} |"
                    f" {np.median(np.abs([t[2] for t in theirs])):.2e} |"
                )
    trusted = {s: np.mean([r["trusted"] for r in rows[s]]) for s in SHIFTS}
    weighted = {s: np.mean([r["weighted"] for r in rows[s]]) for s in SHIFTS}
    ess = {s: np.median([r["ess"] for r in rows[s]]) for s in SHIFTS}
    lines += [
        "",
        "opsloop: the calibration reweighted by the density ratio of the window's inputs"
        " against the reference's where its domain classifier says the inputs moved"
        ' (`weighting="auto"`, shift_z ≥ 3); opsloop unweighted: the plain isotonic'
        " calibration, NannyML's CBPE estimate. Windows reweighted: "
        + ", ".join(f"{s} {weighted[s]:.0%}" for s in SHIFTS)
        + "; median effective sample size of the 4,000 weighted reference rows: "
        + ", ".join(f"{s} {ess[s]:,.0f}" for s in SHIFTS)
        + ". Windows opsloop marked trusted: "
        + ", ".join(f"{s} {trusted[s]:.0%}" for s in SHIFTS)
        + ".",
        "",
    ]
    if nannyml_version:
        median = {k: np.median([t for s in SHIFTS for t in times[s][k]]) for k in times["none"]}
        ours, lean, theirs = median["opsloop"], median["opsloop-no-bootstrap"], median["nannyml"]
        plain = median["opsloop-unweighted"]
        lines.append(
            f"Time to fit on 4,000 reference rows and estimate {args.windows} windows (median"
            f" over seeds of the median of {args.repeats} runs): opsloop {ours * 1000:.0f} ms"
            f" (1,000 simulated label draws and 100 calibration bootstraps for the intervals),"
            f" {lean * 1000:.0f} ms without the calibration bootstrap,"
            f" {plain * 1000:.0f} ms unweighted, NannyML"
            f" {theirs * 1000:.0f} ms (fit + estimate inside its worker process, imports"
            f" excluded; its sampling error is a formula fitted on the reference)."
            f" opsloop / NannyML = {ours / theirs:.2f}, without the bootstrap"
            f" {lean / theirs:.2f}."
        )
    return lines


if __name__ == "__main__":
    main()
