"""The robustness report: the same numbers as each attack alone, rendered and logged to a run."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from tests.learn.tracked import artifact_bytes, tracking_home

import opsloop
from opsloop.learn.robustness import (
    accuracy_under_attack,
    extraction_curve,
    invert_classes,
    label_flip_curve,
    label_flip_detection,
    random_search_attack,
    shadow_attack,
    threshold_attack,
)
from opsloop.learn.robustness.torch_classifier import TorchClassifier
from opsloop.reports.formatting import format_share
from opsloop.reports.robustness import robustness_report

__all__ = ["tracking_home"]


@pytest.fixture(scope="module")
def digits_parts():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, test, attacker = order[:600], order[600:900], order[900:1500]
    return (X[train], y[train]), (X[test], y[test]), (X[attacker], y[attacker])


@pytest.fixture(scope="module")
def forest_report(digits_parts):
    train, test, attacker = digits_parts
    forest = RandomForestClassifier(30, random_state=0, n_jobs=1).fit(*train)
    report = robustness_report(
        forest,
        train,
        test,
        eps=(0.0, 0.1),
        max_queries=40,
        attack_rows=100,
        shadow_data=attacker,
        n_queries=(50, 600),
        flip_rates=(0.0, 0.3),
    )
    return forest, report


def test_each_part_is_the_attack_run_alone(digits_parts, forest_report):
    train, test, attacker = digits_parts
    forest, report = forest_report
    assert report["clean_accuracy"] == np.mean(forest.predict(test[0]) == test[1])
    loss, confidence, shadow = report["membership"]
    assert loss == threshold_attack(forest, train, test, "loss").to_dict()
    assert confidence == threshold_attack(forest, train, test, "confidence").to_dict()
    assert shadow == shadow_attack(forest, train, test, attacker, shadow_model=forest).to_dict()
    alone = random_search_attack(forest, test[0][:100], test[1][:100], eps=0.1, max_queries=40)
    assert report["black_box"] == alone.to_dict()
    assert report["extraction"] == extraction_curve(forest, attacker[0], *test, [50, 600]).to_dict()
    assert report["poisoning"] == label_flip_curve(forest, *train, *test, [0.0, 0.3]).to_dict()
    assert report["detection"] == label_flip_detection(forest, *train, 0.1).to_dict()
    assert report["white_box"] == []
    assert report["skipped"] == {
        "white_box": "needs a torch module (gradients); use black_box",
        "inversion": "needs a torch module (gradients)",
    }
    json.dumps(report.to_dict(), allow_nan=False)  # JSON-ready as promised
    assert dict(report).keys() == report.to_dict().keys()


def test_the_page_shows_every_part(forest_report):
    _, report = forest_report
    page = report.render_html()
    for heading in (
        "Evasion, black-box",
        "Membership inference",
        "Model extraction",
        "Poisoning by label flipping",
    ):
        assert heading in page
    assert 'id="extraction-plot"' in page and 'id="poisoning-plot"' in page
    assert "needs a torch module" in page
    assert page == report.render_html()  # the same report renders to the same text
    top = max(report.membership, key=lambda r: r.advantage)
    assert f"membership advantage {top.advantage:.2f}" in page


def test_a_torch_model_gets_white_box_curves(digits_parts):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # as the learn tests do: tiny steps are slower when threaded
    train, test, _ = digits_parts
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-2)
    X, y = torch.as_tensor(train[0], dtype=torch.float32), torch.as_tensor(train[1])
    for _ in range(40):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimiser.step()
    report = robustness_report(
        model, train, test, parts=["white_box", "membership"], eps=(0.0, 0.05, 0.1), steps=5
    )
    fgsm_curve, pgd_curve = report.white_box
    assert pgd_curve == accuracy_under_attack(model, *test, [0.0, 0.05, 0.1], steps=5)
    assert fgsm_curve.accuracy[0] == report.clean_accuracy > 0.9
    assert report.membership[0] == threshold_attack(TorchClassifier(model), train, test)
    assert report.skipped == (
        ("black_box", "not asked for"),
        ("extraction", "not asked for"),
        ("poisoning", "not asked for"),
        ("inversion", "not asked for"),
        ("membership (shadow model)", "needs shadow_data"),
    )
    assert report.metrics()["white_box/pgd_inf/accuracy@0.1"] == pgd_curve.accuracy[-1]
    assert 'id="white_box-plot"' in report.render_html()
    inverted = robustness_report(model, train, test, parts=["inversion"])
    alone = invert_classes(model, *train)
    assert inverted.inversion == alone and inverted.inversion.identified > 0.5
    assert inverted.metrics()["inversion/mean_similarity"] == alone.mean_similarity
    assert "Model inversion" in inverted.render_html()


def test_logged_to_a_run(digits_parts, tracking_home):
    train, test, _ = digits_parts
    forest = RandomForestClassifier(10, random_state=0, n_jobs=1).fit(*train)
    with opsloop.start_run("robustness", capture=False) as run:
        report = robustness_report(forest, train, test, parts=["membership"], run=run)
    stored = opsloop.get_run(run.run_id)
    for key, value in report.metrics().items():
        assert stored.metrics[key] == value
    assert json.loads(artifact_bytes(stored, "robustness.json")) == report.to_dict()
    assert artifact_bytes(stored, "robustness.html").decode() == report.render_html()


def test_bad_parts_are_named(digits_parts):
    train, test, _ = digits_parts
    forest = RandomForestClassifier(5, random_state=0).fit(*train)
    with pytest.raises(ValueError, match="parts: 'telepathy' is not one of"):
        robustness_report(forest, train, test, parts=["telepathy"])
    with pytest.raises(TypeError, match=r"test must be a pair \(X, y\)"):
        robustness_report(forest, train, test[0])


def test_defences_are_shown_logged_and_checked(digits_parts, tracking_home):
    from opsloop.learn.robustness import output_defence_effects
    from opsloop.reports.formatting import format_statistic

    train, test, attacker = digits_parts
    forest = RandomForestClassifier(30, random_state=0, n_jobs=1).fit(*train)
    effects = output_defence_effects(
        forest, train, test, attacker[0], restrictions=[{"label_only": True}], n_queries=[50]
    )
    with opsloop.start_run("robustness", capture=False) as run:
        report = robustness_report(
            forest, train, test, parts=["membership"], defences=effects, run=run
        )
    (effect,) = report.defences
    advantage = "membership advantage (loss threshold)"
    # "before" is the report's own loss-threshold attack on the undefended forest
    assert effect.value(advantage, "before") == report.membership[0].advantage
    stored = opsloop.get_run(run.run_id)
    key = "defence/answers_label_only/membership_advantage_loss_threshold/after"
    assert stored.metrics[key] == effect.value(advantage) == report.metrics()[key]
    assert json.loads(artifact_bytes(stored, "robustness.json")) == report.to_dict()
    assert report.to_dict()["defences"][0]["settings"] == {"label_only": True}
    page = report.render_html()
    assert "answers: label only" in page
    assert f'<td class="num">{format_statistic(effect.value(advantage))}</td>' in page
    with pytest.raises(TypeError, match="defences: expected DefenceEffect results"):
        robustness_report(forest, train, test, parts=["membership"], defences=[0.5])


def test_a_model_with_labels_only_gets_hop_skip_jump(digits_parts):
    from opsloop.learn.robustness import hop_skip_jump_attack

    class LabelsOnly:
        def __init__(self, model):
            self._model = model

        def predict(self, X):
            return self._model.predict(X)

    train, test, attacker = digits_parts
    model = LabelsOnly(RandomForestClassifier(10, random_state=0, n_jobs=1).fit(*train))
    report = robustness_report(
        model,
        train,
        test,
        parts=["black_box", "membership", "extraction"],
        eps=(0.0, 1.0),
        norm=2,
        max_queries=100,
        attack_rows=30,
        shadow_data=attacker,
        n_queries=(100,),
    )
    alone = hop_skip_jump_attack(
        model, test[0][:30], test[1][:30], eps=1.0, norm=2, max_queries=100, seed=0
    )
    assert report.black_box.to_dict() == alone.to_dict()
    assert report.black_box.attack == "HopSkipJump" and report.black_box.fooled > 0
    assert report["skipped"]["membership"] == "needs predict_proba (scores to threshold)"
    assert report.extraction is not None
    assert "HopSkipJump with a query budget" in report.render_html()


def test_a_single_budget_renders_without_a_plot(digits_parts):
    train, test, attacker = digits_parts
    forest = RandomForestClassifier(10, random_state=0, n_jobs=1).fit(*train)
    report = robustness_report(
        forest, train, test, parts=["extraction"], shadow_data=attacker, n_queries=(100,)
    )
    page = report.render_html()
    assert "Model extraction" in page and 'id="extraction-plot"' not in page


def test_a_backdoor_is_the_curve_and_detection_run_alone():
    from sklearn.tree import DecisionTreeClassifier

    from opsloop.learn.robustness import (
        BackdoorTrigger,
        FeatureConstraints,
        backdoor_curve,
        backdoor_detection,
    )

    X, y = load_digits(return_X_y=True)
    train, test = (X[:1000], y[:1000]), (X[1000:], y[1000:])
    tree = DecisionTreeClassifier(random_state=0).fit(*train)
    corners = BackdoorTrigger([0, 7, 56, 63], [16, 16, 16, 16])
    pixels = FeatureConstraints(64, lower=0, upper=16, integer=range(64))
    report = robustness_report(
        tree,
        train,
        test,
        parts=["backdoor"],
        trigger=corners,
        backdoor_target=4,
        backdoor_rates=(0.0, 0.02, 0.05),
        detection_rate=0.05,
        constraints=pixels,
    )
    curve = backdoor_curve(tree, *train, *test, corners, 4, [0.0, 0.02, 0.05])
    assert report.backdoor == curve
    assert report.backdoor_detection == backdoor_detection(*train, corners, 4, 0.05)
    assert report.backdoor_detection.recall == 1.0 == report.backdoor_detection.precision
    metrics = report.metrics()
    assert metrics["backdoor/success@0.05"] == curve.success[2] > 0.7
    assert metrics["backdoor/accuracy@0"] == tree.score(*test)
    assert report["backdoor"]["target"] == 4
    json.dumps(report.to_dict(), allow_nan=False)
    page = report.render_html()
    assert "Backdoor poisoning: a trigger relabelled to class 4" in page
    assert 'id="backdoor-plot"' in page
    assert f"backdoor success {format_share(curve.success[-1])} with 5% of rows" in page
    # the optional part stays out of a default run, and out of its skipped list
    default = robustness_report(tree, train, test, parts=["membership"])
    assert default.backdoor is None and "backdoor" not in default["skipped"]
    untriggered = robustness_report(tree, train, test, parts=["backdoor"])
    assert untriggered["skipped"]["backdoor"] == (
        "needs trigger (a BackdoorTrigger) and backdoor_target"
    )
    with pytest.raises(ValueError, match="trigger and backdoor_target: give both or neither"):
        robustness_report(tree, train, test, parts=["backdoor"], trigger=corners)
    with pytest.raises(ValueError, match=r"feature 0 has upper bound 16\.0, the trigger sets 17"):
        robustness_report(
            tree,
            train,
            test,
            parts=["backdoor"],
            trigger=BackdoorTrigger([0], [17]),
            backdoor_target=4,
            constraints=pixels,
        )
