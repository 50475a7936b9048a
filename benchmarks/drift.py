"""Drift detection benchmark: opsloop against Evidently, NannyML and a plain scipy loop.

One run generates ``opsloop.datasets.drift_table(rows)`` (20 numeric and 5 categorical
columns, 7 of them shifted), writes both frames once to Parquet under ``benchmarks/out/`` so
that every contender reads the same files, and runs each contender ``--repeats`` times, each
time in a fresh process (the workers in ``benchmarks/peers/``) so that peak memory is that
contender's alone. Repeats are interleaved across contenders, so a burst of load on the
machine spreads over all of them instead of landing on one.

Each repeat runs every contender twice: cold (the work is the first thing the process does
after reading the files, so lazy imports and loading compiled kernels are part of it) and
warm (``--warm``: the worker first runs the same work on the first 1,000 rows of each frame,
then measures). The report has a table for each; the verdicts and the p-value checks come from
the cold runs.

Contenders: opsloop's ``compare`` with the reference as a DataFrame and as a saved
``ReferenceProfile`` (built here beforehand, untimed; loaded inside the timed work); the
scipy loop; numpy sorting the numeric columns of both frames (the floor any exact KS test
pays); Evidently's ``DataDriftPreset`` and NannyML's ``UnivariateDriftCalculator`` (with its
default chunking, and with the whole current set as one chunk) in their own venvs
(``benchmarks/envs.py`` makes them; a peer whose venv is missing or broken is
reported as unavailable, not fatal).

    python benchmarks/drift.py                               # 1,000,000 rows, 3 repeats
    python benchmarks/drift.py --rows 100000 --repeats 1     # quick
    python benchmarks/drift.py --only opsloop scipy

Prints a markdown report and writes it to ``benchmarks/out/drift.md``, with the raw numbers
in ``benchmarks/out/drift.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from envs import PEERS, probe  # beside this file: run as `python benchmarks/drift.py`
from opsloop.data.drift.summary import ReferenceProfile
from opsloop.data.types import NUMERIC_TYPES, infer_column_type
from opsloop.datasets import drift_table

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
WORKERS = HERE / "peers"
#: A worker that runs longer than this is stopped and its contender reported as failed.
WORKER_TIMEOUT_S = 3600
BASELINE = "opsloop"
#: How each contender's process runs: cold, or after a warm-up on 1,000 rows (``--warm``).
MODES = ("cold", "warm")


@dataclass(frozen=True)
class Contender:
    """One row of the table: which worker runs it, in which venv, with what extra arguments."""

    key: str
    label: str
    worker: str
    peer: str | None = None  # a peer's venv (benchmarks/envs.py), or None for the main venv
    profile: bool = False  # pass the saved ReferenceProfile
    decides: bool = True  # False for the floor, which computes no verdict
    arguments: tuple[str, ...] = ()  # more arguments for the worker


CONTENDERS: dict[str, Contender] = {
    c.key: c
    for c in (
        Contender("opsloop", "opsloop compare (reference DataFrame)", "opsloop_compare"),
        Contender(
            "opsloop-profile",
            "opsloop compare (cached ReferenceProfile)",
            "opsloop_compare",
            profile=True,
        ),
        Contender(
            "opsloop-fast",
            "opsloop compare, ks_p_value=fast (reference DataFrame)",
            "opsloop_compare",
            arguments=("--ks-p-value", "fast"),
        ),
        Contender(
            "opsloop-profile-fast",
            "opsloop compare, ks_p_value=fast (cached ReferenceProfile)",
            "opsloop_compare",
            profile=True,
            arguments=("--ks-p-value", "fast"),
        ),
        Contender("scipy", "scipy loop (ks_2samp, chi2_contingency, wasserstein)", "scipy_loop"),
        Contender(
            "numpy-sort",
            "numpy sort of the numeric columns (floor)",
            "numpy_sort",
            decides=False,
        ),
        Contender(
            "evidently",
            "Evidently DataDriftPreset (effect-size thresholds, no significance test)",
            "evidently_preset",
            peer="evidently",
        ),
        Contender(
            "nannyml",
            "NannyML UnivariateDriftCalculator, defaults",
            "nannyml_univariate",
            peer="nannyml",
            arguments=("--chunking", "default"),
        ),
        Contender(
            "nannyml-one-chunk",
            "NannyML UnivariateDriftCalculator, chunk_size=len(current)",
            "nannyml_univariate",
            peer="nannyml",
            arguments=("--chunking", "one"),
        ),
    )
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each frame")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender (medians)")
    parser.add_argument("--seed", type=int, default=0, help="seed of drift_table")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"run only these contenders, of: {', '.join(CONTENDERS)}",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be >= 1, got {args.rows}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    unknown = [k for k in args.only or [] if k not in CONTENDERS]
    if unknown:
        parser.error(f"--only: unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")
    return args


def prepare_inputs(rows: int, seed: int) -> dict:
    """Write the two frames, the column roles and the reference profile; return paths + truth."""
    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"drift_{rows}_seed{seed}"
    paths = {
        "reference": OUT / f"{stem}_reference.parquet",
        "current": OUT / f"{stem}_current.parquet",
        "columns": OUT / f"{stem}_columns.json",
        "profile": OUT / f"{stem}_reference_profile.npz",
    }
    start = time.perf_counter()
    reference, current, truth = drift_table(rows, seed=seed)
    reference.to_parquet(paths["reference"])
    current.to_parquet(paths["current"])
    del reference, current
    # The profile and the column roles come from the file, exactly what the workers read.
    reference = pd.read_parquet(paths["reference"])
    roles: dict[str, list[str]] = {"numeric": [], "categorical": []}
    for column in reference.columns:
        numeric = infer_column_type(reference[column]) in NUMERIC_TYPES
        roles["numeric" if numeric else "categorical"].append(str(column))
    paths["columns"].write_text(json.dumps(roles))
    ReferenceProfile.from_frame(reference).save(paths["profile"])
    print(
        f"inputs: {rows:,} rows x {reference.shape[1]} columns in {OUT} "
        f"({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    return {"paths": paths, "truth": truth, "roles": roles}


def availability(contenders: list[Contender]) -> dict[str, tuple[str | None, str]]:
    """``{key: (python or None, note)}``: the interpreter to run each contender with."""
    out = {}
    for c in contenders:
        if c.peer is None:
            out[c.key] = (sys.executable, "")
            continue
        ok, reason, versions = probe(PEERS[c.peer])
        note = f"pandas {versions['pandas']}" if ok else reason
        out[c.key] = (str(PEERS[c.peer].python) if ok else None, note)
    return out


def run_worker(contender: Contender, python: str, inputs: dict, repeat: int, mode: str) -> dict:
    """One fresh process of the contender's worker; its result, or ``{"error": ...}``."""
    paths = inputs["paths"]
    result_path = OUT / "runs" / f"{contender.key}_{mode}_{repeat}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    command = [
        python,
        str(WORKERS / f"{contender.worker}.py"),
        "--reference",
        str(paths["reference"]),
        "--current",
        str(paths["current"]),
        "--columns",
        str(paths["columns"]),
        "--out",
        str(result_path),
    ]
    if contender.profile:
        command += ["--profile", str(paths["profile"])]
    command += contender.arguments
    if mode == "warm":
        command.append("--warm")
    env = dict(os.environ, DO_NOT_TRACK="1", NML_DISABLE_USAGE_LOGGING="1")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    if done.returncode != 0 or not result_path.exists():
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"error": f"exit {done.returncode}: {lines[-1]}"}
    return json.loads(result_path.read_text())


