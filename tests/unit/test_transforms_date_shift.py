"""date_shift: a non-zero, per-subject, keyed offset within [-max_days, max_days]."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac as std_hmac

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.date_shift import SUBKEY_LABEL, DateShift, offset_from_digest, shift_offsets
from lakehouse_phi.transforms.hmac import Hmac

CTX = ColumnContext(table="encounters", column="admit_date", source_column="admit_date")
KEY = bytes(range(32))
UTC = dt.UTC


def _ds(max_days: int = 30, key: bytes = KEY) -> DateShift:
    return DateShift(DateShift.params_model(key="shift", subject="patient_id", max_days=max_days), CTX, key)


def _expected_offset(subject: str, max_days: int, key: bytes = KEY) -> int:
    """The documented derivation, recomputed with the standard library."""
    sub = std_hmac.new(key, SUBKEY_LABEL, hashlib.sha256).digest()
    n = int.from_bytes(std_hmac.new(sub, subject.encode(), hashlib.sha256).digest()[:8], "big")
    r = n % (2 * max_days)
    return r - max_days if r < max_days else r - max_days + 1


def test_offsets_follow_the_documented_derivation():
    subjects = [f"P{i:05d}" for i in range(300)]
    got = shift_offsets(KEY, subjects, 30)
    assert got == [_expected_offset(s, 30) for s in subjects]
    assert 0 not in got and min(got) >= -30 and max(got) <= 30
    assert min(got) < -20 and max(got) > 20  # spread over the range, both directions


def test_offset_mapping_edges():
    assert offset_from_digest((0).to_bytes(8, "big"), 5) == -5
    assert offset_from_digest((4).to_bytes(8, "big"), 5) == -1
    assert offset_from_digest((5).to_bytes(8, "big"), 5) == 1
    assert offset_from_digest((9).to_bytes(8, "big"), 5) == 5
    assert {offset_from_digest(n.to_bytes(8, "big"), 1) for n in range(4)} == {-1, 1}


def test_dates_and_timestamps_shift_by_the_subject_offset():
    ds = _ds()
    subjects = pa.array(["A", "B", "A", None, "B"])
    dates = pa.array([dt.date(2024, 1, 31), dt.date(2024, 3, 1), dt.date(2023, 12, 31), dt.date(2024, 1, 1), None])
    out = ds.apply(dates, {"patient_id": subjects})
    assert out.type == pa.date32()
    oa, ob = _expected_offset("A", 30), _expected_offset("B", 30)
    assert out.to_pylist() == [dt.date(2024, 1, 31) + dt.timedelta(oa), dt.date(2024, 3, 1) + dt.timedelta(ob),
                               dt.date(2023, 12, 31) + dt.timedelta(oa), None, None]
    ts = pa.array([dt.datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC), None, None, None, None],
                  pa.timestamp("us", tz="UTC"))
    tout = ds.apply(ts, {"patient_id": subjects})
    assert tout.type == pa.timestamp("us", tz="UTC")
    assert tout.to_pylist()[0] == dt.datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC) + dt.timedelta(oa)


def test_non_string_subjects_use_their_canonical_string():
    ds = _ds()
    out = ds.apply(pa.array([dt.date(2024, 1, 1)]), {"patient_id": pa.array([1234], pa.int64())})
    assert out.to_pylist()[0] == dt.date(2024, 1, 1) + dt.timedelta(_expected_offset("1234", 30))


def test_offset_cannot_be_recomputed_from_a_published_hmac_pseudonym():
    """With the same key, hmac(patient_id) must not reveal the shift (the offsets use a derived sub-key)."""
    subjects = [f"P{i:05d}" for i in range(200)]
    pseudonyms = Hmac(Hmac.params_model(key="shift"), CTX, KEY).apply(pa.array(subjects)).to_pylist()
    naive = [offset_from_digest(bytes.fromhex(h), 30) for h in pseudonyms]
    real = shift_offsets(KEY, subjects, 30)
    agree = sum(a == b for a, b in zip(naive, real))
    assert agree < 20  # chance agreement is 1 in 60; without the sub-key all 200 would agree


def test_contract_and_errors():
    assert DateShift.needs_columns(DateShift.params_model(key="k", subject="patient_id", max_days=3)) == ("patient_id",)
    ds = _ds()
    with pytest.raises(ValueError, match="patient_id"):
        ds.apply(pa.array([dt.date(2024, 1, 1)]), None)
    with pytest.raises(ValueError, match="1 dates but 2 subjects"):
        ds.apply(pa.array([dt.date(2024, 1, 1)]), {"patient_id": pa.array(["A", "B"])})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))),
                          st.one_of(st.none(), st.sampled_from(["A", "B", "C", "Zoë", ""]))), max_size=40),
       st.integers(min_value=1, max_value=3650))
def test_same_subject_same_offset_and_nulls(rows, max_days):
    ds = _ds(max_days)
    dates = pa.array([d for d, _ in rows], pa.date32())
    subjects = pa.array([s for _, s in rows], pa.string())
    out = ds.apply(dates, {"patient_id": subjects}).to_pylist()
    assert out == ds.apply(dates, {"patient_id": subjects}).to_pylist()
    seen: dict[str, int] = {}
    for (d, s), o in zip(rows, out):
        if d is None or s is None:
            assert o is None
            continue
        delta = (o - d).days
        assert delta != 0 and -max_days <= delta <= max_days
        assert seen.setdefault(s, delta) == delta
