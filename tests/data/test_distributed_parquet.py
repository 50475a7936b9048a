"""read_parquet_dask's partitions are the frames pandas and dd.read_parquet give on the same
files: dtypes of every Arrow type, hive partition columns, writable arrays, one set of
columns, and read errors that name the file."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from opsloop.data.distributed.frames import (  # noqa: E402
    ParquetSchemaError,
    parquet_files,
    read_parquet_dask,
)


def computed(ddf) -> pd.DataFrame:
    return ddf.compute(scheduler="synchronous")


def test_columns_of_every_arrow_type_keep_the_dtypes_and_values_pandas_gives(tmp_path):
    for i in range(2):
        pq.write_table(
            pa.table(
                {
                    "day": pa.array([dt.date(2024, 1, 1 + i), None, dt.date(2024, 2, 3)]),
                    "amount": pa.array(
                        [decimal.Decimal("1.50"), None, decimal.Decimal(f"{i}.25")],
                        pa.decimal128(5, 2),
                    ),
                    "items": pa.array([[1], [2, 3 + i], None]),
                    "blob": pa.array([b"a", None, b"c"]),
                    "flag": pa.array([True, None, i == 0]),
                    "name": pa.array(["a", None, f"c{i}"]),
                    "note": pa.array(["x", "y", None], pa.large_string()),
                    "level": pa.array(["lo", "hi", "lo"]).dictionary_encode(),
                    "at": pa.array([1, None, 3], pa.timestamp("us")),
                    "n": pa.array([1, None, 3 + i]),
                    "x": pa.array([0.5, 1.5, 2.5 + i]),
                }
            ),
            tmp_path / f"part-{i}.parquet",
        )
    files = parquet_files(tmp_path)
    ddf = read_parquet_dask(tmp_path)
    frame = computed(ddf)
    # pandas' values; Dask keeps strings, dates and decimals in Arrow-backed dtypes.
    expected = pd.concat([pd.read_parquet(f) for f in files]).astype(
        {
            "day": pd.ArrowDtype(pa.date32()),
            "amount": pd.ArrowDtype(pa.decimal128(5, 2)),
            "name": pd.StringDtype("pyarrow"),
            "note": pd.StringDtype("pyarrow"),
        }
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["day"].dtype == pd.ArrowDtype(pa.date32())
    assert frame["name"].dtype == pd.StringDtype("pyarrow")
    assert frame["items"].dtype == object and frame["blob"].dtype == object
    assert frame["blob"].tolist() == [b"a", None, b"c"] * 2
    assert frame["flag"].tolist() == [True, None, True, True, None, False]
    # What dd.read_parquet gives on the same files, its frame's dtypes included.
    reference = dd.read_parquet(files)
    pd.testing.assert_frame_equal(frame, computed(reference))
    # The frame's dtypes too, but for the categorical: dd.read_parquet says an Arrow
    # dictionary column written without pandas' metadata has known, empty categories,
    # which its partitions contradict; here they are unknown until read.
    assert dict(ddf.dtypes.drop("level")) == dict(reference.dtypes.drop("level"))
    assert not ddf["level"].cat.known
    assert list(frame["level"].cat.categories) == ["lo", "hi"]


def test_without_dask_string_conversion_columns_are_what_pandas_reads(tmp_path):
    pq.write_table(
        pa.table({"day": pa.array([dt.date(2024, 1, 1), None]), "s": ["a", None]}),
        tmp_path / "a.parquet",
    )
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = read_parquet_dask(tmp_path)
    pd.testing.assert_frame_equal(computed(ddf), pd.read_parquet(tmp_path / "a.parquet"))


def test_hive_partition_folders_become_the_categorical_columns_dd_read_parquet_gives(tmp_path):
    for year in (2021, 2020):
        for region in ("eu", "us"):
            folder = tmp_path / f"year={year}" / f"region={region}"
            folder.mkdir(parents=True)
            pd.DataFrame({"x": [year * 10, year * 10 + 1], "s": ["a", region]}).to_parquet(
                folder / "part.parquet"
            )
    files = parquet_files(tmp_path)
    ddf = read_parquet_dask(tmp_path)
    frame = computed(ddf)
    reference = dd.read_parquet(files)
    pd.testing.assert_frame_equal(frame, computed(reference))
    assert dict(ddf.dtypes) == dict(reference.dtypes)
    assert list(frame["year"].cat.categories) == [2020, 2021]
    assert frame["year"].tolist() == [2020, 2020, 2020, 2020, 2021, 2021, 2021, 2021]
    assert frame["region"].tolist() == ["eu", "eu", "us", "us"] * 2
    # pandas reads the folder with the same columns and values.
    in_memory = pd.read_parquet(tmp_path)
    assert frame["x"].tolist() == in_memory["x"].tolist()
    assert frame["year"].astype(int).tolist() == in_memory["year"].astype(int).tolist()
    # Projection reaches the partition columns.
    pd.testing.assert_frame_equal(
        computed(read_parquet_dask(tmp_path, ["year", "x"])), frame[["year", "x"]]
    )


def test_partitions_are_writable_like_pandas_frames(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": np.arange(1000, dtype="float64"), "i": np.arange(1000)}), path)

    def clip(part: pd.DataFrame) -> pd.DataFrame:
        part.loc[part["x"] < 3, "x"] = 0.0
        part.loc[0, "i"] = -1
        return part

    result = computed(read_parquet_dask(path).map_partitions(clip))
    pd.testing.assert_frame_equal(result, clip(pd.read_parquet(path)))


def test_a_file_truncated_while_it_is_read_is_an_error_naming_it(tmp_path):
    """Memory-mapped, the read of a file cut short after it was opened dies of SIGBUS."""
    path = tmp_path / "a.parquet"
    pq.write_table(
        pa.table({"x": np.random.default_rng(0).random(500_000)}), path, compression="none"
    )
    script = textwrap.dedent(
        f"""
        import os, pyarrow.parquet as pq
        from opsloop.data.distributed.frames import parquet_pieces, read_parquet_piece
        original = pq.ParquetFile.read_row_groups
        def cut_then_read(self, *args, **kwargs):
            os.truncate({str(path)!r}, 4096)
            return original(self, *args, **kwargs)
        pq.ParquetFile.read_row_groups = cut_then_read
        try:
            read_parquet_piece(parquet_pieces([{str(path)!r}])[0])
        except Exception as error:
            print(type(error).__name__, error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ValueError {path}: cannot read row groups [0]")


def test_a_later_file_with_another_column_gives_partitions_with_the_frames_columns(tmp_path):
    pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"z": ["q", "r"], "y": [2.5, 3.5], "x": [3, 4]}).to_parquet(tmp_path / "b.parquet")
    ddf = read_parquet_dask(tmp_path)
    parts = [computed(ddf.partitions[i]) for i in range(2)]
    assert [list(p.columns) for p in parts] == [["x", "y"], ["x", "y"]]
    expected = pd.concat(
        [
            pd.read_parquet(tmp_path / name, columns=["x", "y"])
            for name in ("a.parquet", "b.parquet")
        ]
    )
    pd.testing.assert_frame_equal(computed(ddf), expected)


@pytest.mark.parametrize("columns", [None, ["y"]])
def test_a_file_without_a_column_of_the_frame_is_a_schema_error_naming_both(tmp_path, columns):
    pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"x": [3, 4]}).to_parquet(tmp_path / "b.parquet")
    # pandas refuses the column of that file as well.
    with pytest.raises(pa.ArrowInvalid):
        pd.read_parquet(tmp_path / "b.parquet", columns=["y"])
    message = f"{tmp_path / 'b.parquet'}: has no column 'y'"
    with pytest.raises(ParquetSchemaError, match=message.replace(".", r"\.")):
        computed(read_parquet_dask(tmp_path, columns))


def test_a_file_without_a_footer_is_named(tmp_path):
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1")
    with pytest.raises(pa.ArrowInvalid):
        pd.read_parquet(tmp_path / "b.parquet")
    with pytest.raises(
        ValueError, match=f"^{tmp_path / 'b.parquet'}: cannot read its Parquet footer"
    ):
        read_parquet_dask(tmp_path)