def run_all(contenders: list[Contender], pythons: dict, inputs: dict, repeats: int) -> dict:
    """``{mode: {contender key: [result of each repeat]}}``, cold and warm interleaved."""
    runs: dict[str, dict[str, list[dict]]] = {m: {c.key: [] for c in contenders} for m in MODES}
    for repeat in range(repeats):
        for c in contenders:
            python = pythons[c.key][0]
            for mode in MODES:
                if python is None or any("error" in r for r in runs[mode][c.key]):
                    continue
                result = run_worker(c, python, inputs, repeat, mode)
                runs[mode][c.key].append(result)
                if "error" in result:
                    print(f"  {c.key} {mode}: FAILED ({result['error']})", flush=True)
                else:
                    added = result["work_peak_rss_mb"] - result["rss_before_mb"]
                    print(
                        f"  repeat {repeat + 1}/{repeats} {c.key} {mode}: "
                        f"{result['cpu_s']:.2f} CPU-s, {result['wall_s']:.2f} wall-s, "
                        f"peak {result['peak_rss_mb']:.0f} MB, work added {added:.0f} MB",
                        flush=True,
                    )
    return runs


def summarise(c: Contender, runs: list[dict], truth, note: str) -> dict:
    """Medians over the repeats and the verdict counts of one contender."""
    row: dict = {"key": c.key, "label": c.label, "note": note}
    if not runs:
        return {**row, "status": f"unavailable: {note}"}
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return {**row, "status": f"failed: {errors[0]}"}
    if "chunker" in runs[0]:  # NannyML: say how it chunked, as it reported
        first = runs[0]
        row["label"] += (
            f" ({first['chunker']}: {first['reference_chunks']} reference, "
            f"{first['analysis_chunks']} current chunks)"
        )
    row.update(
        status="ok",
        version=runs[0]["version"],
        cpu_s=statistics.median(r["cpu_s"] for r in runs),
        wall_s=statistics.median(r["wall_s"] for r in runs),
        peak_rss_mb=statistics.median(r["peak_rss_mb"] for r in runs),
        rss_before_mb=statistics.median(r["rss_before_mb"] for r in runs),
        work_peak_rss_mb=statistics.median(r["work_peak_rss_mb"] for r in runs),
        # The median of each run's own difference, not a difference of two medians.
        added_mb=statistics.median(r["work_peak_rss_mb"] - r["rss_before_mb"] for r in runs),
        input_mb=statistics.median(r["input_bytes"] for r in runs) / 2**20,
        peak_reset=all(r["peak_reset"] for r in runs),
        repeats=len(runs),
    )
    if c.decides:
        drifted = runs[0]["drifted"]
        shifted = set(truth.shifted)
        unchanged = [t.column for t in truth.columns if not t.shifted]
        row.update(
            drifted=drifted,
            detected=[col for col in truth.shifted if drifted.get(col)],
            false_alarms=[col for col in unchanged if drifted.get(col)],
            n_shifted=len(shifted),
            n_unchanged=len(unchanged),
            not_reported=[t.column for t in truth.columns if t.column not in drifted],
            stable=all(r["drifted"] == drifted for r in runs),
        )
    return row


