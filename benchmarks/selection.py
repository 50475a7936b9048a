"""Feature selection benchmark: opsloop's ``FeatureFunnel`` against the same steps written
the obvious way with pandas and scikit-learn.

Both contenders run the same six steps with the same rules and thresholds on the same frame
(:func:`selection_data.wide_frame`: credit columns plus planted mostly-missing, constant,
duplicate, correlated, categorical and noise columns): null fraction > 0.8; top value > 90%
of rows and > 19x the second; |Pearson r| > 0.95 keeping the column more related to the
target; Cramér's V > 0.9 likewise; the 50 best columns by ``f_classif``; permutation
importance of a histogram gradient boosting model on the same 20,000 rows. The obvious way
uses ``isna().mean()``, ``value_counts``, ``DataFrame.corr``, ``pd.crosstab`` with
``scipy.stats.contingency.association``, ``get_dummies`` with ``f_classif``, and
``permutation_importance``.

Each contender runs in a fresh process that builds the frame (untimed), then measures the
selection alone: wall and CPU time, and the process's peak resident memory during the
selection (the kernel's high-water mark, reset just before it starts), next to the frame's
own memory. Repeats are interleaved across contenders. The gradient boosting model's OpenMP
threads are limited (``--openmp-threads``, default 1) in both contenders alike.

    python benchmarks/selection.py                          # 100,000 rows x 1,000 columns
    python benchmarks/selection.py --rows 20000 --repeats 1 # quick

Writes a markdown table to ``benchmarks/out/selection.md`` and the raw numbers to
``benchmarks/out/selection.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from selection_data import INFORMATIVE, TARGET, wide_frame  # beside this file

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CONTENDERS = {
    "opsloop": "opsloop FeatureFunnel",
    "pandas": "pandas + scikit-learn, the obvious way",
}
NULL_LIMIT = 0.8
TOP_SHARE, TOP_RATIO = 0.9, 19.0
PEARSON_LIMIT = 0.95
CRAMER_LIMIT = 0.9
K_BEST = 50
MODEL_ROWS = 20_000
IMPORTANCE_CUT = 0.005
SEED = 0


# --- the obvious way ---------------------------------------------------------------------


def _greedy(names, strength: pd.DataFrame, limit, relation: pd.Series, present: pd.Series):
    """Keep the best-related (then better-populated, then earlier) column of each pair."""
    order = sorted(
        range(len(names)),
        key=lambda i: (-np.nan_to_num(relation.iloc[i], nan=-1.0), -present.iloc[i], i),
    )
    dropped: set[str] = set()
    for i in order:
        name = names[i]
        if name in dropped:
            continue
        row = strength[name].abs()
        for j in order[order.index(i) + 1 :]:
            other = names[j]
            if other not in dropped and row[other] > limit:
                dropped.add(other)
    return dropped


def pandas_selection(
    frame: pd.DataFrame, y: pd.Series, seconds: dict[str, float] | None = None
) -> list[str]:
    """The six steps with pandas, scipy and scikit-learn, as a notebook would write them;
    ``seconds`` receives each step's wall time."""
    seconds = {} if seconds is None else seconds
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        seconds[step] = now - clock[0]
        clock[0] = now

    from scipy.stats.contingency import association
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    fractions = frame.isna().mean()
    frame = frame.loc[:, fractions <= NULL_LIMIT]
    lap("null_fraction")

    keep = []
    for column in frame.columns:
        counts = frame[column].value_counts()
        if counts.empty:
            continue
        top = counts.iloc[0] / counts.sum()
        ratio = counts.iloc[0] / counts.iloc[1] if len(counts) > 1 else np.inf
        if not (top > TOP_SHARE and ratio > TOP_RATIO):
            keep.append(column)
    frame = frame[keep]
    lap("near_zero_variance")

    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_datetime64_any_dtype(frame[c])
    ]
    numbers = (
        frame[numeric]
        .apply(lambda s: s.astype("int64") / 1e9 if pd.api.types.is_datetime64_any_dtype(s) else s)
        .astype(float)
    )
    corr = numbers.corr()
    relation = numbers.corrwith(y.astype(float)).abs()
    dropped = _greedy(numeric, corr, PEARSON_LIMIT, relation, numbers.notna().sum())
    frame = frame.drop(columns=sorted(dropped))
    lap("numeric_redundancy")

    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    cramer = pd.DataFrame(np.nan, index=categorical, columns=categorical)
    for i, a in enumerate(categorical):
        for b in categorical[i + 1 :]:
            table = pd.crosstab(frame[a], frame[b])
            table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
            if min(table.shape) > 1:
                cramer.loc[a, b] = cramer.loc[b, a] = association(table, method="cramer")
    relation = pd.Series(
        [association(pd.crosstab(frame[c], y), method="cramer") for c in categorical],
        index=categorical,
    )
    dropped = _greedy(categorical, cramer, CRAMER_LIMIT, relation, frame[categorical].notna().sum())
    frame = frame.drop(columns=sorted(dropped))
    lap("categorical_redundancy")

    scored = [c for c in frame.columns if c in numbers.columns or c in categorical]
    scores = {}
    filled = numbers[[c for c in scored if c in numbers.columns]]
    filled = filled.fillna(filled.mean())
    for column, score in zip(filled.columns, f_classif(filled, y)[0], strict=True):
        scores[column] = score
    for column in [c for c in scored if c in categorical]:
        dummies = pd.get_dummies(frame[column], dtype=float)
        scores[column] = np.nanmax(f_classif(dummies, y)[0])
    score_list = np.array([scores[c] for c in scored])
    selector = SelectKBest(lambda X, _y: score_list, k=K_BEST).fit(
        np.zeros((2, len(scored))), [0, 1]
    )
    chosen = [c for c, keep in zip(scored, selector.get_support(), strict=True) if keep]
    lap("relevance")

    rows = np.arange(len(frame))
    rng = np.random.default_rng(SEED)
    if rows.size > MODEL_ROWS:
        rows = np.sort(rng.choice(rows, MODEL_ROWS, replace=False))
    train, test = train_test_split(
        rows, test_size=0.25, random_state=SEED, stratify=y.to_numpy()[rows]
    )
    matrix = pd.DataFrame(
        {
            c: frame[c].cat.codes.where(frame[c].cat.codes >= 0).astype(float)
            if c in categorical
            else numbers[c]
            for c in chosen
        }
    ).to_numpy()
    mask = np.array([c in categorical for c in chosen])
    model = HistGradientBoostingClassifier(
        categorical_features=mask if mask.any() else None, random_state=SEED
    )
    model.fit(matrix[train], y.to_numpy()[train])
    result = permutation_importance(
        model, matrix[test], y.to_numpy()[test], n_repeats=5, random_state=SEED
    )
    lower = result.importances_mean - 2 * result.importances_std
    selected = {c for c, value in zip(chosen, lower, strict=True) if value > IMPORTANCE_CUT}
    text = [c for c in frame.columns if c not in numbers.columns and c not in categorical]
    lap("model_importance")
    return [c for c in frame.columns if c in selected or c in text]


