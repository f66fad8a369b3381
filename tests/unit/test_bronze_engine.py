"""The ingest pass's bookkeeping without Spark: the row fingerprint (against an independent HMAC), the in-pass PHI
scan, the Arrow tallies, the version choice of ``latest``, the runtime SQL quoting and the explicit targets."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest

from lakehouse_phi.engine.plan import (
    ERRORS_COL,
    FINGERPRINT_COL,
    SCAN_COL,
    IngestPlan,
    TablePlan,
    key_needs,
    row_messages,
)
from lakehouse_phi.errors import UsageError
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.bronze import WriteSpec, _first_per_key, _version_order
from lakehouse_phi.spark.tally import tally_arrow
from lakehouse_phi.storage import sqltext
from lakehouse_phi.storage.delta import merge_sql
from lakehouse_phi.storage.targets import Target, default_audit_target
from tests.helpers import EXAMPLE, demo_env

ENV, OVERRIDES = demo_env()


@pytest.fixture(scope="module")
def loaded():
    return load_policy(EXAMPLE)


def ingest_plan(loaded, table: str) -> IngestPlan:
    keys = load_keys({**loaded.policy.keys, **OVERRIDES}, key_needs(loaded.policy.tables[table]),
                     Fetchers(environ=ENV))
    return IngestPlan(TablePlan(loaded, table, keys))


def claims_batch(**overrides) -> pa.RecordBatch:
    row = {"claim_id": "C0000000001", "mrn": "MRN0000001", "member_id": "1234567890", "service_date": "2024-03-05",
           "amount": "12.50", "cpt_code": "99213", "payer": "Acme", "account_number": "998877",
           "submitter_ip": "10.0.0.1"}
    row.update(overrides)
    return pa.RecordBatch.from_pylist([row])


# --------------------------------------------------------------------------------------------- fingerprint
def test_canonical_encoding_is_self_delimiting_and_tells_null_from_empty():
    b = pa.record_batch({"a": ["ab", "a", None, ""], "b": ["c", "bc", "x", "x"]})
    assert row_messages(b, ["a", "b"]) == [b"2:ab1:c", b"1:a2:bc", b"-1:x", b"0:1:x"]
    # lengths count UTF-8 bytes, so a multi-byte character cannot shift the framing
    assert row_messages(pa.record_batch({"a": ["é"]}), ["a"]) == ["2:é".encode()]


def test_fingerprint_is_hmac_sha256_of_the_canonical_raw_row_under_the_fingerprint_key(loaded):
    plan = ingest_plan(loaded, "claims")
    assert plan.fingerprint_key == "pseudonym"  # claims' record key has no hmac: the table's first hmac key
    batch = claims_batch()
    keys = load_keys({**loaded.policy.keys, **OVERRIDES}, [("pseudonym", "hmac")], Fetchers(environ=ENV))
    message = b"".join(f"{len(v.encode())}:{v}".encode() for v in batch.to_pylist()[0].values())
    expected = hmac.new(keys["pseudonym"].material, message, hashlib.sha256).hexdigest()
    out = plan.process(batch)
    assert out.column(FINGERPRINT_COL).to_pylist() == [expected]
    # one changed raw value changes it; the same row gives the same fingerprint in another batch
    assert plan.process(claims_batch(payer="Acme2")).column(FINGERPRINT_COL)[0].as_py() != expected
    assert plan.process(claims_batch()).column(FINGERPRINT_COL)[0].as_py() == expected


def test_the_fingerprint_key_is_resolved_up_front_with_the_others(loaded):
    assert ("pseudonym", "hmac") in key_needs(loaded.policy.tables["claims"])


# ------------------------------------------------------------------------------------------------ PHI scan
def test_every_row_is_scanned_inside_the_pass(loaded):
    plan = ingest_plan(loaded, "claims")
    assert "payer" in plan.scan_columns and "mrn" not in plan.scan_columns
    rows = [claims_batch().to_pylist()[0] for _ in range(20_000)]
    rows[11_501]["payer"] = "call 123-45-6789"
    out = plan.process(pa.RecordBatch.from_pylist(rows))
    hits = out.column(SCAN_COL).to_pylist()
    assert hits[11_501] == ["payer:ssn"] and sum(len(h) for h in hits) == 1
    tally = tally_arrow(pa.Table.from_batches([out]), plan.scan_columns)
    assert tally.phi_scan["payer"] == {"ssn": 1, "email": 0, "phone": 0}
    assert tally.rows_read == 20_000


def test_tally_counts_rows_reasons_and_hits(loaded):
    plan = ingest_plan(loaded, "claims")
    rows = [claims_batch().to_pylist()[0] for _ in range(5)]
    rows[1]["claim_id"] = "bad"
    rows[2]["amount"] = "x"
    rows[2]["claim_id"] = None
    out = pa.Table.from_batches([plan.process(pa.RecordBatch.from_pylist(rows))])
    t = tally_arrow(out, plan.scan_columns)
    assert (t.rows_read, t.rows_quarantined, t.rows_valid) == (5, 2, 3)
    assert t.reasons == {"claim_id:pattern": 1, "claim_id:required": 1, "amount:type": 1}
    assert sum(len(e) for e in out.column(ERRORS_COL).to_pylist()) == sum(t.reasons.values())


# --------------------------------------------------------------------------------------------- latest choice
def _spec(sequence_by=None) -> WriteSpec:
    t = Target.path("/x")
    return WriteSpec(bronze=t, quarantine=t, table_format="delta", record_key=["k"], bronze_mode="latest",
                     sequence_by=sequence_by, run_id="r")


def test_latest_keeps_the_newest_version_per_key():
    table = pa.table({"k": ["a", "a", "b", "a"], "seq": [2, 3, 1, None], "v": ["a2", "a3", "b1", "a-null"],
                      "_lhp_order_file": ["f1", "f1", "f1", "f2"], "_lhp_order_pos": [0, 1, 2, 3]})
    chosen, dropped = _first_per_key(table, ["k"], _version_order(table, _spec("seq")))
    assert dict(zip(chosen.column("k").to_pylist(), chosen.column("v").to_pylist())) == {"a": "a3", "b": "b1"}
    assert dropped == 2
    # without sequence_by: the later file, then the later row
    chosen, _ = _first_per_key(table, ["k"], _version_order(table, _spec()))
    assert dict(zip(chosen.column("k").to_pylist(), chosen.column("v").to_pylist())) == {"a": "a-null", "b": "b1"}
    same_file = table.set_column(3, "_lhp_order_file", pa.array(["f1"] * 4))
    chosen, _ = _first_per_key(same_file, ["k"], _version_order(same_file, _spec()))
    assert chosen.filter(pa.compute.equal(chosen.column("k"), "a")).column("v").to_pylist() == ["a-null"]


# ------------------------------------------------------------------------------------------- quoting, targets
@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "both\\'", "`tick`"])
def test_literals_and_identifiers_are_quoted_totally(value):
    assert sqltext.literal(value) == "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    assert sqltext.ident(value) == "`" + value.replace("`", "``") + "`"
    assert sqltext.datafusion_ident(value + '"') == '"' + (value + '"').replace('"', '""') + '"'


def test_quoting_refuses_what_spark_would_reinterpret():
    for bad in ("a${x}", "line\nbreak", "nul\x00"):
        with pytest.raises(UsageError):
            sqltext.literal(bad)
    with pytest.raises(UsageError, match="table name"):
        sqltext.table_name("main.bronze.x; DROP TABLE y")


def test_a_policy_name_with_a_quote_cannot_forge_a_property():
    text = sqltext.properties({"lakehouse_phi.policy_name": "x', 'lakehouse_phi.audit_hash' = 'forged"})
    assert text == ("('lakehouse_phi.policy_name' = 'x\\', \\'lakehouse_phi.audit_hash\\' = \\'forged')")


def test_targets_are_explicit():
    assert Target.parse("/data/bronze/it's here").is_path
    assert Target.parse("s3://bucket/bronze").is_path and Target.parse("s3://bucket/bronze").local is None
    assert Target.parse("./rel").is_path and Target.parse("dbfs:/x").is_path
    assert not Target.parse("main.bronze.patients").is_path
    with pytest.raises(UsageError):
        Target.parse("not a table")
    assert Target.path("/a b/c").sql_ref("delta") == "delta.`/a b/c`"
    assert Target.table("main.bronze.p").sql_ref("delta") == "`main`.`bronze`.`p`"
    assert default_audit_target(Target.path("/d/bronze"), "delta") == "/d/_lakehouse_phi_audit"
    assert default_audit_target("main.bronze.p", "delta") == "main.bronze.lakehouse_phi_audit"


def test_merge_sql_quotes_every_name():
    text = merge_sql("delta.`/p`", "v", ["k`1", "_row_fingerprint"], update_when="t.`a` <> s.`a`")
    assert text == ("MERGE INTO delta.`/p` AS t USING `v` AS s ON t.`k``1` <=> s.`k``1` AND "
                    "t.`_row_fingerprint` <=> s.`_row_fingerprint` WHEN MATCHED AND (t.`a` <> s.`a`) THEN UPDATE SET * "
                    "WHEN NOT MATCHED THEN INSERT *")


# ---------------------------------------------------------------------------------------------------- streaming
def test_triggers_and_app_ids():
    from lakehouse_phi.spark.stream import app_id_for, parse_trigger

    assert parse_trigger("available-now") == {"availableNow": True}
    assert parse_trigger("processing-time=30 seconds") == {"processingTime": "30 seconds"}
    for bad in ("once", "processing-time=", "processing-time=soon"):
        with pytest.raises(UsageError, match="--trigger"):
            parse_trigger(bad)
    a, b = app_id_for("claims", "/ck/one"), app_id_for("claims", "/ck/two")
    assert a == app_id_for("claims", "/ck/one/../one") and a != b and a.startswith("lakehouse_phi:claims:")


def test_stream_options_are_checked_before_spark_starts(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    out = subprocess.run([sys.executable, "-m", "lakehouse_phi", "ingest", str(EXAMPLE), "--table", "claims",
                          "--stream"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "--checkpoint" in out.stderr and "Traceback" not in out.stderr
