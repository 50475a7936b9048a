import io
import json

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.datasets import make_moons
from sklearn.semi_supervised import LabelPropagation, LabelSpreading
from tests.learn.tracked import artifact_bytes

import opsloop
from opsloop.learn.propagation import propagate_labels


@pytest.fixture(scope="module")
def moons():
    X, y_true = make_moons(200, noise=0.05, random_state=0)
    y = np.full(200, -1)
    y[:10] = y_true[:10]
    return X, y, y_true


def test_labels_and_confidence_are_scikit_learns(moons):
    X, y, y_true = moons
    result = propagate_labels(X, y, y_true=y_true)
    reference = LabelSpreading().fit(X, y)
    np.testing.assert_array_equal(result.labels, reference.transduction_)
    np.testing.assert_allclose(result.confidence, reference.label_distributions_.max(axis=1))
    assert result.method == "LabelSpreading"


def test_report_counts_by_hand(moons):
    X, y, y_true = moons
    result = propagate_labels(X, y, y_true=y_true, confidence_levels=(0.5, 0.9))
    reference = LabelSpreading().fit(X, y)
    conf = reference.label_distributions_.max(axis=1)[10:]
    right = reference.transduction_[10:] == y_true[10:]
    assert (result.n_labelled, result.n_propagated, result.n_unreached) == (10, 190, 0)
    assert result.count_at == {0.5: int((conf >= 0.5).sum()), 0.9: int((conf >= 0.9).sum())}
    assert result.accuracy == pytest.approx(right.mean(), abs=1e-12)
    assert result.accuracy_at[0.9] == pytest.approx(right[conf >= 0.9].mean(), abs=1e-12)
    assert result.mean_confidence == pytest.approx(conf.mean(), abs=1e-12)
    # more confident labels are more often right on this problem
    assert result.accuracy_at[0.9] > result.accuracy


def test_per_class_table(moons):
    X, y, y_true = moons
    result = propagate_labels(X, y, y_true=y_true)
    frame = result.to_frame()
    assert frame["label"].tolist() == [0, 1]
    assert frame["n_labelled"].tolist() == np.bincount(y[:10]).tolist()
    assert frame["n_propagated"].sum() == 190
    zero = result.labels[10:] == 0
    assert frame.loc[0, "accuracy"] == pytest.approx((y_true[10:][zero] == 0).mean())
    json.dumps(result.to_dict())


def test_rows_the_graph_does_not_reach_are_reported_not_guessed(moons):
    X, y, y_true = moons
    model = LabelSpreading(kernel="knn", n_neighbors=7)
    result = propagate_labels(X, y, y_true=y_true, model=model)
    reference = LabelSpreading(kernel="knn", n_neighbors=7).fit(X, y)
    unreached = reference.label_distributions_.sum(axis=1) == 0
    assert result.n_unreached == int(unreached.sum()) > 0
    assert result.n_propagated == 190 - result.n_unreached
    assert (result.confidence[unreached] == 0).all()
    assert not result.propagated[unreached].any()


def test_label_propagation_without_true_labels(moons):
    X, y, _ = moons
    result = propagate_labels(X, y, model=LabelPropagation(kernel="knn", max_iter=2000))
    assert result.accuracy is None and result.accuracy_at is None
    assert result.method == "LabelPropagation"
    assert "accuracy" not in result.to_frame().columns


def test_bad_input(moons):
    X, y, y_true = moons
    with pytest.raises(TypeError, match="model must be a scikit-learn LabelSpreading"):
        propagate_labels(X, y, model=object())
    with pytest.raises(ValueError, match="no labelled rows"):
        propagate_labels(X, np.full(200, -1))
    with pytest.raises(ValueError, match="y must be 1-D with one label per row"):
        propagate_labels(X, y[:5])
    with pytest.raises(ValueError, match="y_true must have the shape of y"):
        propagate_labels(X, y, y_true=y_true[:5])
    with pytest.raises(ValueError, match=r"confidence_levels must lie in \[0, 1\]"):
        propagate_labels(X, y, confidence_levels=(2.0,))


