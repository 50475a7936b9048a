"""What the training tools need from a tracked run, and the few ways they write to one.

Every public entry of :mod:`opsloop.learn` takes ``run=None``; given a run, it logs its
hyperparameters as params, its curves as metrics with steps, and its report (JSON) and model
files as artifacts. A run is any object with the three methods of :class:`RunLog`: the run
``opsloop.start_run()`` yields has them, and so does :class:`InMemoryRun`, which keeps what is
logged in memory for a notebook with no store. This module imports nothing from the tracking
layer: the training tools stay usable without a database.

>>> run = InMemoryRun()
>>> log_metrics(run, {"accuracy": 0.9, "accuracy_retained": None}, step=3)
>>> run.metrics
{'accuracy': [(3, 0.9)]}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from opsloop.learn.skops_import import import_skops_io


@runtime_checkable
class RunLog(Protocol):
    """A run the training tools log to: params, metric points with a step, files.

    The signatures are those of ``opsloop.tracking.ActiveRun`` (the object ``start_run``
    yields), so a tracked run is passed as it is.

    >>> class MetricsOnly:  # no log_artifact
    ...     def log_params(self, params): ...
    ...     def log_metric(self, key, value, step=0): ...
    >>> isinstance(InMemoryRun(), RunLog), isinstance(MetricsOnly(), RunLog)
    (True, False)
    """

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record several params (stored as text)."""

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Record one metric point at ``step``."""

    def log_artifact(self, path: str | Path, name: str | None = None) -> Any:
        """Store a file in the run as ``name`` (default: its file name)."""


class InMemoryRun:
    """A :class:`RunLog` that keeps everything in memory: params, metric histories, file bytes.

    ``metrics[key]`` lists ``(step, value)`` in logging order; ``artifacts[name]`` holds the
    bytes of the file as it was when logged.

    >>> run = InMemoryRun()
    >>> run.log_params({"lr": 0.1}); run.log_metric("loss", 0.5, step=1)
    >>> path = tmp_path / "notes.txt"
    >>> _ = path.write_text("ok")
    >>> run.log_artifact(path)
    'notes.txt'
    >>> run.params, run.metrics, run.artifacts
    ({'lr': '0.1'}, {'loss': [(1, 0.5)]}, {'notes.txt': b'ok'})
    """

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.artifacts: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return (
            f"InMemoryRun(params={len(self.params)}, metrics={len(self.metrics)}, "
            f"artifacts={len(self.artifacts)})"
        )

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record params as text; logging a param again needs the same value.

        >>> run = InMemoryRun(); run.log_params({"depth": 3}); run.log_params({"depth": 4})
        Traceback (most recent call last):
        ValueError: param 'depth' is already '3'; cannot change it to '4'
        """
        for key, value in params.items():
            text = str(value)
            old = self.params.get(key)
            if old is not None and old != text:
                raise ValueError(f"param {key!r} is already {old!r}; cannot change it to {text!r}")
            self.params[key] = text

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Append ``(step, value)`` to the history of ``key`` (a finite number).

        >>> InMemoryRun().log_metric("loss", float("nan"))
        Traceback (most recent call last):
        ValueError: metric 'loss': value must be a finite number, got nan
        """
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric {key!r}: value must be a finite number, got {value!r}")
        self.metrics.setdefault(key, []).append((int(step), number))

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Keep the bytes of the file at ``path`` under ``name``; returns the name.

        >>> InMemoryRun().log_artifact("/no/such/file")
        Traceback (most recent call last):
        FileNotFoundError: artifact path '/no/such/file' is not a file
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"artifact path {str(source)!r} is not a file")
        key = name or source.name
        self.artifacts[key] = source.read_bytes()
        return key


def checked_run(run: Any) -> RunLog | None:
    """``run`` if it is ``None`` or has the methods of :class:`RunLog`; else a TypeError.

    >>> checked_run("my-run")
    Traceback (most recent call last):
    TypeError: run must have log_params, log_metric and log_artifact, got str
    """
    if run is None or isinstance(run, RunLog):
        return run
    raise TypeError(
        f"run must have log_params, log_metric and log_artifact, got {type(run).__name__}"
    )


def log_metrics(run: RunLog, metrics: Mapping[str, float | None], step: int = 0) -> None:
    """Log each metric at ``step``, skipping ``None`` (a number that does not apply).

    >>> run = InMemoryRun(); log_metrics(run, {"a": 1, "b": None}); run.metrics
    {'a': [(0, 1.0)]}
    """
    for key, value in metrics.items():
        if value is not None:
            run.log_metric(key, float(value), step=step)


def log_json(run: RunLog, document: Mapping[str, Any], name: str) -> None:
    """Write ``document`` as indented JSON and log it as the artifact ``name``.

    >>> run = InMemoryRun(); log_json(run, {"accuracy": 0.9}, "report.json")
    >>> json.loads(run.artifacts["report.json"])
    {'accuracy': 0.9}
    """
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    _log_bytes(run, text.encode(), name)


def log_csv(run: RunLog, frame: pd.DataFrame, name: str) -> None:
    """Write ``frame`` as CSV (index left out) and log it as the artifact ``name``.

    >>> run = InMemoryRun(); log_csv(run, pd.DataFrame({"x": [1, 2]}), "table.csv")
    >>> run.artifacts["table.csv"].decode().split()
    ['x', '1', '2']
    """
    _log_bytes(run, frame.to_csv(index=False).encode(), name)


def log_state_dict(run: RunLog, module: Any, name: str) -> None:
    """Save ``module.state_dict()`` with ``torch.save`` and log it as the artifact ``name``.

    The file holds tensors only, so it loads with ``torch.load(path, weights_only=True)``,
    which runs no code from the file.

    >>> import io, torch
    >>> run = InMemoryRun(); log_state_dict(run, torch.nn.Linear(2, 1), "model.pt")
    >>> sorted(torch.load(io.BytesIO(run.artifacts["model.pt"]), weights_only=True))
    ['bias', 'weight']
    """
    import torch

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        torch.save(module.state_dict(), path)
        run.log_artifact(path, name)


def log_sklearn_model(run: RunLog, estimator: Any, name: str) -> None:
    """Save a fitted scikit-learn estimator with skops and log it as the artifact ``name``.

    skops stores the object tree without pickle; loading it back lists the types it does not
    trust by default (for example a tree's ``Tree``) so the reader decides.

    >>> import io, skops.io
    >>> from sklearn.linear_model import LogisticRegression
    >>> model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> run = InMemoryRun(); log_sklearn_model(run, model, "model.skops")
    >>> skops.io.loads(run.artifacts["model.skops"]).predict([[0.9]]).tolist()
    [1]
    """
    skops_io = import_skops_io()

    _log_bytes(run, skops_io.dumps(estimator), name)


def _log_bytes(run: RunLog, content: bytes, name: str) -> None:
    # the run stores the file's content when it is logged, so the folder can go right after
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(content)
        run.log_artifact(path, name)
