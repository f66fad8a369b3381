"""keep, suppress, redact, generalize_date, zip3, age_cap: exact outputs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse_phi.hipaa import RESTRICTED_PREFIXES
from lakehouse_phi.transforms.age_cap import AgeCap
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.generalize_date import GeneralizeDate
from lakehouse_phi.transforms.keep import Keep
from lakehouse_phi.transforms.redact import Redact
from lakehouse_phi.transforms.suppress import Suppress
from lakehouse_phi.transforms.zip3 import Zip3

CTX = ColumnContext(table="patients", column="c", source_column="c")
UTC = dt.UTC


def test_keep_and_suppress():
    arr = pa.array([1, None, 3], pa.int32())
    assert Keep(Keep.params_model(), CTX).apply(arr).equals(arr)
    out = Suppress(Suppress.params_model(), CTX).apply(arr)
    assert out.type == pa.int32() and out.null_count == 3


def test_redact():
    r = Redact(Redact.params_model.model_validate({"with": "***-**-****"}), CTX)
    assert r.apply(pa.array(["123-45-6789", None])).to_pylist() == ["***-**-****", None]
    d = Redact(Redact.params_model(), CTX).apply(pa.array([dt.date(2024, 1, 1), None]))
    assert d.type == pa.string() and d.to_pylist() == ["[REDACTED]", None]
    assert Redact.output_type(Redact.params_model(), "date") == "string"


@pytest.mark.parametrize(("to", "expected"), [
    ("year", [dt.date(2024, 1, 1), dt.date(2023, 1, 1), dt.date(2024, 1, 1)]),
    ("quarter", [dt.date(2024, 4, 1), dt.date(2023, 10, 1), dt.date(2024, 1, 1)]),
    ("month", [dt.date(2024, 5, 1), dt.date(2023, 12, 1), dt.date(2024, 1, 1)]),
])
def test_generalize_date(to, expected):
    g = GeneralizeDate(GeneralizeDate.params_model(to=to), CTX)
    dates = pa.array([dt.date(2024, 5, 17), dt.date(2023, 12, 31), dt.date(2024, 1, 1), None], pa.date32())
    out = g.apply(dates)
    assert out.type == pa.date32() and out.to_pylist() == expected + [None]
    ts = pa.array([dt.datetime(d.year, d.month, d.day, 13, 45, 1, 5, tzinfo=UTC) for d in
                   (dt.date(2024, 5, 17), dt.date(2023, 12, 31), dt.date(2024, 1, 1))] + [None],
                  pa.timestamp("us", tz="UTC"))
    tout = g.apply(ts)
    assert tout.type == pa.timestamp("us", tz="UTC")
    assert tout.to_pylist() == [dt.datetime(d.year, d.month, d.day, tzinfo=UTC) for d in expected] + [None]


def test_zip3():
    z = Zip3(Zip3.params_model(), CTX)
    values = [" 12345 ", "12345-6789", "123456789", "02139", "1234", "12345 6789", "1234567890", "ABCDE", "", None,
              "12345-678"]
    assert z.apply(pa.array(values)).to_pylist() == ["123", "123", "123", "021", None, None, None, None, None,
                                                      None, None]
    assert len(RESTRICTED_PREFIXES) == 17
    restricted = z.apply(pa.array([p + "01" for p in RESTRICTED_PREFIXES] + ["03701"])).to_pylist()
    assert restricted == ["000"] * 17 + ["037"]
    assert Zip3.output_type(Zip3.params_model(), "string") == "string"


@pytest.mark.parametrize("typ", [pa.int32(), pa.int64(), pa.float64()])
def test_age_cap(typ):
    a = AgeCap(AgeCap.params_model(), CTX)
    out = a.apply(pa.array([0, 89, 90, 91, 130, None], typ))
    assert out.type == typ and out.to_pylist() == [0, 89, 90, 90, 90, None]
    assert AgeCap(AgeCap.params_model(cap=18), CTX).apply(pa.array([17, 18, 40], typ)).to_pylist() == [17, 18, 18]


def test_age_cap_fractional():
    assert AgeCap(AgeCap.params_model(), CTX).apply(pa.array([89.0, 89.5])).to_pylist() == [89.0, 90.0]
