"""Server (a) of ``benchmarks/serving.py``: a bare FastAPI ``async def`` endpoint that
turns the posted records into a frame and answers the model's ``predict``, with no
validation, routing, metrics or events. Served by uvicorn as ``opsloop serve`` is.

    python benchmarks/peers/serving_bare.py MODEL.pickle PORT [--proba]

With ``--proba`` it also answers ``predict_proba``, as opsloop's answer carries the
probabilities of a classifier: the same model work as opsloop's.
"""

from __future__ import annotations

import pickle
import sys
from typing import Annotated

import pandas as pd
import uvicorn
from fastapi import Body, FastAPI


def main() -> None:
    model_path, port = sys.argv[1], int(sys.argv[2])
    with_probabilities = "--proba" in sys.argv[3:]
    with open(model_path, "rb") as handle:
        model = pickle.load(handle)  # the benchmark's own file, written a moment ago
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    @app.post("/predict")
    async def predict(records: Annotated[list[dict], Body()]) -> dict:
        frame = pd.DataFrame(records)
        answer = {"predictions": model.predict(frame).tolist()}
        if with_probabilities:
            answer["probabilities"] = model.predict_proba(frame).tolist()
        return answer

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
