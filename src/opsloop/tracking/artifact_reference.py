"""``runs:/RUN_ID/PATH``: a run's artifact by reference, read and checked against its sha256.

``runs:/RUN_ID`` alone names the newest model version registered from the run, which the
registry resolves (:meth:`opsloop.registry.ModelRegistry.resolve`).

>>> parse_artifact_reference("runs:/4f2a/reports/analysis.json")
('4f2a', 'reports/analysis.json')
"""

from __future__ import annotations

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.api import tracking_backend

RUNS_PREFIX = "runs:/"


def parse_artifact_reference(reference: str) -> tuple[str, str]:
    """The run id and artifact path of ``runs:/RUN_ID/PATH``, or an InvalidArgumentError.

    >>> parse_artifact_reference("runs:/4f2a")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: runs:/4f2a: give runs:/RUN_ID/PATH (an artifact of the run)
    """
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a string, got {type(reference).__name__}")
    if not reference.startswith(RUNS_PREFIX):
        raise InvalidArgumentError(f"reference {reference!r} must start with {RUNS_PREFIX}")
    run_id, _, path = reference.removeprefix(RUNS_PREFIX).lstrip("/").partition("/")
    if not run_id or not path:
        raise InvalidArgumentError(f"{reference}: give runs:/RUN_ID/PATH (an artifact of the run)")
    return run_id, path


def load_artifact(reference: str, *, tracking_uri: str | None = None) -> bytes:
    """The bytes of the artifact ``runs:/RUN_ID/PATH`` names, from wherever runs are tracked
    (``tracking_uri``, else ``$OPSLOOP_TRACKING_URI``, else the local store).

    The bytes are checked against the sha256 the run recorded before they are returned: a
    changed artifact raises :class:`~opsloop.store.TamperedArtifactError`. A path the run
    did not log raises :class:`ValueError` listing the paths it did.

    >>> from opsloop.tracking import start_run
    >>> with start_run("e", capture=False) as run:
    ...     _ = run.backend.log_artifact(run.run_id, b"auc,0.9\\n", "eval/scores.csv")
    >>> load_artifact(f"runs:/{run.run_id}/eval/scores.csv")
    b'auc,0.9\\n'
    """
    run_id, path = parse_artifact_reference(reference)
    backend = tracking_backend(tracking_uri)
    run = backend.get_run(run_id)
    recorded = {artifact.path: artifact for artifact in run.artifacts}
    if path not in recorded:
        logged = ", ".join(sorted(recorded)) or "none"
        raise InvalidArgumentError(
            f"{reference}: run {run.run_id} logged no artifact {path!r} (it logged: {logged})"
        )
    return backend.read_artifact(recorded[path].sha256)
