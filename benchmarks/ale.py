"""ALE benchmark: first-order accumulated local effects of 20 numeric features on 100,000 rows,
opsloop's ``ale`` against PyALE 1.2.0's ``ale(..., feature_type="continuous",
include_CI=False)``, on the same fitted models and the same grid, numbers checked equal.

The data (``make_data``) has 20 numeric columns of ten distribution families, two of them
integer and two rounded, so that quantile edges fall on ties; the target mixes smooth,
stepped and interacting effects. Two models are fitted on it in ``.venv``: a
``HistGradientBoostingRegressor`` (prediction dominates the work) and a ``LinearRegression``
(prediction is cheap, so the ALE code itself dominates). Both are pickled with joblib and
read by every worker; PyALE's venv has the same scikit-learn release (``envs.py``), so both
contenders call the same model.

Same grid: PyALE cuts each feature at its own empirical quantiles (see
:mod:`opsloop.analysis.ale`: the sorted value at ``floor((n - 1) k / grid_size)``, one lower
where that is whole, with the minimum and maximum as the outer edges). This script computes
those edges with that rule (untimed), hands them to opsloop as ``grid=``, and checks that
PyALE's bins are exactly them. Then, per model and feature, PyALE's centred effects must
equal opsloop's to 1e-9 and its bin sizes opsloop's counts, or no timing is written. A third
contender, opsloop with its own default grid (``bins=20``, numpy's quantiles), is timed
only, as the cost of a plain call.

Every repeat of every contender is a fresh process running this file with ``--worker``
(under PyALE's venv for PyALE, so the worker imports neither opsloop nor anything PyALE's
venv lacks), which reads the inputs (untimed) and times the 20 features together: CPU
seconds of the process (all threads) and wall seconds. Repeats are interleaved across
contenders; tables show medians. BLAS and OpenMP threads are limited to 1 in every worker
(``--threads``), since two spinning threads on a shared 2-core machine swing timings.

The floor is what any model-agnostic first-order ALE must pay: the model's predictions for
every row at both ends of its interval, ``2 × rows`` per feature. Its worker calls
``predict`` once per feature on the frame stacked on itself (built untimed), so "above the
floor" is each contender's own overhead: cutting, copying, averaging and centring.

    .venv/bin/python benchmarks/envs.py pyale      # once: benchmarks/.envs/pyale
    .venv/bin/python benchmarks/ale.py             # 100,000 rows, 20 features, 3 repeats
    .venv/bin/python benchmarks/ale.py --rows 20000 --repeats 1 --models linear   # quick

Writes ``benchmarks/out/ale.md`` (the table) and ``benchmarks/out/ale.json`` (raw numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
INPUTS = OUT / "ale"
TOLERANCE = 1e-9
WORKER_TIMEOUT_S = 1800
CONTENDERS = {
    "opsloop": "opsloop ale, PyALE's grid",
    "opsloop-default": "opsloop ale, own grid (bins=20)",
    "pyale": "PyALE ale, continuous, include_CI=False",
    "floor": "floor: the model alone on the same 2 × rows per feature",
}
MODELS = {
    "hgb": "HistGradientBoostingRegressor(max_iter=100)",
    "linear": "LinearRegression",
}


# -- inputs (main process, .venv) ----------------------------------------------------------


def make_data(rows: int, features: int, seed: int):
    """``features`` numeric columns of ten families (integer and rounded ones with ties) and
    a target with smooth, stepped and interacting effects."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    families = [
        lambda: rng.normal(size=rows),
        lambda: rng.lognormal(sigma=0.8, size=rows),
        lambda: rng.uniform(-2, 2, size=rows),
        lambda: rng.exponential(size=rows),
        lambda: rng.standard_t(4, size=rows),
        lambda: np.where(rng.random(rows) < 0.3, rng.normal(-2, 0.5, rows), rng.normal(1, 1, rows)),
        lambda: np.round(rng.normal(size=rows), 1),
        lambda: rng.poisson(3.0, size=rows).astype(np.int64),
        lambda: rng.gamma(2.0, size=rows),
        lambda: rng.beta(2.0, 5.0, size=rows),
    ]
    X = pd.DataFrame({f"x{j:02d}": families[j % len(families)]() for j in range(features)})
    z = X.to_numpy(dtype=np.float64)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    weights = rng.uniform(0.5, 2.0, size=features) * rng.choice([-1.0, 1.0], size=features)
    y = z @ weights
    y += 1.5 * np.sin(2 * z[:, 0]) + (z[:, 1] > 0.5) * 2.0 + 0.8 * z[:, 2] * z[:, 3]
    y += 0.5 * z[:, 4] ** 2 + rng.normal(scale=0.5, size=rows)
    return X, y


