"""``bronze_mode: latest`` on a Parquet bronze (classic Spark): the locked rewrite is a write-then-swap by manifest,
so reruns see one row per key, and a rewrite committed by a killed run is finished before the next run reads."""

from __future__ import annotations

import json
import os

import pyarrow.dataset as ds

from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from lakehouse_phi.storage import parquet
from tests.spark.test_bronze import ENV, _land, _latest


def _plans(path) -> list[str]:
    t = ds.dataset(str(path), format="parquet").to_table()
    assert len(set(t.column("mrn").to_pylist())) == t.num_rows  # one row per record key
    return sorted(t.column("plan").to_pylist())


def test_latest_on_parquet_rewrites_by_manifest(spark, tmp_path):
    policy = _latest(tmp_path, "updated_at")
    o = dict(bronze=str(tmp_path / "bronze"), quarantine=str(tmp_path / "q"), audit=str(tmp_path / "a.jsonl"),
             key_overrides={}, fetchers=Fetchers(environ=ENV), allow_insecure=True, table_format="parquet")
    first = _land(tmp_path / "l1", "x.csv", [("A", "2024-01-01T00:00:00", "gold"), ("B", "2024-01-01T00:00:00", "b1")])
    r1 = run_ingest(spark, policy, "members", IngestOptions(input_path=str(first), **o))
    assert (r1.rows_inserted, r1.rows_updated) == (2, 0) and _plans(tmp_path / "bronze") == ["b1", "gold"]
    second = _land(tmp_path / "l2", "y.csv", [("A", "2024-04-01T00:00:00", "plat"), ("C", "2024-01-01T00:00:00", "c1")])
    r2 = run_ingest(spark, policy, "members", IngestOptions(input_path=str(second), **o))
    assert (r2.rows_inserted, r2.rows_updated) == (1, 1) and _plans(tmp_path / "bronze") == ["b1", "c1", "plat"]
    assert not [n for n in os.listdir(tmp_path / "bronze") if n.startswith("_lhp")]
    # a run killed after committing its swap manifest: the next run finishes that rewrite before it reads
    bronze = str(tmp_path / "bronze")
    stage = os.path.join(bronze, "_lhp_staging_killed")
    spark.read.parquet(bronze).where("plan = 'b1'").write.parquet(stage)  # the "new contents": only b1
    manifest = {"staging": "_lhp_staging_killed", "add": parquet.data_files(stage),
                "remove": parquet.data_files(bronze)}
    with open(os.path.join(bronze, parquet.SWAP), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    r3 = run_ingest(spark, policy, "members", IngestOptions(input_path=str(second), **o))
    assert (r3.rows_inserted, r3.rows_updated) == (2, 0)  # A and C again on top of the finished rewrite
    assert _plans(tmp_path / "bronze") == ["b1", "c1", "plat"]
