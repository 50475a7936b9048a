"""The reference records which model version made its predictions; after a promotion the
windows the new version answers are judged against the new version's errors on the
reference rows (predicted again through the registry, sha256 checked, kept per version),
not the old version's; without a registry to load it with, the reference cannot tell, and
the window says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import evaluate
from opsloop.monitoring.event_log import log_labels, log_predictions
from opsloop.monitoring.policy_actions import ActionContext
from opsloop.monitoring.reference import set_reference, stored_reference
from opsloop.monitoring.reference_predictions import predicted_again
from opsloop.monitoring.reweighted_reference import reweighted_reference
from opsloop.monitoring.shift_explained import shift_test
from opsloop.monitoring.window_store import read_window
from opsloop.monitoring.windowing import Windowing
from opsloop.registry import ModelRegistry
from opsloop.registry.audit import audit_entries
from opsloop.serving import Deployments, Variant
from opsloop.store import ArtifactStore

from .conftest import HOUR_MS, T0

PER_WINDOW = 400
WINDOWING = Windowing("1h", sample_size=PER_WINDOW, seed=2)
COLUMNS = ["f0", "f1", "f2", "f3"]
PROMOTED_AT = 3  # the first window version 2 answers
TILTED_AT = PROMOTED_AT + 1  # the first window whose inputs moved
WINDOWS = PROMOTED_AT + 3


class Promotion:
    """make_classification rows: version 1 a logistic regression on the first 3,000 rows,
    version 2 a stump on them (it errs far more often), a held-out reference of 3,000 rows
    with version 1's answers, and windows drawn from the rest; from window ``TILTED_AT`` on
    drawn with an exponential tilt towards where version 2 errs (a logistic regression of its
    errors on the inputs, fitted on rows set aside: p(x) moves, p(y | x) stays)."""

    def __init__(self, db, tmp_path):
        x, y = make_classification(
            n_samples=30_000, n_features=4, n_informative=4, n_redundant=0, flip_y=0.05,
            random_state=1,
        )  # fmt: skip
        self.x, self.y = pd.DataFrame(x, columns=COLUMNS), y
        train = self.x.iloc[:3000]
        self.models = {
            1: LogisticRegression(max_iter=1000).fit(train, y[:3000]),
            2: DecisionTreeClassifier(max_depth=1, random_state=0).fit(train, y[:3000]),
        }
        self.registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"))
        for version in (1, 2):
            self.registry.register("m", self.models[version], input_schema=train)
        wrong = self.models[2].predict(self.x.iloc[6000:9000]) != y[6000:9000]
        self.errs = LogisticRegression(max_iter=1000).fit(self.x.iloc[6000:9000], wrong)
        self.deployments = Deployments(db)
        self.deployments.deploy("api", [Variant("live", "m", version=1)])
        self.reference = self.x.iloc[3000:6000].reset_index(drop=True)
        set_reference(
            db, "api", self.reference, predictions=self.models[1].predict(self.reference),
            labels=y[3000:6000], predicted_by=("m", 1),
        )  # fmt: skip

    def window(self, k):
        rng, pool = np.random.default_rng(50 + k), np.arange(9000, 30_000)
        tilt = None
        if k >= TILTED_AT:
            score = self.errs.decision_function(self.x.iloc[pool])
            tilt = np.exp(1.5 * (score - score.max()))
            tilt /= tilt.sum()
        chosen = rng.choice(pool, PER_WINDOW, replace=False, p=tilt)
        return self.x.iloc[chosen].reset_index(drop=True), self.y[chosen]

    def run(self, db, clock, context):
        found = []
        for k in range(WINDOWS):
            version = 1 if k < PROMOTED_AT else 2
            if k == PROMOTED_AT:
                self.deployments.deploy("api", [Variant("live", "m", version=2)])
            inputs, labels = self.window(k)
            ids = [f"w{k}-{i}" for i in range(PER_WINDOW)]
            times = T0 + k * HOUR_MS + np.arange(PER_WINDOW) * (HOUR_MS // PER_WINDOW)
            log_predictions(
                db, "api", inputs, self.models[version].predict(inputs), variant="live",
                at_ms=times, request_ids=ids, model="m", version=version,
            )  # fmt: skip
            log_labels(db, "api", ids, labels, windowing=WINDOWING)
            clock.now_ms = T0 + (k + 1) * HOUR_MS
            found += evaluate(db, "api", windowing=WINDOWING, policies=[], actions=context)
        return found


def _window_errors(promotion, k, version):
    inputs, labels = promotion.window(k)
    return (promotion.models[version].predict(inputs) != labels).astype(float)


def test_after_a_promotion_the_new_version_s_errors_on_the_reference_are_the_baseline(
    db, clock, tmp_path
):
    promotion = Promotion(db, tmp_path)
    evaluations = promotion.run(db, clock, ActionContext(db, registry=promotion.registry))
    decays = [e.metrics["decay"] for e in evaluations]
    # Version 2's first window starts its error stream afresh (no history, no kind); in the
    # next its error rises with the tilt, which its own errors on the reference explain.
    assert [d["kind"] for d in decays] == [None, "none", "none", None, "data_drift", "data_drift"]
    assert [e.metrics["concept_drift"] for e in evaluations] == [None, 0, 0, None, 0, 0]
    assert decays[TILTED_AT]["error"]["rose"] is True
    stored = stored_reference(db, "api")
    assert stored.predicted_by == ("m", 1)
    rows = stored.reference.sample.frame()
    made = promotion.models[2].predict(rows[COLUMNS])
    for k in range(TILTED_AT, WINDOWS):
        shift = decays[k]["shift"]
        assert shift["predictions"] == {"model": "m", "version": 2, "predicted_again": True}
        # The same numbers from version 2's answers on the reference's sample.
        sample = read_window(db, "api", "live", WINDOWING, T0 + k * HOUR_MS).sample.frame()
        again = reweighted_reference(stored.reference, sample, "accuracy", predictions=made)
        errors = _window_errors(promotion, k, 2)
        expected = shift_test(errors, again.errors, again.weights, alpha=0.05)
        for key in ("expected_error", "reference_error", "statistic", "p_value"):
            assert shift[key] == pytest.approx(expected[key], rel=1e-12)
        assert shift["explained"] is True
        # Against version 1's errors on the reference (what it was judged against before)
        # the stump's window reads as a new relationship: a false concept drift.
        old = reweighted_reference(stored.reference, sample, "accuracy")
        before = shift_test(errors, old.errors, old.weights, alpha=0.05)
        assert before["explained"] is False
        assert before["expected_error"] + 0.1 < shift["expected_error"]
    # Predicted once per version in this process: the same answers again.
    first = predicted_again(stored, "m", 2, promotion.registry)
    assert predicted_again(stored, "m", 2, promotion.registry) is first
    assert first == made.tolist()


def test_without_a_registry_the_new_version_cannot_be_judged_by_the_reference(db, clock, tmp_path):
    promotion = Promotion(db, tmp_path)
    evaluations = promotion.run(db, clock, ActionContext(db))
    decays = [e.metrics["decay"] for e in evaluations]
    for k in range(TILTED_AT, WINDOWS):
        assert decays[k]["shift"] == {
            "explained": None,
            "note": "the reference's predictions are m v1's and the window's errors m v2's; "
            "no registry to load v2 with and predict the reference again (give the "
            "evaluation an ActionContext with a registry)",
            "predictions": None,
        }
    # The inputs moved and the error rose: whether the move explains it cannot be told;
    # in the next window the error is stable against version 2's history: data drift.
    assert [d["kind"] for d in decays[TILTED_AT:]] == ["data_drift_and_error_rise", "data_drift"]


def test_predicted_by_is_recorded_and_checked(db):
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    with pytest.raises(InvalidArgumentError, match="predicted_by: a \\(model name, version\\)"):
        set_reference(db, "api", frame, predictions=[0, 1, 1], predicted_by=("m", -1))
    set_reference(db, "api", frame, predictions=[0, 1, 1])
    assert stored_reference(db, "api").predicted_by is None
    set_reference(db, "api", frame, predictions=[0, 1, 1], predicted_by=("m", 4))
    assert stored_reference(db, "api").predicted_by == ("m", 4)
    audit = audit_entries(db, entity="monitor:api")
    assert [a["predicted_by"] for a in audit["after"]] == [None, {"model": "m", "version": 4}]


def test_predictions_made_again_are_kept_per_artifact_not_per_name(tmp_path):
    # Two stores in one process, each with its own "m" v1 (opposite models): each store's
    # reference is predicted again by its own v1, not by the first one kept.
    from opsloop.store import Database

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    for k, labels in enumerate(([0, 0, 1, 1], [1, 1, 0, 0])):
        store = Database("sqlite://")
        registry = ModelRegistry(store, ArtifactStore(tmp_path / f"artifacts{k}"))
        model = LogisticRegression().fit(frame, labels)
        registry.register("m", model, input_schema=frame)
        set_reference(store, "api", frame, predictions=[0, 0, 0, 0], labels=[0, 0, 1, 1])
        stored = stored_reference(store, "api")
        rows = stored.reference.sample.frame()[["x"]]
        expected = model.predict(rows).tolist()
        assert expected == [int(x >= 2.0) ^ k for x in rows["x"]]
        assert predicted_again(stored, "m", 1, registry) == expected
        store.dispose()


def test_a_trusted_pickles_answers_never_reach_an_untrusted_call(db, tmp_path):
    from opsloop.registry.model_trust import UntrustedModelError

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    registry = ModelRegistry(db, ArtifactStore(tmp_path / "artifacts"), actor="eve")
    registry.register("m", LogisticRegression().fit(frame, [0, 0, 1, 1]).predict, flavor="python")
    set_reference(db, "api", frame, predictions=[0, 0, 0, 0], labels=[0, 0, 1, 1])
    stored = stored_reference(db, "api")
    with pytest.raises(UntrustedModelError, match="registered by 'eve'"):
        predicted_again(stored, "m", 1, registry)
    rows = stored.reference.sample.frame()["x"]
    assert predicted_again(stored, "m", 1, registry, trust=True) == [int(x >= 2.0) for x in rows]
    with pytest.raises(UntrustedModelError, match="registered by 'eve'"):
        predicted_again(stored, "m", 1, registry)
