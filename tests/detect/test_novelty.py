"""NoveltyDetector: known concepts stay quiet, new cohesive groups become novelties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opsloop.detect import NoveltyDetector


@pytest.fixture(scope="module")
def training():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (400, 2)), rng.normal([6, 0], 1, (400, 2))])
    return X, np.repeat(["a", "b"], 400)


def _fitted(training, **params) -> NoveltyDetector:
    return NoveltyDetector(seed=0, **params).fit(*training)


def test_known_concepts_raise_no_novelty(training):
    rng = np.random.default_rng(1)
    stream = np.vstack([rng.normal(0, 1, (1000, 2)), rng.normal([6, 0], 1, (1000, 2))])
    result = _fitted(training).update_many(stream)
    assert result.n_drifts == 0
    assert result.novelties == ()
    assert result.n_warnings == 34  # points beyond the farthest training member


def test_new_group_becomes_a_novelty_with_its_distance(training):
    rng = np.random.default_rng(2)
    stream = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal([3, 10], 0.5, (200, 2))])
    detector = _fitted(training)
    result = detector.update_many(stream)
    assert result.drift_indices.tolist() == [346]
    (novelty,) = result.novelties
    assert (novelty.label, novelty.position, novelty.size) == ("novelty-1", 346, 47)
    # Distance to the edge of the nearest known micro-cluster, recomputed from the model.
    state = detector.to_state()["state"]
    centers, radii = np.array(state["centers"]), np.array(state["radii"])
    known = [i for i, label in enumerate(state["labels"]) if not label.startswith("novelty")]
    edges = np.linalg.norm(centers[known] - np.array(novelty.center), axis=1) - radii[known]
    assert novelty.distance_to_known == pytest.approx(edges.min(), abs=1e-12)
    assert novelty.nearest_concept == state["labels"][known[int(np.argmin(edges))]]
    # Later points of the new concept are explained by it.
    later = detector.update_many(rng.normal([3, 10], 0.5, (100, 2)))
    assert later.n_drifts == 0 and later.n_warnings < 5


def test_a_group_next_to_a_known_cluster_extends_it(training):
    detector = _fitted(training, extension_factor=10.0)
    rng = np.random.default_rng(3)
    result = detector.update_many(rng.normal([0, 5], 0.4, (200, 2)))
    assert result.n_drifts == 0
    assert detector.concepts.count("a") > 10  # "a" gained micro-clusters


def test_point_by_point_equals_batches(training):
    rng = np.random.default_rng(4)
    stream = np.vstack(
        [
            rng.normal(0, 1, (200, 2)),
            rng.normal([3, 10], 0.5, (150, 2)),
            rng.normal(-8, 0.5, (150, 2)),
        ]
    )
    whole = _fitted(training).update_many(stream)
    single = _fitted(training)
    flags = [single.update(point) for point in stream]
    assert np.flatnonzero(flags).tolist() == whole.drift_indices.tolist()
    assert len(whole.novelties) == 2
    chunked = _fitted(training)
    chunked.update_many(stream[:260])
    restored = NoveltyDetector.from_state(json.loads(json.dumps(chunked.to_state())))
    rest = restored.update_many(stream[260:])
    assert (rest.drift_indices + 260).tolist() == [
        i for i in whole.drift_indices.tolist() if i >= 260
    ]
    assert restored.concepts == single.concepts


def test_old_unknowns_are_forgotten(training):
    # Sixty far-away points, but spread over 6000 items: never 50 in the buffer at once.
    rng = np.random.default_rng(5)
    stream = rng.normal(0, 1, (6000, 2))
    stream[::100] = rng.normal([0, 20], 0.3, (60, 2))
    result = _fitted(training, buffer_window=1000).update_many(stream)
    assert result.n_drifts == 0


def test_bad_input(training):
    with pytest.raises(ValueError, match=r"NoveltyDetector: call fit\(X, y\) before"):
        NoveltyDetector().update_many(np.zeros((2, 2)))
    detector = _fitted(training)
    detector.update_many(np.ones((10, 2)) * 30)
    before = json.dumps(detector.to_state())
    with pytest.raises(ValueError, match="NoveltyDetector: xs has 3 features, the model has 2"):
        detector.update_many(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NoveltyDetector: xs point 1, feature 0 is not a finite"):
        detector.update_many(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="NoveltyDetector: x must be a 1-D row"):
        detector.update(np.zeros((1, 2)))
    assert json.dumps(detector.to_state()) == before
    with pytest.raises(ValueError, match="y must be 1-D with one label per row of X"):
        NoveltyDetector().fit(np.zeros((3, 2)), [0, 1])
