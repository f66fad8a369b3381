"""``erase`` and ``purge`` on real Delta tables (delta-rs), as a user runs them: subprocess, exit codes, one
commit per table tagged with the run id, one audit event that `audit verify --against` accounts for."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess

import pytest

from tests.helpers import run_cli
from tests.unit.lifecycle_helpers import ENV, masked, material, policy_text, read, rows, write

pytest.importorskip("deltalake")  # the [local] extra: real Delta tables through delta-rs

UTC = dt.timezone.utc


def pseudonym(mrn: str, version: int) -> str:
    return hmac.new(material("pseudonym", version), mrn.encode(), hashlib.sha256).hexdigest()


def cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, stdin=stdin, env={**ENV, **(env or {})})


@pytest.fixture
def tables(tmp_path):
    """Bronze with 6 rows under key version 1 (ingested 2024-01-01) and 4 under version 2 (2024-06-01); quarantine
    with 2 rows of MRN0000001's pseudonym (v1)."""
    bronze = tmp_path / "bronze"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(bronze, rotated=("pseudonym", "token", "dek", "fpe-key")))
    old, new = dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC)
    write(bronze, masked(policy, rows(6), 1, old, "run-a"), "run-a")
    write(bronze, masked(policy, rows(4, start=6), 2, new, "run-b"), "run-b")
    q = masked(policy, {k: [v[1], v[1]] for k, v in rows(2).items()}, 1, old, "run-a")
    write(tmp_path / "bronze_quarantine", q, "run-a")
    return tmp_path, bronze, policy


def _common(tmp_path, bronze, policy):
    return [str(policy), "--table", "patients", "--bronze", str(bronze), "--audit", str(tmp_path / "audit.jsonl")]


def test_erase_matches_every_key_version_and_audits_pseudonyms_only(tables):
    tmp_path, bronze, policy = tables
    subjects = "MRN0000001\n\n  MRN0000007 \nMRN0000001\n"  # v1 row (+2 quarantined), v2 row; blank and dupe
    before = read(bronze).column("mrn").to_pylist()
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--format", "json", stdin=subjects)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["subjects"], out["bronze_rows_deleted"], out["quarantine_rows_deleted"]) == (2, 2, 2)
    assert out["key_versions"] == [1, 2] and out["vacuum"][0].startswith(f"VACUUM delta.`{bronze}` RETAIN 168")
    after = read(bronze).column("mrn").to_pylist()
    expected = {pseudonym("MRN0000001", 1), pseudonym("MRN0000007", 2)}  # computed here, with the stdlib
    assert len(after) == 8 and set(before) - set(after) == expected
    assert read(tmp_path / "bronze_quarantine").num_rows == 0
    trail = (tmp_path / "audit.jsonl").read_text()
    assert "MRN000000" not in trail and "MRN000000" not in proc.stdout + proc.stderr
    events = [json.loads(line) for line in trail.splitlines()]
    assert [e["event"] for e in events] == ["erase_started", "erase"]  # audit-first: pending, then closing
    event = events[-1]
    assert event["event"] == "erase" and event["seal_key"] == "trail" and events[0]["run_id"] == event["run_id"]
    assert event["details"]["pseudonyms"] == sorted([pseudonym("MRN0000001", 2), pseudonym("MRN0000007", 2)])
    assert event["details"]["bronze_rows_deleted"] == 2 and event["run_id"] == out["run_id"]
    from deltalake import DeltaTable

    last = DeltaTable(str(bronze)).history(1)[0]
    # one MERGE ... WHEN MATCHED DELETE per table (the subjects are its source), named in the closing event
    assert last["operation"] == "MERGE" and last["userMetadata"] == out["run_id"]
    assert event["details"]["commits"]["bronze"] == {"version": last["version"], "operation": "MERGE"}
    # a second erase of the same subjects finds nothing
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--format", "json", stdin=subjects)
    assert json.loads(proc.stdout)["bronze_rows_deleted"] == 0


def test_erase_dry_run_and_vacuum(tables):
    tmp_path, bronze, policy = tables
    subjects = tmp_path / "subjects.txt"
    subjects.write_text("MRN0000002\n")
    from deltalake import DeltaTable

    v0 = DeltaTable(str(bronze)).version()
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", str(subjects), "--dry-run")
    assert proc.returncode == 0 and "would delete 1 bronze" in proc.stdout
    assert DeltaTable(str(bronze)).version() == v0 and not (tmp_path / "audit.jsonl").exists()
    files_before = set(os.listdir(bronze))
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", str(subjects), "--vacuum-hours", "0")
    assert proc.returncode == 0, proc.stderr
    assert "vacuumed" in proc.stdout and read(bronze).num_rows == 9
    gone = {f for f in files_before - set(os.listdir(bronze)) if f.endswith(".parquet")}
    assert gone  # the file that held the erased row is removed


def test_erase_subjects_never_on_argv_and_bad_lines_named(tables):
    tmp_path, bronze, policy = tables
    proc = cli("erase", *_common(tmp_path, bronze, policy), "MRN0000001")
    assert proc.returncode == 2  # no --subjects: usage error
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="")
    assert proc.returncode == 2 and "none given" in proc.stderr


