"""`lakehouse-phi audit verify` as a user runs it: a subprocess, exit codes 0/1/2, text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from tests.helpers import run_cli


def verify_cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli("audit", "verify", *args)


@pytest.fixture
def trail(tmp_path):
    sink = JsonlSink(tmp_path / "audit.jsonl")
    events = [sink.append(new_event(run_id=f"r{i}", actor="etl", event="ingest", policy_name="clinic",
                                    policy_sha256="ef" * 32, table="patients", rows_read=5, rows_written=4,
                                    rows_quarantined=1, columns={"ssn": {"strategy": "hmac", "key_version": 1}}))
              for i in range(3)]
    return sink.path, events


def test_intact_exits_0_with_count_and_last_hash(trail):
    path, events = trail
    proc = verify_cli(str(path))
    assert proc.returncode == 0, proc.stderr
    assert "3 events" in proc.stdout and events[-1]["hash"] in proc.stdout
    proc = verify_cli(str(path), "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["ok"] and out["events"] == 3 and out["last_hash"] == events[-1]["hash"]


def test_tampered_exits_1_naming_the_event(trail):
    path, events = trail
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"rows_quarantined":1', '"rows_quarantined":0')
    path.write_text("\n".join(lines) + "\n")
    proc = verify_cli(str(path))
    assert proc.returncode == 1
    assert events[1]["event_id"] in proc.stderr and "seq 1" in proc.stderr and "hash" in proc.stderr
    out = json.loads(verify_cli(str(path), "--format", "json").stdout)
    assert (out["ok"], out["first_bad"], out["event_id"]) == (False, 1, events[1]["event_id"])


def test_deleted_middle_event_exits_1(trail):
    path, events = trail
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")
    proc = verify_cli(str(path), "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["event_id"] == events[2]["event_id"] and "missing" in out["reason"]


def test_missing_or_unreadable_exits_2(tmp_path):
    proc = verify_cli(str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    (tmp_path / "plain_dir").mkdir()
    proc = verify_cli(str(tmp_path / "plain_dir"))
    assert proc.returncode == 2 and "Delta" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "lakehouse_phi", "audit"], capture_output=True, text=True)
    assert proc.returncode == 2


def test_verify_does_not_import_pyspark(trail):
    path, _ = trail
    code = ("import sys; from lakehouse_phi.cli import main; rc = main(['audit', 'verify', sys.argv[1]]); "
            "assert not [m for m in sys.modules if m.startswith('pyspark')], 'pyspark imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
