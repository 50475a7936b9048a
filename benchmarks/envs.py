"""Create the peers' own virtual environments for the drift and ALE benchmarks.

Evidently 0.7.23 and NannyML 0.13.1 pin library versions that clash with opsloop's (both need
pandas older than 3), so each gets a venv under ``benchmarks/.envs/<peer>`` made with
``python -m venv`` and the pinned release installed with pip, plus pyarrow so that it reads
the same Parquet files as every other contender. Running this again does nothing for a peer
that is already installed at its pinned version. A failed install is reported and leaves
that peer unavailable; ``benchmarks/drift.py`` then skips it instead of failing.
PyALE 1.2.0 (for ``benchmarks/ale.py``) gets the same treatment, with the scikit-learn
release of the running interpreter pinned so that it loads the models that benchmark pickles.
MLflow 3.17.2 (for ``benchmarks/tracking.py``) gets a venv of its own too, and whylogs 1.6.4
with pyspark 3.5 (for ``benchmarks/spark_profile.py``).

    python benchmarks/envs.py              # every peer
    python benchmarks/envs.py nannyml      # one peer
    python benchmarks/envs.py pyale        # PyALE, for benchmarks/ale.py
    python benchmarks/envs.py mlflow       # MLflow, for benchmarks/tracking.py
    python benchmarks/envs.py whylogs      # whylogs and pyspark, for benchmarks/spark_profile.py
    python benchmarks/envs.py --check      # report only, install nothing
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ENVS_DIR = Path(__file__).resolve().parent / ".envs"


@dataclass(frozen=True)
class Peer:
    """A benchmarked library that lives in its own venv: what to install and how to check it."""

    name: str
    distribution: str
    version: str
    extra_requirements: tuple[str, ...]

    @property
    def directory(self) -> Path:
        return ENVS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    @property
    def log(self) -> Path:
        return self.directory / "install.log"

    def requirements(self) -> list[str]:
        return [f"{self.distribution}=={self.version}", *self.extra_requirements]


# pandas<3: neither peer declares an upper bound, so pip would pick pandas 3. Evidently
# 0.7.23 then fails at import (it imports pandas.core.dtypes.common.infer_dtype_from_object,
# which pandas 3 removed). NannyML 0.13.1 does run this benchmark's path under pandas 3.1, but
# it was released before pandas 3 and is measured with the pandas it was built against.
PEERS: dict[str, Peer] = {
    "evidently": Peer("evidently", "evidently", "0.7.23", ("pandas<3", "pyarrow")),
    # nannyml 0.13.1 imports statsmodels (in its plots package) without declaring it.
    "nannyml": Peer("nannyml", "nannyml", "0.13.1", ("pandas<3", "pyarrow", "statsmodels")),
    # PyALE 1.2.0 predates pandas 3 and declares no bound. The ALE benchmark hands it a model
    # pickled in .venv, so its venv gets the very scikit-learn release that .venv has.
    "pyale": Peer(
        "pyale",
        "PyALE",
        "1.2.0",
        ("pandas<3", "pyarrow", f"scikit-learn=={metadata.version('scikit-learn')}"),
    ),
    # MLflow 3.17.2 for benchmarks/tracking.py; it pins its own pandas, so nothing extra.
    "mlflow": Peer("mlflow", "mlflow", "3.17.2", ("pyarrow",)),
    # whylogs 1.6.4's Spark extra (benchmarks/spark_profile.py) needs pyspark < 4 and
    # pyarrow < 13, which needs numpy < 2; psutil reads the Spark processes' CPU time.
    "whylogs": Peer(
        "whylogs",
        "whylogs",
        "1.6.4",
        ("pyspark==3.5.7", "pyarrow>=8,<13", "pandas<2.2", "numpy<2", "psutil"),
    ),
}

# Imports the package (not just its metadata): an install whose import fails is no install.
_PROBE = """
import importlib, importlib.metadata as md, json, sys
importlib.import_module(sys.argv[1])
import pyarrow
print(json.dumps({name: md.version(name) for name in (sys.argv[1], "pandas", "numpy", "pyarrow")}))
"""


def probe(peer: Peer) -> tuple[bool, str, dict]:
    """``(available, reason, versions)`` of a peer's environment, without changing it.

    ``versions`` maps the peer, pandas, numpy and pyarrow to their installed versions.
    """
    if not peer.python.exists():
        return False, f"no environment at {peer.directory} (run benchmarks/envs.py)", {}
    done = subprocess.run(
        [str(peer.python), "-c", _PROBE, peer.distribution],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"`import {peer.distribution}` fails in {peer.directory}: {last}", {}
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    if versions[peer.distribution] != peer.version:
        found = versions[peer.distribution]
        return False, f"{peer.name} {found} installed, benchmark pins {peer.version}", versions
    return True, "ready", versions


def install(peer: Peer) -> bool:
    """Create the peer's venv and pip-install its pinned requirements if they are missing."""
    ok, reason, versions = probe(peer)
    if ok:
        print(f"{peer.name}: {peer.name} {peer.version} ready in {peer.directory} ({versions})")
        return True
    print(f"{peer.name}: {reason}")
    if not peer.python.exists():
        command = [sys.executable, "-m", "venv", "--clear", str(peer.directory)]
        print(f"{peer.name}: {' '.join(command)}")
        if subprocess.run(command, check=False).returncode != 0:
            print(f"{peer.name}: VENV CREATION FAILED; the benchmark will mark it unavailable")
            return False
    command = [str(peer.python), "-m", "pip", "install", *peer.requirements()]
    print(f"{peer.name}: {' '.join(command[2:])} (log: {peer.log})")
    with peer.log.open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = peer.log.read_text().strip().splitlines()[-15:]
        print(f"{peer.name}: INSTALL FAILED (pip exit {done.returncode}); last lines of the log:")
        print("\n".join("    " + line for line in tail))
        print(f"{peer.name}: the benchmark will mark {peer.name} unavailable")
        return False
    ok, reason, versions = probe(peer)
    if not ok:
        print(f"{peer.name}: INSTALLED BUT NOT USABLE: {reason}")
        print(f"{peer.name}: the benchmark will mark {peer.name} unavailable")
        return False
    print(f"{peer.name}: ready ({versions})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peers", nargs="*", help=f"any of {', '.join(PEERS)} (default: all)")
    parser.add_argument("--check", action="store_true", help="report only, install nothing")
    args = parser.parse_args(argv)
    names = args.peers or list(PEERS)
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; choose from {list(PEERS)}")
    ENVS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        peer = PEERS[name]
        if args.check:
            ok, reason, versions = probe(peer)
            print(f"{name}: {reason} {versions if ok else ''}".rstrip())
        else:
            install(peer)
    # A missing peer is not an error: the benchmark reports it as unavailable.
    return 0


if __name__ == "__main__":
    sys.exit(main())