def test_erase_missing_key_exits_1_and_deletes_nothing(tables):
    tmp_path, bronze, policy = tables
    from deltalake import DeltaTable

    v0 = DeltaTable(str(bronze)).version()
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="MRN0000001\n",
               env={"LC_PSEUDONYM_V1": ""})
    assert proc.returncode == 1 and "key 'pseudonym'" in proc.stderr and "LC_PSEUDONYM_V1" in proc.stderr
    assert DeltaTable(str(bronze)).version() == v0 and not (tmp_path / "audit.jsonl").exists()


def test_purge_deletes_rows_past_retention(tables):
    tmp_path, bronze, policy = tables
    common = _common(tmp_path, bronze, policy)
    # retention 30 days: as of 2024-01-31 the cutoff is 2024-01-01 00:00 -> nothing older
    proc = cli("purge", *common, "--as-of", "2024-01-31", "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["cutoff"] == "2024-01-01T00:00:00Z" and out["bronze_rows_deleted"] == 0
    proc = cli("purge", *common, "--as-of", "2024-02-01", "--dry-run", "--format", "json")
    assert json.loads(proc.stdout)["bronze_rows_deleted"] == 6 and read(bronze).num_rows == 10
    proc = cli("purge", *common, "--as-of", "2024-02-01", "--format", "json")
    out = json.loads(proc.stdout)
    assert (out["bronze_rows_deleted"], out["quarantine_rows_deleted"]) == (6, 2)
    left = read(bronze)
    assert left.num_rows == 4 and set(left.column("_ingest_run_id").to_pylist()) == {"run-b"}
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["purge_started", "purge", "purge_started", "purge"]
    assert events[3]["details"]["bronze_rows_deleted"] == 6
    proc = cli("audit", "verify", str(tmp_path / "audit.jsonl"), "--policy", str(policy))
    assert proc.returncode == 0, proc.stderr


def test_purge_without_retention_days_exits_2(tables):
    tmp_path, bronze, policy = tables
    policy.write_text(policy.read_text().replace("    retention_days: 30\n", ""))
    proc = cli("purge", *_common(tmp_path, bronze, policy))
    assert proc.returncode == 2 and "retention_days" in proc.stderr


def test_delta_audit_trail_without_spark_and_against(tables):
    """The lifecycle commands append to a Delta trail through delta-rs; --against finds the ingest commits
    (run-a, run-b) without events but accepts the purge's own commit."""
    tmp_path, bronze, policy = tables
    trail = tmp_path / "trail"
    common = [str(policy), "--table", "patients", "--bronze", str(bronze), "--audit", str(trail)]
    assert cli("purge", *common, "--as-of", "2024-02-01").returncode == 0
    assert cli("erase", *common, "--subjects", "-", stdin="MRN0000007\n").returncode == 0
    proc = cli("audit", "verify", str(trail), "--policy", str(policy), "--against", str(bronze), "--format", "json")
    out = json.loads(proc.stdout)
    assert out["events"] == 4 and out["sealed"] == 4 and out["first_bad"] is None  # each: _started + closing
    problems = " | ".join(out["against"]["problems"])
    assert proc.returncode == 1 and "run 'run-a' has no event" in problems and "run 'run-b'" in problems
    assert "DELETE" not in problems
    from deltalake import DeltaTable

    assert DeltaTable(str(trail)).metadata().configuration.get("delta.appendOnly") == "true"


def test_an_unreadable_table_refuses_before_any_change(tables):
    """The quarantine's data file is gone (storage lost it): erase reads both tables before it changes anything, so it
    refuses (exit 1) naming the table, and bronze is untouched."""
    tmp_path, bronze, policy = tables
    from deltalake import DeltaTable

    v0 = DeltaTable(str(bronze)).version()
    for f in (tmp_path / "bronze_quarantine").glob("*.parquet"):
        f.unlink()
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="MRN0000001\n")
    assert proc.returncode == 1 and "bronze_quarantine" in proc.stderr and "nothing was changed" in proc.stderr
    assert "Traceback" not in proc.stderr and DeltaTable(str(bronze)).version() == v0


def test_a_failed_commit_is_audited_and_exits_1(tables, monkeypatch):
    """The quarantine commit fails (a storage error after bronze was erased): the run records what it did
    (erase_failed, after its erase_started) and exits 1; a rerun finishes the job."""
    from lakehouse_phi.storage.delta import DeltaRsTable

    tmp_path, bronze, policy = tables
    real = DeltaRsTable.commit_with

    def failing(self, operation, commit):
        if "quarantine" in str(self.target):
            raise OSError("storage lost the quarantine")
        return real(self, operation, commit)

    monkeypatch.setattr(DeltaRsTable, "commit_with", failing)
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", stdin="MRN0000001\n")
    assert proc.returncode == 1 and "commit to quarantine failed" in proc.stderr and "Traceback" not in proc.stderr
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["erase_started", "erase_failed"]
    assert events[-1]["details"]["done"] == {"bronze_rows_deleted": 1}
    assert "MRN0000001" not in proc.stderr + json.dumps(events)
    monkeypatch.setattr(DeltaRsTable, "commit_with", real)
    proc = cli("erase", *_common(tmp_path, bronze, policy), "--subjects", "-", "--format", "json",
               stdin="MRN0000001\n")
    out = json.loads(proc.stdout)
    assert (out["bronze_rows_deleted"], out["quarantine_rows_deleted"]) == (0, 2)
