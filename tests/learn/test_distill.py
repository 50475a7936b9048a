import io
import json

import numpy as np
import pytest
from tests.learn.frozen_batch_norm import FROZEN_MODES, frozen_batch_norm
from tests.learn.tracked import artifact_bytes, history

torch = pytest.importorskip("torch")

from sklearn.neural_network import MLPClassifier  # noqa: E402

import opsloop  # noqa: E402
from opsloop.learn.distill import distill, distillation_loss, soft_targets  # noqa: E402
from opsloop.learn.model_size import count_parameters  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def small_student(hidden=32):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    )


def test_loss_equals_hand_computation():
    student = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    targets = np.array([1, 2])
    T, alpha = 3.0, 0.6

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    kl = (teacher * (np.log(teacher) - log_softmax(student / T))).sum(axis=1).mean()
    ce = -log_softmax(student)[np.arange(2), targets].mean()
    expected = alpha * T**2 * kl + (1 - alpha) * ce
    got = distillation_loss(
        torch.tensor(student),
        torch.tensor(teacher),
        torch.tensor(targets),
        temperature=T,
        alpha=alpha,
    )
    assert float(got) == pytest.approx(expected, abs=1e-12)


def test_soft_targets_of_a_torch_teacher_are_softmax_at_t(digits, digits_teacher):
    X = digits[1][:5]
    with torch.no_grad():
        logits = digits_teacher(torch.as_tensor(X)).double().numpy()
    z = logits / 5.0
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft_targets(digits_teacher, X, 5.0), expected, atol=1e-6)


def test_soft_targets_of_a_sklearn_teacher_are_powered_probabilities():
    class Fixed:
        def predict_proba(self, X):
            return np.array([[0.64, 0.36, 0.0]])

    soft = soft_targets(Fixed(), np.zeros((1, 1)), 2.0)
    # p^(1/2) = 0.8, 0.6, 0 -> normalised by 1.4
    np.testing.assert_allclose(soft, [[0.8 / 1.4, 0.6 / 1.4, 0.0]], atol=1e-6)


def test_tenth_of_the_parameters_keeps_97_percent_of_the_accuracy(digits, digits_teacher):
    X_train, X_test, y_train, y_test = digits
    student = small_student(32)
    result = distill(
        digits_teacher,
        student,
        (X_train, y_train),
        temperature=4.0,
        alpha=0.7,
        epochs=30,
        test_data=(X_test, y_test),
    )
    assert result.teacher_parameters == count_parameters(digits_teacher) == 85002
    assert result.student_parameters == 64 * 32 + 32 + 32 * 10 + 10
    assert result.size_ratio <= 0.1
    assert result.teacher_accuracy > 0.95
    assert result.accuracy_retained >= 0.97
    with torch.no_grad():
        predicted = student(torch.as_tensor(X_test)).argmax(dim=1).numpy()
    assert result.student_accuracy == pytest.approx((predicted == y_test).mean(), abs=1e-12)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["student_parameters"] == 2410
    assert summary["teacher_latency_ms"] > 0 and summary["student_latency_ms"] > 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_teacher(digits):
    X_train, X_test, y_train, y_test = digits
    teacher = MLPClassifier((64,), max_iter=300, random_state=0).fit(X_train, y_train)
    result = distill(
        teacher, small_student(16), (X_train, y_train), epochs=20, test_data=(X_test, y_test)
    )
    assert result.teacher_parameters == 64 * 64 + 64 + 64 * 10 + 10
    assert result.teacher_accuracy == pytest.approx(teacher.score(X_test, y_test), abs=1e-12)
    assert result.accuracy_retained >= 0.95


def test_same_seed_same_student(digits, digits_teacher):
    X_train, _, y_train, _ = digits
    a = distill(digits_teacher, small_student(8), (X_train[:300], y_train[:300]), epochs=2)
    b = distill(digits_teacher, small_student(8), (X_train[:300], y_train[:300]), epochs=2)
    assert a.final_loss == b.final_loss
    assert a.teacher_accuracy is None and a.accuracy_retained is None


def test_bad_arguments(digits, digits_teacher):
    X_train, _, y_train, _ = digits
    data = (X_train, y_train)
    with pytest.raises(TypeError, match=r"student must be a torch\.nn\.Module"):
        distill(digits_teacher, object(), data)
    with pytest.raises(ValueError, match="temperature must be positive"):
        distill(digits_teacher, small_student(), data, temperature=0)
    with pytest.raises(ValueError, match=r"alpha must be within \[0, 1\]"):
        distill(digits_teacher, small_student(), data, alpha=2)
    with pytest.raises(ValueError, match="data must hold a 2-D X"):
        distill(digits_teacher, small_student(), (X_train, y_train[:5]))
    with pytest.raises(ValueError, match="teacher has 10"):
        distill(digits_teacher, small_student(), (X_train, y_train + 10))
    from sklearn.linear_model import LogisticRegression

    shifted = LogisticRegression().fit(X_train[:50], y_train[:50] + 1)
    with pytest.raises(ValueError, match=r"teacher.classes_ must be 0..n_classes-1"):
        distill(shifted, small_student(), data)
    with pytest.raises(TypeError, match="teacher must be a torch module or have predict_proba"):
        distill(object(), small_student(), data)


