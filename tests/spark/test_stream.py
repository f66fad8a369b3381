"""``lakehouse_phi.mask`` on classic Spark (lazy, batch and streaming, the same rows as the batch job) and the
streaming ingest: killed with SIGKILL mid-stream and restarted, the end state is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality

from lakehouse_phi import mask, synth
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from lakehouse_phi.spark.mask import resolve_keys
from lakehouse_phi.spark.read import read_source
from tests.helpers import DEK_VAR, EXAMPLE, ROOT, demo_env
from tests.spark.test_bronze import rd

ENV, OVERRIDES = demo_env()
MARKERS = ("_ingest_run_id", "_ingested_at", "_quarantined_at", "_key_versions")


@pytest.fixture(scope="module")
def loaded():
    return load_policy(EXAMPLE)


def _without(df, cols=MARKERS):
    return df.drop(*[c for c in cols if c in df.columns])


def test_mask_is_lazy_and_gives_the_batch_jobs_rows(spark, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 400}, seed=14, malformed_rate=0.05)
    landing = str(tmp_path / "landing" / "claims")
    keys = resolve_keys(loaded, "claims", key_overrides=OVERRIDES, fetchers=Fetchers(environ=ENV))
    source, _ = read_source(spark, "parquet", landing, {})
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("lhp-mask-lazy", "mask() must not run a job")
    result = mask(source, loaded, "claims", keys=keys)
    assert tracker.getJobIdsForGroup("lhp-mask-lazy") == []          # no Spark action
    spark.sparkContext.setJobGroup("other", "")
    assert "_phi_errors" not in result.valid.columns and "_phi_errors" in result.quarantine.columns
    assert {"_row_fingerprint", "_ingest_run_id", "_ingested_at", "_key_versions"} <= set(result.valid.columns)

    out = run_ingest(spark, loaded, "claims", IngestOptions(
        input_path=landing, bronze=str(tmp_path / "bronze"), audit=str(tmp_path / "audit.jsonl"),
        table_format="parquet", key_overrides=OVERRIDES, fetchers=Fetchers(environ=ENV), allow_insecure=True))
    bronze = spark.read.parquet(str(tmp_path / "bronze"))
    assert_df_equality(_without(result.valid), _without(bronze), ignore_row_order=True, ignore_nullable=True)
    quarantine = spark.read.parquet(str(tmp_path / "bronze_quarantine"))
    assert_df_equality(_without(result.quarantine).drop("_phi_errors"), _without(quarantine).drop("_phi_errors"),
                       ignore_row_order=True, ignore_nullable=True)
    assert out.rows_quarantined == quarantine.count() > 0


def test_mask_works_on_a_streaming_frame(spark, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 300}, seed=15, malformed_rate=0.05)
    landing = str(tmp_path / "landing" / "claims")
    keys = resolve_keys(loaded, "claims", key_overrides=OVERRIDES, fetchers=Fetchers(environ=ENV))
    batch, _ = read_source(spark, "parquet", landing, {})
    stream = spark.readStream.schema(batch.drop("_source_file").schema).parquet(landing)
    streamed = mask(stream, loaded, "claims", keys=keys, run_id="r")
    assert streamed.valid.isStreaming and streamed.quarantine.isStreaming
    query = (streamed.valid.writeStream.format("parquet").option("path", str(tmp_path / "out"))
             .option("checkpointLocation", str(tmp_path / "ck")).trigger(availableNow=True).start())
    query.awaitTermination()
    expected = mask(batch.drop("_source_file"), loaded, "claims", keys=keys, run_id="r").valid
    assert_df_equality(_without(spark.read.parquet(str(tmp_path / "out"))), _without(expected),
                       ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------------------------------- exactly once
def _stream_cmd(tmp: Path, trigger: str) -> list[str]:
    return [sys.executable, "-m", "lakehouse_phi", "ingest", str(EXAMPLE), "--table", "claims", "--engine", "local",
            "--table-format", "delta", "--allow-insecure", "--key", f"phi-dek=env:{DEK_VAR}",
            "--input", str(tmp / "landing" / "claims"), "--bronze", str(tmp / "bronze"),
            "--audit", str(tmp / "audit.jsonl"), "--stream", "--checkpoint", str(tmp / "checkpoint"),
            "--trigger", trigger, "--max-files-per-trigger", "1", "--format", "json"]


def _ingest_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [e for e in (json.loads(x) for x in path.read_text().splitlines()) if e["event"] == "ingest"]


def test_a_stream_killed_mid_way_and_restarted_ends_exact(spark, loaded, tmp_path):
    parts = [synth.generate("claims", 400, seed=40 + i, malformed_rate=0.03) for i in range(6)]
    synth.write_tables(tmp_path, {"claims": parts})
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(_stream_cmd(tmp_path, "processing-time=1 seconds"), cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 600
    while len(_ingest_events(tmp_path / "audit.jsonl")) < 2 and time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    os.killpg(first.pid, signal.SIGKILL)                                # mid-stream, no cleanup
    first.wait()
    done_before = len(_ingest_events(tmp_path / "audit.jsonl"))
    assert 2 <= done_before < 6

    second = subprocess.run(_stream_cmd(tmp_path, "available-now"), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]

    # the end state equals one batch ingest of the same landing folder
    reference = run_ingest(spark, loaded, "claims", IngestOptions(
        input_path=str(tmp_path / "landing" / "claims"), bronze=str(tmp_path / "ref"),
        audit=str(tmp_path / "ref_audit.jsonl"), table_format="delta", key_overrides=OVERRIDES,
        fetchers=Fetchers(environ=ENV), allow_insecure=True))
    for got, want in (("bronze", "ref"), ("bronze_quarantine", "ref_quarantine")):
        g, w = rd(tmp_path / got), rd(tmp_path / want)
        drop = [c for c in MARKERS if c in g.column_names]
        assert_df_equality(spark.createDataFrame(g.drop_columns(drop)), spark.createDataFrame(w.drop_columns(drop)),
                           ignore_row_order=True, ignore_nullable=True)
    assert rd(tmp_path / "bronze").num_rows == reference.rows_written
    claims = rd(tmp_path / "bronze").column("claim_id").to_pylist()
    assert len(claims) == len(set(claims))
    # one closing event per micro-batch, none twice
    # (a restart may plan the files left in fewer, larger micro-batches: Spark re-plans an unlogged batch)
    batches = [e["details"]["stream"]["batch_id"] for e in _ingest_events(tmp_path / "audit.jsonl")]
    assert sorted(batches) == list(range(len(batches))) and len(batches) >= 3
    assert sum(e["rows_read"] for e in _ingest_events(tmp_path / "audit.jsonl")) == 2400  # every row audited once
    verify = subprocess.run([sys.executable, "-m", "lakehouse_phi", "audit", "verify", str(tmp_path / "audit.jsonl"),
                             "--policy", str(EXAMPLE)],  # a sealed trail: its key is in env
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert verify.returncode == 0, verify.stdout + verify.stderr
