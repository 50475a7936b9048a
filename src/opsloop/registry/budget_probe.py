"""What serving a model version costs, measured in a fresh process: its artifact's size, the
latency of single-row ``predict`` (median and 99th percentile) and the process's peak memory
once the model is loaded and has predicted. The registry may be a server's: the artifact is
downloaded and measured here.

A fresh Python process (``python -m opsloop.registry.budget_probe SPEC``) verifies the
artifact's sha256, loads it by the trust rules of :mod:`.model_trust` (as the registry
does), predicts one row to warm up, then times ``rows`` single-row predictions. Its own
imports and the interpreter count in the peak (``ru_maxrss``): that is what a serving
process holds. ``load_mb`` is the growth of the resident set from just before loading to
the end.

>>> import tempfile, numpy as np, pandas as pd
>>> from sklearn.tree import DecisionTreeClassifier
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> r = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> X = pd.DataFrame({"x": np.arange(20.0)})
>>> v = r.register("m", DecisionTreeClassifier().fit(X, np.arange(20) % 2))
>>> cost = measure_serving_cost(r, v, X, rows=20)
>>> cost["size_bytes"] == v.artifact_size, cost["rows"], cost["p99_ms"] >= cost["p50_ms"] > 0
(True, 20, True)
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.registry.records import ModelVersion


def measure_serving_cost(
    registry: Any,
    version: ModelVersion,
    inputs: pd.DataFrame,
    *,
    rows: int = 200,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
    timeout_s: float = 600.0,
) -> dict[str, float]:
    """Size, single-row latency and peak memory of ``version`` predicting the first ``rows``
    rows of ``inputs`` (its input columns), measured in a fresh process.

    ``registry`` is a local :class:`~opsloop.registry.ModelRegistry` or a server's
    :class:`~opsloop.registry.HttpModelRegistry`: either way the artifact's bytes come here
    (sha256 checked) and the fresh process runs on this machine.

    >>> measure_serving_cost(object(), None, pd.DataFrame())
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: registry must be a model registry (with ...
    """
    if not hasattr(registry, "artifact_bytes") or not hasattr(registry, "loader_record"):
        raise InvalidArgumentError(
            "registry must be a model registry (with artifact_bytes and loader_record), got "
            f"{type(registry).__name__}"
        )
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InvalidArgumentError(f"rows must be an integer >= 1, got {rows!r}")
    sample = inputs.head(rows)
    if sample.empty:
        raise InvalidArgumentError("inputs has no rows to predict")
    with tempfile.TemporaryDirectory(prefix="opsloop-budget-") as folder:
        artifact = Path(folder) / "artifact"
        artifact.write_bytes(registry.artifact_bytes(version.model, version.version))
        sample.to_parquet(Path(folder) / "rows.parquet")
        spec = {
            "artifact": str(artifact),
            "sha256": version.artifact_sha256,
            "flavor": version.flavor,
            "loader": registry.loader_record(version.model, version.version),
            "rows": str(Path(folder) / "rows.parquet"),
            "trust": bool(trust),
            "trusted_types": list(trusted_types),
            "source": version.uri,
            "registered_by": version.created_by,
        }
        (Path(folder) / "spec.json").write_text(json.dumps(spec))
        command = [sys.executable, "-m", "opsloop.registry.budget_probe"]
        try:
            done = subprocess.run(
                [*command, str(Path(folder) / "spec.json")],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"{version.uri}: measuring its serving cost took over {timeout_s:g} s"
            ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"{version.uri}: measuring its serving cost failed ({last})")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {"size_bytes": float(version.artifact_size), **measured}


def _resident_mb() -> float:
    """The current resident set in MB (Linux's /proc; elsewhere the peak so far)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_mb()


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _probe(spec_path: str) -> dict[str, float]:
    from opsloop.registry.flavors import load_model_bytes

    spec = json.loads(Path(spec_path).read_text())
    data = Path(spec["artifact"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ValueError(f"{spec['source']}: the artifact's bytes do not match its sha256")
    X = pd.read_parquet(spec["rows"])
    before = _resident_mb()
    model = load_model_bytes(
        data,
        spec["flavor"],
        spec["loader"],
        trust=spec["trust"],
        trusted_types=spec["trusted_types"],
        source=spec["source"],
        registered_by=spec["registered_by"],
    )
    predict = model.predict  # type: ignore[attr-defined]
    predict(X.iloc[:1])  # the first call pays one-time costs a server pays once
    times = np.empty(len(X))
    for i in range(len(X)):
        started = time.perf_counter()
        predict(X.iloc[i : i + 1])
        times[i] = time.perf_counter() - started
    return {
        "rows": len(X),
        "p50_ms": float(np.percentile(times, 50) * 1000),
        "p99_ms": float(np.percentile(times, 99) * 1000),
        "peak_rss_mb": _peak_mb(),
        "load_mb": max(_resident_mb() - before, 0.0),
    }


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1])))
