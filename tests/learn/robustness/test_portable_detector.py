"""The portable input detector: the same scores as the fitted one (and as the Mahalanobis
distance written out with numpy), a JSON round trip, and a document checked field by field
on the way in."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from opsloop.learn.robustness.input_anomaly import fit_input_detector
from opsloop.learn.robustness.portable_detector import (
    MAX_FEATURES,
    PortableInputDetector,
    fit_portable_detector,
    portable_detector,
)


@pytest.fixture(scope="module")
def cancer():
    frame = load_breast_cancer(as_frame=True).data
    return frame.iloc[:400], frame.iloc[400:]


def test_scores_equal_the_fitted_detector_s_on_raw_breast_cancer_units(cancer):
    train, test = cancer
    fitted = fit_input_detector(train.to_numpy(), fpr=0.05, seed=3)
    portable = portable_detector(fitted, list(train.columns))
    expected = fitted.score(test.to_numpy())
    assert np.allclose(portable.score(test.to_numpy()), expected, rtol=1e-9, atol=0)
    assert (portable.flag(test.to_numpy()) == fitted.flag(test.to_numpy())).all()
    # and against the definition, written out: standardise, centre, x' P x
    z = (test.to_numpy() - fitted.scaler.mean_) / fitted.scaler.scale_
    d = z - fitted.covariance.location_
    by_hand = np.einsum("ij,jk,ik->i", d, fitted.covariance.precision_, d)
    assert np.allclose(portable.score(test.to_numpy()), by_hand, rtol=1e-9, atol=0)


def test_constant_columns_score_as_in_the_fitted_detector():
    # digits' border pixels are always 0: the scaler's scale is 1 there
    X = load_digits().data / 16
    fitted = fit_input_detector(X[:1200], fpr=0.05, calibration=400)
    portable = portable_detector(fitted, [f"p{i}" for i in range(64)])
    assert np.allclose(portable.score(X[1200:]), fitted.score(X[1200:]), rtol=1e-9, atol=0)
    assert portable.threshold == fitted.threshold and portable.rank == 381


def test_json_round_trip_keeps_every_number(cancer):
    detector = fit_portable_detector(cancer[0], fpr=0.05)
    again = PortableInputDetector.from_dict(json.loads(json.dumps(detector.to_dict())))
    assert again == detector
    assert np.array_equal(again.score(cancer[1]), detector.score(cancer[1]))
    assert again.calibration_rows == 120 and again.rank == 115  # ceil(121 * 0.95)


def _document(n=2):
    return {
        "features": [f"f{i}" for i in range(n)],
        "location": [0.0] * n,
        "precision": np.eye(n).tolist(),
        "threshold": 3.0,
        "fpr": 0.05,
        "rank": 19,
        "calibration_rows": 19,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"location": [0.0]}, "location: must have shape [2], got [1]"),
        ({"precision": [[1.0, 0.0], [0.0]]}, "precision: must be a list of shape [2, 2]"),
        ({"precision": [[1.0, 0.5], [0.0, 1.0]]}, "precision: must be a symmetric matrix"),
        ({"precision": [[1.0, float("nan")], [0.0, 1.0]]}, "precision: must hold finite"),
        ({"location": "0,0"}, "location: must be a list of numbers, got str"),
        ({"location": [0.0, "1"]}, "location: must hold numbers only"),
        ({"location": [0.0, True]}, "location: must hold numbers only"),
        ({"threshold": float("inf")}, "threshold: must be a finite number"),
        ({"threshold": -1.0}, "threshold: must be >= 0"),
        ({"fpr": 1.0}, "fpr: must be in (0, 1)"),
        ({"rank": 20}, "rank: must be at most calibration_rows (19), got 20"),
        ({"rank": True}, "rank: must be an integer >= 1"),
        ({"features": ["a", "a"]}, "features: each name once, got ['a']"),
        ({"features": ["a", ""]}, "features[1]: must be a non-empty name"),
        ({"features": "ab"}, "features: must be a list of names"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError) as raised:
        PortableInputDetector.from_dict({**_document(), **change})
    assert str(raised.value).startswith(message), str(raised.value)


def test_unknown_or_missing_fields_and_too_many_features_are_refused():
    with pytest.raises(ValueError, match=r"exactly the fields .*got \['features', 'pickle'\]"):
        PortableInputDetector.from_dict({"features": ["x"], "pickle": "gASV"})
    with pytest.raises(ValueError, match=f"features: must name 1 to {MAX_FEATURES} features"):
        PortableInputDetector.from_dict(_document(MAX_FEATURES + 1))


def test_fit_on_a_frame_takes_its_column_names_and_refuses_text():
    frame = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) ** 0.5})
    assert fit_portable_detector(frame, fpr=0.1).features == ("a", "b")
    with pytest.raises(ValueError, match=r"columns \['c'\] are not"):
        fit_portable_detector(frame.assign(c="x"), fpr=0.1)
