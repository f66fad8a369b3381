"""Audit events: shape, timestamps, and the defence-in-depth check that no data value gets in."""

from __future__ import annotations

import re
import uuid

import pytest

from lakehouse_phi.audit import check_no_values, new_event, seal

SENTINEL = "SENTINEL-123-45-6789"


def base(**over) -> dict:
    kw = dict(run_id="run-a", actor="etl", event="ingest", policy_name="clinic", policy_sha256="ab" * 32,
              table="patients", rows_read=3, rows_written=2, rows_quarantined=1,
              columns={"ssn": {"strategy": "hmac", "key_version": 1}, "dob": {"strategy": "date_shift",
                                                                              "key_version": None}})
    kw.update(over)
    return new_event(**kw)


def test_new_event_has_every_contract_field():
    ev = base(details={"quarantine_reasons": {"bad_ssn": 1}, "allow_insecure": False})
    for field in ("event_id", "run_id", "ts", "actor", "event", "policy_name", "policy_sha256", "table",
                  "rows_read", "rows_written", "rows_quarantined", "columns", "details"):
        assert field in ev
    assert uuid.UUID(ev["event_id"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["ts"])
    assert ev["columns"]["ssn"] == {"strategy": "hmac", "key_version": 1}
    assert ev["details"]["quarantine_reasons"] == {"bad_ssn": 1}
    assert base()["details"] == {}
    sealed = seal(ev, None)
    assert {"seq", "prev_hash", "hash"} <= sealed.keys()


def test_event_ids_are_unique():
    assert base()["event_id"] != base()["event_id"]


@pytest.mark.parametrize("over, field", [
    ({"rows_read": -1}, "rows_read"),
    ({"rows_written": 1.5}, "rows_written"),
    ({"rows_quarantined": True}, "rows_quarantined"),
    ({"table": ""}, "table"),
    ({"policy_sha256": "not-a-digest"}, "policy_sha256"),
    ({"columns": {"ssn": {"key_version": 1}}}, "columns.ssn.strategy"),
    ({"columns": {"ssn": {"strategy": "hmac", "key_version": "1"}}}, "columns.ssn.key_version"),
    ({"details": ["x"]}, "details"),
])
def test_bad_fields_are_named(over, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        base(**over)


def test_non_json_details_fail_at_construction():
    with pytest.raises(ValueError, match="NaN"):
        base(details={"ratio": float("nan")})
    with pytest.raises(ValueError, match="not plain JSON"):
        base(details={"when": object()})


def test_clean_event_passes_the_value_check():
    ev = base(details={"engine": "sail"})
    check_no_values(ev, ["123-45-6789", "Jane Doe", "", None])


@pytest.mark.parametrize("where", ["details", "nested", "key", "column", "list"])
def test_sentinel_anywhere_raises_without_echoing_it(where):
    details = {
        "details": {"note": f"saw {SENTINEL} here"},
        "nested": {"a": {"b": {"c": SENTINEL}}},
        "key": {SENTINEL: 1},
        "list": {"samples": ["x", SENTINEL]},
        "column": {},
    }[where]
    cols = {"ssn": {"strategy": "hmac", "key_version": 1}}
    if where == "column":
        cols[SENTINEL] = {"strategy": "keep", "key_version": None}
    ev = base(details=details, columns=cols)
    with pytest.raises(ValueError) as info:
        check_no_values(seal(ev, None), ["unrelated", SENTINEL])
    assert SENTINEL not in str(info.value) and "123-45" not in str(info.value)
    assert "never hold data values" in str(info.value)
    if where in ("key", "column"):
        assert "<key>" in str(info.value)


def test_value_with_json_special_characters_is_found():
    value = 'O"Brien\\n'
    ev = base(details={"x": f"name={value}"})
    with pytest.raises(ValueError):
        check_no_values(ev, [value])


def test_numbers_and_machine_fields_are_not_matched_against_sampled_values():
    """Counts, ids, timestamps and digests are not data: a sampled age "3" must not collide with rows_read=3, nor
    a sampled "20" with the year in ts, nor "abab" with the policy digest."""
    ev = seal(base(), None)
    check_no_values(ev, ["3", "2", "1", "20", "abab", "0000", ev["event_id"][:8]])


def test_machine_fields_are_still_checked_when_not_in_their_format():
    ev = base()
    ev["ts"] = "2024-01-01 Jane"
    with pytest.raises(ValueError, match="at ts"):
        check_no_values(ev, ["Jane"])


def test_min_length_ignores_short_values():
    ev = base(details={"engine": "sail"})
    with pytest.raises(ValueError):
        check_no_values(ev, ["ai"])
    check_no_values(ev, ["ai"], min_length=3)
