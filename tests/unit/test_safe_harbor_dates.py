"""generalize_date to week/day and Safe Harbor's 90+ (top_code_age), age_cap on birth dates, and the policy rules
around them (the justification to turn top-coding off, the rendering's shape, the SQL default on a birth date)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.policy.model import Rendering
from lakehouse_phi.sql.dialects import Databricks
from lakehouse_phi.sql.ir import build_ir
from lakehouse_phi.transforms.age_cap import AgeCap
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.generalize_date import GeneralizeDate, years_before

UTC = dt.timezone.utc
DOB = ColumnContext("patients", "dob", "dob", "date", phi="date_of_birth")
PLAIN = ColumnContext("patients", "visit", "visit", "date", phi="date")
REF = "2026-11-30"


def _gd(ctx: ColumnContext = DOB, **params) -> GeneralizeDate:
    return GeneralizeDate(GeneralizeDate.params_model.model_validate(params), ctx)


def test_a_1929_birth_date_is_not_its_own_year():
    """The issue's example: {to: year} on a date of birth gives 1936-01-01 for everyone 90 or older in 2026."""
    births = pa.array([dt.date(1929, 7, 4), dt.date(1901, 1, 1), dt.date(1936, 11, 30), dt.date(1936, 12, 1),
                       dt.date(1937, 3, 1), dt.date(1980, 5, 17), None], pa.date32())
    out = _gd(to="year", reference=REF).apply(births).to_pylist()
    assert out == [dt.date(1936, 1, 1)] * 4 + [dt.date(1937, 1, 1), dt.date(1980, 1, 1), None]
    # month: the 90+ are one category; the 89-year-old born 1 Dec 1936 keeps her month
    out = _gd(to="month", reference=REF).apply(births).to_pylist()
    assert out[:4] == [dt.date(1936, 1, 1)] * 3 + [dt.date(1936, 12, 1)]


def test_top_code_defaults_only_on_birth_dates_and_can_be_set_or_turned_off():
    old = pa.array([dt.date(1920, 6, 15)], pa.date32())
    assert _gd(PLAIN, to="month", reference=REF).apply(old).to_pylist() == [dt.date(1920, 6, 1)]
    assert _gd(PLAIN, to="month", reference=REF, top_code_age=80).apply(old).to_pylist() == [dt.date(1946, 1, 1)]
    assert _gd(to="month", reference=REF, top_code_age=None).apply(old).to_pylist() == [dt.date(1920, 6, 1)]
    assert _gd(to="month", reference=REF).apply(old).to_pylist() == [dt.date(1936, 1, 1)]


def test_run_date_is_today_in_utc():
    today = dt.datetime.now(UTC).date()
    born = years_before(today, 90)
    out = _gd(to="day").apply(pa.array([born, born + dt.timedelta(days=1)], pa.date32())).to_pylist()
    assert out == [dt.date(today.year - 90, 1, 1), born + dt.timedelta(days=1)]


def test_leap_day_birthdays_and_references():
    assert years_before(dt.date(2028, 2, 29), 90) == dt.date(1938, 2, 28)
    births = pa.array([dt.date(1936, 2, 29), dt.date(1936, 3, 1)], pa.date32())
    # born 29 Feb 1936: 89 on 28 Feb 2026, 90 on 1 Mar 2026 (as Spark's add_months counts)
    assert _gd(to="day", reference="2026-02-28").apply(births).to_pylist() == [dt.date(1936, 2, 29),
                                                                               dt.date(1936, 3, 1)]
    assert _gd(to="day", reference="2026-03-01").apply(births).to_pylist() == [dt.date(1936, 1, 1)] * 2
    # a 29 Feb reference looks back to 28 Feb of a common year
    births = pa.array([dt.date(1938, 2, 28), dt.date(1938, 3, 1)], pa.date32())
    assert _gd(to="day", reference="2028-02-29").apply(births).to_pylist() == [dt.date(1938, 1, 1),
                                                                               dt.date(1938, 3, 1)]


@pytest.mark.parametrize(("to", "expected"), [
    ("week", [dt.datetime(2024, 5, 13), dt.datetime(2023, 12, 25), dt.datetime(2024, 1, 1), dt.datetime(1969, 12, 29)]),
    ("day", [dt.datetime(2024, 5, 17), dt.datetime(2023, 12, 31), dt.datetime(2024, 1, 1), dt.datetime(1970, 1, 1)]),
])
def test_week_is_the_iso_monday_and_day_is_midnight(to, expected):
    ts = pa.array([dt.datetime(2024, 5, 17, 13, 45, 1, 5, tzinfo=UTC), dt.datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
                   dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC), dt.datetime(1970, 1, 1, 8, tzinfo=UTC), None],
                  pa.timestamp("us", tz="UTC"))
    out = _gd(PLAIN, to=to).apply(ts)
    assert out.type == ts.type
    assert out.to_pylist() == [e.replace(tzinfo=UTC) for e in expected] + [None]
    assert all(e.isoweekday() == 1 for e in expected) or to == "day"


