"""The wide table the feature selection benchmark and its scale test run on.

:func:`wide_frame` builds ``columns`` columns around :func:`opsloop.datasets.credit` (whose
``default`` label, Agrawal's rule 9, reads ``salary``, ``commission``, ``education`` and
``loan_amount``): mostly-missing columns, constants and near-constants, noisy duplicates of
real and of noise columns, clusters of strongly correlated columns, random and relabelled
categoricals, and noise of every dtype, so that each step of the funnel has something to
drop and the informative columns are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opsloop.datasets import credit

TARGET = "default"
#: The columns rule 9 reads: what must survive the funnel.
INFORMATIVE = ("salary", "commission", "education", "loan_amount")
#: The credit columns copied on purpose. The informative ones are not: a copy of one is as
#: informative as it, and which of the two the funnel keeps is then rightly a coin toss.
_CREDIT_NUMERIC = ("age", "house_value", "house_years")
_CREDIT_CATEGORIES = ("gender", "region", "device", "car_make")


@dataclass
class Planted:
    """Which columns were planted for which step to find."""

    informative: tuple[str, ...] = INFORMATIVE
    roles: dict[str, list[str]] = field(default_factory=dict)

    def add(self, role: str, name: str) -> str:
        self.roles.setdefault(role, []).append(name)
        return name


def wide_frame(rows: int, columns: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, Planted]:
    """``rows`` x ``columns`` features plus the ``default`` target, and what was planted."""
    if columns < 60:
        raise ValueError(f"columns must be at least 60, got {columns}")
    rng = np.random.default_rng(seed)
    base = credit(rows, seed=seed)
    planted = Planted()
    data: dict[str, object] = {c: base[c] for c in base.columns if c != TARGET}
    budget = columns - len(data)
    counts = {
        "mostly_null": int(0.15 * budget),
        "constant": int(0.10 * budget),
        "duplicate": int(0.10 * budget),
        "correlated": int(0.25 * budget) // 5 * 5,
        "category": int(0.04 * budget),
        "category_copy": int(0.04 * budget),
        "integer": int(0.05 * budget),
        "boolean": int(0.02 * budget),
    }
    counts["noise"] = budget - sum(counts.values())

    for i in range(counts["mostly_null"]):
        source = data[INFORMATIVE[i % 2]] if i % 4 == 0 else rng.normal(size=rows)
        values = np.asarray(source, dtype=float).copy()
        values[rng.random(rows) < rng.uniform(0.82, 0.99)] = np.nan
        data[planted.add("mostly_null", f"sparse_{i:03d}")] = values
    for i in range(counts["constant"]):
        name = planted.add("constant", f"const_{i:03d}")
        if i % 4 == 0:
            data[name] = pd.Categorical(["same"] * rows)
        elif i % 4 == 1:
            values = np.zeros(rows)
            rare = rng.random(rows) < 0.02
            values[rare] = rng.normal(size=int(rare.sum()))
            data[name] = values
        else:
            data[name] = np.full(rows, float(i))
    noise_sources = []
    for i in range(counts["noise"]):
        values = rng.normal(loc=rng.uniform(-100, 100), scale=rng.uniform(0.5, 50), size=rows)
        if i % 5 == 0:
            values[rng.random(rows) < rng.uniform(0.02, 0.3)] = np.nan
        name = planted.add("noise", f"noise_{i:03d}")
        data[name] = values
        noise_sources.append(name)
    for i in range(counts["duplicate"]):
        source = _CREDIT_NUMERIC[i % len(_CREDIT_NUMERIC)] if i % 2 == 0 else noise_sources[i]
        values = np.asarray(data[source], dtype=float)
        spread = np.nanstd(values)
        copy = 1.7 * values + 3.0 + rng.normal(scale=0.15 * spread, size=rows)
        data[planted.add("duplicate", f"dup_{i:03d}_of_{source}")] = copy
    for cluster in range(counts["correlated"] // 5):
        latent = rng.normal(size=rows)
        for member in range(5):
            values = latent * rng.uniform(1, 10) + rng.normal(scale=0.08, size=rows)
            data[planted.add("correlated", f"corr_{cluster:03d}_{member}")] = values
    categories = []
    for i in range(counts["category"]):
        levels = int(rng.integers(3, 13))
        codes = rng.integers(0, levels, size=rows)
        labels = [f"level_{k}" for k in range(levels)]
        name = planted.add("category", f"cat_{i:03d}")
        data[name] = pd.Categorical.from_codes(codes, categories=labels)
        categories.append(name)
    sources = list(_CREDIT_CATEGORIES) + categories
    for i in range(counts["category_copy"]):
        source = sources[i % len(sources)]
        original = pd.Categorical(data[source])
        codes = original.codes.copy()
        flip = rng.random(rows) < 0.01
        codes[flip] = rng.integers(0, len(original.categories), size=int(flip.sum()))
        labels = [f"r{k}" for k in range(len(original.categories))]
        name = planted.add("category_copy", f"catcopy_{i:03d}_of_{source}")
        data[name] = pd.Categorical.from_codes(codes, categories=labels)
    for i in range(counts["integer"]):
        data[planted.add("integer", f"int_{i:03d}")] = rng.integers(0, 1000, size=rows)
    for i in range(counts["boolean"]):
        data[planted.add("boolean", f"flag_{i:03d}")] = rng.random(rows) < rng.uniform(0.2, 0.8)
    data[TARGET] = base[TARGET].to_numpy()
    names = [n for n in data if n != TARGET]
    order = rng.permutation(len(names))
    frame = pd.DataFrame({**{names[k]: data[names[k]] for k in order}, TARGET: data[TARGET]})
    return frame, planted
