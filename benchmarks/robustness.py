"""PGD and membership inference: opsloop against adversarial-robustness-toolbox (ART).

**PGD** (``--part pgd``), in CPU-seconds.

40-step L∞ PGD (eps 0.1, step 0.01, no random start, against the true labels) on the rows of a
64-256-256-10 ReLU MLP, three ways, interleaved in every repeat:

* ``opsloop``: :func:`opsloop.learn.robustness.pgd`, every row in one batch;
* ``ART, batch 32``: ART's ``ProjectedGradientDescent`` at its default batch size;
* ``ART, batch N``: the same with every row in one batch.

Each contender's CPU time (``time.process_time``, torch and BLAS limited to one thread) is the
median over the repeats; wall time is shown too, as it depends on what else runs on the machine.
The examples of ``opsloop`` and ``ART, batch N`` are compared once (largest absolute difference),
so the timings are of the same computation.

    python benchmarks/robustness.py --part pgd --rows 10000 --repeats 3

Writes ``benchmarks/out/robustness.md``.

**Membership inference** (``--part membership``): the shadow-model attack on a 100-tree
RandomForest (``n_jobs=1``) trained on ``--members`` rows of a 20-feature, 4-class
``make_classification`` problem; as many non-members; an attacker's ``--shadow-rows`` rows
from the same population, disjoint from both. Three shadows on random halves of those rows for
both contenders (ART's default ``num_shadow_models``):

* ``opsloop``: :func:`opsloop.learn.robustness.shadow_attack` (a logistic regression on the
  sorted probabilities and the true class's probability);
* ``ART, <model>``: ART's ``ShadowModels`` (``disjoint_datasets=False``, member ratio 0.5) and
  ``MembershipInferenceBlackBox`` with attack model ``<model>`` (``nn`` is its default; ``lr``
  and ``rf`` are its scikit-learn options), scored by ``infer(..., probabilities=True)``.

Each repeat times the whole attack (shadows, attack model, scoring members and non-members) in
CPU-seconds, one thread; AUC and advantage (best TPR - FPR) are on the target's true members
against its non-members, with opsloop's ``roc_auc`` and ``best_advantage``. Medians of the
repeats, each repeat with a different seed.

    python benchmarks/robustness.py --part membership --repeats 3

Writes ``benchmarks/out/robustness_membership.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from functools import partial
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from opsloop.learn.robustness import pgd

OUT = Path(__file__).resolve().parent / "out"
EPS, STEP = 0.1, 0.01


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


def train(model: torch.nn.Module, X: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    """Five epochs of Adam, so that the attack works on a model with real decision boundaries."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(5):
        for start in range(0, len(X), 128):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(inputs[start : start + 128]), targets[start : start + 128]
            )
            loss.backward()
            optimiser.step()
    return model.eval()


def data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        rows, 64, n_informative=32, n_classes=10, n_clusters_per_class=1, random_state=seed
    )
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    return X.astype(np.float32), y


