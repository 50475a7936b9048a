"""A loaded variant answers the same whichever input it is given: the checked float matrix
or the frame, a forest's predictions taken from its probabilities and a logistic
regression's labels and probabilities from one decision."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

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
    """The matrix, given to a model fitted on arrays and to one fitted on a frame, gives
    the very answers the frame of the full check gave."""
    frame, label = _table()
    schema = infer_schema(frame)
    on_arrays = LogisticRegression().fit(frame.to_numpy(), label)
    on_frames = LogisticRegression().fit(frame, label)
    new, _ = _table(seed=2)
    records = _records(new.head(40))
    for model in (on_arrays, on_frames):
        variant = LoadedVariant("s", "primary", "m", 1, "sklearn", schema, model)
        checked = variant.check(records)
        assert checked.matrix is not None  # the quick path: every value a float in range
        assert isinstance(variant.model_input(checked), np.ndarray)
        answer = variant.predict(checked)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a frame for a model fitted on arrays
            before = variant.predict(checked_records(records, schema))
        assert answer.predictions == before.predictions
        assert answer.probabilities == before.probabilities


def _with_ties(model: LogisticRegression, width: int) -> np.ndarray:
    """Rows on which ``model``'s scores tie exactly or differ by less than the
    probabilities can show (the intercepts set so, for rows of zeros and near zeros)."""
    rows = np.zeros((6, width))
    rows[1:, 0] = [1e-300, -1e-300, 1e-30, -1e-30, 5e-324]
    return rows


def test_a_logistic_regression_answers_its_predict_and_predict_proba_from_one_decision(
    monkeypatch,
):
    """Labels from the decision's sign (two classes) or argmax (more), probabilities by the
    model's own link: equal to its ``predict`` and ``predict_proba`` on thousands of rows
    and on exact ties, where the argmax of the probabilities would answer another label;
    and the model is asked once per request."""
    frame, label = _table()
    schema = infer_schema(frame)
    rng = np.random.default_rng(7)
    many = pd.DataFrame(rng.normal(scale=1.5, size=(5_000, 5)), columns=frame.columns)
    binary = LogisticRegression().fit(frame, label)
    binary.intercept_ = np.array([0.0])  # a row of zeros scores exactly 0
    three = label + (frame["f0"] > 0.5).to_numpy() * 2  # classes 0-3
    multi = LogisticRegression(max_iter=1000).fit(frame, three)
    multi.coef_[1] = multi.coef_[0]  # classes 0 and 1 score the same on every row
    multi.intercept_ = np.array([0.0, 0.0, 1e-17, -1.0])  # and 2 a hair above on zeros
    calls = []
    decide = LogisticRegression.decision_function

    def counted(self, X):
        calls.append(len(X))
        return decide(self, X)

    for model in (binary, multi):
        rows = pd.concat(
            [many, pd.DataFrame(_with_ties(model, 5), columns=frame.columns)],
            ignore_index=True,
        )
        variant = LoadedVariant("s", "primary", "m", 1, "sklearn", schema, model)
        records = _records(rows)
        expected = model.predict(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # All at once (the frame of the full check) and in requests of 50 (the matrix),
            # each against the model's own answers for the same rows at once (a matrix
            # product of another size may round the last bit of a score differently).
            for start, stop in [
                (0, len(rows)),
                *((i, min(i + 50, len(rows))) for i in range(0, len(rows), 50)),
            ]:
                with monkeypatch.context() as patched:
                    patched.setattr(LogisticRegression, "decision_function", counted)
                    answer = variant.predict(variant.check(records[start:stop]))
                assert calls == [stop - start]
                calls.clear()
                assert answer.predictions == expected[start:stop].tolist()
                np.testing.assert_array_equal(
                    answer.probabilities, model.predict_proba(rows.iloc[start:stop])
                )
        # The ties are real: there the probabilities' argmax is not the model's label.
        by_proba = model.classes_.take(np.argmax(model.predict_proba(rows), axis=1))
        assert (by_proba != expected).sum() >= 2
    scores = multi.decision_function(pd.DataFrame(np.zeros((1, 5)), columns=frame.columns))[0]
    assert (
        scores[0] == scores[1] and answer.predictions[-6] == 2
    )  # the last request's first row: zeros


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),
        LinearRegression(),
        Ridge(),
        Lasso(alpha=0.01),
        ElasticNet(alpha=0.01),
        RandomForestClassifier(n_estimators=5, random_state=0),
        RandomForestRegressor(n_estimators=5, random_state=0),
        ExtraTreesClassifier(n_estimators=5, random_state=0),
        ExtraTreesRegressor(n_estimators=5, random_state=0),
        DecisionTreeClassifier(random_state=0),
        DecisionTreeRegressor(random_state=0),
    ],
    ids=lambda model: type(model).__name__,
)
def test_a_model_fitted_on_a_frame_answers_the_matrix_as_it_answers_the_frame(model):
    """Given the checked matrix (no frame built, no column names compared), each estimator
    fitted on a frame answers bit for bit what it answers for the frame, with no warning."""
    frame, label = _table()
    target = frame["f1"].to_numpy() if isinstance(model, RegressorMixin) else label
    model.fit(frame, target)
    schema = infer_schema(frame)
    new, _ = _table(seed=3)
    variant = LoadedVariant("s", "primary", "m", 1, "sklearn", schema, model)
    checked = variant.check(_records(new.head(60)))
    assert isinstance(variant.model_input(checked), np.ndarray)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        answer = variant.predict(checked)
    given = checked_records(_records(new.head(60)), schema)
    assert answer.predictions == model.predict(given).tolist()
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(answer.probabilities, model.predict_proba(given))
    assert hasattr(model, "feature_names_in_")  # the served model itself is left as it was


def test_a_pipeline_that_selects_columns_by_name_keeps_getting_the_frame():
    frame, label = _table()
    pipeline = make_pipeline(
        ColumnTransformer([("kept", "passthrough", ["f3", "f0"])]), LogisticRegression()
    ).fit(frame, label)
    variant = LoadedVariant("s", "primary", "m", 1, "sklearn", infer_schema(frame), pipeline)
    new, _ = _table(seed=4)
    checked = variant.check(_records(new.head(10)))
    assert isinstance(variant.model_input(checked), pd.DataFrame)
    assert variant.predict(checked).predictions == pipeline.predict(new.head(10)).tolist()


def test_a_model_fitted_on_a_matrix_gets_its_columns_in_the_registered_order(registry):
    # A matrix-fitted model has no column names: the registered signature's order is the
    # only record of which column is which (it used to come back sorted by name).
    from opsloop.serving.loaded_variant import load_variant

    frame, label = _table()
    frame = frame[["f3", "f0", "f4", "f1", "f2"]]
    model = LogisticRegression().fit(frame.to_numpy(), label)
    registry.register("m", model, input_schema=frame)
    variant = load_variant(registry, "s", "primary", "m", 1)
    new = _table(seed=1)[0].head(20)
    answer = variant.predict(variant.check(_records(new)))
    expected = model.predict_proba(new[list(frame.columns)].to_numpy())
    np.testing.assert_allclose(answer.probabilities, expected, rtol=1e-12)
    assert answer.predictions == model.predict(new[list(frame.columns)].to_numpy()).tolist()
