"""Train the example model on scikit-learn's breast cancer data and register it.

Writes the held-out rows (with a ``size`` tag) to ``OUTPUT/eval.csv`` and registers the
model as a new version of ``cancer`` with its input schema. The first version becomes the
champion (there is nothing to gate it against). The new version's number is printed and,
in GitHub Actions, written to ``$GITHUB_ENV`` as ``VERSION``.

    python examples/ci/train.py --output build
    python examples/ci/train.py --output build --features "mean symmetry,mean texture"
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import opsloop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("build"))
    parser.add_argument("--features", help="comma-separated columns (default: all 30)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation")
    args = parser.parse_args(argv)
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = pd.qcut(frame["mean radius"], 3, labels=["small", "medium", "large"])
    frame["size"] = frame["size"].astype(str)
    features = (
        args.features.split(",") if args.features else list(load_breast_cancer().feature_names)
    )
    train, held_out = train_test_split(
        frame, test_size=0.4, random_state=0, stratify=frame["target"]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=2000))
    model.fit(train[features], train["target"])
    args.output.mkdir(parents=True, exist_ok=True)
    held_out.to_csv(args.output / "eval.csv", index=False)
    registry = opsloop.open_registry()
    version = registry.register(
        "cancer", model, input_schema=train[features], output_type="int"
    ).version
    if version == 1:
        registry.set_alias("cancer", "champion", 1, reason="first version")
    print(f"registered cancer v{version}")
    github_env = os.environ.get("GITHUB_ENV")
    if github_env:
        with open(github_env, "a", encoding="utf-8") as env:
            env.write(f"VERSION={version}\n")
    return version


if __name__ == "__main__":
    main()
