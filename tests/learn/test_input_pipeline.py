import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from opsloop.learn.input_pipeline import ParquetBatches, make_loader  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def write(path, n, row_group_size, start=0):
    rng = np.random.default_rng(start)
    frame = pd.DataFrame(
        {
            "id": np.arange(start, start + n, dtype=np.float64),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 100, n).astype(np.int32),
            "label": np.arange(start, start + n) % 3,
        }
    )
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=row_group_size)
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parquet")
    first = write(folder / "a.parquet", 1000, 100)
    second = write(folder / "b.parquet", 500, 100, start=1000)
    return [folder / "a.parquet", folder / "b.parquet"], pd.concat([first, second])


def collect(loader):
    X, y = zip(*loader, strict=True)
    return torch.cat(X).numpy(), torch.cat(y).numpy()


def test_every_row_once_with_the_right_values(files):
    paths, frame = files
    X, y = collect(make_loader(ParquetBatches(paths, label="label", batch_size=64)))
    assert X.shape == (1500, 3) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X[:, 0], frame["id"].to_numpy(np.float32))
    np.testing.assert_allclose(X[:, 1], frame["a"].to_numpy(np.float32))
    np.testing.assert_array_equal(y, frame["label"].to_numpy())


def test_batches_never_exceed_batch_size(files):
    sizes = [len(y) for _, y in ParquetBatches(files[0], label="label", batch_size=64)]
    # row groups of 100 rows: 64 + 36 per group, 15 groups
    assert sizes == [64, 36] * 15


def test_two_workers_read_every_row_exactly_once(files):
    paths, frame = files
    loader = make_loader(ParquetBatches(paths, label="label", batch_size=50), num_workers=2)
    X, _ = collect(loader)
    assert sorted(X[:, 0].tolist()) == frame["id"].tolist()


def test_ranks_share_the_row_groups(files):
    paths, frame = files
    ids = [
        collect(ParquetBatches(paths, label="label", rank=r, world_size=3))[0][:, 0]
        for r in range(3)
    ]
    assert [len(i) for i in ids] == [500, 500, 500]  # 15 groups of 100, 5 each
    assert sorted(np.concatenate(ids).tolist()) == frame["id"].tolist()


def test_shuffle_is_seeded_and_changes_with_the_epoch(files):
    paths, frame = files
    data = ParquetBatches(paths, label="label", shuffle=True, seed=4, batch_size=40)
    first = collect(data)[0][:, 0]
    again = collect(data)[0][:, 0]
    data.set_epoch(1)
    second = collect(data)[0][:, 0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    assert sorted(second.tolist()) == frame["id"].tolist()
    assert not np.array_equal(first, frame["id"].to_numpy(np.float32))


def test_features_subset_and_unlabelled(files):
    paths, frame = files
    batches = list(ParquetBatches(paths, features=["b"], batch_size=500))
    assert all(isinstance(b, torch.Tensor) and b.shape[1] == 1 for b in batches)
    np.testing.assert_array_equal(torch.cat(batches)[:, 0].numpy(), frame["b"].to_numpy())


def test_streams_a_file_without_loading_it(tmp_path):
    # 800k rows x 3 float64 columns: 19.2 MB decoded, in 40 row groups
    path = tmp_path / "big.parquet"
    n = 800_000
    table = pa.table({c: np.arange(n, dtype=np.float64) for c in ["x", "y", "z"]})
    pq.write_table(table, path, row_group_size=20_000)
    del table
    baseline = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for X in ParquetBatches(path, batch_size=2000):
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        rows += len(X)
    assert rows == n
    # memory follows the row group being decoded (20k rows: 480 kB), not the file (19.2 MB)
    row_group_bytes = 20_000 * 3 * 8
    assert peak < 4 * row_group_bytes < n * 3 * 8 / 5


def test_bad_arguments(files):
    paths, _ = files
    with pytest.raises(ValueError, match="label column 'target' is not in"):
        ParquetBatches(paths, label="target")
    with pytest.raises(ValueError, match="missing: \\['c'\\]"):
        ParquetBatches(paths, features=["a", "c"])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ParquetBatches(paths, batch_size=0)
    with pytest.raises(ValueError, match="rank must be within"):
        ParquetBatches(paths, rank=2, world_size=2)
    with pytest.raises(ValueError, match="paths must name at least one"):
        ParquetBatches([])
    with pytest.raises(ValueError, match="num_workers must be a non-negative integer"):
        make_loader(ParquetBatches(paths), num_workers=-1)
