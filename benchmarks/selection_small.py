"""The default feature funnel on a small real table: scikit-learn's breast cancer data
(569 rows x 30 columns), against the same judgement written the obvious way.

Contenders, each run ``--repeats`` times in a fresh process (imports and numba's cached
kernels loaded before the clock starts, the data loaded untimed):

* ``opsloop``: ``FeatureFunnel(random_state=0).fit(X, y)``, the default steps;
* ``sklearn``: what its model-importance step does, with scikit-learn's own calls: five
  stratified folds, a ``HistGradientBoostingClassifier`` fitted on each, and
  ``permutation_importance(..., n_repeats=5, scoring="neg_brier_score")`` on each held-out
  fold for every column (the groups left out), with OpenMP limited to one thread as the
  funnel limits it.

Both are timed by wall and CPU time. The opsloop row also gives the kept columns and their
cross-validated AUC (logistic regression on standardised columns, 5 stratified folds, seed
0) next to all 30 columns'.

    python benchmarks/selection_small.py                 # 5 repeats
    python benchmarks/selection_small.py --repeats 3

Writes ``benchmarks/out/selection_small.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CONTENDERS = {
    "opsloop": "opsloop FeatureFunnel() default steps",
    "sklearn": "scikit-learn: 5 folds x HistGradientBoosting + permutation_importance",
}


def load():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


def cv_auc(X, y, columns) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(model, X[list(columns)], y, cv=folds, scoring="roc_auc").mean())


def run_opsloop(X, y) -> list[str]:
    from opsloop.data.selection import FeatureFunnel

    return FeatureFunnel(random_state=0).fit(X, y).report_.kept


def run_sklearn(X, y) -> list[str]:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
    scores = []
    with threadpool_limits(limits=1):
        for train, test in folds:
            model = HistGradientBoostingClassifier(random_state=0)
            model.fit(X.iloc[train], y.iloc[train])
            result = permutation_importance(
                model,
                X.iloc[test],
                y.iloc[test],
                n_repeats=5,
                random_state=0,
                scoring="neg_brier_score",
            )
            scores.append(result.importances_mean)
    mean = np.mean(scores, axis=0)
    return [c for c, m in zip(X.columns, mean, strict=True) if m > 0]


def worker(key: str, out: Path) -> None:
    X, y = load()
    run = run_opsloop if key == "opsloop" else run_sklearn
    if key == "opsloop":
        import numpy as np

        # Imports and numba's cached kernels, untimed.
        from opsloop.data.selection.variance import majority_count

        majority_count(np.zeros(3))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    kept = run(X, y)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "kept": kept}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.out)
        return
    runs: dict[str, list[dict]] = {k: [] for k in CONTENDERS}
    (OUT / "runs").mkdir(parents=True, exist_ok=True)
    for repeat in range(args.repeats):
        for key in CONTENDERS:
            out = OUT / "runs" / f"selection_small_{key}_{repeat}.json"
            command = [sys.executable, __file__, "--worker", key, "--out", str(out)]
            subprocess.run(command, check=True)
            runs[key].append(json.loads(out.read_text()))
            print(f"  {key} {repeat + 1}/{args.repeats}: {runs[key][-1]['wall_s']:.2f} s")
    X, y = load()
    everything = cv_auc(X, y, X.columns)
    base = statistics.median(r["wall_s"] for r in runs["opsloop"])
    lines = [
        "| contender | wall-s (median) | CPU-s (median) | wall-s (all runs) | columns kept | "
        f"CV AUC of kept (all 30: {everything:.4f}) | wall vs opsloop |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for key, results in runs.items():
        wall = statistics.median(r["wall_s"] for r in results)
        cpu = statistics.median(r["cpu_s"] for r in results)
        kept = results[0]["kept"]
        auc = f"{cv_auc(X, y, kept):.4f}" if key == "opsloop" else "n/a"
        shown = ", ".join(f"{r['wall_s']:.1f}" for r in results)
        lines.append(
            f"| {CONTENDERS[key]} | {wall:.2f} | {cpu:.2f} | {shown} | {len(kept)} | {auc} | "
            f"{wall / base:.1f}x |"
        )
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("numpy", "pandas", "scikit-learn")
    )
    lines += ["", f"Kept by opsloop: {', '.join(runs['opsloop'][0]['kept'])}.", "", versions]
    text = "\n".join(lines) + "\n"
    (OUT / "selection_small.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
