"""Properties every strategy shares: NULL in gives NULL out, determinism, declared output types."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.registry import STRATEGIES

CTX = ColumnContext(table="patients", column="c", source_column="c")
ARROW = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(), "date": pa.date32(),
         "timestamp": pa.timestamp("us", tz="UTC")}
KEYS = {"hmac": bytes(range(32)), "aes": bytes(range(32, 64)), None: None}

# strategy -> (params, input type, value generator)
CASES = {
    "keep": ({}, "string", st.text(max_size=20)),
    "suppress": ({}, "long", st.integers(-2**63, 2**63 - 1)),
    "redact": ({}, "string", st.text(max_size=20)),
    "hmac": ({"key": "k", "normalize": "lower"}, "string", st.text(max_size=20)),
    "encrypt": ({"key": "k"}, "string", st.text(max_size=20)),
    "fpe": ({"key": "k"}, "string", st.text(alphabet="0123456789-", min_size=12, max_size=20)),
    "generalize_date": ({"to": "quarter"}, "date", st.dates()),
    "zip3": ({}, "string", st.from_regex(r"\A[0-9]{5}(-[0-9]{4})?\Z")),
    "age_cap": ({}, "int", st.integers(0, 150)),
    "date_shift": ({"key": "k", "subject": "pid", "max_days": 365}, "timestamp",
                   st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC))),
    "partial": ({"keep_last": 2}, "string", st.text(max_size=20)),
}
OUTPUT_STRING = {"hmac", "encrypt", "fpe", "redact", "zip3", "partial"}


def _build(name: str):
    cls = STRATEGIES[name]
    params, typ, values = CASES[name]
    return cls(cls.params_model(**params), CTX, KEYS[cls.key_kind]), typ, values


def test_every_strategy_but_scrub_text_is_covered():
    assert set(STRATEGIES) - {"scrub_text"} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_declared_output_type(name):
    strategy, typ, _ = _build(name)
    out_type = type(strategy).output_type(strategy.params, typ)
    assert out_type == ("string" if name in OUTPUT_STRING else typ)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_nulls_and_determinism(name, data):
    strategy, typ, values = _build(name)
    raw = data.draw(st.lists(st.one_of(st.none(), values), max_size=15))
    arr = pa.array(raw, ARROW[typ])
    others = {"pid": pa.array([None if v is None else f"P{i % 3}" for i, v in enumerate(raw)])}
    out = strategy.apply(arr, others)
    assert len(out) == len(raw)
    expected_type = ARROW["string"] if name in OUTPUT_STRING else ARROW[typ]
    assert out.type == expected_type
    assert all(o is None for v, o in zip(raw, out.to_pylist()) if v is None)
    if name != "suppress":
        assert all(o is not None for v, o in zip(raw, out.to_pylist()) if v is not None)
    if type(strategy).deterministic:
        assert strategy.apply(arr, others).equals(out)
    else:
        assert name == "encrypt"
