"""Training functions that retraining policies name (``tests.monitoring.training_functions:
fit_logistic``): each takes the window's rows with a ``label`` column and returns a fitted
estimator."""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def fit_logistic(frame: pd.DataFrame):
    """Learn the relationship the rows show now."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(frame.drop(columns=["label"]), frame["label"])


def fit_old_relationship(frame: pd.DataFrame):
    """Learn the relationship from before the labels flipped: a model the gate must stop."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(frame.drop(columns=["label"]), 1 - frame["label"])


def fit_refusing(frame: pd.DataFrame):
    """A training function with a bug the monitor must survive."""
    raise RuntimeError(f"cannot train on {len(frame)} rows today")