def test_a_run_gets_the_report_and_every_rows_label(moons, tracking_home):
    X, y, y_true = moons
    knn = LabelPropagation(kernel="knn", n_neighbors=7, max_iter=2000)
    with opsloop.start_run("propagation", capture=False) as run:
        result = propagate_labels(
            X, y, model=knn, y_true=y_true, confidence_levels=(0.5, 0.9), run=run
        )
    stored = opsloop.get_run(run.run_id)
    assert stored.params["method"] == "LabelPropagation"
    assert stored.params["model.kernel"] == "knn" and stored.params["model.n_neighbors"] == "7"
    assert stored.params["confidence_levels"] == "0.5,0.9"
    assert stored.metrics["n_labelled"] == 10 and stored.metrics["n_propagated"] == 190
    assert stored.metrics["accuracy"] == result.accuracy
    assert stored.metrics["mean_confidence"] == result.mean_confidence
    confident = result.confidence[result.propagated]
    for level in (0.5, 0.9):
        assert stored.metrics[f"propagated_at_{level}"] == (confident >= level).sum()
        assert stored.metrics[f"accuracy_at_{level}"] == result.accuracy_at[level]
    rows = pd.read_csv(io.BytesIO(artifact_bytes(stored, "propagated_labels.csv")))
    np.testing.assert_array_equal(rows["label"], result.labels)
    np.testing.assert_allclose(rows["confidence"], result.confidence, rtol=1e-12)
    assert rows["propagated"].sum() == 190
    assert json.loads(artifact_bytes(stored, "propagation.json")) == result.to_dict()
    saved = artifact_bytes(stored, "model.skops")
    # the k-nearest-neighbour kernel holds a KDTree, a type skops asks the reader to trust
    untrusted = skops.io.get_untrusted_types(data=saved)
    assert "sklearn.neighbors._kd_tree.KDTree" in untrusted
    model = skops.io.loads(saved, trusted=untrusted)
    np.testing.assert_array_equal(model.transduction_, result.model.transduction_)


def test_digits_rows_the_graph_does_not_reach_keep_no_label():
    from sklearn.datasets import load_digits

    X, y_true = load_digits(return_X_y=True)
    y = np.full(len(y_true), -1)
    shown = np.random.default_rng(0).choice(len(y_true), 30, replace=False)
    y[shown] = y_true[shown]
    result = propagate_labels(X, y, y_true=y_true, model=LabelSpreading(kernel="knn"))
    reference = LabelSpreading(kernel="knn").fit(X, y)
    unreached = reference.label_distributions_.sum(axis=1) == 0
    # about a tenth of the 1,767 hidden digits are not linked to any of the 30 shown through 7
    # neighbours (ties between equal pixel distances make the count vary a little with the
    # neighbour search); scikit-learn's transduction calls them all class 0
    assert int(unreached.sum()) == result.n_unreached
    assert 100 < result.n_unreached < 300
    assert (reference.transduction_[unreached] == 0).all()
    assert (result.labels[unreached] == -1).all()
    reached = ~unreached
    np.testing.assert_array_equal(result.labels[reached], reference.transduction_[reached])
    right = reference.transduction_[result.propagated] == y_true[result.propagated]
    assert result.accuracy == right.mean()


def _iris_partly_named(marker):
    """load_iris with its target names as labels, 80% of them replaced by ``marker``."""
    from sklearn.datasets import load_iris

    data = load_iris()
    names = data.target_names[data.target]
    hidden = np.random.default_rng(0).random(len(names)) < 0.8
    # object, not text: numpy finds no common type for -1 and the names
    return data.data, np.where(hidden, marker, names.astype(object)), hidden, data