def pyale_edges(values, grid_size: int):
    """PyALE 1.2.0's interval edges for one feature, by its rule (see the module text)."""
    import numpy as np

    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    position = (n - 1) * np.linspace(0.0, 1.0, grid_size + 1)
    whole = position.astype(np.int64)
    index = np.where(position - whole != 0, whole, whole - 1)
    edges = ordered[np.clip(index, 0, n - 1)]
    edges[0], edges[-1] = ordered[0], ordered[-1]
    return np.unique(edges)


def write_inputs(args) -> dict:
    import joblib
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    INPUTS.mkdir(parents=True, exist_ok=True)
    X, y = make_data(args.rows, args.features, args.seed)
    X.to_parquet(INPUTS / "X.parquet")
    fitted = {}
    for name in args.models:
        if name == "hgb":
            model = HistGradientBoostingRegressor(max_iter=100, random_state=0)
        else:
            model = LinearRegression()
        started = time.perf_counter()
        model.fit(X, y)
        fitted[name] = time.perf_counter() - started
        joblib.dump(model, INPUTS / f"{name}.joblib")
    grids = {c: pyale_edges(X[c], args.bins).tolist() for c in X.columns}
    (INPUTS / "grids.json").write_text(json.dumps(grids))
    ties = {c: int(len(X) - X[c].nunique()) for c in X.columns}
    return {
        "fit_s": fitted,
        "bins_per_feature": {c: len(g) - 1 for c, g in grids.items()},
        "ties": ties,
    }


# -- workers (fresh processes) -------------------------------------------------------------


def worker(args) -> None:
    import joblib
    import pandas as pd

    X = pd.read_parquet(INPUTS / "X.parquet")
    model = joblib.load(INPUTS / f"{args.model}.joblib")
    grids = json.loads((INPUTS / "grids.json").read_text())
    features = list(X.columns)
    if args.worker == "pyale":
        import importlib.metadata as md

        from PyALE import ale as pyale

        version = md.version("PyALE")

        def work():
            out = {}
            for f in features:
                table = pyale(
                    X,
                    model,
                    [f],
                    feature_type="continuous",
                    grid_size=args.bins,
                    include_CI=False,
                    plot=False,
                )
                out[f] = {
                    "edges": [float(v) for v in table.index],
                    "values": table["eff"].astype(float).tolist(),
                    "counts": table["size"].astype(int).tolist(),
                }
            return out

    elif args.worker == "floor":
        import importlib.metadata as md

        version = md.version("scikit-learn")
        stacked = pd.concat([X, X], ignore_index=True)

        def work():
            for _ in features:
                model.predict(stacked)
            return {}

    else:
        import importlib.metadata as md

        from opsloop.analysis.ale import ale

        version = md.version("opsloop")
        own = args.worker == "opsloop-default"

        def work():
            out = {}
            for f in features:
                result = (
                    ale(model, X, f, bins=args.bins) if own else ale(model, X, f, grid=grids[f])
                )
                out[f] = {
                    "edges": list(result.edges),
                    "values": list(result.values),
                    "counts": list(result.counts),
                }
            return out

    cpu0, wall0 = time.process_time(), time.perf_counter()
    effects = work()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    import numpy
    import sklearn

    result = {
        "version": version,
        "cpu_s": cpu,
        "wall_s": wall,
        "effects": effects,
        "pandas": pd.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    Path(args.out).write_text(json.dumps(result))


def run_worker(python: str, contender: str, model: str, args, repeat: int) -> dict:
    out = OUT / "runs" / f"ale_{contender}_{model}_{repeat}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(args.threads)
    command = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        contender,
        "--model",
        model,
        "--bins",
        str(args.bins),
        "--out",
        str(out),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    if done.returncode != 0 or not out.exists():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"error": f"exit {done.returncode}: {lines[-1]}"}
    return json.loads(out.read_text())


# -- checks and report (main process) ------------------------------------------------------