def opsloop_selection(
    frame: pd.DataFrame, y: pd.Series, seconds: dict[str, float] | None = None
) -> list[str]:
    """The same six steps as one ``FeatureFunnel``; ``seconds`` receives each step's time
    (the first step's includes reading the columns' types)."""
    from opsloop.data.selection import (
        CategoricalRedundancy,
        FeatureFunnel,
        ModelImportance,
        NearZeroVariance,
        NullFraction,
        NumericRedundancy,
        Relevance,
    )

    funnel = FeatureFunnel(
        steps=[
            NullFraction(NULL_LIMIT),
            NearZeroVariance(TOP_SHARE, TOP_RATIO),
            NumericRedundancy(PEARSON_LIMIT),
            CategoricalRedundancy(CRAMER_LIMIT),
            Relevance(k=K_BEST),
            ModelImportance(threshold=IMPORTANCE_CUT, max_rows=MODEL_ROWS),
        ],
        random_state=SEED,
    )
    funnel.fit(frame, y)
    if seconds is not None:
        seconds.update({s.step: s.seconds for s in funnel.report_.steps})
    return list(funnel.get_feature_names_out())


# --- measuring ------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _release_free_memory() -> None:
    gc.collect()
    # Give freed heap back to the system, so the selection's peak is not hidden by pages the
    # frame's construction left behind.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def worker(args: argparse.Namespace) -> None:
    frame, _ = wide_frame(args.rows, args.columns, seed=args.seed)
    y = frame.pop(TARGET)
    data_mb = frame.memory_usage(deep=True).sum() / 2**20
    run = opsloop_selection if args.worker == "opsloop" else pandas_selection
    if args.worker == "opsloop":
        # numba compiles its kernels on first use (and caches them on disk); warm them on a
        # tiny frame so the measurement is of the selection, not of the compiler.
        small, _ = wide_frame(2000, 100, seed=1)
        run(small, small.pop(TARGET))
        del small
    _release_free_memory()
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    cpu0, wall0 = time.process_time(), time.perf_counter()
    seconds: dict[str, float] = {}
    with threadpool_limits(limits=args.openmp_threads, user_api="openmp"):
        selected = run(frame, y, seconds)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "data_mb": data_mb,
        "rss_before_mb": before,
        "peak_rss_mb": _status_mb("VmHWM"),
        "selected": selected,
        "step_seconds": seconds,
    }
    args.out.write_text(json.dumps(result, indent=1))


