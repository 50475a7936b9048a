from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opsloop.learn.distributed import pipeline_forward  # noqa: E402
from opsloop.learn.mlp import mlp  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

MODEL = partial(mlp, [6, 32, 32, 4], seed=3)


def test_two_stages_give_the_unsplit_models_outputs():
    X = np.random.default_rng(0).normal(size=(23, 6)).astype(np.float32)
    # 23 rows in 4 micro-batches of unequal size (6, 6, 6, 5); stage 0: layers 0-2, stage 1: 3-4
    got = pipeline_forward(MODEL, X, split_at=[3], micro_batches=4)
    with torch.no_grad():
        expected = MODEL()(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_bad_split():
    X = np.zeros((4, 6), dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"split_at must be increasing layer positions within 1\.\.4"
    ):
        pipeline_forward(MODEL, X, split_at=[5])
    with pytest.raises(ValueError, match="split_at must be increasing"):
        pipeline_forward(MODEL, X, split_at=[])
    with pytest.raises(ValueError, match=r"micro_batches must be within 1\.\.4"):
        pipeline_forward(MODEL, X, split_at=[2], micro_batches=5)