def compare(ours: dict, theirs: dict, grids: dict) -> dict:
    """Largest differences between opsloop (PyALE's grid) and PyALE, feature by feature."""
    import numpy as np

    worst_value, edges_equal, counts_equal = 0.0, True, True
    per_feature = {}
    for feature, grid in grids.items():
        a, b = ours[feature], theirs[feature]
        same_edges = a["edges"] == grid and b["edges"] == grid
        same_counts = a["counts"] == b["counts"]
        difference = (
            float(np.max(np.abs(np.subtract(a["values"], b["values"]))))
            if len(a["values"]) == len(b["values"])
            else float("inf")
        )
        per_feature[feature] = {
            "edges_equal": same_edges,
            "counts_equal": same_counts,
            "max_abs_difference": difference,
            "bins": len(grid) - 1,
            "range": float(np.ptp(b["values"])),
        }
        worst_value = max(worst_value, difference)
        edges_equal &= same_edges
        counts_equal &= same_counts
    return {
        "edges_equal": edges_equal,
        "counts_equal": counts_equal,
        "max_abs_difference": worst_value,
        "per_feature": per_feature,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--bins", type=int, default=20, help="PyALE's grid_size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from envs import PEERS, probe  # beside this file: run as `python benchmarks/ale.py`

    peer = PEERS["pyale"]
    available, reason, peer_versions = probe(peer)
    pythons = {"opsloop": sys.executable, "opsloop-default": sys.executable}
    if available:
        pythons["pyale"] = str(peer.python)
    else:
        print(f"PyALE unavailable: {reason}; timing opsloop only")
    pythons["floor"] = sys.executable
    setup = write_inputs(args)
    grids = json.loads((INPUTS / "grids.json").read_text())

    runs: dict[tuple[str, str], list[dict]] = {}
    for repeat in range(args.repeats):
        for model in args.models:
            for contender, python in pythons.items():
                result = run_worker(python, contender, model, args, repeat)
                if "error" in result:
                    raise SystemExit(f"{contender} on {model} failed: {result['error']}")
                runs.setdefault((model, contender), []).append(result)
                print(
                    f"repeat {repeat}: {model:6s} {contender:16s} "
                    f"cpu {result['cpu_s']:7.2f} s  wall {result['wall_s']:7.2f} s",
                    flush=True,
                )

    checks = {}
    for model in args.models:
        if "pyale" not in pythons:
            break
        # every repeat gives the same numbers; the first is compared
        check = compare(
            runs[(model, "opsloop")][0]["effects"], runs[(model, "pyale")][0]["effects"], grids
        )
        checks[model] = check
        if not (
            check["edges_equal"]
            and check["counts_equal"]
            and check["max_abs_difference"] <= TOLERANCE
        ):
            (OUT / "ale.json").write_text(json.dumps({"checks": checks}, indent=1))
            raise SystemExit(
                f"{model}: opsloop and PyALE differ (edges equal {check['edges_equal']}, "
                f"counts equal {check['counts_equal']}, largest difference "
                f"{check['max_abs_difference']:.3g}); see benchmarks/out/ale.json"
            )

    import numpy
    import pandas
    import sklearn

    from opsloop import __version__ as opsloop_version

    lines = [
        "# ALE benchmark",
        "",
        f"First-order ALE of {args.features} numeric features on {args.rows:,} rows, "
        f"{args.bins} quantile intervals per feature ({min(setup['bins_per_feature'].values())}"
        f"-{max(setup['bins_per_feature'].values())} after merging tied edges); medians of "
        f"{args.repeats} fresh processes per contender, BLAS/OpenMP threads {args.threads}.",
        "",
        "| model | contender | version | CPU-s (median) | wall-s (median) | CPU-s above the "
        "floor | CPU vs opsloop |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    summary = {}
    for model in args.models:
        base = statistics.median(r["cpu_s"] for r in runs[(model, "opsloop")])
        floor = statistics.median(r["cpu_s"] for r in runs[(model, "floor")])
        for contender in pythons:
            results = runs[(model, contender)]
            cpu = statistics.median(r["cpu_s"] for r in results)
            wall = statistics.median(r["wall_s"] for r in results)
            summary[f"{model}/{contender}"] = {
                "cpu_s": cpu,
                "wall_s": wall,
                "runs": [{"cpu_s": r["cpu_s"], "wall_s": r["wall_s"]} for r in results],
                "version": results[0]["version"],
                "pandas": results[0]["pandas"],
                "numpy": results[0]["numpy"],
                "scikit-learn": results[0]["scikit-learn"],
            }
            lines.append(
                f"| {MODELS[model]} | {CONTENDERS[contender]} | {results[0]['version']} | "
                f"{cpu:.2f} | {wall:.2f} | "
                f"{'' if contender == 'floor' else f'{cpu - floor:.2f}'} | {cpu / base:.2f}x |"
            )
    lines.append("")
    for model, check in checks.items():
        lines.append(
            f"- {MODELS[model]}: PyALE's bins equal the grid given to opsloop on all "
            f"{len(check['per_feature'])} features: {check['edges_equal']}; bin sizes equal: "
            f"{check['counts_equal']}; largest |ALE difference| "
            f"{check['max_abs_difference']:.2e} (tolerance {TOLERANCE:g})."
        )
    pyale_env = summary.get(f"{args.models[0]}/pyale")
    lines += [
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; .venv: numpy {numpy.__version__}, pandas "
        f"{pandas.__version__}, scikit-learn {sklearn.__version__}, opsloop {opsloop_version}"
        + (
            f"; PyALE venv: numpy {pyale_env['numpy']}, pandas {pyale_env['pandas']}, "
            f"scikit-learn {pyale_env['scikit-learn']}"
            if pyale_env
            else ""
        )
        + ".",
        "",
    ]
    OUT.mkdir(exist_ok=True)
    (OUT / "ale.md").write_text("\n".join(lines))
    (OUT / "ale.json").write_text(
        json.dumps(
            {"setup": setup, "summary": summary, "checks": checks, "peer": peer_versions},
            indent=1,
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
