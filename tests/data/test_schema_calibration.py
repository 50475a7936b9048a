"""An inferred schema passes unchanged data and still catches planted errors.

Serving batches of 20,000 rows drawn from the training distribution must validate clean in
at least 99 of 100 seeds (exact min/max bounds failed nearly every seed: a fresh value falls
outside the range of n training values with probability 2/(n+1); so did the training's exact
null share, which a fresh batch exceeds about half the time), while a planted out-of-range
value, a string in a numeric column, a new category, a null where training had none and a
doubled null share are caught in every seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.data.schema import ColumnSchema, Schema, infer_schema, validate

TRAIN_ROWS = 5_000
SERVE_ROWS = 20_000


def draw(rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
    # Columns with a share of missing values: a fresh batch's share lands above the training
    # share about half the time, so the allowed share must leave room for chance.
    referrer = rng.choice(["search", "ad", "friend"], n).astype(object)
    referrer[rng.uniform(size=n) < 0.3] = None
    discount = rng.uniform(0.0, 0.2, n)
    discount[rng.uniform(size=n) < 0.05] = np.nan
    tenure = pd.array(rng.integers(0, 120, n), dtype="Int64")
    tenure[rng.uniform(size=n) < 0.002] = pd.NA
    return pd.DataFrame(
        {
            "referrer": referrer,
            "discount": discount,
            "tenure": tenure,
            "customer_id": np.arange(first_id, first_id + n),
            "order_ref": [f"o-{i}" for i in range(first_id, first_id + n)],
            "income": rng.lognormal(10.8, 0.3, n),
            "temperature": rng.normal(12.0, 8.0, n),
            "score": rng.uniform(0.0, 1.0, n),
            "wait_minutes": rng.exponential(3.0, n),
            "visits": rng.poisson(3.0, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.7, 0.25, 0.05]),
        }
    )


def test_unchanged_data_validates_clean_and_planted_errors_are_caught():
    clean_rates = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        schema = infer_schema(draw(rng, TRAIN_ROWS, 0))
        serving = draw(rng, SERVE_ROWS, TRAIN_ROWS)
        result = validate(serving, schema)

        planted = serving.astype({"income": object})
        planted.loc[10, "visits"] = -1  # a negative count: below the range, beyond any margin
        planted.loc[20, "income"] = "n/a"
        planted.loc[30, "plan"] = "enterprise"
        caught = validate(planted, schema)
        (visits,) = caught.select("visits", "out_of_range")
        # Stragglers within the margin may come along; the planted value is the one beyond.
        assert "1 of them beyond the margin (below 0)" in visits.detail, seed
        assert [a.count for a in caught.select("income", "type_mismatch")] == [1], seed
        assert [a.count for a in caught.select("plan", "unknown_category")] == [1], seed
        # Nulls where training had none, and a doubled share of nulls, are caught.
        planted.loc[40, "temperature"] = np.nan
        more_nulls = planted["discount"].notna() & (rng.uniform(size=SERVE_ROWS) < 0.05)
        planted.loc[more_nulls, "discount"] = np.nan
        caught = validate(planted, schema)
        assert [a.count for a in caught.select("temperature", "null_fraction_exceeded")] == [1]
        assert len(caught.select("discount", "null_fraction_exceeded")) == 1, seed
        clean_rates.append(result.ok)
    assert sum(clean_rates) >= 99, sum(clean_rates)


def test_identifier_columns_are_detected_and_not_range_checked():
    rng = np.random.default_rng(0)
    schema = infer_schema(draw(rng, 500, 0))
    assert schema["customer_id"].id_like and schema["order_ref"].id_like
    assert schema["customer_id"].min is None and schema["order_ref"].domain is None
    # visits repeat, income is a float: neither is an identifier.
    assert not schema["visits"].id_like and not schema["income"].id_like
    # The next batch's ids are all new, and that is no anomaly.
    assert validate(draw(rng, 500, 10_000), schema).ok
    # Fewer than 100 rows say too little: distinct values are not taken for ids.
    assert not infer_schema(draw(rng, 99, 0))["customer_id"].id_like


def test_tolerance_decides_for_values_just_outside_the_range():
    column = ColumnSchema(
        "x", "float", min=0.0, max=10.0, range_margin=1.0, max_out_of_range_fraction=0.01
    )
    schema = Schema((column,))
    # 1 of 200 rows just above max: 0.5% <= 1%, no anomaly.
    values = np.linspace(0.0, 10.0, 200)
    values[0] = 11.0
    assert validate(pd.DataFrame({"x": values}), schema).ok
    # 3 of 200 rows: 1.5% > 1%, an anomaly that says the share and the tolerance.
    values[1:3] = 12.0
    (anomaly,) = validate(pd.DataFrame({"x": values}), schema)
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("out_of_range", 3, 0.015)
    assert (
        anomaly.detail
        == "3 above max 10.0, 1.5% of the rows, above the tolerance 1% (max_out_of_range_fraction)"
    )
    # One value beyond max + 1.0 * (max - min) = 20 is an anomaly on its own.
    values[1:3] = 5.0
    values[0] = 20.5
    (anomaly,) = validate(pd.DataFrame({"x": values}), schema)
    assert anomaly.detail == "1 above max 10.0, 1 of them beyond the margin (above 20)"


def test_inferred_tolerance_and_margin_follow_the_documented_rule():
    schema = infer_schema(pd.DataFrame({"x": np.arange(999, dtype=float) % 7}))
    # 16 / (999 + 1) = 0.016; margin one range width, lower limit kept at zero.
    assert schema["x"].max_out_of_range_fraction == 0.016
    assert schema["x"].range_margin == 1.0
    assert schema["x"].hard_limits() == (0.0, 12.0)


def test_schema_yaml_written_before_margins_loads_with_the_old_meaning():
    old = """\
version: 3
created_at: '2024-05-01T12:00:00+00:00'
source_rows: 4
columns:
  age:
    type: int
    required: true
    max_null_fraction: 0.0
    min: 21
    max: 90
"""
    schema = Schema.from_yaml(old)
    column = schema["age"]
    assert (column.range_margin, column.max_out_of_range_fraction, column.id_like) == (
        0.0,
        0.0,
        False,
    )
    # Exact bounds, no tolerance: one value past max is an anomaly, as it was.
    (anomaly,) = validate(pd.DataFrame({"age": [30, 91]}), schema)
    assert (anomaly.kind, anomaly.count, anomaly.detail) == ("out_of_range", 1, "1 above max 90")
    # And a new schema's fields round-trip through YAML.
    inferred = infer_schema(draw(np.random.default_rng(1), 200, 0))
    assert Schema.from_yaml(inferred.to_yaml()) == inferred
