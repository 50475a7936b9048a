"""A two-rank torchrun job training a two-stage pipeline: rank r builds and trains stage r.

Rank 0 logs to a run of the store in ``$OPSLOOP_HOME``; rank 1 gets an in-memory run that must
stay empty. Each rank writes its result and its own stage's weights to ``<folder>/rank<r>.json``.

    python -m torch.distributed.run --nproc-per-node=2 torchrun_pipeline_job.py FOLDER
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path


def main(folder: Path) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.learn.distributed.stages import built_on_its_rank

    import opsloop
    from opsloop.learn.distributed import pipeline_fit
    from opsloop.learn.run_log import InMemoryRun

    torch.set_num_threads(1)
    data = np.load(folder / "data.npz")
    rank = int(os.environ["RANK"])
    stages = [partial(built_on_its_rank, 0), partial(built_on_its_rank, 1)]
    train = partial(
        pipeline_fit,
        stages,
        (data["X"], data["y"]),
        2,
        batch_size=16,
        micro_batches=3,
        lr=0.1,
    )
    if rank == 0:
        with opsloop.start_run("torchrun-pipeline", capture=False) as run:
            result = train(run=run)
        run_id, logged = run.run_id, None
    else:
        memory = InMemoryRun()
        result = train(run=memory)
        run_id = None
        logged = len(memory.params) + len(memory.metrics) + len(memory.artifacts)
    weights = {k: v.tolist() for stage in result.stage_state_dicts for k, v in stage.items()}
    answer = {
        "rank": rank,
        "run_id": run_id,
        "logged": logged,
        "result": result.to_dict(),
        "weights": weights if rank == 0 else None,
    }
    (folder / f"rank{rank}.json").write_text(json.dumps(answer))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
