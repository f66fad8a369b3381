"""Policy types: their Arrow and Spark forms, and vectorized parsing of landing strings into them.

Parsing never raises on bad data: it returns the typed array (NULL where a value did not parse) and a boolean
array of failures, so the row can be quarantined with a reason that names the column and rule, never the value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.policy.types import DECIMAL_RE, TYPES, TypeTree, ddl

_INT_RE = r"^\s*[+-]?\d+\s*$"
_FLOAT_RE = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_TS_RE = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_BOOL_TRUE = ["true", "t", "yes", "y", "1"]
_BOOL_FALSE = ["false", "f", "no", "n", "0"]
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
#: Spark's (and Python's) date range: a year-0 or year-10000 value parses in Arrow but breaks Spark, Python and
#: the strategies downstream, so it is a parse failure.
MIN_DATE, MAX_DATE = pa.scalar(-719_162, pa.int32()), pa.scalar(2_932_896, pa.int32())  # 0001-01-01, 9999-12-31
MIN_TS_US, MAX_TS_US = -62_135_596_800_000_000, 253_402_300_799_999_999


def in_range(values: pa.Array) -> pa.Array:
    """True where a date or timestamp lies within 0001-01-01 .. 9999-12-31T23:59:59.999999 UTC (NULL stays NULL);
    for other types, all True."""
    if pa.types.is_date32(values.type):
        days = values.cast(pa.int32())
        return pc.and_(pc.greater_equal(days, MIN_DATE), pc.less_equal(days, MAX_DATE))
    if pa.types.is_timestamp(values.type):
        us = values.cast(pa.timestamp("us", tz=values.type.tz)).cast(pa.int64())
        return pc.and_(pc.greater_equal(us, MIN_TS_US), pc.less_equal(us, MAX_TS_US))
    return pa.array(np.ones(len(values), dtype=bool))


def arrow_type(policy_type: str) -> pa.DataType:
    """The Arrow type of a scalar policy type, from the one type table (:data:`lakehouse_phi.policy.types.TYPES`)."""
    m = DECIMAL_RE.match(policy_type)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    factory, args = TYPES[policy_type].arrow
    made: pa.DataType = getattr(pa, factory)(*args)
    return made


def spark_ddl(policy_type: TypeTree) -> str:
    """The Spark DDL of a policy type or type tree, lower case (``long`` -> ``bigint``), from the one type table."""
    return ddl(policy_type)


def _fail_where(ok: pa.Array, values: pa.Array) -> pa.Array:
    """Failure = a non-NULL input that did not parse."""
    return pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(ok, False)))


def _null_unless(ok: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(ok, False), values, pa.scalar(None, values.type))


def parse(values: pa.Array, policy_type: str) -> tuple[pa.Array, pa.Array]:
    """Parse landing strings into ``policy_type``.

    Returns:
        ``(typed, failed)``: ``typed`` has the Arrow type of :func:`arrow_type` with NULL where parsing failed;
        ``failed`` is True exactly where a non-NULL value did not parse. Empty or blank strings count as NULL.
    """
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    values = values.cast(pa.string()) if pa.types.is_large_string(values.type) else values
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    values = pc.if_else(pc.fill_null(blank, False), pa.scalar(None, pa.string()), values)
    target = arrow_type(policy_type)
    if policy_type == "string":
        return values, pa.array(np.zeros(len(values), dtype=bool))
    stripped = pc.utf8_trim_whitespace(values)
    if pa.types.is_decimal(target):
        return _parse_decimal(stripped, values, target)
    if policy_type in _INT_RANGES:
        return _parse_int(stripped, values, policy_type)
    parser = _PARSERS.get(policy_type)
    if parser is None:  # pragma: no cover - the model forbids it
        raise ValueError(f"unknown policy type {policy_type!r}")
    return parser(stripped, values)


def _parse_int(stripped: pa.Array, values: pa.Array, policy_type: str) -> tuple[pa.Array, pa.Array]:
    """Shape first, at most 19 significant digits, then an exact range check through decimal(38,0)."""
    significant = pc.utf8_length(pc.replace_substring_regex(stripped, r"^[+-]?0*", ""))
    ok = pc.and_(pc.match_substring_regex(stripped, _INT_RE), pc.less_equal(significant, 19))
    exact = pc.cast(_null_unless(ok, stripped), pa.decimal128(38, 0))
    lo, hi = (pa.scalar(b).cast(pa.decimal128(38, 0)) for b in _INT_RANGES[policy_type])
    ok = pc.and_(ok, pc.and_(pc.greater_equal(exact, lo), pc.less_equal(exact, hi)))
    typed = pc.cast(_null_unless(ok, exact), arrow_type(policy_type))
    return typed, _fail_where(ok, values)


def _parse_double(stripped: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    ok = pc.match_substring_regex(stripped, _FLOAT_RE)
    return pc.cast(_null_unless(ok, stripped), pa.float64()), _fail_where(ok, values)


def _parse_boolean(stripped: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    low = pc.utf8_lower(stripped)
    is_t, is_f = pc.is_in(low, pa.array(_BOOL_TRUE)), pc.is_in(low, pa.array(_BOOL_FALSE))
    ok = pc.or_(is_t, is_f)
    return _null_unless(ok, is_t), _fail_where(ok, values)


def _parse_date(stripped: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    shape = pc.match_substring_regex(stripped, _DATE_RE)
    candidates = _null_unless(shape, stripped)
    try:  # fast path: Arrow's cast rejects a whole batch with any impossible date (2021-02-30, month 13)
        typed = pc.cast(candidates, pa.date32())
        ok = pc.and_(pc.is_valid(typed), in_range(typed))
        return _null_unless(ok, typed), _fail_where(ok, values)
    except pa.ArrowInvalid:
        pass
    parsed = pc.strptime(candidates, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime normalizes 2021-02-30 to 2021-03-02: require the round trip to give the same text back
    back = pc.strftime(parsed, format="%Y-%m-%d")
    ok = pc.and_(shape, pc.equal(back, stripped))
    typed = pc.cast(_null_unless(ok, parsed), pa.date32())
    ok = pc.and_(ok, in_range(typed))
    return _null_unless(ok, typed), _fail_where(ok, values)


def _parse_decimal(stripped: pa.Array, values: pa.Array, target: pa.Decimal128Type) -> tuple[pa.Array, pa.Array]:
    p, s = target.precision, target.scale
    pattern = rf"^[+-]?\d{{1,{p - s}}}(\.\d{{0,{s}}})?$" if s else rf"^[+-]?\d{{1,{p}}}\.?$"
    if p - s == 0:
        pattern = rf"^[+-]?0?\.\d{{1,{s}}}$"
    ok = pc.match_substring_regex(stripped, pattern)
    cleaned = pc.replace_substring_regex(_null_unless(ok, stripped), r"\.$", "")
    typed = pc.cast(pc.cast(cleaned, pa.decimal128(38, s)), target)
    return typed, _fail_where(ok, values)


def _parse_timestamp(stripped: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """ISO-8601 ``YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH:MM]``; without an offset the value is taken as UTC."""
    shape = pc.match_substring_regex(stripped, _TS_RE)
    text = _null_unless(shape, stripped)
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2}) ", r"\1T")
    text = pc.replace_substring_regex(text, r"T(\d{2}:\d{2})(Z|[+-]|$)", r"T\1:00\2")
    text = pc.replace_substring_regex(text, r"([+-]\d{2})(\d{2})$", r"\1:\2")
    has_zone = pc.match_substring_regex(text, r"(Z|[+-]\d{2}:\d{2})$")
    text = pc.if_else(pc.fill_null(has_zone, False), text, pc.binary_join_element_wise(text, "Z", ""))
    out: list[object] = []
    ok: list[bool] = []
    # Arrow's ISO-8601 cast is all-or-nothing: cast the whole array, and only on failure find the bad values.
    try:
        typed = pc.cast(text, pa.timestamp("us", tz="UTC"))
        ok_arr = pc.is_valid(typed)
    except pa.ArrowInvalid:
        for v in text.to_pylist():
            if v is None:
                out.append(None)
                ok.append(False)
                continue
            try:
                out.append(pc.cast(pa.array([v]), pa.timestamp("us", tz="UTC"))[0].as_py())
                ok.append(True)
            except pa.ArrowInvalid:
                out.append(None)
                ok.append(False)
        typed = pa.array(out, pa.timestamp("us", tz="UTC"))
        ok_arr = pa.array(ok, pa.bool_())
    ok_all = pc.and_(pc.and_(shape, ok_arr), in_range(typed))
    return _null_unless(ok_all, typed), _fail_where(ok_all, values)


#: Parsers of the policy types that take no parameter besides ``string`` (integers and decimals are handled above).
_PARSERS: dict[str, Callable[[pa.Array, pa.Array], tuple[pa.Array, pa.Array]]] = {
    "double": _parse_double, "boolean": _parse_boolean, "date": _parse_date, "timestamp": _parse_timestamp,
}
