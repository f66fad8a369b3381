"""Issue 16 in the fused Arrow pass (no Spark): malformed rows withhold every value, poison values quarantine their
row instead of killing the batch, over-long values are a quarantine reason, undeclared column names and file paths
are reported or stored as keyed hashes only. Every check scans the output for sentinel values."""

from __future__ import annotations

import base64

import pyarrow as pa
import pytest

from lakehouse_phi.engine.drift import CORRUPT_COL, check_drift
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.plan import ERRORS_COL, SOURCE_FILE_COL, TablePlan, key_needs
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.transforms import fpe

ENV = {"K": base64.b64encode(bytes(range(32))).decode(), "A": base64.b64encode(bytes(range(32, 64))).decode()}
SENTINEL = "Zyxwvu"  # never a legitimate value: must not appear in any output
SSN_SENTINEL = "078051120"


def _policy(source_file: str = "hash", **extra_cols) -> dict:
    columns = {
        "mrn": {"type": "string", "required": True, "phi": "medical_record_number",
                "ingest": {"strategy": "hmac", "key": "k"}},
        "phone": {"type": "string", "phi": "phone", "pattern": r"^\d{3}-\d{3}-\d{4}$",
                  "ingest": {"strategy": "keep", "justification": "callbacks"}},
        "seen_at": {"type": "timestamp", "phi": "date", "ingest": {"strategy": "generalize_date", "to": "month"}},
        "visit": {"type": "date", "phi": "date",
                  "ingest": {"strategy": "date_shift", "key": "k", "subject": "mrn", "max_days": 30}},
        "member_id": {"type": "string", "phi": "health_plan_number", "ingest": {"strategy": "fpe", "key": "a"}},
        "note": {"type": "string", "max_length": 20},
        **extra_cols,
    }
    return {"version": 1, "name": "t",
            "keys": {"k": {"provider": "env", "ref": "K"}, "a": {"provider": "env", "ref": "A"}},
            "tables": {"t": {"source": {"format": "csv", "path": "p"}, "bronze": "b", "record_key": ["mrn"],
                             "source_file": source_file, "on_unclassified": "drop", "columns": columns}}}


def _plan(source_file: str = "hash") -> TablePlan:
    policy = policy_from_data(_policy(source_file))
    loaded = LoadedPolicy(policy=policy, path="t.yaml", sha256="0" * 64)  # type: ignore[call-arg]
    keys = load_keys(policy.keys, key_needs(policy.tables["t"]), Fetchers(environ=ENV))
    return TablePlan(loaded, "t", keys)


GOOD = dict(mrn="MRN1", phone="555-123-4567", seen_at="2024-03-05T10:00:00", visit="2024-03-05",
            member_id="123456789", note="fine")


def _batch(rows: list[dict], **extra) -> pa.RecordBatch:
    cols = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in GOOD}
    cols.update({k: pa.array(v, pa.string()) for k, v in extra.items()})
    return pa.RecordBatch.from_pydict(cols)


def _text(batch: pa.RecordBatch) -> str:
    return repr(batch.to_pylist())


def _reasons(batch: pa.RecordBatch) -> list[set[str]]:
    return [{f"{e['column']}:{e['rule']}" for e in errs} for errs in batch.column(ERRORS_COL).to_pylist()]


def test_poison_values_quarantine_their_row_not_the_batch():
    plan = _plan()
    rows = [GOOD,
            {**GOOD, "seen_at": "0000-01-01T00:00:00"},          # year 0
            {**GOOD, "seen_at": "10000-01-01T00:00:00"},         # year 10000
            {**GOOD, "seen_at": "9999-12-31T23:00:00-05:00"},    # year 10000 once in UTC
            {**GOOD, "visit": "0000-02-29"},
            {**GOOD, "visit": "9999-12-31"},                     # a shift may pass 9999-12-31
            {**GOOD, "member_id": "1" * 9000},                   # FF1 input of 9,000 digits
            {**GOOD, "note": SENTINEL * 10}]                     # beyond max_length 20
    out = plan.process(_batch(rows))
    reasons = _reasons(out)
    assert reasons[0] == set()
    for i in (1, 2, 3):
        assert "seen_at:type" in reasons[i]
    assert "visit:type" in reasons[4]
    shifted = out.column("visit").to_pylist()[5]
    assert shifted is None or shifted.year == 9999  # shifted within range, or quarantined with a reason
    if shifted is None:
        assert "visit:date_shift" in reasons[5]
    assert "member_id:fpe" in reasons[6] and out.column("member_id")[6].as_py() is None
    assert "note:max_length" in reasons[7] and out.column("note")[7].as_py() is None
    assert SENTINEL not in _text(out) and "1" * 100 not in _text(out)
    out.to_pylist()  # every value converts to Python (no year 0 / 10000 left behind)


