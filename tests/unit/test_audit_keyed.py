"""Keyed audit trails: HMAC-SHA256 seals under the policy's audit.key, and `audit verify --policy/--key/--against`
as a user runs it (a subprocess), exit codes 0 intact / 1 tampered / 2 keyed trail without its key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from lakehouse_phi.audit.anchor import check_against, commit_run_id
from lakehouse_phi.audit.chain import GENESIS_HASH, canonical_json, event_hash, verify, verify_chain
from lakehouse_phi.keys.providers import SecretKey
from tests.helpers import run_cli

K1 = bytes(range(32))
K2 = bytes(range(1, 33))
ENV = {"TRAIL_K1": base64.b64encode(K1).decode(), "TRAIL_K2": base64.b64encode(K2).decode()}

POLICY = """
version: 1
name: clinic
audit: {key: trail}
keys:
  trail: {provider: env, ref: TRAIL_K2, version: 2, previous: {1: TRAIL_K1}}
  pseudonym: {provider: env, ref: TRAIL_K1, version: 1}
tables:
  patients:
    source: {format: csv, path: landing/patients}
    bronze: /tmp/bronze
    record_key: [mrn]
    columns:
      mrn: {type: string, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
"""


def _event(i: int) -> dict:
    return new_event(run_id=f"r{i}", actor="etl", event="ingest", policy_name="clinic", policy_sha256="ef" * 32,
                     table="patients", rows_read=5, rows_written=4, rows_quarantined=1,
                     columns={"mrn": {"strategy": "hmac", "key_version": 1}})


def verify_cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli("audit", "verify", *args, env=ENV)


@pytest.fixture
def keyed(tmp_path):
    """Two events sealed under trail v1, then two under v2 (a rotation)."""
    path = tmp_path / "audit.jsonl"
    events = [JsonlSink(path, SecretKey("trail", 1, K1)).append(_event(i)) for i in range(2)]
    events += [JsonlSink(path, SecretKey("trail", 2, K2)).append(_event(i)) for i in range(2, 4)]
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return path, events, policy


def _rewrite(path: Path, change) -> None:
    """The attack: change events, then recompute every seq/prev_hash/hash with the package's own chain function
    (the mac fields are left as they are: without the key they cannot be recomputed)."""
    events = [json.loads(line) for line in path.read_text().splitlines()]
    prev = GENESIS_HASH
    out = []
    for ev in events:
        ev = change(ev)
        ev["prev_hash"] = prev
        ev["hash"] = event_hash(ev)
        prev = ev["hash"]
        out.append(canonical_json(ev))
    path.write_text("\n".join(out) + "\n")


def test_seal_is_hmac_sha256_over_the_event_without_hash_and_mac(keyed):
    _path, events, _policy = keyed
    ev = events[0]
    body = {k: v for k, v in ev.items() if k not in ("hash", "mac")}
    expected = hmac.new(K1, canonical_json(body).encode(), hashlib.sha256).hexdigest()
    assert (ev["seal_key"], ev["seal_key_version"], ev["mac"]) == ("trail", 1, expected)
    assert events[2]["seal_key_version"] == 2
    unhashed = {k: v for k, v in ev.items() if k != "hash"}
    assert ev["hash"] == hashlib.sha256(canonical_json(unhashed).encode()).hexdigest()


def test_intact_keyed_trail_verifies_with_every_version(keyed):
    path, events, policy = keyed
    proc = verify_cli(str(path), "--policy", str(policy), "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert out["ok"] and out["sealed"] == 4 and out["last_hash"] == events[-1]["hash"]
    proc = verify_cli(str(path), "--key", "trail@1=env:TRAIL_K1", "--key", "trail@2=env:TRAIL_K2")
    assert proc.returncode == 0 and "4 sealed" in proc.stdout


def test_rewriting_every_event_and_recomputing_hashes_is_detected(keyed):
    path, events, policy = keyed
    _rewrite(path, lambda ev: {**ev, "rows_quarantined": 0})
    rewritten = [json.loads(line) for line in path.read_text().splitlines()]
    assert verify_chain(rewritten).ok  # the plain chain alone is fooled
    proc = verify_cli(str(path), "--policy", str(policy), "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert out["first_bad"] == 0 and out["event_id"] == events[0]["event_id"] and "seal does not match" in out["reason"]


def test_keyed_trail_without_its_key_exits_2(keyed):
    path, _events, _policy = keyed
    proc = verify_cli(str(path))
    assert proc.returncode == 2 and "trail@1" in proc.stderr
    proc = verify_cli(str(path), "--key", "trail@2=env:TRAIL_K2")  # v1 events cannot be checked
    assert proc.returncode == 2 and "trail@1" in proc.stderr


def test_stripped_seals_are_detected_when_the_policy_names_the_key(keyed):
    path, _events, policy = keyed
    _rewrite(path, lambda ev: {k: v for k, v in ev.items() if k not in ("seal_key", "seal_key_version", "mac")})
    proc = verify_cli(str(path), "--policy", str(policy), "--format", "json")
    assert proc.returncode == 1 and "no event is sealed" in json.loads(proc.stdout)["reason"]
    assert verify_cli(str(path)).returncode == 0  # the documented limit: without a key nothing says it was keyed


def test_stripping_the_tail_seals_is_detected(keyed):
    path, _events, _policy = keyed
    _rewrite(path, lambda ev: ev if ev["seq"] < 2 else {k: v for k, v in ev.items() if k != "mac" and
                                                         not k.startswith("seal_")})
    proc = verify_cli(str(path), "--key", "trail=env:TRAIL_K1", "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["first_bad"] == 2 and "unsealed event after sealed" in out["reason"]


def test_wrong_key_exits_1(keyed):
    path, _events, _policy = keyed
    proc = verify_cli(str(path), "--key", "trail=env:TRAIL_K2")  # v1 events were sealed with K1
    assert proc.returncode == 1 and "seal does not match" in proc.stderr


def test_missing_key_material_exits_1_naming_the_key(keyed, tmp_path):
    path, _events, _policy = keyed
    policy = tmp_path / "p2.yaml"
    policy.write_text(POLICY.replace("TRAIL_K2", "TRAIL_NOT_SET"))
    proc = verify_cli(str(path), "--policy", str(policy))
    assert proc.returncode == 1 and "trail" in proc.stderr and "TRAIL_NOT_SET" in proc.stderr
    assert ENV["TRAIL_K1"] not in proc.stderr


def test_verify_names_the_trail_key_of_another_policy():
    events, prev = [], None
    from lakehouse_phi.audit.chain import seal

    for i in range(2):
        prev = seal(_event(i), prev, SecretKey("other", 1, K1))
        events.append(prev)
    assert verify(events, {("other", 1): K1}).ok
    bad = verify(events, {("other", 1): K1}, expect_key="trail")
    assert not bad.ok and bad.first_bad == 0 and "'trail'" in bad.reason


# ------------------------------------------------------------------------------------------------ --against
def _bronze(path: Path, run_ids: list[str | None]) -> None:
    from deltalake import CommitProperties, write_deltalake

    for run_id in run_ids:
        props = CommitProperties(custom_metadata={"userMetadata": run_id}) if run_id else None
        write_deltalake(str(path), pa.table({"x": [1]}), mode="append", commit_properties=props)


def test_commit_run_ids_plain_or_json():
    assert commit_run_id("r1") == "r1" and commit_run_id('{"run_id": "r2"}') == "r2"
    assert commit_run_id(None) is None and commit_run_id("  ") is None


def test_against_names_unaudited_commits_and_a_missing_anchor(keyed, tmp_path):
    path, events, policy = keyed
    bronze = tmp_path / "bronze"
    _bronze(bronze, ["r0", "r2", None, "r-forged"])
    result = check_against(str(bronze), events)
    text = " | ".join(result.problems)
    assert not result.ok and result.commits == 4
    assert "no audit anchor" in text and "version 2 (WRITE) names no run id" in text
    assert "version 3 (WRITE) by run 'r-forged' has no event" in text
    # r0 and r2 have events, but none records the versions they are said to have committed (issue 23.3)
    assert "no event of that run records bronze version 0" in text and "bronze version 1" in text
    proc = verify_cli(str(path), "--policy", str(policy), "--against", str(bronze), "--format", "json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and not out["ok"] and len(out["against"]["problems"]) == 5


def test_a_trail_keyed_from_some_point_on(tmp_path):
    """Events written before audit.key was set stay unsealed; from the first sealed event on, all must be. A verifier
    told the trail key (--policy, --key) accepts no unsealed event at all."""
    path = tmp_path / "audit.jsonl"
    plain = [JsonlSink(path).append(_event(i)) for i in range(2)]
    keyed = [JsonlSink(path, SecretKey("trail", 1, K1)).append(_event(i)) for i in range(2, 4)]
    events = [json.loads(line) for line in path.read_text().splitlines()]
    result = verify(events, {("trail", 1): K1})
    assert result.ok and result.sealed == 2 and "mac" not in plain[0] and keyed[0]["prev_hash"] == plain[1]["hash"]
    # issue 23.3: told which key seals the trail (--policy, --key), every event must be sealed
    strict = verify(events, {("trail", 1): K1}, expect_key="trail")
    assert not strict.ok and strict.first_bad == 0 and "every event must be sealed" in strict.reason
    JsonlSink(path).append(_event(4))  # a writer without the key appends after sealed events
    events = [json.loads(line) for line in path.read_text().splitlines()]
    bad = verify(events, {("trail", 1): K1})
    assert not bad.ok and bad.first_bad == 4 and "unsealed event after sealed" in bad.reason
