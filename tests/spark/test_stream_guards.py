"""The stream has the batch job's guards (issue 23.1), tried with hostile inputs: other key material under the same
key version refuses before the first micro-batch; a landing file whose header carries PHI (or is shifted, empty,
duplicated, or drifts) is skipped with an ``ingest_refused`` event and the stream goes on; nothing from a header or
a file name reaches stderr, the audit trail or the checkpoint beyond the paths Spark's file source records; every
failed micro-batch leaves an audit event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_phi.errors import JobRefused, KeyMaterialError
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.job import IngestOptions
from lakehouse_phi.spark.stream import ingest_stream
from tests.helpers import ROOT, demo_env
from tests.spark.test_bronze import rd

pytest.importorskip("deltalake")
ENV, _ = demo_env()
SENTINEL = "Zebulon Quackenbush 078-05-1120"  # a name and an SSN, as a header cell and in a file name
HEADER = "claim_id,mrn,service_date,amount,payer"
POLICY = """
version: 1
name: stream-guards
keys:
  pseudonym: {provider: env, ref: LAKEHOUSE_PHI_PSEUDONYM_KEY, version: 1}
tables:
  claims:
    source: {format: csv, path: landing, options: {header: "true"}}
    bronze: main.bronze.claims
    record_key: [claim_id]
    on_unclassified: fail
    columns:
      claim_id:     {type: string, required: true}
      mrn:          {type: string, required: true, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
      service_date: {type: date}
      amount:       {type: "decimal(12,2)"}
      payer:        {type: string}
"""


@pytest.fixture
def policy(tmp_path) -> Path:
    (tmp_path / "p.yaml").write_text(POLICY)
    return tmp_path / "p.yaml"


def _claims(n: int, start: int = 0) -> str:
    return "".join(f"C{start + i:07d},MRN{start + i:07d},2024-01-{1 + i % 28:02d},{10 + i}.50,Acme\n"
                   for i in range(n))


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _stream_cli(tmp: Path, policy: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lakehouse_phi", "ingest", str(policy), "--table", "claims",
           "--table-format", "delta", "--allow-insecure",
           "--input", str(tmp / "landing"), "--bronze", str(tmp / "bronze"), "--audit", str(tmp / "audit.jsonl"),
           "--stream", "--checkpoint", str(tmp / "checkpoint"), "--max-files-per-trigger", "1", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


def _everything_written(tmp: Path) -> str:
    """Every byte the run left: audit trail, checkpoint, bronze and quarantine (Delta logs and Parquet)."""
    out = []
    for root in ("audit.jsonl", "checkpoint", "bronze", "bronze_quarantine"):
        p = tmp / root
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()] if p.exists() else []
        out += [f.read_bytes().decode("latin-1") for f in files]
    return "\n".join(out)


def test_bad_files_are_skipped_with_a_refusal_and_the_stream_goes_on(tmp_path, policy):
    land = tmp_path / "landing"
    land.mkdir()
    (land / "a.csv").write_text(HEADER + "\n" + _claims(5))
    (land / "b.csv").write_text(f"{HEADER},{SENTINEL}\n" + _claims(3, 100).replace("\n", ",x\n"))  # PHI header
    (land / "c.csv").write_text("mrn,claim_id,service_date,amount\n" + "MRN1,C1,2024-01-01,1.00\n")  # no payer
    (land / "d.csv").write_text("claim_id,claim_id,mrn,service_date,amount,payer\n")  # duplicate name
    (land / f"e {SENTINEL}.csv").write_text(HEADER + "\n" + _claims(4, 200))  # PHI in the file name: a good file
    (land / "f.csv").write_text(HEADER + "\n" + _claims(6, 300))
    out = _stream_cli(tmp_path, policy, "--engine", "auto")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "engine auto: local" in out.stderr  # --stream: auto skips pysail, which cannot stream, and says so
    events = _events(tmp_path / "audit.jsonl")
    refused = [e for e in events if e["event"] == "ingest_refused"]
    assert len(refused) == 3 and all(e["details"].get("skipped_file") for e in refused)
    ingested = [e for e in events if e["event"] == "ingest"]
    assert sum(e["rows_read"] for e in ingested) == 5 + 4 + 6  # every good file written: the stream advanced
    assert rd(tmp_path / "bronze").num_rows == 15
    # PHI from a header never leaves the file; a file name only where Spark's file source records it
    for part in SENTINEL.split():
        assert part not in out.stderr and part not in out.stdout
        assert part not in (tmp_path / "audit.jsonl").read_text()
    written = _everything_written(tmp_path)
    assert "Quackenbush" in "\n".join(f.read_bytes().decode("latin-1") for f in (tmp_path / "checkpoint" / "sources")
                                      .rglob("*") if f.is_file())  # positive control: Spark's file source log
    checkpoint_rest = "\n".join(f.read_bytes().decode("latin-1") for f in (tmp_path / "checkpoint").rglob("*")
                                if f.is_file() and "sources" not in f.parts)
    assert "Quackenbush" not in checkpoint_rest
    assert "Zebulon Quackenbush" not in written.replace(str(land / f"e {SENTINEL}.csv"), "")
    # a restart reads nothing again and refuses nothing again
    again = _stream_cli(tmp_path, policy, "--engine", "local")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(_events(tmp_path / "audit.jsonl")) == len(events)


def test_other_key_material_refuses_before_the_first_micro_batch(spark, tmp_path, policy, monkeypatch):
    land = tmp_path / "landing"
    land.mkdir()
    (land / "a.csv").write_text(HEADER + "\n" + _claims(5))
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    loaded = load_policy(policy)
    opts = dict(input_path=str(land), bronze=str(tmp_path / "bronze"), audit=str(tmp_path / "audit.jsonl"),
                table_format="delta", allow_insecure=True)
    first = ingest_stream(spark, loaded, "claims", IngestOptions(**opts), checkpoint=str(tmp_path / "ck1"))
    assert first.batches and rd(tmp_path / "bronze").num_rows == 5
    (land / "b.csv").write_text(HEADER + "\n" + _claims(3, 50))
    other = {**ENV, "LAKEHOUSE_PHI_PSEUDONYM_KEY": "11" * 32}  # same version 1, other material
    with pytest.raises((JobRefused, KeyMaterialError)) as err:
        ingest_stream(spark, loaded, "claims", IngestOptions(**opts, fetchers=Fetchers(environ=other)),
                      checkpoint=str(tmp_path / "ck2"))  # a new checkpoint would re-read a.csv under new pseudonyms
    assert "pseudonym" in str(err.value)
    assert rd(tmp_path / "bronze").num_rows == 5  # nothing re-inserted
    assert not (tmp_path / "ck2" / "commits").exists() or not list((tmp_path / "ck2" / "commits").iterdir())
    last = _events(tmp_path / "audit.jsonl")[-1]
    assert last["event"] == "ingest_refused" and "pseudonym" in last["details"]["message"]


def test_a_failed_micro_batch_leaves_an_audit_event(spark, tmp_path, policy, monkeypatch):
    land = tmp_path / "landing"
    land.mkdir()
    (land / "a.csv").write_text(HEADER + "\n" + _claims(5))
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "q").write_text("not a table")  # quarantine cannot be written: the micro-batch fails
    loaded = load_policy(policy)
    opts = IngestOptions(input_path=str(land), bronze=str(tmp_path / "bronze"), quarantine=str(tmp_path / "q"),
                         audit=str(tmp_path / "audit.jsonl"), table_format="delta",
                         allow_insecure=True)
    with pytest.raises(JobRefused):
        ingest_stream(spark, loaded, "claims", opts, checkpoint=str(tmp_path / "ck"))
    events = _events(tmp_path / "audit.jsonl")
    assert events[-1]["event"] == "ingest_refused"
    assert events[-1]["details"]["stream"]["batch_id"] == 0
