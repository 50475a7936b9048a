"""Forests answering in two threads at once (a primary on the event loop, a shadow in its
worker) log no warnings: scikit-learn's parallel helper resets the process's warning
filters, which Python keeps in one list for all threads, and warns once per tree when it
finds them emptied by the other thread. Run in a child process that switches threads
every 10 µs, so the two threads interleave as a busy server's do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

FLOOD = "should be used with `sklearn.utils.parallel.Parallel`"

SCRIPT = textwrap.dedent(
    """
    import sys, tempfile, threading, time
    from pathlib import Path
    import numpy as np, pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from opsloop.registry import ModelRegistry
    from opsloop.serving import Deployments, ServingRuntime, Variant, read_prediction_events
    from opsloop.store import ArtifactStore, Database

    sys.setswitchinterval(1e-5)
    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 6)), columns=[f"f{i}" for i in range(6)])
    y = (X.to_numpy().sum(axis=1) > 0).astype(int)
    fitted_on = X.to_numpy() if sys.argv[1] == "own" else X
    forests = [RandomForestClassifier(40, random_state=s).fit(fitted_on, y) for s in (0, 1)]
    if sys.argv[1] == "own":  # the forests' own predict_proba in two threads
        # Until the race shows (a warning printed), for at most 60 s: on a loaded machine
        # the threads may take a while to interleave at the wrong moment.
        import warnings
        seen, shown = threading.Event(), warnings.showwarning
        def show(message, *rest, **named):
            if "should be used with" in str(message):
                seen.set()
            shown(message, *rest, **named)
        warnings.showwarning = show
        row, end = X.to_numpy()[:1], time.monotonic() + 60.0
        def ask(forest):
            while time.monotonic() < end and not seen.is_set():
                forest.predict_proba(row)
        threads = [threading.Thread(target=ask, args=(f,)) for f in forests]
        [t.start() for t in threads]
        [t.join() for t in threads]
        sys.exit(0)
    db = Database(f"sqlite:///{folder / 'store.db'}")
    registry = ModelRegistry(db, ArtifactStore(folder / "artifacts"))
    for forest in forests:
        registry.register("forest", forest, input_schema=X)
    Deployments(db).deploy(
        "api",
        [Variant("stable", "forest", version=1),
         Variant("shadow", "forest", version=2, role="shadow", weight=0.0)],
        strategy="shadow",
    )
    runtime = ServingRuntime(db, registry.artifacts)
    records = [{k: float(v) for k, v in row.items()} for row in X.to_dict("records")]
    answers = [runtime.predict("api", [record]).predictions[0] for record in records[:200]]
    runtime.close()
    assert answers == forests[0].predict(X.iloc[:200]).tolist()
    shadow = read_prediction_events(db, "api", role="shadow")
    print(len(shadow), int(shadow["error"].notna().sum()))
    """
)


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_a_primary_and_a_shadow_forest_answering_at_once_log_no_warnings():
    served = _run("runtime")
    assert served.returncode == 0, served.stderr[-3000:]
    answered, failed = map(int, served.stdout.split())
    assert (answered, failed) == (200, 0)  # the shadow answered every request
    assert FLOOD not in served.stderr
    assert "Warning" not in served.stderr, served.stderr[-3000:]


def test_the_forests_own_method_floods_in_the_same_setting():
    """What the runtime avoids, so the test above can see it: the same two forests asked
    through their own ``predict_proba`` in two threads warn (asked until the first
    warning, for at most 60 s)."""
    own = _run("own")
    assert own.returncode == 0, own.stderr[-3000:]
    assert own.stderr.count(FLOOD) >= 1