@pytest.mark.parametrize("marker", ["unlabeled", -1])
def test_text_labels_equal_scikit_learn_on_their_numbers(marker):
    X, named, hidden, data = _iris_partly_named(marker)
    result = propagate_labels(X, named, unlabelled=marker, y_true=data.target_names[data.target])
    # scikit-learn on the same labels numbered in sorted order (the names sort as the codes).
    codes = np.where(hidden, -1, data.target)
    reference = LabelSpreading().fit(X, codes)
    np.testing.assert_array_equal(result.labels, data.target_names[reference.transduction_])
    np.testing.assert_allclose(result.confidence, reference.label_distributions_.max(axis=1))
    assert result.per_class["label"].tolist() == ["setosa", "versicolor", "virginica"]
    assert result.n_labelled == int((~hidden).sum())
    truth = data.target_names[data.target]
    assert result.accuracy == float(np.mean(result.labels[hidden] == truth[hidden]))
    # scikit-learn itself takes a text marker for a fourth class, and refuses text with -1.
    if marker == "unlabeled":
        assert "unlabeled" in LabelSpreading().fit(X, named.astype(str)).classes_
    else:
        with pytest.raises(ValueError, match="Unknown label type"):
            LabelSpreading().fit(X, named)


def test_text_labels_without_their_marker_are_refused_naming_it():
    X, named, _, _ = _iris_partly_named("unknown")
    with pytest.raises(ValueError, match="every entry is the marker 'nope'"):
        propagate_labels(X, np.where(named == "unknown", "nope", "nope"), unlabelled="nope")
    # the default marker -1 is not in a text array marked "unknown": refused, not taken
    # for a fourth class as scikit-learn would
    with pytest.raises(ValueError, match=r"^y: no row holds the marker .* -1; name the marker"):
        propagate_labels(X, named)


def test_nan_in_x_is_refused_naming_the_row_and_column():
    X, named, _, _ = _iris_partly_named("unknown")
    X = X.copy()
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"^X: row 7, column 2 is NaN"):
        propagate_labels(X, named, unlabelled="unknown")


def test_unscaled_digits_warn_and_equal_scikit_learn_where_the_graph_reaches():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    partial = np.where(np.random.default_rng(0).random(len(y)) < 0.1, y, -1)
    with pytest.warns(UserWarning, match=r"gamma=20 .* Scale X"):
        raw = propagate_labels(X, partial, y_true=y)
    reference = LabelSpreading().fit(X, partial)
    # scikit-learn labels the rows no weight reached with class 0: 10% right by chance
    assert np.mean(reference.transduction_[partial == -1] == y[partial == -1]) < 0.11
    assert raw.n_propagated == 0 and raw.n_unreached == int((partial == -1).sum())
    scaled = StandardScaler().fit_transform(X)
    result = propagate_labels(scaled, partial, y_true=y)
    reference = LabelSpreading().fit(scaled, partial)
    reached = result.propagated
    np.testing.assert_array_equal(result.labels[reached], reference.transduction_[reached])
    assert result.accuracy > 0.95
    knn = propagate_labels(X, partial, y_true=y, model=LabelSpreading(kernel="knn"))
    reference = LabelSpreading(kernel="knn").fit(X, partial)
    np.testing.assert_array_equal(knn.labels, reference.transduction_)
    assert knn.n_unreached == 0 and knn.accuracy > 0.95


def _iris_scaled_with_hidden():
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    hidden = np.random.default_rng(0).random(len(y)) < 0.7
    return StandardScaler().fit_transform(X), y, hidden


def _scikit_learn_on_codes(X, y, hidden):
    """scikit-learn's labels on the integer labels, with -1 for the hidden rows."""
    reference = LabelSpreading().fit(X, np.where(hidden, -1, y))
    return reference, np.where(hidden, reference.transduction_, y)


