"""A two-rank torchrun job: both ranks call ``fit`` with a run; the test reads what was logged.

Rank 0 is given a run of the store in ``$OPSLOOP_HOME``, rank 1 an in-memory run that must stay
empty. Each rank writes its result and what its run received to ``<folder>/rank<r>.json``.

    python -m torch.distributed.run --nproc-per-node=2 torchrun_job.py FOLDER
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

    import opsloop
    from opsloop.learn.distributed import fit
    from opsloop.learn.mlp import mlp
    from opsloop.learn.run_log import InMemoryRun

    torch.set_num_threads(1)
    data = np.load(folder / "data.npz")
    rank = int(os.environ["RANK"])
    train = partial(
        fit, partial(mlp, [5, 16, 3], seed=1), (data["X"], data["y"]), 2, batch_size=30, lr=0.1
    )
    if rank == 0:
        with opsloop.start_run("torchrun", capture=False) as run:
            result = train(run=run)
        run_id, logged = run.run_id, None
    else:
        memory = InMemoryRun()
        result = train(run=memory)
        run_id = None
        logged = {
            "params": len(memory.params),
            "metrics": len(memory.metrics),
            "artifacts": len(memory.artifacts),
        }
    answer = {"rank": rank, "run_id": run_id, "logged": logged, "result": result.to_dict()}
    (folder / f"rank{rank}.json").write_text(json.dumps(answer))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