def p_value_agreement(runs: dict, key: str) -> list[dict]:
    """opsloop's p-values against the scipy loop's, per test, on columns both test alike."""
    if not runs.get(key) or not runs.get("scipy") or any("error" in r for r in runs[key]):
        return []
    if any("error" in r for r in runs["scipy"]):
        return []
    ours, theirs = runs[key][0], runs["scipy"][0]
    rows = []
    for test in ("ks", "chi2"):
        columns = [
            col
            for col, t in ours["tests"].items()
            if t == test and theirs["tests"].get(col) == test
        ]
        if not columns:
            continue
        diffs = [abs(ours["p_values"][col] - theirs["p_values"][col]) for col in columns]
        relative = [
            diff / theirs["p_values"][col]
            for diff, col in zip(diffs, columns, strict=True)
            if theirs["p_values"][col] > 0
        ]
        identical = sum(ours["p_values"][col] == theirs["p_values"][col] for col in columns)
        rows.append(
            {
                "contender": key,
                "test": test,
                "columns": len(columns),
                "bit_identical": identical,
                "max_abs_diff": max(diffs),
                "max_rel_diff": max(relative, default=0.0),
            }
        )
    other = [
        f"{col} (opsloop {t}, scipy {theirs['tests'].get(col)})"
        for col, t in ours["tests"].items()
        if t != theirs["tests"].get(col)
    ]
    if other:
        rows.append({"contender": key, "test": "different tests", "columns": other})
    return rows


