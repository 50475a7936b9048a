"""A loaded variant answers the same whichever input it is given: the checked float matrix
or the frame, and a forest's predictions taken from its probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from opsloop.data.schema import infer_schema
from opsloop.serving.loaded_variant import LoadedVariant
from opsloop.serving.record_validation import checked_records


def _table(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(300, 5)), columns=[f"f{i}" for i in range(5)])
    label = (frame.to_numpy() @ rng.normal(size=5) + rng.normal(size=300) > 0).astype(int)
    return frame, label


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{name: float(value) for name, value in row.items()} for row in frame.to_dict("records")]


def test_forests_answer_their_own_predict_from_one_probability_call():
    frame, label = _table()
    label = label + (frame["f0"] > 1).to_numpy() * 2  # three classes, one rare
    schema = infer_schema(frame)
    new, _ = _table(seed=1)
    for model in (
        RandomForestClassifier(n_estimators=4, random_state=0).fit(frame, label),
        ExtraTreesClassifier(n_estimators=2, random_state=0).fit(frame, label),
    ):
        variant = LoadedVariant("s", "primary", "m", 1, "sklearn", schema, model)
        answer = variant.predict(checked_records(_records(new), schema))
        assert answer.predictions == model.predict(new).tolist()
        # With 2-4 trees, many rows tie between classes: argmax breaks ties as predict does.
        proba = model.predict_proba(new)
        assert (np.sort(proba, axis=1)[:, -1] == np.sort(proba, axis=1)[:, -2]).any()
        np.testing.assert_array_equal(answer.probabilities, proba)
        assert answer.classes == model.classes_.tolist() == [0, 1, 2, 3]


def test_the_quick_path_answers_bit_for_bit_as_the_frame_of_the_full_check():
    """The matrix (for a model fitted on arrays) and the frame built from it (for one
    fitted on a frame) give the very answers the frame of the full check gave."""
    frame, label = _table()
    schema = infer_schema(frame)
    on_arrays = LogisticRegression().fit(frame.to_numpy(), label)
    on_frames = LogisticRegression().fit(frame, label)
    new, _ = _table(seed=2)
    records = _records(new.head(40))
    for model, given in ((on_arrays, np.ndarray), (on_frames, pd.DataFrame)):
        variant = LoadedVariant("s", "primary", "m", 1, "sklearn", schema, model)
        checked = variant.check(records)
        assert checked.matrix is not None  # the quick path: every value a float in range
        assert isinstance(variant.model_input(checked), given)
        answer = variant.predict(checked)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a frame for a model fitted on arrays
            before = variant.predict(checked_records(records, schema))
        assert answer.predictions == before.predictions
        assert answer.probabilities == before.probabilities