def timed(run) -> tuple[float, float, np.ndarray]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = run()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def pgd_benchmark(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)

    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    X, y = data(args.rows, args.seed)
    model = train(make_model(args.seed), X, y)
    # the loss summed over rows, as opsloop's and the tests' (ART's usual mean gives the same
    # examples here; the sum keeps each row's gradient independent of its batch)
    classifier = PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(reduction="sum"),
        input_shape=(64,),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    from opsloop.learn.robustness import FeatureConstraints

    unit = FeatureConstraints(64, lower=0.0, upper=1.0)

    def art(batch_size: int):
        attack = ProjectedGradientDescent(
            classifier,
            eps=EPS,
            eps_step=STEP,
            max_iter=args.steps,
            num_random_init=0,
            batch_size=batch_size,
            verbose=False,
        )
        return lambda: attack.generate(X, y)

    contenders = {
        "opsloop": lambda: pgd(
            model, X, y, eps=EPS, eps_step=STEP, steps=args.steps, constraints=unit
        ),
        "ART, batch 32": art(32),
        f"ART, batch {args.rows:,}": art(args.rows),
    }
    # one small warm-up each, so that no contender pays first-call costs in the timings
    small = X[:64]
    pgd(model, small, eps=EPS, eps_step=STEP, steps=2)
    ProjectedGradientDescent(
        classifier, eps=EPS, eps_step=STEP, max_iter=2, verbose=False
    ).generate(small)
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, np.ndarray] = {}
    load = []
    with threadpool_limits(limits=1):
        for repeat in range(args.repeats):
            for name, run in contenders.items():
                load.append(os.getloadavg()[0])
                c, w, out = timed(run)
                cpu[name].append(c)
                wall[name].append(w)
                outputs[name] = out
                print(
                    f"repeat {repeat + 1} {name:>16}: cpu {c:7.2f} s  wall {w:7.2f} s", flush=True
                )
    full = f"ART, batch {args.rows:,}"
    gap = np.abs(outputs["opsloop"] - outputs[full])
    difference, differing = float(gap.max()), float((gap > 1e-6).mean())
    with torch.no_grad():
        clean = (model(torch.as_tensor(X)).argmax(1).numpy() == y).mean()
        attacked = (model(torch.as_tensor(outputs["opsloop"])).argmax(1).numpy() == y).mean()
    base = statistics.median(cpu["opsloop"])
    lines = [
        f"{args.steps}-step L∞ PGD (eps {EPS}, step {STEP}, no random start) on {args.rows:,} "
        f"rows × 64 features of a 64-256-256-10 ReLU MLP (accuracy {clean:.1%} clean, "
        f"{attacked:.1%} under the attack). Medians of {args.repeats} interleaved runs; torch "
        f"and BLAS threads 1. opsloop 0.1.0, adversarial-robustness-toolbox "
        f"{version('adversarial-robustness-toolbox')}, torch {torch.__version__}, numpy "
        f"{np.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (1-minute load average "
        f"{min(load):.1f} to {max(load):.1f} during the runs). Largest difference between "
        f"opsloop's and ART's examples (batch {args.rows:,}): {difference:.1e}; share of "
        f"entries apart by more than 1e-6: {differing:.1e}.",
        "",
        "| contender | CPU-s (median) | wall-s (median) | CPU-s ÷ opsloop's |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in contenders:
        median_cpu = statistics.median(cpu[name])
        lines.append(
            f"| {name} | {median_cpu:.2f} | {statistics.median(wall[name]):.2f} | "
            f"{median_cpu / base:.2f}× |"
        )
    text = "\n".join(lines) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "robustness.md").write_text(text, encoding="utf-8")
    print(text)


def membership_data(args: argparse.Namespace, seed: int):
    from sklearn.datasets import make_classification

    n = 2 * args.members + args.shadow_rows
    X, y = make_classification(
        n, 20, n_informative=10, n_classes=4, n_clusters_per_class=2, random_state=seed
    )
    X = X.astype(np.float32)
    m = args.members
    return (X[:m], y[:m]), (X[m : 2 * m], y[m : 2 * m]), (X[2 * m :], y[2 * m :])


