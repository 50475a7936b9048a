"""Model registry at scale: lineage and discovery queries over 10,000 registered versions.

The registry holds 100 models × 100 versions (10,000 in all), each version registered from
one of 200 tracked runs that captured their code version, environment and two datasets.
Measured, as medians over repeated queries on a warm store:

- lineage of a version (version -> artifact -> run -> commit, packages, dataset hashes), by
  version number and through an alias, and from a deployment (deployment -> its two
  variants -> alias or version -> ...; one canary deployment per model) (target: under
  50 ms with 10,000 versions);
- discovery: free text in descriptions, a tag, a metric bound (a registered metric, and one
  only the source runs logged);
- registration rate (each version writes its artifact, its record and a hash-chained audit
  entry in one transaction).

    .venv/bin/python benchmarks/registry.py            # 10,000 versions
    .venv/bin/python benchmarks/registry.py --models 10 --versions 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out"


def _median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def run(models: int, versions: int, runs: int, repeats: int) -> dict:
    """Build the registry in a temporary home and time its queries."""
    with tempfile.TemporaryDirectory(prefix="opsloop-registry-") as home:
        os.environ["OPSLOOP_HOME"] = home
        from opsloop import ModelRegistry, start_run
        from opsloop.serving import Deployments, Variant

        rng = np.random.default_rng(0)
        run_ids = []
        for index in range(runs):
            with start_run("registry-bench", name=f"train-{index}") as tracked:
                tracked.log_params({"seed": index})
                tracked.log_metric("accuracy", float(rng.random()))
                tracked.log_dataset(pd.DataFrame({"x": rng.random(200)}), name="train")
                tracked.log_dataset(pd.DataFrame({"x": rng.random(50)}), name="test")
                run_ids.append(tracked.run_id)
        registry = ModelRegistry()
        started = time.perf_counter()
        for m in range(models):
            for v in range(versions):
                registry.register(
                    f"model-{m:03d}",
                    f"weights {m} {v}".encode(),
                    flavor="onnx",
                    run_id=run_ids[(m * versions + v) % runs],
                    metrics={"auc": float(rng.random())},
                    tags={"team": f"team-{m % 7}"},
                    description=f"model {m} version {v} trained on segment {v % 13}",
                )
            registry.set_alias(f"model-{m:03d}", "champion", versions // 2 + 1)
        register_s = time.perf_counter() - started
        total = models * versions
        names = [f"model-{m:03d}" for m in range(models)]
        deployments = Deployments(registry.db)
        for name in names:
            deployments.deploy(
                f"{name}-api",
                [
                    Variant("stable", name, alias="champion", weight=0.9),
                    Variant("canary", name, version=versions, role="candidate", weight=0.1),
                ],
                strategy="canary",
            )
        served = deployments.lineage(f"{names[0]}-api")
        assert [v.lineage.version for v in served] == [versions // 2 + 1, versions]
        picks = rng.integers(models, size=repeats)
        version_picks = iter(rng.integers(1, versions + 1, size=10 * repeats).tolist())

        def by_version() -> None:
            registry.lineage(names[picks[0]], next(version_picks))

        lineage = registry.lineage(names[0], alias="champion")
        assert lineage.run_id is not None and len(lineage.datasets) == 2
        result = {
            "versions": total,
            "register_per_s": total / register_s,
            "lineage_version_ms": _median_ms(by_version, repeats),
            "lineage_alias_ms": _median_ms(
                lambda: registry.lineage(names[int(rng.integers(models))], alias="champion"),
                repeats,
            ),
            "lineage_deployment_ms": _median_ms(
                lambda: deployments.lineage(f"{names[int(rng.integers(models))]}-api"), repeats
            ),
            "search_text_ms": _median_ms(lambda: registry.search("segment 7"), repeats),
            "search_tag_ms": _median_ms(lambda: registry.search(tags={"team": "team-3"}), repeats),
            "search_metric_ms": _median_ms(
                lambda: registry.search(min_metrics={"auc": 0.99}), repeats
            ),
            "search_run_metric_ms": _median_ms(
                lambda: registry.search(min_metrics={"accuracy": 0.99}), repeats
            ),
            "found_text": len(registry.search("segment 7")),
            "found_tag": len(registry.search(tags={"team": "team-3"})),
            "found_metric": len(registry.search(min_metrics={"auc": 0.99})),
            "found_run_metric": len(registry.search(min_metrics={"accuracy": 0.99})),
        }
        registry.db.dispose()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    result = run(args.models, args.versions, args.runs, args.repeats)
    OUT.mkdir(exist_ok=True)
    (OUT / "registry.json").write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key}: {value:,.2f}" if isinstance(value, float) else f"{key}: {value:,}")


if __name__ == "__main__":
    main()
