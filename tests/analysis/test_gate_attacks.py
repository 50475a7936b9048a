"""The gate's robustness and privacy checks on scikit-learn's breast cancer and digits data,
each number equal to the one :mod:`opsloop.learn.robustness`' own functions give when called
directly on the same rows, and a bound each of them fails."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from opsloop.analysis.gate import GateSpecError, evaluate_gate, parse_gate
from opsloop.analysis.paired_tests import mcnemar_noninferiority_test
from opsloop.data.schema import infer_schema
from opsloop.learn.robustness import (
    FeatureConstraints,
    random_search_attack,
    shadow_attack,
    threshold_attack,
)

CANCER = list(load_breast_cancer().feature_names)


@pytest.fixture(scope="module")
def cancer():
    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    train, test = frame.iloc[:350], frame.iloc[350:].reset_index(drop=True)
    strong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    weak = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    return {
        "train": train,
        "test": test,
        "strong": strong.fit(train[CANCER], train["target"]),
        "weak": weak.fit(train[CANCER], train["target"]),
    }


@pytest.fixture(scope="module")
def digits():
    frame = load_digits(as_frame=True).frame
    pixels = [c for c in frame.columns if c != "target"]
    frame[pixels] = frame[pixels].astype(np.int64)  # grey levels 0..16
    train, test = frame.iloc[:600], frame.iloc[600:1000].reset_index(drop=True)
    tree = DecisionTreeClassifier(random_state=0).fit(train[pixels], train["target"])
    smooth = LogisticRegression(C=0.001, max_iter=3000).fit(train[pixels], train["target"])
    return {"train": train, "test": test, "pixels": pixels, "tree": tree, "smooth": smooth}


def _gate(label, *checks):
    return parse_gate({"version": 1, "name": "attacks", "label": label, "checks": list(checks)})


def _direct(call, *args, **kwargs):
    # The bare models were fitted on frames; fed arrays they warn, and answer the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return call(*args, **kwargs)


def test_accuracy_under_random_search_is_the_attacks_own(cancer):
    check = {
        "kind": "robustness",
        "attack": "random_search",
        "epsilon": 0.3,
        "min_accuracy": 0.5,
        "margin": 0.05,
        "rows": 120,
        "queries": 60,
        "seed": 4,
    }
    test = cancer["test"]
    result = evaluate_gate(_gate("target", check), cancer["strong"], cancer["weak"], test)
    rows = np.sort(np.random.default_rng(4).choice(len(test), 120, replace=False))
    X, y = test.loc[rows, CANCER].to_numpy(), test.loc[rows, "target"].to_numpy()
    still = {}
    for side in ("strong", "weak"):
        model = cancer[side]
        attack = _direct(random_search_attack, model, X, y, eps=0.3, max_queries=60, seed=4)
        right = _direct(model.predict, X) == y
        assert attack.attacked == right.sum()
        still[side] = right & ~attack.success
        assert still[side].sum() == attack.attacked - attack.fooled
    (found,) = result.checks
    evidence = found.to_dict()["evidence"]
    assert found.statistic == pytest.approx(still["strong"].mean(), abs=1e-12)
    assert evidence["baseline"]["accuracy_under_attack"] == pytest.approx(still["weak"].mean())
    assert evidence["candidate"]["constrained_by_schema"] is False
    paired = mcnemar_noninferiority_test(
        np.ones(120), still["strong"] * 1, still["weak"] * 1, margin=0.05, level=0.05
    )
    assert found.p_value == pytest.approx(paired.p_value, rel=1e-12)
    assert found.passed == (still["strong"].mean() >= 0.5 and paired.non_inferior)
    # A floor above what the attack leaves fails, naming both numbers.
    floor = round(still["strong"].mean() + 0.05, 2)
    failed = evaluate_gate(
        _gate("target", {**check, "min_accuracy": floor}), cancer["strong"], cancer["weak"], test
    )
    assert not failed.passed
    assert f"accuracy under random_search {still['strong'].mean():.4g}" in failed.checks[0].reason
    assert f"is below the floor {floor:g}" in failed.checks[0].reason
    assert failed.failed()[0].kind == "robustness"


def test_a_known_schema_keeps_the_attacked_rows_valid(digits):
    pixels, test = digits["pixels"], digits["test"]
    schema = infer_schema(digits["train"][pixels])
    signature = {"inputs": schema.to_dict(), "output": "int"}
    check = {
        "kind": "robustness",
        "attack": "random_search",
        "epsilon": 3.0,
        "min_accuracy": 0.2,
        "rows": 80,
        "queries": 40,
    }
    eval_rows = test.iloc[:300]
    # rows inside the training schema's ranges: a pixel never lit in training stays dark
    inside = (eval_rows[pixels] <= schema.to_frame().set_index("name")["max"].astype(float)).all(
        axis=1
    )
    eval_rows = eval_rows[inside].reset_index(drop=True)
    result = evaluate_gate(
        _gate("target", check),
        digits["smooth"],
        digits["smooth"],
        eval_rows,
        candidate_signature=signature,
        baseline_signature=signature,
    )
    rows = np.sort(np.random.default_rng(0).choice(len(eval_rows), 80, replace=False))
    X = eval_rows.loc[rows, pixels].to_numpy(dtype=float)
    y = eval_rows.loc[rows, "target"].to_numpy()
    constraints = FeatureConstraints.from_schema(schema, pixels)
    attack = _direct(
        random_search_attack,
        digits["smooth"],
        X,
        y,
        eps=3.0,
        max_queries=40,
        constraints=constraints,
        seed=0,
    )
    # the attacked rows hold whole pixel values within each pixel's range
    changed = attack.X_adv[attack.success]
    assert attack.fooled > 0
    assert np.array_equal(changed, np.round(changed))
    assert (changed >= constraints.lower).all() and (changed <= constraints.upper).all()
    (found,) = result.checks
    assert found.statistic == pytest.approx((attack.attacked - attack.fooled) / 80, abs=1e-12)
    assert found.to_dict()["evidence"]["candidate"]["constrained_by_schema"] is True


def test_threshold_membership_advantage_is_the_attacks_own_and_a_tree_fails_the_bound(digits):
    pixels, train, test = digits["pixels"], digits["train"], digits["test"]
    # the tree's advantage is 0.3375, the heavily regularised model's 0.148
    check = {"kind": "privacy", "attack": "threshold", "max_advantage": 0.2}
    members = (train[pixels].to_numpy(), train["target"].to_numpy())
    outside = (test[pixels].to_numpy(), test["target"].to_numpy())
    for model, passes in ((digits["tree"], False), (digits["smooth"], True)):
        result = evaluate_gate(_gate("target", check), model, model, test, members=train)
        direct = _direct(threshold_attack, model, members, outside)
        (found,) = result.checks
        assert found.statistic == pytest.approx(direct.advantage, abs=1e-12)
        evidence = found.to_dict()["evidence"]
        assert evidence["auc"] == pytest.approx(direct.auc, abs=1e-12)
        assert evidence["chance_advantage"] == pytest.approx(1.36 * np.sqrt(1 / 600 + 1 / 400))
        assert found.passed is passes, found.reason
    # an unpruned tree remembers its rows: its advantage is its error on new rows
    tree = evaluate_gate(
        _gate("target", check), digits["tree"], digits["tree"], test, members=train
    )
    error = 1 - (digits["tree"].predict(test[pixels]) == test["target"]).mean()
    assert tree.checks[0].statistic == pytest.approx(error, abs=1e-12)
    assert tree.checks[0].reason.startswith(f"advantage {error:.4g} is above 0.2; ")


def test_shadow_membership_auc_is_the_attacks_own(digits):
    pixels, train, test = digits["pixels"], digits["train"], digits["test"]
    check = {"kind": "privacy", "attack": "shadow", "max_auc": 0.6, "shadows": 2, "seed": 3}
    result = evaluate_gate(
        _gate("target", check), digits["tree"], digits["tree"], test, members=train
    )
    order = np.random.default_rng(3).permutation(len(test))
    shadow_rows, outside = order[:200], order[200:]
    X, y = test[pixels].to_numpy(), test["target"].to_numpy()
    direct = _direct(
        shadow_attack,
        digits["tree"],
        (train[pixels].to_numpy(), train["target"].to_numpy()),
        (X[outside], y[outside]),
        (X[shadow_rows], y[shadow_rows]),
        n_shadows=2,
        seed=3,
    )
    (found,) = result.checks
    assert found.statistic == pytest.approx(direct.auc, abs=1e-12)
    assert found.to_dict()["evidence"]["advantage"] == pytest.approx(direct.advantage)
    assert direct.auc > 0.6 and not found.passed
    assert f"AUC {direct.auc:.4g} is above 0.6" in found.reason


def test_a_privacy_check_without_the_training_rows_says_what_it_needs(digits):
    check = {"kind": "privacy", "attack": "threshold", "max_advantage": 0.1}
    with pytest.raises(ValueError, match=r"checks\[0\]: a privacy check needs the candidate's"):
        evaluate_gate(_gate("target", check), digits["tree"], digits["tree"], digits["test"])


def test_gradient_attacks_need_a_torch_module(cancer):
    check = {"kind": "robustness", "attack": "fgsm", "epsilon": 0.1, "min_accuracy": 0.5}
    with pytest.raises(ValueError, match=r"checks\[0\].attack: fgsm follows the model's grad"):
        evaluate_gate(_gate("target", check), cancer["strong"], cancer["weak"], cancer["test"])


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"attack": "random_search", "min_accuracy": 0.5}, r"checks\[0\].epsilon is missing"),
        ({"attack": "fgsm", "epsilon": 0.1}, "give min_accuracy or margin"),
        ({"attack": "lbfgs", "epsilon": 0.1}, "'lbfgs' is not one of random_search, fgsm"),
        (
            {"attack": "fgsm", "epsilon": 0.1, "min_accuracy": 0.5, "queries": 10},
            r"checks\[0\].queries applies to attack: random_search only",
        ),
        ({"attack": "pgd", "epsilon": -1, "margin": 0.1}, r"epsilon must be a number > 0"),
        (
            {"attack": "pgd", "epsilon": 0.1, "margin": 0.1, "norm": "l1"},
            r"norm must be inf or l2",
        ),
    ],
)
def test_a_bad_robustness_check_names_the_field(check, message):
    with pytest.raises(GateSpecError, match=message):
        _gate("y", {"kind": "robustness", **check})


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"attack": "threshold"}, "give max_advantage or max_auc"),
        ({"attack": "shadow", "max_auc": 0.6, "score": "loss"}, "score applies to attack: thr"),
        ({"attack": "threshold", "max_auc": 1.5}, r"max_auc must be a number in \[0, 1\]"),
        ({"attack": "threshold", "max_auc": 0.6, "shadows": 2}, "shadows applies to attack: sh"),
    ],
)
def test_a_bad_privacy_check_names_the_field(check, message):
    with pytest.raises(GateSpecError, match=message):
        _gate("y", {"kind": "privacy", **check})


@pytest.mark.torch
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_accuracy_under_a_gradient_attack_is_accuracy_under_attacks_own(attack):
    torch = pytest.importorskip("torch")
    from opsloop.learn.robustness import accuracy_under_attack

    frame = load_breast_cancer(as_frame=True).frame
    X = StandardScaler().fit_transform(frame[CANCER]).astype(np.float32)
    y = np.array(frame["target"])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(60):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.tensor(X)), torch.tensor(y))
        loss.backward()
        optimiser.step()
    net.eval()
    scaled = pd.DataFrame(X, columns=CANCER).assign(target=y)
    check = {"kind": "robustness", "attack": attack, "epsilon": 0.2, "min_accuracy": 0.9}
    if attack == "pgd":
        check["steps"] = 10
    result = evaluate_gate(_gate("target", check), net, net, scaled)
    curve = accuracy_under_attack(net, X, y, [0.0, 0.2], attack=attack, steps=10)
    (found,) = result.checks
    assert found.statistic == pytest.approx(curve.accuracy[1], abs=1e-12)
    assert found.to_dict()["evidence"]["candidate"]["clean_accuracy"] == curve.accuracy[0]
    # the network is right on most rows, and far less so once attacked: the floor fails
    assert curve.accuracy[0] > 0.95 and curve.accuracy[1] < 0.9
    assert not found.passed
