"""Models for the ONNX and PyTorch serving tests: scikit-learn models fitted on real data
(breast cancer, iris, diabetes) and converted with skl2onnx, and small torch MLPs built by
a registered builder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

skl2onnx = pytest.importorskip("skl2onnx")
torch = pytest.importorskip("torch")

from opsloop.registry import torch_builder  # noqa: E402

#: The class labels the torch classifiers declare (breast cancer's targets).
CANCER_CLASSES = ["malignant", "benign"]


def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    """Breast cancer's 30 features (names with spaces) and its 0/1 target."""
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target.to_numpy()


def iris() -> tuple[pd.DataFrame, np.ndarray]:
    """Iris's 4 features and its species names (string labels)."""
    data = load_iris(as_frame=True)
    return data.data, np.asarray(data.target_names)[data.target.to_numpy()]


def diabetes() -> tuple[pd.DataFrame, np.ndarray]:
    """Diabetes's 10 features and its real-valued target."""
    data = load_diabetes(as_frame=True)
    return data.data, data.target.to_numpy()


def logistic(frame: pd.DataFrame, label: np.ndarray):
    """A scaled logistic regression (the raw features span five orders of magnitude)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame, label)


def forest(frame: pd.DataFrame, label: np.ndarray) -> RandomForestClassifier:
    """A 30-tree random forest."""
    return RandomForestClassifier(n_estimators=30, random_state=0).fit(frame, label)


def line(frame: pd.DataFrame, target: np.ndarray) -> LinearRegression:
    """A linear regression."""
    return LinearRegression().fit(frame, target)


def onnx_bytes(model, frame: pd.DataFrame, *, zipmap: bool = False) -> bytes:
    """``model`` converted by skl2onnx for float32 rows of ``frame``'s width."""
    sample = frame.to_numpy(dtype=np.float32)[:1]
    options = None if zipmap or not hasattr(model, "predict_proba") else {"zipmap": False}
    return skl2onnx.to_onnx(model, sample, options=options).SerializeToString()


@torch_builder("serving-tests-mlp")
def mlp(n_in: int, hidden: int, n_out: int) -> torch.nn.Module:
    """Standardising layer, one hidden layer and ``n_out`` outputs."""
    return torch.nn.Sequential(
        torch.nn.BatchNorm1d(n_in),
        torch.nn.Linear(n_in, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, n_out),
    )


def trained_mlp(frame: pd.DataFrame, label: np.ndarray, n_out: int, seed: int = 0):
    """An :func:`mlp` after 60 full-batch steps (cross entropy for ``n_out`` > 1,
    squared error on the standardised target for 1), in ``eval()`` mode."""
    torch.manual_seed(seed)
    net = mlp(frame.shape[1], 16, n_out)
    x = torch.tensor(frame.to_numpy(), dtype=torch.float32)
    if n_out > 1:
        y = torch.tensor(label, dtype=torch.long)
        loss_of = torch.nn.CrossEntropyLoss()
    else:
        y = torch.tensor((label - label.mean()) / label.std(), dtype=torch.float32)[:, None]
        loss_of = torch.nn.MSELoss()
    optimiser = torch.optim.Adam(net.parameters(), lr=0.03)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few tiny steps: more threads only wait for each other
    try:
        for _ in range(60):
            optimiser.zero_grad()
            loss_of(net(x), y).backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def module_answer(net, frame: pd.DataFrame) -> np.ndarray:
    """The module's own output for ``frame``, as float32 rows."""
    with torch.no_grad():
        return net(torch.tensor(frame.to_numpy(), dtype=torch.float32)).numpy()


def classes_tag(classes: list) -> dict[str, str]:
    """The version tag that declares a classifier's classes."""
    return {"classes": json.dumps(classes)}


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as records of plain floats."""
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]
