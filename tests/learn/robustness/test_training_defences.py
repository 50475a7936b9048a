"""Adversarial training and defensive distillation: equal to ART's trainers, and their effect on
digits measured before and after."""

import copy

import numpy as np
import pytest

from opsloop.learn.distill import distill
from opsloop.learn.robustness import (
    FeatureConstraints,
    adversarial_training,
    defensive_distillation,
    margin_pgd,
    pgd,
)
from opsloop.learn.robustness.defensive_distillation import fresh_copy, train_at_temperature

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

UNIT = FeatureConstraints(64, lower=0.0, upper=1.0)


def small_mlp():
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


@pytest.fixture(scope="module")
def baseline(digits):
    """A 64-64-10 network trained as usual on digits (20 epochs, about a second)."""
    X_train, _, y_train, _ = digits
    return train_at_temperature(
        fresh_copy(small_mlp(), 0), X_train, y_train, temperature=1.0, epochs=20, lr=1e-2
    )


def max_weight_difference(a, b):
    return max(
        float((p - q).detach().abs().max())
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


def test_adversarial_training_equals_art(digits, baseline):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainer
    from art.estimators.classification import PyTorchClassifier

    X_train, X_test, y_train, y_test = digits
    ours = adversarial_training(
        baseline,
        (X_train, y_train),
        (X_test, y_test),
        eps=0.1,
        eps_step=0.02,
        steps=10,
        ratio=1.0,
        random_init=False,
        epochs=4,
        batch_size=None,
        lr=1e-2,
        constraints=UNIT,
    )
    network = copy.deepcopy(baseline)
    classifier = PyTorchClassifier(
        network,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(network.parameters(), lr=1e-2),
        input_shape=(64,),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=0.1,
        eps_step=0.02,
        max_iter=10,
        num_random_init=0,
        batch_size=len(X_train),
        verbose=False,
    )
    AdversarialTrainer(classifier, attack, ratio=1.0).fit(
        X_train, y_train, batch_size=len(X_train), nb_epochs=4
    )
    assert max_weight_difference(ours.model, network) < 1e-6
    assert max_weight_difference(ours.model, baseline) > 1e-3  # training moved the weights


def test_adversarial_training_raises_accuracy_under_attack(digits, baseline):
    X_train, X_test, y_train, y_test = digits
    weights = copy.deepcopy(baseline.state_dict())
    effect = adversarial_training(
        baseline,
        (X_train, y_train),
        (X_test, y_test),
        eps=0.1,
        epochs=10,
        lr=1e-2,
        batch_size=256,
        constraints=UNIT,
    )
    assert effect.measures == (
        "clean accuracy",
        "accuracy under FGSM (inf, eps 0.1)",
        "accuracy under PGD-20 (inf, eps 0.1)",
    )
    pgd_before, pgd_after = (
        effect.value(effect.measures[2], "before"),
        effect.value(effect.measures[2]),
    )
    assert pgd_before < 0.45 and pgd_after > pgd_before + 0.2
    assert effect.cost < 0.02  # about no clean accuracy lost
    # the "before" numbers are the model's own, and the model given is left as it was
    X_adv = pgd(baseline, X_test, y_test, eps=0.1, steps=20, constraints=UNIT)
    assert pgd_before == np.mean(baseline(torch.as_tensor(X_adv)).argmax(1).numpy() == y_test)
    for name, value in baseline.state_dict().items():
        assert torch.equal(value, weights[name])


def test_distillation_step_equals_art(digits):
    from art.defences.transformer.evasion import DefensiveDistillation
    from art.estimators.classification import PyTorchClassifier

    X_train, _, y_train, _ = digits
    T = 20.0
    teacher = train_at_temperature(
        fresh_copy(small_mlp(), 0),
        X_train,
        y_train,
        temperature=T,
        epochs=10,
        lr=1e-2,
        batch_size=None,
    )
    start = fresh_copy(small_mlp(), 1)
    ours = distill(
        teacher,
        copy.deepcopy(start),
        (X_train, y_train),
        temperature=T,
        alpha=1.0,
        epochs=10,
        batch_size=len(X_train),
        lr=1e-2,
    ).student

    class AtTemperature(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, x):
            return torch.softmax(self.network(x) / T, dim=1)

    def soft_cross_entropy(probabilities, soft_labels):
        return T**2 * -(soft_labels * torch.log(probabilities)).sum(dim=1).mean()

    network = copy.deepcopy(start)
    kwargs = {"loss": soft_cross_entropy, "input_shape": (64,), "nb_classes": 10}
    art_teacher = PyTorchClassifier(AtTemperature(teacher), **kwargs)
    art_student = PyTorchClassifier(
        AtTemperature(network), optimizer=torch.optim.Adam(network.parameters(), lr=1e-2), **kwargs
    )
    DefensiveDistillation(art_teacher, batch_size=len(X_train), nb_epochs=10)(X_train, art_student)
    assert max_weight_difference(ours, network) < 1e-4
    assert max_weight_difference(ours, start) > 1e-2


def test_defensive_distillation_masks_the_gradient_and_margin_pgd_sees_through(digits, baseline):
    X_train, X_test, y_train, y_test = digits
    effect = defensive_distillation(
        baseline,
        (X_train, y_train),
        (X_test, y_test),
        eps=0.1,
        temperature=50.0,
        epochs=20,
        lr=1e-2,
        batch_size=128,
        constraints=UNIT,
    )
    student = effect.model
    pgd_name = "accuracy under PGD-20 (inf, eps 0.1)"
    margin_name = "accuracy under margin PGD-20 (inf, eps 0.1)"
    assert effect.cost < 0.08  # measured: 0.965 before, 0.902 after
    # served at T=1, the student's softmax saturates: on many test rows (47%) the
    # cross-entropy's gradient is exactly 0 in float32, and PGD on the loss cannot move them
    x = torch.as_tensor(X_test).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(student(x), torch.as_tensor(y_test), reduction="sum")
    (gradient,) = torch.autograd.grad(loss, x)
    assert (gradient.abs().sum(dim=1) == 0).float().mean() > 0.4
    # so PGD on the loss looks much better than before (0.37 -> 0.62), while the margin attack
    # finds the network about as weak as the undefended one (0.39 -> 0.41)
    assert effect.value(pgd_name) > effect.value(pgd_name, "before") + 0.2
    assert effect.value(margin_name) < effect.value(pgd_name) - 0.15
    assert abs(effect.value(margin_name) - effect.value(margin_name, "before")) < 0.05
    assert "Carlini and Wagner" in effect.note
    # the margin attack's examples are within the budget and the domain
    X_adv = margin_pgd(student, X_test, y_test, eps=0.1, steps=20, constraints=UNIT)
    assert np.abs(X_adv - X_test).max() <= 0.1 + 1e-6
    assert X_adv.min() >= 0.0 and X_adv.max() <= 1.0


def test_margin_pgd_by_hand():
    # logits z = W x; for class 0 the margin max(z1, z2) - z0 rises fastest along w2 - w0 here
    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.5], [-1.0, 1.0]]))
    X = np.array([[1.0, 0.0]])  # z = (1, 0, -1): the runner-up is class 1, w1 - w0 = (-1, 0.5)
    step = margin_pgd(model, X, np.array([0]), eps=0.1, eps_step=0.1, steps=1)
    np.testing.assert_allclose(step, [[0.9, 0.1]], atol=1e-7)


def test_bad_arguments_name_the_field(digits, baseline):
    X_train, X_test, y_train, y_test = digits
    with pytest.raises(ValueError, match="ratio must be in"):
        adversarial_training(baseline, (X_train, y_train), (X_test, y_test), eps=0.1, ratio=0)
    with pytest.raises(ValueError, match="eps must be finite and above 0"):
        defensive_distillation(baseline, (X_train, y_train), (X_test, y_test), eps=0.0)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        adversarial_training(object(), (X_train, y_train), (X_test, y_test), eps=0.1)
