"""``ingest --writer spark`` (Spark SQL ``MERGE INTO`` on Delta paths, as Databricks runs it; here on pysail over
Spark Connect) against ``--writer delta-rs`` on the same inputs: the same end state (rows, Delta versions,
quarantine, audit counts) through first runs, re-deliveries and corrections, in ``history`` and ``latest`` mode.

pysail ignores ``txnAppId`` (issue 22.5): a replayed micro-batch on the Spark writer is skipped by the
fingerprint rule alone, which the last test holds."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from lakehouse_phi import synth
from lakehouse_phi.deltars import read_delta
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.batch import run_ingest
from lakehouse_phi.spark.job import IngestOptions, check_keys, plan_job, write_batch
from lakehouse_phi.spark.mask import mask, resolve_keys
from lakehouse_phi.spark.read import read_landing
from tests.helpers import EXAMPLE, demo_env
from tests.spark.test_bronze import LATEST_POLICY, _land

DeltaTable = pytest.importorskip("deltalake").DeltaTable
ENV, OVERRIDES = demo_env()
RUN_MARKERS = ("_ingest_run_id", "_ingested_at", "_quarantined_at")
RANDOMIZED = [c for t in load_policy(EXAMPLE).policy.tables.values() for c, s in t.columns.items()
              if s.effective_ingest.strategy == "encrypt"]


def _rows(path: Path) -> list[str]:
    """A Delta table's rows without the per-run markers, as sorted canonical JSON (maps as sorted pairs); a value
    of a randomized strategy (``encrypt``: a fresh nonce per value) only as present or NULL."""
    table = read_delta(path)
    table = table.drop_columns([c for c in RUN_MARKERS if c in table.column_names])
    for name in RANDOMIZED:
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, pc.is_valid(table.column(name)))
    out = []
    for row in table.to_pylist():
        out.append(json.dumps({k: (sorted(v) if isinstance(v, list) and v and isinstance(v[0], tuple) else v)
                               for k, v in row.items()}, sort_keys=True, default=str))
    return sorted(out)


def _state(tmp: Path, results: list, audit: Path) -> dict:
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    return {
        "counts": [(r.rows_read, r.rows_inserted, r.rows_updated, r.rows_unchanged, r.rows_quarantined)
                   for r in results],
        "bronze": _rows(tmp / "bronze"), "quarantine": _rows(tmp / "quarantine"),
        "versions": {n: DeltaTable(str(tmp / n)).version() for n in ("bronze", "quarantine")},
        "operations": [h["operation"] for h in DeltaTable(str(tmp / "bronze")).history()],
        "audit": [(e["event"], e["rows_read"], e["rows_written"], e["rows_quarantined"],
                   e["details"].get("rows_inserted"), e["details"].get("rows_updated"),
                   e["details"].get("rows_unchanged"), e["details"].get("quarantine_rows_new")) for e in events],
    }


def _history_runs(session, writer: str, tmp: Path, land: Path) -> dict:
    loaded = load_policy(EXAMPLE)
    if not (land / "a").exists():  # both writers read the same files (the hashed _source_file is of the path)
        patients = synth.generate("patients", 400, seed=41, malformed_rate=0.05)
        synth.write_tables(land / "a", {"patients": patients})
        bad = set(synth.generate_table("patients", 400, 41, 0.05).malformed_rows())
        valid = [i for i in range(400) if i not in bad]
        synth.write_tables(land / "b", {"patients": synth.inject(patients, "zip", "10001", [valid[3], valid[9]])})
    o = dict(bronze=str(tmp / "bronze"), quarantine=str(tmp / "quarantine"), audit=str(tmp / "audit.jsonl"),
             key_overrides=OVERRIDES, allow_insecure=True, table_format="delta", writer=writer)
    results = [run_ingest(session, loaded, "patients", IngestOptions(input_path=str(land / d / "landing" / "patients"),
                                                                      **o))
               for d in ("a", "a", "b", "b")]
    assert all(r.writer == writer for r in results)
    return _state(tmp, results, tmp / "audit.jsonl")


def _latest_runs(session, writer: str, tmp: Path, land: Path) -> dict:
    (land / "p.yaml").write_text(LATEST_POLICY.replace("SEQUENCE", "sequence_by: updated_at"))
    policy = load_policy(land / "p.yaml")
    first = _land(land / "l1", "x.csv", [("A", "2024-01-01T00:00:00", "gold"), ("A", "2024-03-01T00:00:00", "plat"),
                                        ("B", "2024-01-01T00:00:00", "b1"), ("C", "not a time", "c0")])
    second = _land(land / "l2", "y.csv", [("A", "2024-04-01T00:00:00", "bronze"), ("B", "2024-01-01T00:00:00", "b1"),
                                         ("C", "2024-01-01T00:00:00", "c1")])
    o = dict(bronze=str(tmp / "bronze"), quarantine=str(tmp / "quarantine"), audit=str(tmp / "audit.jsonl"),
             key_overrides={}, allow_insecure=True, table_format="delta", writer=writer)
    results = [run_ingest(session, policy, "members", IngestOptions(input_path=str(p), **o))
               for p in (first, second, second)]
    return _state(tmp, results, tmp / "audit.jsonl")


@pytest.mark.parametrize("runs", [_history_runs, _latest_runs], ids=["history", "latest"])
def test_the_spark_writer_ends_where_the_deltars_writer_ends(sail, runs, tmp_path, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    spark_state = runs(sail, "spark", tmp_path / "spark", tmp_path)
    deltars_state = runs(sail, "delta-rs", tmp_path / "deltars", tmp_path)
    assert spark_state["counts"] == deltars_state["counts"]
    assert spark_state["bronze"] == deltars_state["bronze"] and spark_state["bronze"]
    assert spark_state["quarantine"] == deltars_state["quarantine"] and spark_state["quarantine"]
    assert spark_state["audit"] == deltars_state["audit"]
    assert spark_state["versions"] == deltars_state["versions"]
    assert "MERGE" in spark_state["operations"]  # the Spark SQL MERGE path really ran


def test_a_replayed_micro_batch_on_the_spark_writer_adds_nothing_by_the_fingerprint_rule(sail, tmp_path,
                                                                                          monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    loaded = load_policy(EXAMPLE)
    synth.write_landing(tmp_path, {"claims": 120}, seed=4, malformed_rate=0.05)
    landing = str(tmp_path / "landing" / "claims")
    opts = IngestOptions(input_path=landing, bronze=str(tmp_path / "bronze"), quarantine=str(tmp_path / "q"),
                         audit=str(tmp_path / "audit.jsonl"), key_overrides=OVERRIDES, allow_insecure=True,
                         table_format="delta", writer="spark")
    job = plan_job(sail, loaded, "claims", opts)
    keys = resolve_keys(loaded, "claims", key_overrides=OVERRIDES)
    check_keys(sail, job, keys)
    spec = loaded.policy.tables["claims"]
    landed = read_landing(sail, spec.source.format, landing, spec.source.options, declared=list(spec.columns))
    result = mask(landed.df, loaded, "claims", keys=keys, run_id=job.run_id, source_columns=landed.columns)
    first = write_batch(sail, job, result, keys, txn=("app-1", 0))
    bronze, quarantine = _rows(tmp_path / "bronze"), _rows(tmp_path / "q")
    replay = write_batch(sail, job, result, keys, txn=("app-1", 0))  # the same micro-batch again
    assert first.written.rows_inserted > 0 and first.tally.rows_quarantined > 0
    assert replay.written.rows_inserted == 0 and replay.written.rows_unchanged == first.tally.rows_valid
    assert _rows(tmp_path / "bronze") == bronze and _rows(tmp_path / "q") == quarantine
    assert DeltaTable(str(tmp_path / "bronze")).transaction_version("app-1") is None  # pysail drops txnAppId


