"""TorchClassifier: a torch module's softmax read in eval mode, the module handed back as it was."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opsloop.learn.robustness.torch_classifier import TorchClassifier  # noqa: E402

pytestmark = pytest.mark.torch


def test_probabilities_are_the_eval_softmax_and_each_submodule_keeps_its_mode(digits):
    _, X_test, _, _ = digits
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(64, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 10),
    )
    module.train()
    module[1].eval()
    got = TorchClassifier(module, batch_size=100).predict_proba(X_test)
    assert [m.training for m in module.modules()] == [True, True, False, True, True]
    module.eval()
    with torch.no_grad():
        expected = torch.softmax(module(torch.as_tensor(X_test)), dim=1).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