def test_timestamps_are_top_coded_at_utc_midnight():
    ts = pa.array([dt.datetime(1936, 11, 30, 23, 59, tzinfo=UTC), dt.datetime(1936, 12, 1, 0, 0, tzinfo=UTC)],
                  pa.timestamp("us", tz="UTC"))
    out = _gd(to="day", reference=REF).apply(ts).to_pylist()
    assert out == [dt.datetime(1936, 1, 1, tzinfo=UTC), dt.datetime(1936, 12, 1, tzinfo=UTC)]


def test_age_cap_on_a_birth_date():
    a = AgeCap(AgeCap.params_model(reference=REF), DOB)
    births = pa.array([dt.date(1930, 8, 8), dt.date(1950, 8, 8), None], pa.date32())
    assert a.apply(births).to_pylist() == [dt.date(1936, 1, 1), dt.date(1950, 8, 8), None]


def _policy(dob_rule: dict, governance: dict | None = None) -> dict:
    data = {"version": 1, "name": "p", "keys": {"k": {"provider": "env", "ref": "K"}}, "tables": {"patients": {
        "source": {"format": "csv", "path": "x"}, "bronze": "b.patients",
        "columns": {"mrn": {"phi": "medical_record_number", "ingest": {"strategy": "hmac", "key": "k"}},
                    "dob": {"type": "date", "phi": "date_of_birth", "ingest": dob_rule,
                            "derive": {"birth_month": {"strategy": "generalize_date", "to": "month"}}}}}}}
    if governance:
        data["governance"] = governance
    return data


def test_turning_top_coding_off_needs_a_justification():
    policy_from_data(_policy({"strategy": "generalize_date", "to": "year", "top_code_age": None,
                              "justification": "geriatric registry under an IRB waiver"}), "t")
    with pytest.raises(PolicyError) as exc:
        policy_from_data(_policy({"strategy": "generalize_date", "to": "year", "top_code_age": None}), "t")
    assert "tables.patients.columns.dob.ingest.top_code_age" in str(exc.value)
    with pytest.raises(PolicyError) as exc:  # a justification on a top-coded column means nothing: refused
        policy_from_data(_policy({"strategy": "generalize_date", "to": "year", "justification": "x"}), "t")
    assert "justification" in str(exc.value)
    with pytest.raises(PolicyError) as exc:
        policy_from_data(_policy({"strategy": "generalize_date", "to": "year", "reference": "yesterday"}), "t")
    assert "reference" in str(exc.value)


def test_a_derive_output_of_a_birth_date_is_top_coded_in_ingest():
    from lakehouse_phi.engine.plan import TablePlan
    from lakehouse_phi.keys import KeyRing, SecretKey

    loaded = LoadedPolicy(policy_from_data(_policy({"strategy": "generalize_date", "to": "year"}), "t"), "0" * 64, "t")
    plan = TablePlan(loaded, "patients", KeyRing({"k": SecretKey("k", 1, bytes(range(32)))}))
    born = years_before(dt.datetime.now(UTC).date(), 95).isoformat()
    out = plan.process(pa.table({"mrn": ["MRN1"], "dob": [born]})).to_pydict()
    first = dt.date(dt.datetime.now(UTC).year - 90, 1, 1)
    assert out["dob"] == [first] and out["birth_month"] == [first]


def test_rendering_shapes():
    assert Rendering.model_validate({"generalize_date": "week"}).arg == "week"
    assert Rendering.model_validate({"generalize_date": {"to": "day", "top_code_age": None}}).arg == \
        {"to": "day", "top_code_age": None}
    for bad in ("decade", {"to": "year", "top_code_age": "old"}, {"to": "year", "cap": 1}, {"top_code_age": 90}):
        with pytest.raises(ValueError):
            Rendering.model_validate({"generalize_date": bad})


def test_sql_tops_code_birth_dates_by_default_and_not_other_dates():
    gov = {"function_schema": "g", "tables": {"s.patients": {"masks": {
        "dob": {"type": "date", "otherwise": {"generalize_date": "year"}},
        "birth_month": {"type": "date", "otherwise": {"generalize_date": {"to": "month", "top_code_age": None}}},
        "visit": {"type": "date", "otherwise": {"generalize_date": "week"}}}}}}
    loaded = LoadedPolicy(policy_from_data(_policy({"strategy": "generalize_date", "to": "year"}, gov), "t"),
                          "0" * 64, "t")
    bodies = {fn.column: Databricks().body(fn) for fn in build_ir(loaded).functions}
    assert "add_months(current_date(), -1080)" in bodies["dob"]
    assert "make_date(year(current_date()) - 90" in bodies["dob"]
    assert bodies["birth_month"] == "trunc(`birth_month`, 'MONTH')"
    assert bodies["visit"] == "trunc(`visit`, 'WEEK')"