def machine_info(pythons: dict) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in ("numpy", "scipy", "pandas", "pyarrow"):
        info[name] = metadata.version(name)
    for key, (python, note) in pythons.items():
        if CONTENDERS[key].peer and python is not None:
            info[f"{key} venv"] = note
    return info


def opsloop_rules(runs: dict) -> list[str]:
    """The tests opsloop chose per column kind, read from what its worker reported."""
    done = [r for r in runs.get(BASELINE, []) if "error" not in r]
    if not done:
        return []
    by_rule: dict[str, int] = {}
    for column, test in done[0]["tests"].items():
        rule = f"{test} on {done[0]['kinds'][column]}"
        by_rule[rule] = by_rule.get(rule, 0) + 1
    chosen = ", ".join(f"{rule} ({n} columns)" for rule, n in by_rule.items())
    return [f"- opsloop (defaults): {chosen}; drifted when the Holm-adjusted p-value < 0.05."]


def peer_rules(runs: dict) -> list[str]:
    """How each peer decided, read from what its worker reported (methods, thresholds)."""
    lines = []
    evidently = [r for r in runs.get("evidently", []) if "error" not in r]
    if evidently:
        methods = sorted(set(evidently[0]["methods"].values()))
        lines.append(
            "- Evidently (the preset picks per column; drifted = its test FAILs): "
            + "; ".join(methods)
            + ". These are effect-size thresholds, not significance tests: a shift whose "
            "distance is below the threshold is not flagged, however many rows there are."
        )
    for key in ("nannyml", "nannyml-one-chunk"):
        done = [r for r in runs.get(key, []) if "error" not in r]
        if done:
            lines.append(_nannyml_rule(key, done[0]))
    return lines


def _nannyml_rule(key: str, run: dict) -> str:
    """NannyML's rule in one line, with the thresholds and alerts it reported."""
    thresholds = run["thresholds"]
    defined = [v for v in thresholds.values() if _is_number(v)]
    undefined = [c for c, v in thresholds.items() if not _is_number(v)]
    found = []
    if defined:
        found.append(
            f"{len(defined)} columns got thresholds from {min(defined):.2g} to {max(defined):.2g}"
        )
    if undefined:
        found.append(f"{', '.join(undefined)} got none (NaN), so never alert")
    alerting = {c: n for c, n in run["alerting_chunks"].items() if n}
    alerts = ", ".join(f"{c} {n}" for c, n in alerting.items()) or "none"
    warned = "; ".join(f'"{w}"' for w in run["warnings"])
    return (
        f"- NannyML (`{key}`): Jensen-Shannon distance per chunk, alerting above the upper "
        "threshold, the mean plus 3 standard deviations of the reference chunks' distances "
        f"to the whole reference. Chunker {run['chunker']}: {run['reference_chunks']} "
        f"reference and {run['analysis_chunks']} current chunks; a column counts as drifted "
        f"when any current chunk alerts. Here {'; '.join(found)}. Current chunks alerting per "
        f"column: {alerts}. Warnings raised while it ran: {warned or 'none'}."
    )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _speed_table(rows: list[dict], truth, memory: bool) -> list[str]:
    """The contenders' table of one mode; ``memory`` adds the work's own memory columns."""
    base = next((r for r in rows if r["key"] == BASELINE and r["status"] == "ok"), None)
    header = (
        "| contender | version | CPU-s (median) | wall-s (median) | peak RSS MB | "
        f"shifted detected /{len(truth.shifted)} | "
        f"unchanged flagged /{len(truth.columns) - len(truth.shifted)} | CPU vs opsloop |"
    )
    rule = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if memory:
        header += " MB added by the work | added / input arrays |"
        rule += " ---: | ---: |"
    lines = [header, rule]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | {r['status']} |" + " |" * (8 if memory else 6))
            continue
        ratio = f"{r['cpu_s'] / base['cpu_s']:.1f}x" if base and base["cpu_s"] > 0 else "n/a"
        detected = f"{len(r['detected'])}" if "detected" in r else "n/a"
        flagged = f"{len(r['false_alarms'])}" if "false_alarms" in r else "n/a"
        line = (
            f"| {r['label']} | {r['version']} | {_fmt(r['cpu_s'])} | {_fmt(r['wall_s'])} | "
            f"{_fmt(r['peak_rss_mb'], 0)} | {detected} | {flagged} | {ratio} |"
        )
        if memory:
            line += f" {_fmt(r['added_mb'], 0)} | {r['added_mb'] / r['input_mb']:.2f} |"
        lines.append(line)
    return lines