def test_a_strategy_that_raises_quarantines_the_value_with_its_error_class_only(monkeypatch):
    # if invalid() misses a poison value, the value-by-value fallback still isolates it
    monkeypatch.setattr(fpe.Fpe, "invalid", lambda self, values: None)
    monkeypatch.setattr(fpe, "MAX_DIGITS", 10**6)
    plan = _plan()
    poison = "9" * 9000
    out = plan.process(_batch([GOOD, {**GOOD, "member_id": poison}, GOOD]))
    errs = out.column(ERRORS_COL).to_pylist()
    assert errs[0] == [] and errs[2] == []
    assert errs[1] == [{"column": "member_id", "rule": "error", "message": "fpe failed on this value (ValueError)"}]
    assert out.column("member_id")[1].as_py() is None and out.column("member_id")[0].as_py() is not None
    assert "9" * 50 not in _text(out)


def test_a_malformed_row_withholds_every_value_and_gets_one_reason():
    plan = _plan()
    shifted = {**GOOD, "phone": f"{SENTINEL}@example.org", "note": None}   # a missing field shifted e-mail left
    out = plan.process(_batch([GOOD, shifted], **{CORRUPT_COL: [None, f"MRN1,{SENTINEL}@example.org,x"]}))
    assert CORRUPT_COL not in out.schema.names
    assert out.column(ERRORS_COL).to_pylist()[1] == [{"column": "_row", "rule": "malformed_row", "message": (
        "the row did not parse as one record of its file's header (field count or quoting); every value of the "
        "row is withheld")}]
    assert all(out.column(c)[1].as_py() is None for c in out.schema.names if c != ERRORS_COL)
    assert out.column(ERRORS_COL).to_pylist()[0] == [] and out.column("phone")[0].as_py() == "555-123-4567"
    assert SENTINEL not in _text(out)


def test_source_file_is_a_keyed_hash_unless_the_policy_says_path():
    path = f"file:/landing/{SENTINEL}_{SSN_SENTINEL}.csv"
    batch = _batch([GOOD, GOOD], **{SOURCE_FILE_COL: [path, None]})
    hashed = _plan("hash").process(batch)
    value = hashed.column(SOURCE_FILE_COL).to_pylist()
    assert value[1] is None and len(value[0]) == 32 and SENTINEL not in _text(hashed)
    assert SSN_SENTINEL not in _text(hashed)
    assert value[0] == NameHasher(bytes(range(32))).file_hash(path)  # under the fingerprint key (k)
    assert value[0] != NameHasher(bytes(range(32, 64))).file_hash(path)
    assert _plan("path").process(batch).column(SOURCE_FILE_COL).to_pylist() == [path, None]
    # one hash per file however the engine spells its location (the label in a message carries the same one)
    spelled = f"file:///landing/{SENTINEL}_{SSN_SENTINEL}.csv".replace("_", "%5F")
    assert NameHasher(bytes(range(32))).file_hash(spelled) == value[0]


def test_undeclared_column_names_are_labelled_by_position_and_keyed_hash():
    policy = policy_from_data(_policy())
    spec = policy.tables["t"]
    names = NameHasher(bytes(range(32)))
    source = ["mrn", f"{SENTINEL} {SSN_SENTINEL}", *list(GOOD)[1:], f"{SENTINEL}@example.org"]
    drift = check_drift(spec, "t", source, "p", names)
    assert drift.dropped == [f"#2 h:{names.column_hash(source[1])}",
                             f"#{len(source)} h:{names.column_hash(source[-1])}"]
    assert all(len(label.split("h:")[1]) == 8 for label in drift.dropped)
    failing = policy_from_data({**_policy(), "tables": {"t": {**_policy()["tables"]["t"], "on_unclassified": "fail"}}})
    with pytest.raises(JobRefused) as info:
        check_drift(failing.tables["t"], "t", source, "p", names)
    assert SENTINEL not in str(info.value) and SSN_SENTINEL not in str(info.value)
    assert "#2 h:" in str(info.value)