def test_a_run_gets_the_params_the_epoch_losses_the_report_and_the_student(
    digits, digits_teacher, tracking_home
):
    X_train, X_test, y_train, y_test = digits
    X_train, y_train = X_train[:200], y_train[:200]
    with opsloop.start_run("distill", capture=False) as run:
        result = distill(
            digits_teacher,
            small_student(8),
            (X_train, y_train),
            temperature=3.0,
            alpha=0.5,
            epochs=3,
            batch_size=50,
            test_data=(X_test, y_test),
            run=run,
        )
    # the epoch losses by hand: the same batches, each loss weighted by its rows
    student = small_student(8)
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-2)
    soft = torch.as_tensor(soft_targets(digits_teacher, X_train, 3.0))
    inputs, targets = torch.as_tensor(X_train), torch.as_tensor(y_train)
    generator = torch.Generator().manual_seed(0)
    expected = []
    for _ in range(3):
        order, total = torch.randperm(200, generator=generator), 0.0
        for start in range(0, 200, 50):
            batch = order[start : start + 50]
            optimiser.zero_grad()
            loss = distillation_loss(
                student(inputs[batch]), soft[batch], targets[batch], temperature=3.0, alpha=0.5
            )
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * 50
        expected.append(total / 200)
    np.testing.assert_allclose(result.epoch_losses, expected, rtol=1e-6)

    stored = opsloop.get_run(run.run_id)
    assert history(stored, "train_loss") == ([0, 1, 2], list(result.epoch_losses))
    for key in ["teacher_accuracy", "student_accuracy", "accuracy_retained", "final_loss"]:
        assert stored.metrics[key] == getattr(result, key)
    assert stored.metrics["student_parameters"] == 64 * 8 + 8 + 8 * 10 + 10
    assert stored.params["temperature"] == "3.0" and stored.params["teacher"] == "Sequential"
    assert json.loads(artifact_bytes(stored, "distillation.json")) == result.to_dict()
    weights = torch.load(io.BytesIO(artifact_bytes(stored, "student.pt")), weights_only=True)
    reloaded = small_student(8)
    reloaded.load_state_dict(weights)
    with torch.no_grad():
        X = torch.as_tensor(X_test)
        assert torch.equal(reloaded(X), result.student(X))


def test_a_forest_teacher_counts_the_nodes_of_its_trees(digits, tracking_home):
    from sklearn.ensemble import RandomForestClassifier

    X_train, _, y_train, _ = digits
    forest = RandomForestClassifier(20, max_depth=6, random_state=0).fit(X_train, y_train)
    nodes = sum(tree.tree_.node_count for tree in forest.estimators_)
    with opsloop.start_run("distill-forest", capture=False) as run:
        result = distill(
            forest, small_student(8), (X_train[:200], y_train[:200]), epochs=1, run=run
        )
    assert nodes > 1000 and result.teacher_parameters == nodes
    student = 64 * 8 + 8 + 8 * 10 + 10
    assert result.size_ratio == student / nodes
    stored = opsloop.get_run(run.run_id)
    assert stored.metrics["teacher_parameters"] == nodes
    assert stored.metrics["size_ratio"] == pytest.approx(student / nodes, rel=1e-12)


def test_a_teacher_counting_nothing_has_no_size_ratio(digits, tracking_home):
    X_train, _, y_train, _ = digits

    class Uniform:
        """Predicts every class alike and learns nothing."""

        def predict_proba(self, X):
            return np.full((len(X), 10), 0.1)

    with opsloop.start_run("distill-uniform", capture=False) as run:
        result = distill(Uniform(), small_student(8), (X_train[:100], y_train[:100]), run=run)
    assert result.teacher_parameters == 0
    assert result.size_ratio is None and result.to_dict()["size_ratio"] is None
    stored = opsloop.get_run(run.run_id)
    assert "size_ratio" not in stored.metrics
    assert stored.metrics["student_parameters"] == 64 * 8 + 8 + 8 * 10 + 10


def test_a_teacher_still_training_is_read_in_eval_mode_and_left_training(digits):
    X_train, X_test, y_train, y_test = digits
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )
    teacher.train()
    got = soft_targets(teacher, X_test, 2.0)
    assert teacher.training
    teacher.eval()
    with torch.no_grad():
        logits = teacher(torch.as_tensor(X_test)).double()
    teacher.train()
    # dropout off: the same softened probabilities as the eval-mode module gives
    np.testing.assert_array_equal(
        got, torch.softmax(logits / 2.0, dim=1).numpy().astype(np.float32)
    )
    result = distill(
        teacher, small_student(16), (X_train, y_train), epochs=1, test_data=(X_test, y_test)
    )
    assert teacher.training
    assert result.teacher_accuracy == float((logits.argmax(1).numpy() == y_test).mean())


class CountingTeacher(torch.nn.Sequential):
    """Records every mode the module is switched to (eval() goes through train(False))."""

    def __init__(self, *modules):
        super().__init__(*modules)
        self.switches = []

    def train(self, mode=True):
        self.switches.append(mode)
        return super().train(mode)


def test_a_frozen_batch_norm_in_the_teacher_is_handed_back_frozen(digits):
    X_train, X_test, y_train, y_test = digits
    teacher = frozen_batch_norm(32)
    soft_targets(teacher, X_test, 2.0)
    assert [m.training for m in teacher.modules()] == FROZEN_MODES
    distill(teacher, small_student(16), (X_train, y_train), epochs=1, test_data=(X_test, y_test))
    assert [m.training for m in teacher.modules()] == FROZEN_MODES


def test_the_teacher_is_switched_to_eval_once_for_the_accuracy_and_every_timed_call(digits):
    X_train, X_test, y_train, y_test = digits
    torch.manual_seed(0)
    teacher = CountingTeacher(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    teacher.train()
    teacher.switches.clear()
    result = distill(
        teacher, small_student(16), (X_train, y_train), epochs=1, test_data=(X_test, y_test)
    )
    # once for the soft targets, once around the accuracy and the timing: no switch is timed
    assert teacher.switches == [False, True, False, True]
    assert teacher.training
    teacher.eval()
    with torch.no_grad():
        expected = float((teacher(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean())
    assert result.teacher_accuracy == expected
