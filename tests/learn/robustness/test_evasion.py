"""FGSM and PGD: checked against their definitions, against ART, and against the constraints."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from opsloop.data.schema import infer_schema
from opsloop.datasets import credit
from opsloop.learn.robustness import FeatureConstraints, accuracy_under_attack, fgsm, pgd
from opsloop.learn.robustness.evasion import predict_classes

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

UNIT = FeatureConstraints(64, lower=0.0, upper=1.0)


@pytest.fixture(scope="module")
def attacked(digits):
    """300 test rows of digits."""
    return digits[1][:300], digits[3][:300]


def art_classifier(model):
    from art.estimators.classification import PyTorchClassifier

    # the same summed loss as ours, so that the gradients are the same numbers
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(reduction="sum"),
        input_shape=(64,),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )


def distances(X_adv, X, norm):
    change = X_adv.astype(np.float64) - X
    return np.abs(change).max(axis=1) if norm == "inf" else np.linalg.norm(change, axis=1)


@pytest.mark.parametrize(("norm", "art_norm", "eps"), [("inf", np.inf, 0.1), ("l2", 2, 1.0)])
def test_fgsm_equals_art(digits_teacher, attacked, norm, art_norm, eps):
    from art.attacks.evasion import FastGradientMethod

    X, _ = attacked
    art = FastGradientMethod(
        art_classifier(digits_teacher), norm=art_norm, eps=eps, batch_size=len(X)
    ).generate(X)
    ours = fgsm(digits_teacher, X, eps=eps, norm=norm, constraints=UNIT)
    np.testing.assert_allclose(ours, art, rtol=0, atol=1e-6)
    assert np.abs(ours - X).max() > 0.5 * eps  # the attack moved the rows


@pytest.mark.parametrize(
    ("norm", "art_norm", "eps", "eps_step"), [("inf", np.inf, 0.1, 0.01), ("l2", 2, 1.0, 0.1)]
)
def test_pgd_equals_art(digits_teacher, attacked, norm, art_norm, eps, eps_step):
    from art.attacks.evasion import ProjectedGradientDescent

    X, _ = attacked
    art = ProjectedGradientDescent(
        art_classifier(digits_teacher),
        norm=art_norm,
        eps=eps,
        eps_step=eps_step,
        max_iter=20,
        num_random_init=0,
        batch_size=len(X),
        verbose=False,
    ).generate(X)
    ours = pgd(digits_teacher, X, eps=eps, eps_step=eps_step, steps=20, norm=norm, constraints=UNIT)
    np.testing.assert_allclose(ours, art, rtol=0, atol=1e-5)
    # and the batch size does not change the examples (each row's gradient is its own)
    batched = pgd(
        digits_teacher,
        X,
        eps=eps,
        eps_step=eps_step,
        steps=20,
        norm=norm,
        constraints=UNIT,
        batch_size=32,
    )
    np.testing.assert_allclose(batched, ours, rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm", ["inf", "l2"])
@pytest.mark.parametrize("random_init", [False, True])
def test_perturbation_is_within_eps(digits_teacher, attacked, norm, random_init):
    X, y = attacked
    eps = 0.05 if norm == "inf" else 0.5
    X_fgsm = fgsm(digits_teacher, X, y, eps=eps, norm=norm)
    X_pgd = pgd(digits_teacher, X, y, eps=eps, steps=10, norm=norm, random_init=random_init)
    for X_adv in (X_fgsm, X_pgd):
        size = distances(X_adv, X, norm)
        assert size.max() <= eps * (1 + 1e-5)
        assert np.median(size) > 0.9 * eps  # the budget is used, not ignored


def test_random_start_is_seeded(digits_teacher, attacked):
    X, _ = attacked
    a, b, c = (
        pgd(digits_teacher, X, eps=0.1, steps=2, random_init=True, seed=s) for s in (1, 1, 2)
    )
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def per_row_loss(model, X, y):
    with torch.no_grad():
        logits = model(torch.as_tensor(X, dtype=torch.float64))
        return torch.nn.functional.cross_entropy(
            logits, torch.as_tensor(y), reduction="none"
        ).numpy()


@pytest.mark.parametrize("norm", ["inf", "l2"])
def test_loss_does_not_decrease_over_the_fgsm_step(digits_teacher, attacked, norm):
    X, y = attacked
    model = copy.deepcopy(digits_teacher).double()
    X = X.astype(np.float64)
    before = per_row_loss(model, X, y)
    # a small step: the loss changes by eps times the gradient's dual norm, which is >= 0
    small = fgsm(model, X, y, eps=1e-4 if norm == "inf" else 1e-3, norm=norm)
    assert (per_row_loss(model, small, y) >= before).all()
    large = fgsm(model, X, y, eps=0.1 if norm == "inf" else 1.0, norm=norm)
    assert per_row_loss(model, large, y).mean() > 2 * before.mean()


def test_accuracy_curve(digits_teacher, attacked):
    X, y = attacked
    curve = accuracy_under_attack(digits_teacher, X, y, [0.0, 0.02, 0.05, 0.15], steps=10)
    clean = accuracy_score(y, predict_classes(digits_teacher, X))
    assert curve.clean_accuracy == curve.accuracy[0] == clean > 0.9
    assert list(curve.accuracy) == sorted(curve.accuracy, reverse=True)
    assert curve.accuracy[-1] < 0.2
    # PGD finds at least the examples one FGSM step finds
    one_step = accuracy_under_attack(digits_teacher, X, y, [0.05], attack="fgsm")
    assert curve.accuracy[2] <= one_step.accuracy[0]
    # each point is the accuracy on pgd's own examples
    X_adv = pgd(digits_teacher, X, y, eps=0.05, steps=10)
    assert curve.accuracy[2] == accuracy_score(y, predict_classes(digits_teacher, X_adv))
    frame = curve.to_frame()
    assert list(frame.columns) == ["eps", "accuracy", "mean_distance"]
    assert frame["mean_distance"].iloc[1] == pytest.approx(0.02, rel=1e-5)
    assert curve.to_dict()["curve"][0] == {"eps": 0.0, "accuracy": clean, "mean_distance": 0.0}


@pytest.fixture(scope="module")
def credit_model():
    """A small MLP on standardised credit features with one-hot region and education."""
    frame = credit(600, seed=3)
    schema = infer_schema(frame)
    numeric = ["age", "salary", "commission", "house_value", "house_years", "loan_amount"]
    center = frame[numeric].mean()
    scale = frame[numeric].std()
    encoded = pd.get_dummies(frame[["region", "education"]], prefix_sep="_").astype(float)
    features = pd.concat([(frame[numeric] - center) / scale, encoded], axis=1)
    names = list(features.columns)
    constraints = FeatureConstraints.from_schema(
        schema, names, center=center.to_dict(), scale=scale.to_dict()
    )
    X = np.array(features, dtype=np.float32)
    y = np.array(frame["default"])
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.as_tensor(X)), torch.as_tensor(y)).backward()
        optimiser.step()
    return model.eval(), X, y, constraints, center, scale, numeric


def check_in_domain(X_adv, constraints, center, scale, numeric):
    assert (X_adv >= constraints.lower - 1e-6).all() and (X_adv <= constraints.upper + 1e-6).all()
    for j, name in enumerate(numeric):
        if j in constraints.integer_steps:
            raw = X_adv[:, j].astype(np.float64) * scale[name] + center[name]
            np.testing.assert_allclose(raw, np.round(raw), atol=1e-3)
    for group in constraints.one_hot:
        block = X_adv[:, list(group)]
        assert np.isin(block, (0.0, 1.0)).all()
        assert (block.sum(axis=1) == 1).all()


@pytest.mark.parametrize(("norm", "eps"), [("inf", 1.0), ("inf", 0.5), ("l2", 2.0)])
def test_constrained_attack_stays_in_the_schema(credit_model, norm, eps):
    model, X, y, constraints, center, scale, numeric = credit_model
    assert sorted(constraints.integer_steps) == [0, 4]  # age, house_years
    assert len(constraints.one_hot) == 2
    X_adv = pgd(model, X, y, eps=eps, steps=20, norm=norm, constraints=constraints)
    check_in_domain(X_adv, constraints, center, scale, numeric)
    assert distances(X_adv, X, norm).max() <= eps * (1 + 1e-5)
    switched = sum(
        (X_adv[:, list(g)].argmax(1) != X[:, list(g)].argmax(1)).sum() for g in constraints.one_hot
    )
    moved_age = (np.abs(X_adv[:, 0] - X[:, 0]) > 0.5 / scale["age"]).sum()
    assert moved_age > 0
    if norm == "inf" and eps < 1:
        assert switched == 0  # a switch costs 1 in L-inf
    else:
        assert switched > 0
    # the attack still hurts, inside the domain
    assert accuracy_score(y, predict_classes(model, X_adv)) < accuracy_score(
        y, predict_classes(model, X)
    )


def test_immutable_features_do_not_move(credit_model):
    model, X, y, constraints, *_ = credit_model
    frozen = FeatureConstraints(
        X.shape[1], lower=constraints.lower, upper=constraints.upper, immutable=[1, 2]
    )
    X_adv = pgd(model, X, y, eps=0.5, steps=5, random_init=True, constraints=frozen)
    np.testing.assert_array_equal(X_adv[:, [1, 2]], X[:, [1, 2]])
    assert np.abs(X_adv[:, 3] - X[:, 3]).max() > 0.1


def test_bad_input_names_the_feature_and_rule(credit_model, digits_teacher, attacked):
    model, X, _, constraints, *_ = credit_model
    broken = X.copy()
    broken[4, constraints.one_hot[0][0]] = 0.5
    with pytest.raises(ValueError, match=r"one-hot group \(feature 'education_bachelor'.*row 4"):
        pgd(model, broken, eps=0.1, constraints=constraints)
    with pytest.raises(ValueError, match=r"upper bound 1\.0, row 0"):
        fgsm(digits_teacher, attacked[0] + 1, eps=0.1, constraints=UNIT)
    with pytest.raises(ValueError, match="norm must be one of"):
        fgsm(digits_teacher, attacked[0], eps=0.1, norm=1)
    with pytest.raises(ValueError, match=r"eps must be finite and at least 0, got -0\.1"):
        pgd(digits_teacher, attacked[0], eps=-0.1)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        fgsm(lambda x: x, attacked[0], eps=0.1)


@pytest.mark.parametrize(("norm", "art_norm", "eps"), [("inf", np.inf, 0.1), ("l2", 2, 1.0)])
def test_ranges_per_feature_and_fixed_features_equal_arts_clip_and_mask(
    digits_teacher, attacked, norm, art_norm, eps
):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    X, _ = attacked
    rng = np.random.default_rng(0)
    upper = np.where(rng.random(64) < 0.5, 1.0, 0.9).astype(np.float32)
    X = np.minimum(X, upper)
    fixed = np.flatnonzero(rng.random(64) < 0.25)
    classifier = PyTorchClassifier(
        digits_teacher,
        loss=torch.nn.CrossEntropyLoss(reduction="sum"),
        input_shape=(64,),
        nb_classes=10,
        clip_values=(np.zeros(64, np.float32), upper),
    )
    mask = np.ones(64, np.float32)
    mask[fixed] = 0.0
    art = ProjectedGradientDescent(
        classifier,
        norm=art_norm,
        eps=eps,
        eps_step=eps / 10,
        max_iter=15,
        batch_size=len(X),
        verbose=False,
    ).generate(X, mask=mask)
    constraints = FeatureConstraints(64, lower=0.0, upper=upper, immutable=fixed.tolist())
    ours = pgd(
        digits_teacher, X, eps=eps, eps_step=eps / 10, steps=15, norm=norm, constraints=constraints
    )
    np.testing.assert_allclose(ours, art, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours[:, fixed], X[:, fixed])
    assert (ours <= upper).all() and np.abs(ours - X).max() > 0.5 * eps / 10


def test_labels_outside_the_models_classes_name_the_rule(digits_teacher, attacked):
    X, y = attacked
    with pytest.raises(
        ValueError, match=r"class indices 0\.\.9 \(the model has 10 outputs\), got 11"
    ):
        fgsm(digits_teacher, X, np.where(np.arange(300) == 7, 11, y), eps=0.1)
    with pytest.raises(ValueError, match=r"class indices 0\.\.9 .*got -1"):
        pgd(digits_teacher, X, np.where(np.arange(300) == 7, -1, y), eps=0.1, batch_size=32)
    with pytest.raises(ValueError, match="whole numbers"):
        fgsm(digits_teacher, X, y + 0.5, eps=0.1)
    # the count is of X's rows, not of one batch's
    with pytest.raises(ValueError, match=r"one class per row of X \(300\), got \(5,\)"):
        pgd(digits_teacher, X, y[:5], eps=0.1, batch_size=32)
    # float labels that are whole numbers are classes, as the model's own predictions would be
    np.testing.assert_array_equal(
        fgsm(digits_teacher, X, y.astype(float), eps=0.1), fgsm(digits_teacher, X, y, eps=0.1)
    )


def frozen_batch_norm_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    model.train()
    model[1].eval()
    return model


def test_fgsm_and_pgd_hand_back_each_submodules_own_mode(attacked):
    X, y = attacked
    model = frozen_batch_norm_model()
    fgsm(model, X[:20], y[:20], eps=0.1)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
    pgd(model, X[:20], y[:20], eps=0.1, steps=2, random_init=True, seed=1)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]


def test_an_attack_that_fails_in_eval_mode_leaves_the_model_in_its_own_mode(attacked):
    """The labels are checked batch by batch, after the model was put in eval mode: the
    refusal of class 10 for a 10-output model comes from inside that mode, and each
    submodule's own mode comes back with it."""
    X, _ = attacked
    model = frozen_batch_norm_model()
    with pytest.raises(ValueError, match=r"class indices 0\.\.9 \(the model has 10 outputs\)"):
        pgd(model, X[:5], np.full(5, 10), eps=0.1, steps=2)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
