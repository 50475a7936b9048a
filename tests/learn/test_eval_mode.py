"""in_eval_mode: every submodule is read in eval mode and handed back in its own mode."""

import pytest

torch = pytest.importorskip("torch")

from opsloop.learn.eval_mode import in_eval_mode  # noqa: E402

pytestmark = pytest.mark.torch


def frozen_batch_norm():
    # fine-tuning with a frozen batch norm: the model trains, its batch norm does not
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2)
    )
    model.train()
    model[1].eval()
    return model


def modes(model):
    return [m.training for m in model.modules()]


def test_each_submodule_gets_its_own_mode_back():
    model = frozen_batch_norm()
    assert modes(model) == [True, True, False, True, True]
    with in_eval_mode(model):
        assert modes(model) == [False] * 5
    assert modes(model) == [True, True, False, True, True]


def test_the_modes_come_back_when_the_body_raises():
    model = frozen_batch_norm()
    with pytest.raises(RuntimeError, match="inside"), in_eval_mode(model):
        raise RuntimeError("inside")
    assert modes(model) == [True, True, False, True, True]


def test_a_model_in_eval_mode_stays_in_eval_mode():
    model = frozen_batch_norm().eval()
    with in_eval_mode(model):
        pass
    assert modes(model) == [False] * 5


class Merging(torch.nn.Linear):
    """A layer that folds an adapter into its weight in eval and takes it out again when
    trained, as adapter layers do: it must be told through train() on the way back."""

    def __init__(self):
        super().__init__(2, 2)
        self.merged = False

    def train(self, mode=True):
        self.merged = not mode
        return super().train(mode)


def test_a_module_that_changes_with_its_mode_is_told_when_its_mode_comes_back():
    model = torch.nn.Sequential(Merging(), torch.nn.BatchNorm1d(2))
    model.train()
    model[1].eval()
    with in_eval_mode(model):
        assert model[0].merged
    assert [m.training for m in model.modules()] == [True, True, False]
    assert not model[0].merged
