"""A keyed trail by default (issue 26.1): the worked example seals its trail, a policy without ``audit.key`` is
warned about by ``validate`` (text and JSON), the Delta trail is created append-only with its log and removed files
kept ``audit.retention_days`` (real delta-rs tables), and ``audit verify`` exits 1 for a trail whose settings would
let its history go sooner."""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse_phi.audit import new_event
from lakehouse_phi.audit.chain import seal
from lakehouse_phi.audit.sinks import DELTA_SCHEMA, delta_row, open_audit, retention_problems, trail_properties
from lakehouse_phi.keys.providers import SecretKey
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.advice import UNKEYED_TRAIL, policy_warnings
from tests.helpers import EXAMPLE, run_cli

KEY = bytes(range(32))
ENV = {"TRAIL_KEY": base64.b64encode(KEY).decode()}

POLICY = """
version: 1
name: clinic
{audit}
keys:
  trail: {{provider: env, ref: TRAIL_KEY, version: 1}}
  pseudonym: {{provider: env, ref: TRAIL_KEY, version: 1}}
tables:
  patients:
    source: {{format: csv, path: landing/patients}}
    bronze: /tmp/bronze
    columns:
      mrn: {{type: string, phi: medical_record_number, ingest: {{strategy: hmac, key: pseudonym}}}}
"""


def _policy(tmp_path, audit: str = "") -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(audit=audit))
    return str(path)


def _event(i: int) -> dict:
    return new_event(run_id=f"r{i}", actor="etl", event="ingest", policy_name="clinic", policy_sha256="ef" * 32,
                     table="patients", rows_read=5, rows_written=4, rows_quarantined=1,
                     columns={"mrn": {"strategy": "hmac", "key_version": 1}})


def test_the_worked_example_seals_its_trail_for_six_years():
    policy = load_policy(EXAMPLE).policy
    assert policy.audit_key == "audit-trail" and policy.keys["audit-trail"].provider == "env"
    assert policy.audit_retention_days == 2190
    assert policy_warnings(policy) == []


def test_validate_warns_about_a_policy_without_audit_key(tmp_path):
    path = _policy(tmp_path)
    done = run_cli("validate", path)
    assert done.returncode == 0 and "valid" in done.stdout  # a warning, not an error
    assert "warning: audit.key is not set" in done.stderr and "recompute every hash" in done.stderr
    as_json = json.loads(run_cli("validate", path, "--format", "json").stdout)
    assert as_json["valid"] is True and as_json["warnings"] == [UNKEYED_TRAIL]
    keyed = run_cli("validate", _policy(tmp_path, "audit: {key: trail}"))
    assert keyed.returncode == 0 and "warning" not in keyed.stderr


def test_validate_warns_about_retention_below_six_years_and_checks_the_trail_location(tmp_path):
    done = run_cli("validate", _policy(tmp_path, "audit: {key: trail, retention_days: 365}"))
    assert done.returncode == 0 and "audit.retention_days is 365: below six years" in done.stderr
    both = run_cli("validate", _policy(tmp_path, "audit: {key: trail, table: main.audit.trail, path: /tmp/t}"))
    assert both.returncode == 2 and "audit.table" in both.stderr
    bad = run_cli("validate", _policy(tmp_path, "audit: {key: trail, table: /tmp/trail}"))
    assert bad.returncode == 2 and "CATALOG.SCHEMA.TABLE" in bad.stderr
    ok = load_policy(_policy(tmp_path, "audit: {key: trail, table: main.audit.trail}")).policy
    assert ok.audit is not None and ok.audit.location == "main.audit.trail"


def test_retention_problems_name_each_property():
    assert retention_problems(trail_properties(2190), 2190) == []
    assert retention_problems(trail_properties(3000), 2190) == []
    assert retention_problems({"delta.appendOnly": "true", "delta.logRetentionDuration": "interval 313 weeks",
                               "delta.deletedFileRetentionDuration": "interval 52560 hours"}, 2190) == []
    short = retention_problems({"delta.appendOnly": "true", "delta.logRetentionDuration": "interval 30 days"}, 2190)
    assert len(short) == 2
    assert short[0].startswith("delta.logRetentionDuration is 'interval 30 days', shorter than the 2190 days")
    assert short[1].startswith("delta.deletedFileRetentionDuration is not set (Delta's default: 7 days)")
    assert retention_problems({**trail_properties(), "delta.appendOnly": "false"})[0].startswith(
        "delta.appendOnly is not true")
    unreadable = retention_problems({**trail_properties(), "delta.logRetentionDuration": "forever"})
    assert unreadable == ["delta.logRetentionDuration is 'forever', shorter than the 2190 days the trail must be "
                          "kept (audit.retention_days); set it to 'interval 2190 days'"]


def test_a_new_delta_trail_is_created_append_only_with_its_retention(tmp_path):
    target = str(tmp_path / "trail")
    open_audit(target, SecretKey("trail", 1, KEY), "r0", retention_days=2500).append(_event(0))
    conf = DeltaTable(target).metadata().configuration
    assert conf == {"delta.appendOnly": "true", "delta.logRetentionDuration": "interval 2500 days",
                    "delta.deletedFileRetentionDuration": "interval 2500 days"}
    ok = run_cli("audit", "verify", target, "--key", "trail=env:TRAIL_KEY", "--format", "json", env=ENV)
    out = json.loads(ok.stdout)
    assert ok.returncode == 0 and out["retention"] == {"ok": True, "required_days": 2190, "problems": []}


def _short_trail(path: str) -> None:
    """A Delta trail as an older version (or a hand-made table) leaves it: append-only, default retention."""
    rows = [delta_row(seal(_event(0), None, SecretKey("trail", 1, KEY)))]
    table = pa.Table.from_pylist(rows, schema=DELTA_SCHEMA)
    write_deltalake(path, table, configuration={"delta.appendOnly": "true",
                                                "delta.logRetentionDuration": "interval 30 days"})


@pytest.mark.parametrize("with_key", [True, False])
def test_verify_exits_1_for_a_trail_that_keeps_its_history_too_briefly(tmp_path, with_key):
    target = str(tmp_path / "trail")
    _short_trail(target)
    keys = ["--key", "trail=env:TRAIL_KEY"] if with_key else []
    done = run_cli("audit", "verify", target, *keys, env=ENV)
    assert done.returncode == 1  # a finding, even where the seals could not be checked
    assert "retention: delta.logRetentionDuration is 'interval 30 days', shorter than the 2190 days" in done.stderr
    assert "delta.deletedFileRetentionDuration is not set" in done.stderr
    # the policy's audit.retention_days is the bar; --retention-days overrides it
    policy = _policy(tmp_path, "audit: {key: trail, retention_days: 7}")
    lenient = run_cli("audit", "verify", target, "--policy", policy, env=ENV)
    assert lenient.returncode == 0 and "intact" in lenient.stdout, lenient.stderr
    strict = run_cli("audit", "verify", target, "--policy", policy, "--retention-days", "31", env=ENV)
    assert strict.returncode == 1


def test_a_keyed_trail_without_its_key_still_exits_2(tmp_path):
    target = str(tmp_path / "trail")
    open_audit(target, SecretKey("trail", 1, KEY), "r0").append(_event(0))
    done = run_cli("audit", "verify", target)
    assert done.returncode == 2 and "without its key" in done.stderr
