"""Analysis paths a new user runs on small data: `opsloop analyze`, the classifier two-sample
test and `concept_shift`, against what a user would otherwise write.

Every run is a fresh process (imports included for the command line, excluded for the
library calls, which are timed around the call). Rows:

* ``analyze-*``: ``python -m opsloop analyze MODEL DATA --label ...`` on the breast-cancer
  test split (171 rows, 30 features; scikit-learn's ``load_breast_cancer``,
  ``train_test_split(test_size=0.3, random_state=0)``) with a scaled logistic regression and
  a ``HistGradientBoostingClassifier`` saved with skops, with and without ``--no-explain``;
  and on 50,000 rows of ``opsloop.datasets.credit`` with a ``HistGradientBoostingClassifier``
  and two tag columns. The peer is the step that took most of the time before: shap's
  model-agnostic ``PermutationExplainer`` on the 171 rows' probabilities over a 100-row
  background (what a user writes with ``shap.Explainer(model.predict_proba, X)``).
* ``c2st-*``: ``classifier_two_sample_test`` on the README's example (``credit`` train vs
  serving, ``max_rows=5_000``) and on 130 rows of scikit-learn's wine data (even rows against
  odd rows). Peers: the same call with ``n_jobs=None`` (scikit-learn's default threads), and
  for the README example the plain scikit-learn loop a user would write (stratified folds,
  ``HistGradientBoostingClassifier``, ``roc_auc_score``, ``mannwhitneyu``,
  ``permutation_importance`` on the first fold), checked to give the same AUC, p-value and
  importances.
* ``concept``: ``concept_shift`` on 3,000 rows of ``credit`` before and 3,000 rows after a
  ``ConceptShift``; peer: the same call with ``n_jobs=None``.

    python benchmarks/analysis_paths.py --repeats 3 --peer-repeats 1

Writes ``benchmarks/out/analysis_paths.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DATA = OUT / "analysis_paths"


def make_files() -> None:
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop.datasets import credit

    DATA.mkdir(parents=True, exist_ok=True)
    cancer = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        cancer.data, cancer.target, test_size=0.3, random_state=0
    )
    x_test.assign(target=y_test.to_numpy()).to_csv(DATA / "cancer_test.csv", index=False)
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "boosted": HistGradientBoostingClassifier(random_state=0),
    }
    for name, model in models.items():
        skops.io.dump(model.fit(x_train, y_train), DATA / f"{name}.skops")
    loans = credit(50_000, seed=3)
    features = ["age", "salary", "commission", "loan_amount"]
    boosted = HistGradientBoostingClassifier(random_state=0).fit(loans[features], loans["default"])
    skops.io.dump(boosted, DATA / "credit_boosted.skops")
    loans.drop(columns=["applied_at", "purpose"]).to_csv(DATA / "credit_50k.csv", index=False)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsloop", "analyze", *args, "--trust"]


ANALYZE = {
    "analyze-logistic": ["logistic.skops", "cancer_test.csv", "--label", "target"],
    "analyze-logistic-no-explain": [
        "logistic.skops",
        "cancer_test.csv",
        "--label",
        "target",
        "--no-explain",
    ],
    "analyze-boosted": ["boosted.skops", "cancer_test.csv", "--label", "target"],
    "analyze-50k": [
        "credit_boosted.skops",
        "credit_50k.csv",
        "--label",
        "default",
        "--tags",
        "gender,device",
    ],
}


def run_cli(name: str) -> dict:
    paths = [str(DATA / a) if a.endswith((".skops", ".csv")) else a for a in ANALYZE[name]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cli(*paths), capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "result": None}


def _credit_pair():
    from opsloop.datasets import CovariateShift, credit

    return credit(20_000, seed=0), credit(
        20_000, seed=1, changes=[CovariateShift(0, salary_scale=1.2)]
    )


def _wine_pair():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).data
    return wine.iloc[0::2].iloc[:65], wine.iloc[1::2].iloc[:65]


def plain_sklearn_c2st(reference, current, max_rows: int, seed: int = 0) -> dict:
    """The two-sample test as a user writes it with scikit-learn (same folds and seed)."""
    import numpy as np
    import pandas as pd
    from scipy.stats import mannwhitneyu
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from opsloop.data.drift.multivariate import feature_frame

    names = [c for c in reference.columns if c in current.columns]
    rng = np.random.default_rng(seed)
    parts = []
    for frame in (reference, current):
        rows = np.sort(rng.choice(len(frame), size=min(len(frame), max_rows), replace=False))
        parts.append(frame.iloc[rows][names])
    x = feature_frame(pd.concat(parts, ignore_index=True), names)
    y = np.r_[np.zeros(len(parts[0]), dtype=int), np.ones(len(parts[1]), dtype=int)]
    scores, importance = np.empty(len(y)), None
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        model = HistGradientBoostingClassifier(
            max_iter=100, categorical_features="from_dtype", random_state=seed
        ).fit(x.iloc[train], y[train])
        scores[test] = model.predict_proba(x.iloc[test])[:, 1]
        if importance is None:
            importance = permutation_importance(
                model, x.iloc[test], y[test], scoring="roc_auc", n_repeats=3, random_state=seed
            ).importances_mean
    importance = np.maximum(importance, 0.0)
    p = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue
    return {
        "auc": float(roc_auc_score(y, scores)),
        "p_value": float(p),
        "importances": dict(zip(names, (importance / importance.sum()).tolist(), strict=True)),
    }


def library_call(name: str) -> dict:
    """One library call in this process, timed around the call only."""
    import numpy as np

    from opsloop.data.drift import classifier_two_sample_test, concept_shift

    def c2st(pair, n_jobs, **options):
        def call():
            r = classifier_two_sample_test(*pair, n_jobs=n_jobs, **options)
            return {"auc": r.auc, "p_value": r.p_value, "importances": dict(r.importances)}

        return call

    if name.startswith("c2st-readme"):
        pair = _credit_pair()
        if name == "c2st-readme-sklearn":
            call = lambda: plain_sklearn_c2st(*pair, max_rows=5_000)  # noqa: E731
        else:
            call = c2st(pair, None if name.endswith("threads") else 1, max_rows=5_000)
    elif name.startswith("c2st-wine"):
        call = c2st(_wine_pair(), None if name.endswith("threads") else 1)
    elif name.startswith("concept"):
        from opsloop.datasets import ConceptShift, credit

        train = credit(20_000, seed=0)
        later = credit(20_000, seed=2, changes=[ConceptShift(10_000, rule=2)])
        xs = [c for c in train.columns if c != "default"]
        n_jobs = None if name.endswith("threads") else 1

        def call():
            r = concept_shift(
                train[xs].iloc[:3000],
                train["default"].iloc[:3000],
                later[xs].iloc[-3000:],
                later["default"].iloc[-3000:],
                n_jobs=n_jobs,
            )
            return {"statistic": r.statistic, "p_value": r.p_value}

    elif name == "shap-permutation":
        import pandas as pd
        import shap
        import skops.io

        path = DATA / "logistic.skops"
        model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
        x = pd.read_csv(DATA / "cancer_test.csv").drop(columns="target")
        background = x.iloc[np.random.default_rng(0).choice(len(x), 100, replace=False)]

        def call():
            explainer = shap.PermutationExplainer(
                lambda rows: model.predict_proba(pd.DataFrame(rows, columns=x.columns))[:, 1],
                shap.maskers.Independent(background.to_numpy(), max_samples=100),
                seed=0,
            )
            explainer(x.to_numpy(), silent=True)
            return None

    else:
        raise ValueError(f"unknown contender {name!r}")
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "result": result,
    }


ROWS = [
    # (path, contender label, worker name, is peer)
    ("analyze, 171 rows, scaled logistic regression", "opsloop analyze", "analyze-logistic", 0),
    (
        "analyze, 171 rows, scaled logistic regression",
        "--no-explain",
        "analyze-logistic-no-explain",
        0,
    ),
    (
        "analyze, 171 rows, scaled logistic regression",
        "shap PermutationExplainer alone (the old explanation step)",
        "shap-permutation",
        1,
    ),
    ("analyze, 171 rows, HistGradientBoosting", "opsloop analyze", "analyze-boosted", 0),
    ("analyze, 50,000 rows, HistGradientBoosting, 2 tags", "opsloop analyze", "analyze-50k", 0),
    (
        "classifier_two_sample_test, README example, max_rows=5_000",
        "opsloop (n_jobs=1, default)",
        "c2st-readme",
        0,
    ),
    (
        "classifier_two_sample_test, README example, max_rows=5_000",
        "opsloop n_jobs=None (library threads)",
        "c2st-readme-threads",
        1,
    ),
    (
        "classifier_two_sample_test, README example, max_rows=5_000",
        "plain scikit-learn loop (library threads)",
        "c2st-readme-sklearn",
        1,
    ),
    ("classifier_two_sample_test, 130 rows of wine", "opsloop (n_jobs=1, default)", "c2st-wine", 0),
    (
        "classifier_two_sample_test, 130 rows of wine",
        "opsloop n_jobs=None (library threads)",
        "c2st-wine-threads",
        1,
    ),
    ("concept_shift, 3,000 + 3,000 rows", "opsloop (n_jobs=1, default)", "concept", 0),
    (
        "concept_shift, 3,000 + 3,000 rows",
        "opsloop n_jobs=None (library threads)",
        "concept-threads",
        1,
    ),
]


def worker(name: str) -> dict:
    return run_cli(name) if name in ANALYZE else library_call(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="worker names to run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    make_files()
    measured: dict[str, list[dict]] = {}
    rows = [r for r in ROWS if not args.only or r[2] in args.only]
    for _, _, name, peer in rows:
        for _ in range(args.peer_repeats if peer else args.repeats):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", name], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"{name}: {done.stderr}")
            measured.setdefault(name, []).append(json.loads(done.stdout.splitlines()[-1]))
            print(name, measured[name][-1]["wall"], measured[name][-1]["cpu"], flush=True)
    # same numbers from the fast path and the peer it replaces
    same = {}
    for ours, theirs in [
        ("c2st-readme", "c2st-readme-threads"),
        ("c2st-readme", "c2st-readme-sklearn"),
        ("c2st-wine", "c2st-wine-threads"),
        ("concept", "concept-threads"),
    ]:
        if ours in measured and theirs in measured:
            same[theirs] = measured[ours][0]["result"] == measured[theirs][0]["result"]
    write(rows, measured, same, args)


def write(rows, measured, same, args) -> None:
    import numpy
    import pandas
    import shap
    import sklearn

    versions = (
        f"Python {sys.version.split()[0]}, numpy {numpy.__version__}, pandas "
        f"{pandas.__version__}, scikit-learn {sklearn.__version__}, shap {shap.__version__}"
    )
    lines = [
        "# Analysis paths",
        "",
        f"{versions}; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| path | contender | runs | wall-s (median) | CPU-s (median) | same result |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for path, label, name, _ in rows:
        runs = measured.get(name, [])
        if not runs:
            continue
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        check = {True: "yes", False: "NO"}.get(same.get(name), "")
        lines.append(f"| {path} | {label} | {len(runs)} | {wall:.2f} | {cpu:.2f} | {check} |")
    OUT.mkdir(exist_ok=True)
    (OUT / "analysis_paths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
