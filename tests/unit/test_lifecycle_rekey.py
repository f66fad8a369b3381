"""``rekey`` on real Delta tables (delta-rs) with mixed key versions: values checked by decrypting/recomputing
here with the key material (cryptography's AES-GCM and the stdlib hmac), not with the code under test."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.helpers import run_cli
from tests.unit.lifecycle_helpers import ENV, masked, material, policy_text, read, rows, write

pytest.importorskip("deltalake")  # the [local] extra: real Delta tables through delta-rs

UTC = dt.timezone.utc


def cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=ENV)


def aes_open(version: int, value: str) -> str:
    raw = base64.b64decode(value)
    return AESGCM(material("dek", version)).decrypt(raw[:12], raw[12:], b"patients.ssn").decode()


def token(version: int, ssn: str) -> str:
    return hmac.new(material("token", version), re.sub(r"[^0-9]", "", ssn).encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def tables(tmp_path):
    """Bronze: 6 rows written before the rotation (every key v1), 4 after (token/dek/fpe-key v2). Quarantine: 2
    rows from before."""
    bronze = tmp_path / "bronze"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(bronze))  # token, dek, fpe-key rotated to v2
    t0, t1 = dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC)
    after = {"token": 2, "dek": 2, "fpe-key": 2}
    write(bronze, masked(policy, rows(6), 1, t0, "run-a"), "run-a")
    write(bronze, masked(policy, rows(4, start=6), after, t1, "run-b"), "run-b")
    write(tmp_path / "bronze_quarantine", masked(policy, rows(2, start=20), 1, t0, "run-a"), "run-a")
    return tmp_path, bronze, policy


def _args(tmp_path, bronze, policy, *extra):
    return ["rekey", str(policy), "--table", "patients", "--bronze", str(bronze),
            "--audit", str(tmp_path / "audit.jsonl"), *extra]


def _by_mrn(table) -> dict[str, dict]:
    return {r["mrn"]: r for r in table.to_pylist()}


def test_rekey_rewrites_old_versions_once(tables):
    tmp_path, bronze, policy = tables
    from deltalake import DeltaTable

    before = _by_mrn(read(bronze))
    proc = cli(*_args(tmp_path, bronze, policy, "--format", "json"))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["bronze_rows_rewritten"], out["quarantine_rows_rewritten"]) == (6, 2)
    assert out["columns"]["ssn"]["from_versions"] == {"1": 8} and out["columns"]["ssn"]["key_version"] == 2
    assert set(out["columns"]) == {"ssn", "ssn_token", "member_id"} and out["unrecoverable"] == {}
    after = read(bronze)
    assert after.num_rows == 10
    raw = {f"MRN{i:07d}": f"123-45-{i:04d}" for i in range(10)}
    pseudo = {hmac.new(material("pseudonym", 1), m.encode(), hashlib.sha256).hexdigest(): m for m in raw}
    fpe = __import__("lakehouse_phi.transforms.fpe", fromlist=["Fpe"])
    from lakehouse_phi.transforms.base import ColumnContext

    opener = fpe.Fpe(fpe.FpeParams(key="fpe-key"), ColumnContext("patients", "member_id", "member_id"),
                     material("fpe-key", 2))
    for r in after.to_pylist():
        mrn = pseudo[r["mrn"]]  # the record key's pseudonym is untouched (its key did not rotate)
        assert aes_open(2, r["ssn"]) == raw[mrn]
        assert r["ssn_token"] == token(2, raw[mrn])
        assert opener.decrypt(__import__("pyarrow").array([r["member_id"]])).to_pylist() == [f"M{int(mrn[3:]):08d}"]
        assert dict(r["_key_versions"]) == {"mrn": 1, "ssn": 2, "ssn_token": 2, "member_id": 2, "admit": 1,
                                            "visit_shifted": 1}
        assert r["admit"] == before[r["mrn"]]["admit"]
    # rows already at v2 were not touched
    for m, r in _by_mrn(after).items():
        if dict(before[m]["_key_versions"])["ssn"] == 2:
            assert r["ssn"] == before[m]["ssn"]
    q = read(tmp_path / "bronze_quarantine").to_pylist()
    assert all(dict(r["_key_versions"])["ssn"] == 2 and aes_open(2, r["ssn"]).startswith("123-45-00") for r in q)
    props, merge = DeltaTable(str(bronze)).history(2)  # the rewrite, then the key check values it now holds
    assert merge["operation"] == "MERGE" and merge["userMetadata"] == out["run_id"]
    assert props["operation"] == "SET TBLPROPERTIES" and props["userMetadata"] == out["run_id"]
    checks = json.loads(DeltaTable(str(bronze)).metadata().configuration["lakehouse_phi.key_checks"])
    assert checks["dek"]["version"] == 2 and checks["token"]["version"] == 2
    event = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert event["event"] == "rekey" and event["columns"]["ssn"]["from_versions"] == {"1": 8}
    assert event["rows_written"] == 8 and "123-45" not in json.dumps(event)
    # second run: nothing to rewrite, no commit
    v = DeltaTable(str(bronze)).version()
    proc = cli(*_args(tmp_path, bronze, policy, "--format", "json"))
    out2 = json.loads(proc.stdout)
    assert proc.returncode == 0 and out2["bronze_rows_rewritten"] == 0 and out2["columns"] == {}
    assert DeltaTable(str(bronze)).version() == v


def test_unrecoverable_hmac_is_named_and_nothing_written(tables):
    tmp_path, bronze, policy = tables
    from deltalake import DeltaTable

    policy.write_text(policy_text(bronze, rotated=("pseudonym", "token", "dek", "fpe-key")))
    v = DeltaTable(str(bronze)).version()
    before = read(bronze)
    proc = cli(*_args(tmp_path, bronze, policy))
    assert proc.returncode == 1 and "mrn: 12 row(s)" in proc.stderr and "cannot be recovered" in proc.stderr
    assert DeltaTable(str(bronze)).version() == v and not (tmp_path / "audit.jsonl").exists()
    proc = cli(*_args(tmp_path, bronze, policy, "--dry-run", "--allow-partial", "--format", "json"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["bronze_rows_rewritten"] == 6
    assert DeltaTable(str(bronze)).version() == v
    proc = cli(*_args(tmp_path, bronze, policy, "--allow-partial", "--format", "json"))
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["unrecoverable"]["mrn"]["rows"] == 12
    after = read(bronze).to_pylist()
    assert sorted(r["mrn"] for r in after) == sorted(before.column("mrn").to_pylist())
    assert all(dict(r["_key_versions"])["mrn"] == 1 and dict(r["_key_versions"])["ssn"] == 2 for r in after)
    event = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert event["details"]["left_at_old_version"]["mrn"]["rows"] == 12


def test_missing_old_key_version_exits_1_naming_it(tables):
    tmp_path, bronze, policy = tables
    policy.write_text(policy.read_text().replace("previous: {1: LC_DEK_V1}", "previous: {1: LC_DEK_GONE}"))
    proc = cli(*_args(tmp_path, bronze, policy))
    assert proc.returncode == 1 and "(version 1) key 'dek'" in proc.stderr and "LC_DEK_GONE" in proc.stderr


def shift_days(version: int, subject: str, max_days: int = 30) -> int:
    """The date_shift offset, from its published definition (transforms/date_shift.py), with the stdlib."""
    sub = hmac.new(material("shift", version), b"lakehouse_phi/date_shift/v1", hashlib.sha256).digest()
    r = int.from_bytes(hmac.new(sub, subject.encode(), hashlib.sha256).digest()[:8], "big") % (2 * max_days)
    return r - max_days if r < max_days else r - max_days + 1


def test_date_shift_recomputed_from_recoverable_inputs(tables):
    """The shift key rotates: visit_shifted (date kept raw, subject ssn encrypted) is recomputed; admit (subject
    mrn, only a pseudonym) cannot be and is left at v1 under --allow-partial."""
    tmp_path, bronze, policy = tables
    policy.write_text(policy_text(bronze, rotated=("token", "dek", "fpe-key", "shift")))
    proc = cli(*_args(tmp_path, bronze, policy))
    assert proc.returncode == 1 and "admit: 12 row(s) (date_shift input admit/mrn cannot be recovered)" in proc.stderr
    assert "visit_shifted" not in proc.stderr
    proc = cli(*_args(tmp_path, bronze, policy, "--allow-partial", "--format", "json"))
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["columns"]["visit_shifted"]["from_versions"] == {"1": 12}
    for r in read(bronze).to_pylist():
        ssn = aes_open(2, r["ssn"])
        assert r["visit_shifted"] == r["visit"] + dt.timedelta(days=shift_days(2, ssn))
        assert dict(r["_key_versions"])["visit_shifted"] == 2 and dict(r["_key_versions"])["admit"] == 1


def test_a_value_that_does_not_open_under_its_recorded_version_stops_the_job(tables):
    """_key_versions says v1 but the values were written under v2: refused, nothing written, no value shown."""
    import pyarrow as pa

    tmp_path, _bronze, policy = tables
    other = tmp_path / "lying"
    data = masked(policy, rows(3), {"dek": 2}, dt.datetime(2024, 1, 1, tzinfo=UTC), "run-x")
    lie = pa.array([[("ssn", 1)]] * 3, data.schema.field("_key_versions").type)
    write(other, data.set_column(data.schema.get_field_index("_key_versions"), "_key_versions", lie), "run-x")
    proc = cli("rekey", str(policy), "--table", "patients", "--bronze", str(other),
               "--audit", str(tmp_path / "audit.jsonl"))
    assert proc.returncode == 1 and "does not decrypt under the key version its row records" in proc.stderr
    assert "123-45" not in proc.stderr and not (tmp_path / "audit.jsonl").exists()
