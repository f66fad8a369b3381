"""Lifecycle commands fail closed: key check values before any change (wrong material refuses, naming the key),
audit-first (a ``_started`` event before the first commit), a SIGKILL at any point leaves each table old or new
with the events that explain it (and a rerun records the killed run and finishes), subjects in chunks to any
number, and every table with a subject column erasable (encounters by record key, claims by ``--by mrn``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse_phi.keys.providers import check_value
from lakehouse_phi.storage.delta import DeltaRsTable
from lakehouse_phi.storage.keycheck import KEY_CHECKS_PROPERTY
from tests.helpers import run_cli
from tests.unit.lifecycle_helpers import ENV, masked, material, policy_text, read, rows, write

pytest.importorskip("deltalake")

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[2]
WRONG = base64.b64encode(hashlib.sha256(b"other material").digest()).decode()


def pseudonym(value: str, version: int) -> str:
    return hmac.new(material("pseudonym", version), value.encode(), hashlib.sha256).hexdigest()


def cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, stdin=stdin, env={**ENV, **(env or {})})


@pytest.fixture
def tables(tmp_path):
    """Bronze: 6 rows under key version 1, 4 under version 2 (pseudonym rotated); quarantine: 2 rows (v1). Bronze
    records the check values it was written with, as ingest does."""
    bronze = tmp_path / "bronze"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(bronze, rotated=("pseudonym", "token", "dek", "fpe-key")))
    old, new = dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC)
    write(bronze, masked(policy, rows(6), 1, old, "run-a"), "run-a")
    write(bronze, masked(policy, rows(4, start=6), 2, new, "run-b"), "run-b")
    write(tmp_path / "bronze_quarantine", masked(policy, {k: [v[1], v[1]] for k, v in rows(2).items()}, 1, old,
                                                 "run-a"), "run-a")
    checks = {"pseudonym": {"version": 2, "check": check_value(material("pseudonym", 2))},
              "token": {"version": 2, "check": check_value(material("token", 2))}}
    DeltaRsTable(str(bronze)).set_properties({KEY_CHECKS_PROPERTY: json.dumps(checks)})
    return tmp_path, bronze, policy


def _common(tmp_path, bronze, policy, table="patients"):
    return [str(policy), "--table", table, "--bronze", str(bronze), "--audit", str(tmp_path / "audit.jsonl")]


def _state(path: Path) -> list:
    return sorted(read(path).column("_row_fingerprint").to_pylist()) if path.exists() else []


# ------------------------------------------------------------------------------------------------------- key check
@pytest.mark.parametrize("wrong", ["LC_PSEUDONYM_V2", "LC_PSEUDONYM_V1"])
def test_erase_with_other_material_under_a_recorded_version_refuses_naming_the_key(tables, wrong):
    tmp_path, bronze, policy = tables
    if wrong == "LC_PSEUDONYM_V1":  # v1's check value is in the trail only (an earlier run's event)
        cli("purge", *_common(tmp_path, bronze, policy), "--as-of", "2023-01-01")
        trail = tmp_path / "audit.jsonl"
        lines = trail.read_text().splitlines()
        first = json.loads(lines[0])
        assert first["event"] == "purge_started"
        # a genuine earlier ingest event of the table recorded v1 (appended through the sink, so it is chained)
        from lakehouse_phi.audit import JsonlSink, new_event
        from lakehouse_phi.keys.providers import load_key
        from lakehouse_phi.policy import load_policy

        spec = load_policy(policy).policy.keys["trail"]
        os.environ.update(ENV)
        JsonlSink(trail, load_key("trail", spec)).append(new_event(
            run_id="run-a", actor="t", event="ingest", policy_name="lifecycle-test", policy_sha256="0" * 64,
            table="patients", rows_read=6, rows_written=6, rows_quarantined=0, columns={},
            details={"key_checks": {"pseudonym": {"version": 1, "check": check_value(material("pseudonym", 1))}}}))
    before = (_state(bronze), _state(tmp_path / "bronze_quarantine"))
    events_before = (tmp_path / "audit.jsonl").read_text() if (tmp_path / "audit.jsonl").exists() else ""
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="MRN0000001\n",
               env={wrong: WRONG})
    version = wrong[-1]
    assert proc.returncode == 1 and f"key 'pseudonym' version {version}" in proc.stderr and "nothing" in proc.stderr
    assert (_state(bronze), _state(tmp_path / "bronze_quarantine")) == before
    after = (tmp_path / "audit.jsonl").read_text() if (tmp_path / "audit.jsonl").exists() else ""
    assert after == events_before  # refused before the pending event


def test_rekey_with_other_new_material_refuses(tables):
    """The table was written (in part) under token v2; rekey with other v2 material would re-make every old token
    under a key that matches nothing: refused, naming the key, before anything is written."""
    tmp_path, bronze, policy = tables
    v0 = DeltaRsTable(str(bronze)).version()
    proc = cli("rekey", *_common(tmp_path, bronze, policy), env={"LC_TOKEN_V2": WRONG})
    assert proc.returncode == 1 and "key 'token' version 2" in proc.stderr
    assert DeltaRsTable(str(bronze)).version() == v0 and not (tmp_path / "audit.jsonl").exists()
    proc = cli("rekey", *_common(tmp_path, bronze, policy), "--allow-partial", "--format", "json")  # right material
    assert proc.returncode == 0 and json.loads(proc.stdout)["bronze_rows_rewritten"] > 0


def test_erase_refuses_rows_under_a_version_it_did_not_resolve(tables):
    tmp_path, bronze, policy = tables
    policy.write_text(policy.read_text().replace(
        "pseudonym: {provider: env, ref: LC_PSEUDONYM_V2, version: 2, previous: {1: LC_PSEUDONYM_V1}}",
        "pseudonym: {provider: env, ref: LC_PSEUDONYM_V2, version: 2}"))
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="MRN0000001\n")
    assert proc.returncode == 1 and "version(s) [1]" in proc.stderr and "keys.pseudonym.previous" in proc.stderr


# ---------------------------------------------------------------------------------------------------------- kills
@pytest.mark.parametrize("point", ["event:erase_started", "commit:bronze", "commit:quarantine", "event:erase"])
def test_a_kill_at_any_point_leaves_old_or_new_state_with_its_events(tables, point):
    tmp_path, bronze, policy = tables
    quarantine = tmp_path / "bronze_quarantine"
    old = (_state(bronze), _state(quarantine))
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.unit.lifecycle_kill", point, "--", "erase",
                           *_common(tmp_path, bronze, policy), "--subjects", "-"], input="MRN0000001\n",
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == -9, proc.stderr  # SIGKILL
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    killed = events[0]["run_id"]
    assert events[0]["event"] == "erase_started"  # the pending event precedes every change
    now = (_state(bronze), _state(quarantine))
    changed = [name for name, a, b in zip(("bronze", "quarantine"), old, now) if a != b]
    expected_changed = {"event:erase_started": [], "commit:bronze": ["bronze"],
                        "commit:quarantine": ["bronze", "quarantine"], "event:erase": ["bronze", "quarantine"]}
    assert changed == expected_changed[point]
    for name in changed:  # every change carries the run id of the pending event
        location = bronze if name == "bronze" else quarantine
        assert DeltaRsTable(str(location)).run_versions(killed)
    # the next run records the killed one (with its commits) and finishes the job
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--format", "json",
               stdin="MRN0000001\n")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    if point == "event:erase":
        assert names == ["erase_started", "erase", "erase_started", "erase"]
    else:
        assert names == ["erase_started", "erase_unfinished", "erase_started", "erase"]
        unfinished = events[1]["details"]
        assert unfinished["pending_run_id"] == killed
        assert sorted(k for k, v in unfinished["commits"].items() if v) == changed
    assert len(read(bronze).column("mrn")) == 9 and read(quarantine).num_rows == 0
    assert cli("audit", "verify", str(tmp_path / "audit.jsonl"), "--policy", str(policy)).returncode == 0


def test_purge_and_rekey_write_their_pending_event_first(tables):
    tmp_path, bronze, policy = tables
    assert cli("purge", *_common(tmp_path, bronze, policy), "--as-of", "2024-02-01").returncode == 0
    assert cli("rekey", *_common(tmp_path, bronze, policy), "--allow-partial").returncode == 0
    events = [json.loads(x)["event"] for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert events == ["purge_started", "purge", "rekey_started", "rekey"]


# ------------------------------------------------------------------------------------------------------- subjects
def test_subjects_in_chunks_count_and_name_lines_across_chunks(tables, monkeypatch):
    from lakehouse_phi.lifecycle import erase as erase_mod

    tmp_path, bronze, policy = tables
    monkeypatch.setattr(erase_mod, "CHUNK", 3)
    lines = ["MRN0000001", "", "MRN0000002", "MRN0000001", "MRN0000003", "MRN0000002", "MRN0000009"]
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--dry-run", "--format", "json",
               stdin="\n".join(lines) + "\n")
    out = json.loads(proc.stdout)
    assert out["subjects"] == 4 and out["bronze_rows_deleted"] == 4 and out["quarantine_rows_deleted"] == 2
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-",
               stdin="\n".join([*lines, "", "", "not-an-mrn"]) + "\n")
    assert proc.returncode == 0  # the policy's mrn has no pattern here: any string is a valid subject
    policy.write_text(policy.read_text().replace("mrn: {type: string,", "mrn: {type: int,", 1))
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="1\n2\n3\n4\n5\nx\n7\n")
    assert proc.returncode == 2 and "line(s) 6 " in proc.stderr


def test_sixty_thousand_subjects(tables):
    """erase segfaulted at 50,000 subjects (one IN list); now they stream through a MERGE source."""
    tmp_path, bronze, policy = tables
    subjects = "\n".join(f"MRN{i:07d}" for i in range(1, 60_001)) + "\n"
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--format", "json", stdin=subjects)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["subjects"], out["bronze_rows_deleted"], out["quarantine_rows_deleted"]) == (60_000, 9, 2)
    event = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert "pseudonyms" not in event["details"] and len(event["details"]["subjects_sha256"]) == 64
    assert len(json.dumps(event)) < 4000  # counts and a digest, not 60,000 pseudonyms


# ----------------------------------------------------------------------------------------- encounters and claims
def _encounters_policy(tmp_path: Path) -> Path:
    text = policy_text(tmp_path / "bronze").replace("tables:\n", f"""tables:
  encounters:
    source: {{format: json, path: landing/encounters}}
    bronze: {tmp_path}/encounters
    record_key: [encounter_id]
    columns:
      encounter_id: {{type: string, required: true}}
      mrn: {{type: string, required: true, phi: medical_record_number, ingest: {{strategy: hmac, key: pseudonym}}}}
  claims:
    source: {{format: json, path: landing/claims}}
    bronze: {tmp_path}/claims
    record_key: [claim_id]
    columns:
      claim_id: {{type: string, required: true}}
      mrn: {{type: string, required: true, phi: medical_record_number, ingest: {{strategy: hmac, key: pseudonym}}}}