def test_numbers_in_an_object_column_with_a_text_marker_keep_their_values():
    """A CSV column of class numbers and "unknown" reads as object: the classes stay the
    numbers 0, 1, 2 (as text they matched neither the given labels nor y_true: accuracy 0
    and no labelled row per class)."""
    X, y, hidden = _iris_scaled_with_hidden()
    column = pd.Series(["unknown" if h else int(v) for h, v in zip(hidden, y, strict=True)])
    assert column.dtype == object
    result = propagate_labels(X, column, unlabelled="unknown", y_true=y)
    reference, expected = _scikit_learn_on_codes(X, y, hidden)
    assert {type(v) for v in result.labels} <= {int, np.int64}
    np.testing.assert_array_equal(result.labels.astype(np.int64), expected)
    assert result.accuracy == pytest.approx(float((expected[hidden] == y[hidden]).mean()))
    assert result.accuracy > 0.9
    assert result.per_class["label"].tolist() == [0, 1, 2]
    assert result.per_class["n_labelled"].tolist() == np.bincount(y[~hidden]).tolist()
    np.testing.assert_allclose(result.confidence, reference.label_distributions_.max(axis=1))


def test_labels_of_mixed_types_are_refused_naming_y():
    X, y, hidden = _iris_scaled_with_hidden()
    mixed = np.array(
        [
            ("unknown" if h else (int(v) if i % 2 else str(v)))
            for i, (h, v) in enumerate(zip(hidden, y, strict=True))
        ],
        dtype=object,
    )
    with pytest.raises(ValueError, match=r"^y mixes label types \(number and text\)"):
        propagate_labels(X, mixed, unlabelled="unknown")


@pytest.mark.parametrize(
    "marker, make",
    [
        (np.nan, lambda y, hidden: np.where(hidden, np.nan, y.astype(float))),
        (None, lambda y, hidden: np.where(hidden, np.nan, y.astype(float))),
        (pd.NA, lambda y, hidden: pd.Series(y).astype("Int64").mask(pd.Series(hidden))),
        (None, lambda y, hidden: pd.Series(np.where(hidden, None, y.astype(object)))),
        (np.nan, lambda y, hidden: pd.Series(y).astype("Int64").mask(pd.Series(hidden))),
    ],
    ids=["float-nan", "float-none", "Int64-NA", "object-None", "Int64-nan"],
)
def test_a_missing_value_marker_takes_every_missing_label_as_unlabelled(marker, make):
    X, y, hidden = _iris_scaled_with_hidden()
    result = propagate_labels(X, make(y, hidden), unlabelled=marker, y_true=y)
    _, expected = _scikit_learn_on_codes(X, y, hidden)
    assert (result.n_labelled, result.n_propagated) == (int((~hidden).sum()), int(hidden.sum()))
    np.testing.assert_array_equal(result.labels.astype(float), expected.astype(float))
    assert result.accuracy == pytest.approx(float((expected[hidden] == y[hidden]).mean()))


def test_names_with_missing_values_take_them_as_unlabelled():
    """Names with None in a Series (text with NaN under pandas 3) and marker None or NaN."""
    from sklearn.datasets import load_iris

    X, y, hidden = _iris_scaled_with_hidden()
    names = load_iris().target_names
    column = pd.Series(np.where(hidden, None, names[y]))
    _, expected = _scikit_learn_on_codes(X, y, hidden)
    for marker in (None, np.nan):
        result = propagate_labels(X, column, unlabelled=marker, y_true=names[y])
        np.testing.assert_array_equal(result.labels, names[expected])


def test_missing_labels_under_another_marker_are_refused_naming_the_way_out():
    X, y, hidden = _iris_scaled_with_hidden()
    floats = np.where(hidden, -1.0, y.astype(float))
    floats[4] = np.nan
    with pytest.raises(
        ValueError,
        match=r"^y: row 4 is missing \(nan\) and unlabelled=-1; "
        r"pass unlabelled=None",
    ):
        propagate_labels(X, floats)