def run_contender(key: str, args: argparse.Namespace, repeat: int) -> dict:
    out = OUT / "runs" / f"selection_{key}_{repeat}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        key,
        "--rows",
        str(args.rows),
        "--columns",
        str(args.columns),
        "--seed",
        str(args.seed),
        "--openmp-threads",
        str(args.openmp_threads),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"error": f"exit {done.returncode}: {lines[-1]}"}
    return json.loads(out.read_text())


def render(args: argparse.Namespace, rows: dict[str, dict], planted: dict) -> str:
    base = rows.get("opsloop")
    lines = [
        f"# Feature selection benchmark: {args.rows:,} rows x {args.columns:,} columns",
        "",
        f"`wide_frame({args.rows}, {args.columns}, seed={args.seed})` "
        f"({', '.join(f'{k} {v}' for k, v in planted.items())}). Six steps, same rules, "
        f"{args.repeats} run(s) per contender in fresh processes; medians. Peak RSS is the "
        "process's high-water mark during the selection (interpreter, imports and the frame "
        "included); extra = peak minus the resident memory just before. The model's OpenMP "
        f"threads are limited to {args.openmp_threads} in both (on a shared machine two "
        "spinning OpenMP threads swing its time tenfold); BLAS threads are left as they are.",
        "",
        "| contender | wall-s | CPU-s | data MB | peak RSS MB | peak / data | extra MB | "
        "extra / data | columns kept | informative kept | wall vs opsloop |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, r in rows.items():
        if "error" in r:
            lines.append(f"| {CONTENDERS[key]} | failed: {r['error']} | | | | | | | | | |")
            continue
        informative = sum(c in r["selected"] for c in INFORMATIVE)
        ratio = f"{r['wall_s'] / base['wall_s']:.1f}x" if base and "wall_s" in base else "n/a"
        extra = r["peak_rss_mb"] - r["rss_before_mb"]
        lines.append(
            f"| {CONTENDERS[key]} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['data_mb']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / r['data_mb']:.2f} | {extra:.0f} | "
            f"{extra / r['data_mb']:.2f} | {len(r['selected'])} | "
            f"{informative}/{len(INFORMATIVE)} | {ratio} |"
        )
    timed = {k: r for k, r in rows.items() if "step_seconds" in r}
    if timed:
        steps = list(next(iter(timed.values()))["step_seconds"])
        lines += [
            "",
            "Wall seconds per step (first run):",
            "",
            "| step | " + " | ".join(CONTENDERS[k] for k in timed) + " |",
            "| --- |" + " ---: |" * len(timed),
        ]
        for step in steps:
            cells = [f"{r['step_seconds'].get(step, float('nan')):.2f}" for r in timed.values()]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
    ok = [r for r in rows.values() if "selected" in r]
    if len(ok) == 2:
        same = set(ok[0]["selected"]) == set(ok[1]["selected"])
        lines += ["", f"Both contenders kept the same columns: {'yes' if same else 'no'}."]
    lines += ["", "Kept by opsloop: " + ", ".join(base.get("selected", [])) if base else ""]
    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("numpy", "pandas", "scikit-learn", "scipy")},
    }
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""]
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS))
    parser.add_argument(
        "--openmp-threads",
        type=int,
        default=1,
        help="OpenMP threads (the gradient boosting model) for both contenders",
    )
    parser.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error(f"--rows must be >= 1000, got {args.rows}")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    keys = args.only or list(CONTENDERS)
    runs: dict[str, list[dict]] = {k: [] for k in keys}
    for repeat in range(args.repeats):
        for key in keys:
            result = run_contender(key, args, repeat)
            runs[key].append(result)
            shown = result.get("error") or (
                f"{result['wall_s']:.1f} wall-s, {result['peak_rss_mb']:.0f} MB peak"
            )
            print(f"  repeat {repeat + 1}/{args.repeats} {key}: {shown}", flush=True)
    rows = {}
    for key, results in runs.items():
        errors = [r for r in results if "error" in r]
        if errors:
            rows[key] = errors[0]
            continue
        rows[key] = {
            **results[0],
            **{
                field: statistics.median(r[field] for r in results)
                for field in ("wall_s", "cpu_s", "peak_rss_mb", "rss_before_mb")
            },
        }
    _, planted = wide_frame(1000, args.columns, seed=args.seed)
    counts = {role: len(names) for role, names in planted.roles.items()}
    text = render(args, rows, counts)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "selection.md").write_text(text)
    (OUT / "selection.json").write_text(
        json.dumps({"args": vars(args) | {"out": None}, "rows": rows}, indent=1, default=str)
    )
    print(text)


if __name__ == "__main__":
    main()