""", 1)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _visits(ids: list[str], mrns: list[str], id_col: str) -> pa.Table:
    n = len(ids)
    return pa.table({id_col: ids, "mrn": [pseudonym(m, 1) for m in mrns],
                     "_key_versions": pa.array([[("mrn", 1)]] * n, pa.map_(pa.string(), pa.int32())),
                     "_ingest_run_id": ["run-e"] * n,
                     "_ingested_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC)] * n, pa.timestamp("us", "UTC")),
                     "_row_fingerprint": [hashlib.sha256(i.encode()).hexdigest() for i in ids]})


def test_encounters_by_record_key_and_claims_by_patient(tmp_path):
    policy = _encounters_policy(tmp_path)
    write(tmp_path / "encounters", _visits(["E1", "E2", "E3"], ["MRN0000001", "MRN0000001", "MRN0000002"],
                                           "encounter_id"), "run-e")
    write(tmp_path / "claims", _visits(["C1", "C2", "C3"], ["MRN0000001", "MRN0000002", "MRN0000001"],
                                       "claim_id"), "run-e")
    trail = str(tmp_path / "audit.jsonl")
    proc = cli("erase", str(policy), "--table", "encounters", "--audit", trail, "--subjects", "-",
               "--format", "json", stdin="E2\n")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["bronze_rows_deleted"] == 1 and out["pseudonym_column"] == "encounter_id"
    assert read(tmp_path / "encounters").column("encounter_id").to_pylist() == ["E1", "E3"]
    proc = cli("erase", str(policy), "--table", "claims", "--by", "mrn", "--audit", trail, "--subjects", "-",
               "--format", "json", stdin="MRN0000001\n")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["bronze_rows_deleted"] == 2
    assert read(tmp_path / "claims").column("claim_id").to_pylist() == ["C2"]
    text = Path(trail).read_text()
    assert "MRN0000001" not in text and "E2" not in json.dumps([json.loads(x)["details"] for x in
                                                                text.splitlines()])
    proc = cli("erase", str(policy), "--table", "claims", "--by", "nope", "--audit", trail, "--subjects", "-",
               stdin="x\n")
    assert proc.returncode == 2 and "--by nope" in proc.stderr