def forest(seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(100, n_jobs=1, random_state=seed)


def opsloop_membership(model, members, non_members, shadow, seed: int):
    from opsloop.learn.robustness import shadow_attack

    result = shadow_attack(
        model, members, non_members, shadow, shadow_model=forest(seed), n_shadows=3, seed=seed
    )
    return np.asarray(result.member_scores), np.asarray(result.non_member_scores)


def art_template(shadow, seed: int):
    """ART clones a shadow template only once it is fitted (an unfitted one has no classes)."""
    from art.estimators.classification.scikitlearn import ScikitlearnRandomForestClassifier

    return ScikitlearnRandomForestClassifier(forest(seed).fit(*shadow))


def art_membership(model, template, members, non_members, shadow, seed: int, attack_model: str):
    from art.attacks.inference.membership_inference import (
        MembershipInferenceBlackBox,
        ShadowModels,
    )
    from art.estimators.classification.scikitlearn import ScikitlearnRandomForestClassifier

    target = ScikitlearnRandomForestClassifier(model)
    shadows = ShadowModels(template, num_shadow_models=3, random_state=seed)
    # ART's scikit-learn wrappers fit on one-hot labels
    one_hot = np.eye(int(shadow[1].max()) + 1)[shadow[1]]
    (in_x, in_y, in_pred), (out_x, out_y, out_pred) = shadows.generate_shadow_dataset(
        shadow[0], one_hot
    )
    attack = MembershipInferenceBlackBox(target, attack_model_type=attack_model)
    attack.fit(in_x, in_y, out_x, out_y, in_pred, out_pred)

    def score(pair):
        return np.asarray(attack.infer(pair[0], pair[1], probabilities=True)).reshape(-1)

    return score(members), score(non_members)


def membership_benchmark(args: argparse.Namespace) -> None:
    from opsloop.learn.robustness.membership import best_advantage, roc_auc

    torch.set_num_threads(1)
    art_models = [name for name in args.art_models.split(",") if name]
    names = ["opsloop"] + [f"ART, {name}" for name in art_models]
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    auc: dict[str, list[float]] = {name: [] for name in names}
    advantage: dict[str, list[float]] = {name: [] for name in names}
    load = []
    with threadpool_limits(limits=1):
        for repeat in range(args.repeats):
            seed = args.seed + repeat
            members, non_members, shadow = membership_data(args, seed)
            model = forest(seed).fit(*members)
            for name in names:
                load.append(os.getloadavg()[0])
                if name == "opsloop":
                    run = partial(opsloop_membership, model, members, non_members, shadow, seed)
                else:
                    attack_model = name.removeprefix("ART, ")
                    # the template's fit is set-up, outside the timing
                    template = art_template(shadow, seed)
                    run = partial(
                        art_membership,
                        model,
                        template,
                        members,
                        non_members,
                        shadow,
                        seed,
                        attack_model,
                    )
                c, w, (inside, outside) = timed(run)
                labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
                scores = np.r_[inside, outside]
                cpu[name].append(c)
                wall[name].append(w)
                auc[name].append(roc_auc(labels, scores))
                advantage[name].append(best_advantage(labels, scores)[0])
                print(
                    f"repeat {repeat + 1} {name:>10}: cpu {c:6.2f} s  wall {w:6.2f} s  "
                    f"auc {auc[name][-1]:.3f}  advantage {advantage[name][-1]:.3f}",
                    flush=True,
                )
    import sklearn

    base = statistics.median(cpu["opsloop"])
    lines = [
        f"Shadow-model membership inference on a 100-tree RandomForest trained on "
        f"{args.members:,} rows (20 features, 4 classes), scored on its {args.members:,} "
        f"members against {args.members:,} non-members; the attacker owns {args.shadow_rows:,} "
        f"other rows and trains 3 shadows. Medians of {args.repeats} runs (seeds "
        f"{args.seed}..{args.seed + args.repeats - 1}); one thread. opsloop 0.1.0, "
        f"adversarial-robustness-toolbox {version('adversarial-robustness-toolbox')}, "
        f"scikit-learn {sklearn.__version__}, torch {torch.__version__}, numpy "
        f"{np.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (1-minute load average "
        f"{min(load):.1f} to {max(load):.1f}).",
        "",
        "| contender | attack AUC (median) | advantage (median) | CPU-s (median) | "
        "wall-s (median) | CPU-s ÷ opsloop's |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        median_cpu = statistics.median(cpu[name])
        lines.append(
            f"| {name} | {statistics.median(auc[name]):.3f} | "
            f"{statistics.median(advantage[name]):.3f} | {median_cpu:.2f} | "
            f"{statistics.median(wall[name]):.2f} | {median_cpu / base:.2f}× |"
        )
    text = "\n".join(lines) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / "robustness_membership.md").write_text(text, encoding="utf-8")
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("pgd", "membership", "all"), default="all")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--shadow-rows", type=int, default=2_000)
    parser.add_argument("--art-models", default="nn,lr,rf")
    args = parser.parse_args()
    if args.part in ("pgd", "all"):
        pgd_benchmark(args)
    if args.part in ("membership", "all"):
        membership_benchmark(args)


if __name__ == "__main__":
    main()
