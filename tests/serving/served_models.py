"""Models for the serving tests: real scikit-learn models on a small numeric table, and
shadow models that crash or hang (callables, pickled by reference to this module)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

#: Set by :class:`Hanging` when a call has started; :data:`RELEASE` lets the calls finish.
STARTED = threading.Event()
RELEASE = threading.Event()


def loan_table(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``age`` (int, 18-80) and ``income`` (float) and a label that rises with both."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 81, n), "income": rng.normal(50_000.0, 15_000.0, n).round(2)}
    )
    score = (frame["age"] - 45) / 15 + (frame["income"] - 50_000.0) / 15_000.0
    label = (score + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    return frame, label


def classifier(c: float = 1.0, seed: int = 0) -> tuple[LogisticRegression, pd.DataFrame]:
    """A logistic regression fitted on :func:`loan_table`, and its training frame."""
    frame, label = loan_table(seed=seed)
    return LogisticRegression(C=c, max_iter=1000).fit(frame, label), frame


class Crashing:
    """A shadow that fails on every request."""

    def __call__(self, frame: pd.DataFrame) -> list:
        raise RuntimeError("the shadow model crashed")


class Hanging:
    """A shadow that blocks until :data:`RELEASE` is set."""

    def __call__(self, frame: pd.DataFrame) -> list:
        STARTED.set()
        RELEASE.wait()
        return [0] * len(frame)


class Flaky:
    """A model that raises on a share ``rate`` of its calls (drawn from a generator seeded
    with ``seed``, so a fresh copy replays the same calls) and answers 0 otherwise."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: pd.DataFrame) -> list:
        if self.rng.random() < self.rate:
            raise RuntimeError("the model failed")
        return [0] * len(frame)


class Constant:
    """A model that answers ``value`` for every record."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self, frame: pd.DataFrame) -> list:
        return [self.value] * len(frame)


class OneUnlessNegative:
    """A classifier's stand-in that answers 1 for every record and fails on any frame
    holding a negative ``x``."""

    def __call__(self, frame: pd.DataFrame) -> list:
        if (frame["x"] < 0).any():
            raise RuntimeError("a negative x")
        return [1] * len(frame)


class AboveCut:
    """A model that answers 1 on a record whose ``x`` exceeds ``cut`` and 0 otherwise."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def __call__(self, frame: pd.DataFrame) -> list:
        return (frame["x"] > self.cut).astype(int).tolist()


class FailsOnNegative:
    """A model that doubles ``x`` and fails on any frame holding a negative ``x``."""

    def __call__(self, frame: pd.DataFrame) -> list:
        if (frame["x"] < 0).any():
            raise RuntimeError("a negative x")
        return (frame["x"] * 2).tolist()


class ExitsOn:
    """A classifier's stand-in that ends its process (as a crash would) on any record whose
    ``age`` is ``age``, and answers ``age % 2`` otherwise."""

    def __init__(self, age: int) -> None:
        self.age = age

    def __call__(self, frame: pd.DataFrame) -> list:
        if (frame["age"] == self.age).any():
            os._exit(3)
        return (frame["age"] % 2).tolist()


class HangsOn:
    """A model that never returns on a record whose ``age`` is ``age`` (as a model stuck
    in native code would), and answers ``age % 2`` otherwise."""

    def __init__(self, age: int) -> None:
        self.age = age

    def __call__(self, frame: pd.DataFrame) -> list:
        if (frame["age"] == self.age).any():
            threading.Event().wait()
        return (frame["age"] % 2).tolist()


def poll(condition, deadline_s: float) -> None:
    """Wait until ``condition()`` holds, failing after ``deadline_s``: for work another thread
    or process finishes (a shadow's answer, a flush), never to separate timestamps."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def deploy_canary(
    registry, primary, candidate, share: float = 0.5, *, input_schema=None, deployments=None
):
    """Register ``primary`` and ``candidate`` (with ``input_schema`` when given) and deploy
    them as ``api``'s stable variant and its canary at ``share``, through ``deployments``
    (default: the registry's store, used directly); the deployments."""
    from opsloop.serving import Deployments, Variant

    registry.register("stable-model", primary, input_schema=input_schema)
    registry.register("canary-model", candidate, input_schema=input_schema)
    deployments = deployments or Deployments(registry.db)
    deployments.deploy(
        "api",
        [
            Variant("stable", "stable-model", version=1, weight=1 - share),
            Variant("canary", "canary-model", version=1, role="candidate", weight=share),
        ],
        strategy="canary",
    )
    return deployments


def routed_to_canary(key: str, share: float) -> bool:
    """Whether ``api``'s weighted split sends routing key ``key`` to a canary at ``share``."""
    from opsloop.serving.routing import routing_share

    # The weighted split lays the primary's slice first: shares at or above 1 - s are the canary's.
    return routing_share("api", key) >= 1.0 - share
