"""The fused parse/check/mask engine over Arrow batches (no Spark)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse_phi.engine.plan import ERRORS_COL, TablePlan, key_needs
from lakehouse_phi.engine.types import parse
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy import load_policy
from tests.helpers import EXAMPLE, demo_env


@pytest.mark.parametrize("policy_type, raw, expected, failed", [
    ("int", [" 12 ", "x", "99999999999", None, "", "-5"], [12, None, None, None, None, -5],
     [False, True, True, False, False, False]),
    ("long", ["9223372036854775807", "9223372036854775808"], [9223372036854775807, None], [False, True]),
    ("double", ["1.5", "1e3", "abc", ".5"], [1.5, 1000.0, None, 0.5], [False, False, True, False]),
    ("boolean", ["TRUE", "no", "maybe"], [True, False, None], [False, False, True]),
    ("date", ["2021-02-28", "2023-13-45", "2021-02-30", "20210101"], ["2021-02-28", None, None, None],
     [False, True, True, True]),
    ("decimal(12,2)", ["12.34", "-1", "5.555", "1234567890123"], ["12.34", "-1.00", None, None],
     [False, False, True, True]),
])
def test_parse(policy_type, raw, expected, failed):
    typed, bad = parse(pa.array(raw, pa.string()), policy_type)
    got = [None if v is None else (str(v) if policy_type.startswith(("date", "decimal")) else v)
           for v in typed.to_pylist()]
    assert got == expected
    assert bad.to_pylist() == failed


def test_parse_timestamps_to_utc():
    typed, bad = parse(pa.array(["2021-01-02 10:11:12", "2021-01-02T10:11+01:00", "2021-99-02 10:00:00"]),
                       "timestamp")
    assert [None if v is None else v.isoformat() for v in typed.to_pylist()] == [
        "2021-01-02T10:11:12+00:00", "2021-01-02T09:11:00+00:00", None]
    assert bad.to_pylist() == [False, False, True]


@pytest.fixture(scope="module")
def patients_plan():
    loaded = load_policy(EXAMPLE)
    env, overrides = demo_env()
    keys = load_keys({**loaded.policy.keys, **overrides}, key_needs(loaded.policy.tables["patients"]),
                     Fetchers(environ=env))
    return TablePlan(loaded, "patients", keys)


def _batch(**cols):
    return pa.RecordBatch.from_pydict({k: pa.array(v, pa.string()) for k, v in cols.items()})


ROW = dict(mrn="MRN0000001", ssn="123-45-6789", first_name="Ann", last_name="Lee", dob="1950-01-02", age="95",
           sex="F", zip="03612", state="NY", phone="555-123-4567", email="ann@x.org", address="1 Main St",
           member_id="123-456-789", registered_at="2021-05-17 10:00:00")


def test_valid_row_is_masked_with_no_errors(patients_plan):
    out = patients_plan.process(_batch(**{k: [v] for k, v in ROW.items()})).to_pylist()[0]
    assert out[ERRORS_COL] == []
    assert len(out["mrn"]) == 64 and out["first_name"] is None and out["address"] == "[ADDRESS]"
    assert out["age"] == 90 and out["zip"] == "000" and out["email"] == "a**@x.org"
    assert str(out["birth_year"]) == "1950-01-01" and out["registered_at"].day == 1
    assert out["member_id"] != ROW["member_id"] and len(out["member_id"]) == len(ROW["member_id"])


def test_each_failure_is_one_structured_reason_and_the_value_is_never_emitted(patients_plan):
    bad = dict(ROW, mrn="MRN12", dob="1990-13-01", age="x", member_id="12", state="New York")
    out = patients_plan.process(_batch(**{k: [v] for k, v in bad.items()})).to_pylist()[0]
    reasons = {(e["column"], e["rule"]) for e in out[ERRORS_COL]}
    assert reasons == {("mrn", "pattern"), ("dob", "type"), ("age", "type"), ("member_id", "fpe"),
                       ("state", "pattern")}
    assert out["mrn"] is None and out["dob"] is None and out["member_id"] is None and out["state"] is None
    for e in out[ERRORS_COL]:
        for raw in bad.values():
            assert raw not in e["message"]


def test_required_missing(patients_plan):
    out = patients_plan.process(_batch(**{k: [None if k == "mrn" else v] for k, v in ROW.items()})).to_pylist()[0]
    assert [(e["column"], e["rule"]) for e in out[ERRORS_COL]] == [("mrn", "required")]


def test_result_schema_matches_output(patients_plan):
    batch = patients_plan.process(_batch(**{k: [v, v] for k, v in ROW.items()}))
    assert batch.schema.equals(patients_plan.result_schema()), batch.schema
    assert key_needs(patients_plan.spec) and patients_plan.column_report()["ssn"] == {"strategy": "encrypt",
                                                                                     "key_version": 3}


@pytest.mark.parametrize("batch", [
    ["2024-02-29", "1999-12-31", None, "  2000-01-01 "],      # every value valid: Arrow's cast takes the batch
    ["2024-02-29", "2019-02-29", "2021-04-31", "2000-01-01"],  # impossible days: the strict round-trip path
])
def test_both_date_paths_agree_on_what_is_a_date(batch):
    typed, bad = parse(pa.array(batch, pa.string()), "date")
    strict = {"2024-02-29", "1999-12-31", "2000-01-01"}
    for raw, value, failed in zip(batch, typed.to_pylist(), bad.to_pylist()):
        ok = raw is not None and raw.strip() in strict
        assert (value is not None) == ok and failed == (raw is not None and not ok)
        if ok:
            assert str(value) == raw.strip()
