"""skops loads without importing torch, and trusts exactly what a plain ``import skops.io``
trusts."""

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")  # without torch there is nothing to avoid

# A fresh interpreter each: what is imported is the point.
THROUGH_OPSLOOP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop.registry.flavors import dump_model, load_model_bytes

    x = np.arange(40.0).reshape(20, 2)
    y = (x[:, 0] > 19).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    data, loader = dump_model(model, "sklearn")
    loaded = load_model_bytes(data, "sklearn", loader)
    torch_after_load = "torch" in sys.modules

    from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
    trusted = sorted(SKLEARN_ESTIMATOR_TYPE_NAMES)

    # the refusal ended with the import: the array-API wrapper imports as usual afterwards
    import sklearn.externals.array_api_compat.torch
    print(json.dumps({
        "torch_after_load": torch_after_load,
        "same_predictions": loaded.predict_proba(x).tolist() == model.predict_proba(x).tolist(),
        "loader": loader,
        "trusted": trusted,
        "torch_after_wrapper": "torch" in sys.modules,
    }))
    """
)

PLAIN = textwrap.dedent(
    """
    import json, sys
    import skops.io
    from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
    print(json.dumps({"torch": "torch" in sys.modules,
                      "trusted": sorted(SKLEARN_ESTIMATOR_TYPE_NAMES)}))
    """
)


def _run(script: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_skops_model_loads_without_torch_and_with_skops_own_trusted_types():
    ours, plain = _run(THROUGH_OPSLOOP), _run(PLAIN)
    assert plain["torch"]  # what a plain import costs: scikit-learn's walk imports torch
    assert not ours["torch_after_load"]
    assert ours["same_predictions"]
    assert ours["loader"] == {"format": "skops", "types": []}
    assert ours["trusted"] == plain["trusted"]
    assert len(ours["trusted"]) > 100  # scikit-learn's estimators, not an empty list
    assert ours["torch_after_wrapper"]
