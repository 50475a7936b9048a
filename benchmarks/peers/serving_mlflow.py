"""Save a pickled scikit-learn model as an MLflow model, for ``mlflow models serve``.

Run by ``benchmarks/serving.py`` in ``benchmarks/.envs/mlflow`` (``benchmarks/envs.py
mlflow``): ``python serving_mlflow.py MODEL.pickle FOLDER`` loads the model the other servers
load (same scikit-learn release in both environments) and writes it with
``mlflow.sklearn.save_model``, MLflow's own format (skops by default), into ``FOLDER``,
trusting the types the file names (a forest's ``Tree``: this benchmark made the model).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import mlflow.sklearn
import skops.io


def main() -> None:
    model = pickle.loads(Path(sys.argv[1]).read_bytes())
    named = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.sklearn.save_model(model, sys.argv[2], skops_trusted_types=named)


if __name__ == "__main__":
    main()
