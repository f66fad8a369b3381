"""A Spark result spooled for delta-rs: written once by Spark where the executors share this machine's files, read
back in batches of at most BATCH_ROWS (as often as a retried commit needs), the same rows as a direct collect."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pytest

from lakehouse_phi.storage import spool as spool_mod
from lakehouse_phi.storage.spool import BUCKET_COL, BucketedSpool, ParquetSpool, RowsSpool, spooled


def _frame(spark, n: int):
    return spark.range(n).selectExpr("id", "cast(id as string) AS s", "timestamp'2024-01-02 03:04:05' AS ts",
                                      "map('k', cast(id as int)) AS m")


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def test_local_engine_spools_to_parquet_in_bounded_batches(spark, monkeypatch):
    monkeypatch.setattr(spool_mod, "BATCH_ROWS", 100)
    df = _frame(spark, 1000)
    with spooled(df) as spool:
        assert isinstance(spool, ParquetSpool) and spool.num_rows == 1000
        batches = list(spool.reader())
        assert max(b.num_rows for b in batches) <= 100 and sum(b.num_rows for b in batches) == 1000
        again = pa.Table.from_batches(list(spool.reader()))  # re-readable (a retried commit)
        assert again.schema.field("ts").type == pa.timestamp("us", tz="UTC")
        rows = _sorted(again)
        folder = spool.folder
    assert rows[7]["s"] == "7" and rows[7]["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert dict(rows[7]["m"]) == {"k": 7}
    assert not os.path.exists(folder)  # removed on exit


def test_rows_spool_streams_partition_by_partition(spark, monkeypatch):
    monkeypatch.setattr(spool_mod, "BATCH_ROWS", 64)
    df = _frame(spark, 300).repartition(3)
    expected = _sorted(df.toArrow())  # a plain collect, the reference
    rows = RowsSpool(df, spool_mod._arrow_schema(df))
    batches = list(rows.reader())
    assert rows.num_rows == 300 and max(b.num_rows for b in batches) <= 64
    got = _sorted(pa.Table.from_batches(batches))
    assert [r["s"] for r in got] == [r["s"] for r in expected]


@pytest.mark.parametrize("engine", ["spark", "sail"])
def test_buckets_hold_every_row_of_a_key_in_one_folder(request, engine, monkeypatch):
    """Hash buckets (the delta-rs writer's spool): Spark writes the rows once with their bucket number and the
    driver splits them into one folder per bucket, a few rows at a time and a few files open at a time (here 3
    rows of 30 buckets per read, 4 files open): every row once, every key in one bucket, no bucket column."""
    monkeypatch.setattr(spool_mod, "BUCKET_ROWS", 10)
    monkeypatch.setattr(spool_mod, "SPLIT_ROWS", 64)
    monkeypatch.setattr(spool_mod, "OPEN_BUCKET_FILES", 4)
    session = request.getfixturevalue(engine)
    df = _frame(session, 300).selectExpr("*", "id % 97 AS k")
    with spooled(df, bucket_by=["k"], rows=300) as spool:
        assert isinstance(spool, BucketedSpool) and spool.num_rows == spool.count_rows() == 300
        assert spool.schema.names == ["id", "s", "ts", "m", "k"]
        buckets = list(spool.buckets())
        folders = [n for n in os.listdir(spool.folder) if n.startswith(BUCKET_COL + "=")]
        assert len(buckets) == len(folders) > 4  # more buckets than open files: some were reopened
        assert any(len(os.listdir(os.path.join(spool.folder, n))) > 1 for n in folders)
        keys = [set(b.column("k").to_pylist()) for b in buckets]
        assert all(not (a & b) for i, a in enumerate(keys) for b in keys[i + 1:])  # a key lives in one bucket
        rows = _sorted(pa.concat_tables(buckets))
        assert [r["id"] for r in rows] == list(range(300)) and rows[5]["s"] == "5"
        assert rows[5]["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
        folder = spool.folder
    assert not os.path.exists(os.path.dirname(folder))


@pytest.mark.parametrize("engine", ["spark", "sail"])
def test_buckets_of_no_rows(request, engine):
    session = request.getfixturevalue(engine)
    df = _frame(session, 10).where("id < 0").selectExpr("*", "id AS k")
    with spooled(df, bucket_by=["k"], rows=0) as spool:
        assert spool.num_rows == spool.count_rows() == 0 and list(spool.buckets()) == []
        assert spool.schema.names == ["id", "s", "ts", "m", "k"]