def _input_sizes(rows: list[dict]) -> str:
    """The input arrays' size in words: one number when every contender saw the same."""
    sizes = {r["key"]: f"{r['input_mb']:,.0f} MB" for r in rows if r["status"] == "ok"}
    if len(set(sizes.values())) == 1:
        return f"{next(iter(sizes.values()))} for every contender"
    return ", ".join(f"{size} for {key}" for key, size in sizes.items())


def _drifted(rows: list[dict], key: str) -> dict | None:
    return next((r.get("drifted") for r in rows if r["key"] == key and r["status"] == "ok"), None)


def render(args, inputs: dict, rows: dict, runs: dict, agreement: list[dict], info: dict) -> str:
    """The markdown report; ``rows`` and ``runs`` are keyed by mode (cold, warm)."""
    truth = inputs["truth"]
    cold, warm = rows["cold"], rows["warm"]
    warm_rows = next(
        (
            f"{done[0]['warm_rows']:,}"
            for done in runs["warm"].values()
            if done and "warm_rows" in done[0]
        ),
        "the first",
    )
    lines = [
        f"# Drift benchmark: {args.rows:,} rows, {len(truth.columns)} columns",
        "",
        f"`drift_table({args.rows}, seed={args.seed})`: {len(inputs['roles']['numeric'])} "
        f"numeric and {len(inputs['roles']['categorical'])} categorical columns, "
        f"{len(truth.shifted)} shifted. Each contender ran {args.repeats} time(s) cold and "
        f"{args.repeats} time(s) warm, each in a fresh process; times are medians of the "
        "timed work only (after the Parquet files are read; the cached profile's load is "
        "inside it). CPU-s is the worker process's CPU time (all threads). Peak RSS is the "
        "median over repeats of the worker's peak resident memory (`VmHWM`: interpreter, "
        "imports, input frames and the work included).",
        "",
        "## Cold: the work is the first thing the process does after reading the files",
        "",
        "Lazy imports, loading compiled kernels and other one-time costs are part of the work.",
        "",
        *_speed_table(cold, truth, memory=False),
        "",
        f"## Warm: after the same work once on the first {warm_rows} rows of each frame",
        "",
        "The worker runs the work on the head of each frame it read (for the cached profile: "
        "the whole saved profile, loaded again, against the current frame's head), collects "
        "garbage, then measures the full work. *MB added by the work* is the peak resident "
        "memory during the timed work minus the resident memory just before it (median of "
        "each run's difference); *input arrays* is the size of every column of both frames as "
        "a numpy array (`Series.to_numpy().nbytes`): " + _input_sizes(warm) + ".",
        "",
        *_speed_table(warm, truth, memory=True),
    ]
    changed = [
        r["key"]
        for r in warm
        if r["status"] == "ok" and "drifted" in r and r["drifted"] != _drifted(cold, r["key"])
    ]
    if changed:
        lines += ["", f"Warm verdicts differ from the cold ones for: {', '.join(changed)}."]
    measured = [(mode, r) for mode in MODES for r in rows[mode] if r["status"] == "ok"]
    if measured:
        lines += [
            "",
            "## Memory",
            "",
            "Resident memory of each worker just before its timed work (interpreter, imports "
            "and input frames: both frames, or only the current one for the cached profile) "
            "and at its peak during the work (the peak is reset just before the work), and "
            "what the work added, against the size of the input arrays; medians over repeats.",
            "",
            "| contender | mode | RSS before work MB | peak during work MB | added MB "
            "| input arrays MB | added / input arrays |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for mode, r in sorted(measured, key=lambda m: list(CONTENDERS).index(m[1]["key"])):
            lines.append(
                f"| {r['key']} | {mode} | {_fmt(r['rss_before_mb'], 0)} "
                f"| {_fmt(r['work_peak_rss_mb'], 0)} | {_fmt(r['added_mb'], 0)} "
                f"| {_fmt(r['input_mb'], 0)} | {r['added_mb'] / r['input_mb']:.2f} |"
            )
        unreset = sorted({r["key"] for _, r in measured if not r["peak_reset"]})
        if unreset:
            lines += [
                "",
                "The peak could not be reset before the work for: "
                f"{', '.join(unreset)}; their work's peak is the whole process's.",
            ]
    deciders = [r for r in cold if r["status"] == "ok" and "drifted" in r]
    if deciders:
        lines += [
            "",
            "## Verdicts per column (cold runs)",
            "",
            "`drifted` means the contender flagged the column. Shifts are in the column's "
            "population standard deviations (mean), as a factor on the spread (scale), or as "
            "probability mass moved from the most to the least frequent level (frequency).",
            "",
            "| column | true shift | " + " | ".join(r["key"] for r in deciders) + " |",
            "| --- | --- | " + " | ".join("---" for _ in deciders) + " |",
        ]
        for t in truth.columns:
            shift = f"{t.shift.kind} {t.shift.amount:g}" if t.shifted else "none"
            marks = []
            for r in deciders:
                value = r["drifted"].get(t.column)
                marks.append("not reported" if value is None else ("drifted" if value else "-"))
            lines.append(f"| {t.column} | {shift} | " + " | ".join(marks) + " |")
        unstable = [r["key"] for r in deciders if not r["stable"]]
        if unstable:
            lines += ["", f"Verdicts differed between repeats for: {', '.join(unstable)}."]
    if agreement:
        lines += [
            "",
            "## opsloop p-values against the scipy loop (cold runs)",
            "",
            "| contender | test | columns | bit-identical | max abs difference "
            "| max relative difference |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for a in agreement:
            if a["test"] == "different tests":
                lines.append(
                    f"| {a['contender']} | different tests: {', '.join(a['columns'])} | | | | |"
                )
            else:
                lines.append(
                    f"| {a['contender']} | {a['test']} | {a['columns']} | {a['bit_identical']} "
                    f"| {a['max_abs_diff']:.3g} | {a['max_rel_diff']:.3g} |"
                )
    lines += [
        "",
        "## Deciding rules (as each contender ran)",
        "",
        *opsloop_rules(runs["cold"]),
        "- scipy loop: `ks_2samp` / `chi2_contingency`, raw p < 0.05 per column (no correction).",
        *peer_rules(runs["cold"]),
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    contenders = [CONTENDERS[k] for k in (args.only or CONTENDERS)]
    pythons = availability(contenders)
    for c in contenders:
        if pythons[c.key][0] is None:
            print(f"{c.key}: unavailable ({pythons[c.key][1]})", flush=True)
    inputs = prepare_inputs(args.rows, args.seed)
    runs = run_all(contenders, pythons, inputs, args.repeats)
    rows = {
        mode: [
            summarise(c, runs[mode][c.key], inputs["truth"], pythons[c.key][1]) for c in contenders
        ]
        for mode in MODES
    }
    agreement = [
        row
        for key in ("opsloop", "opsloop-profile", "opsloop-fast", "opsloop-profile-fast")
        for row in p_value_agreement(runs["cold"], key)
    ]
    info = machine_info(pythons)
    report = render(args, inputs, rows, runs, agreement, info)
    print(report)
    (OUT / "drift.md").write_text(report)
    raw = {
        "rows": args.rows,
        "repeats": args.repeats,
        "seed": args.seed,
        "truth": inputs["truth"].to_dict(),
        "roles": inputs["roles"],
        "summary": rows,
        "p_values": agreement,
        "runs": runs,
        "machine": info,
    }
    (OUT / "drift.json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
