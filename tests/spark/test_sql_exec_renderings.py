"""Every rendering's SQL gives, on local Spark, exactly what the ingest strategy of the same name gives in Arrow.

Renderings not in the worked example (zip3, partial with keep_first / keep_domain / mask_char, generalize_date on
timestamps and dates, age_cap on double / long / decimal) and a group name and redact constant full of quotes,
backslashes and comment markers, all compiled from one test policy and executed as temporary functions.
Frames are compared with chispa (rows in any order, NaN equal to NaN, a side-by-side table on a mismatch).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from chispa import assert_column_equality, assert_df_equality
from chispa.column_comparer import ColumnsNotEqualError

from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.sql.dialects import Databricks
from lakehouse_phi.sql.ir import build_ir
from lakehouse_phi.sql.quoting import string
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext

pytestmark = pytest.mark.spark

TRICKY_GROUP = "o'brien \\ \"team\" -- /* x */ ; `tick`"
TRICKY_CONST = "it's a \\ \"test\" ☃ -- /* */ ; \\n `x`"


def _policy() -> LoadedPolicy:
    data = yaml.safe_load(Path("conf/policy.yaml").read_text())
    data["groups"]["tricky"] = TRICKY_GROUP
    data["governance"] = {"function_schema": "main.governance", "tables": {"main.silver.extras": {"masks": {
        "zip": {"otherwise": "zip3"},
        "email": {"otherwise": {"partial": {"keep_first": 1, "keep_domain": True}}},
        "email2": {"otherwise": {"partial": {"keep_first": 1, "keep_last": 1, "keep_domain": True,
                                             "mask_char": "#"}}},
        "code": {"otherwise": {"partial": {"keep_first": 2, "keep_last": 2, "mask_char": "x"}}},
        "code0": {"otherwise": {"partial": {}}},
        "seen_m": {"type": "timestamp", "otherwise": {"generalize_date": "month"}},
        "seen_q": {"type": "timestamp", "otherwise": {"generalize_date": "quarter"}},
        "seen_y": {"type": "timestamp", "otherwise": {"generalize_date": "year"}},
        "visit": {"type": "date", "otherwise": {"generalize_date": "quarter"}},
        "seen_w": {"type": "timestamp", "otherwise": {"generalize_date": "week"}},
        "seen_d": {"type": "timestamp", "otherwise": {"generalize_date": "day"}},
        "visit_w": {"type": "date", "otherwise": {"generalize_date": "week"}},
        "dob": {"type": "date", "otherwise": {"generalize_date": "year"}},  # a date_of_birth in tables: -> 90+
        "birth_ts": {"type": "timestamp", "otherwise": {"generalize_date": {"to": "month", "top_code_age": 85}}},
        "dob_cap": {"type": "date", "otherwise": "age_cap"},
        "dob_cap_ts": {"type": "timestamp", "otherwise": {"age_cap": {"cap": 80}}},
        "weight": {"type": "double", "otherwise": "age_cap"},
        "big_age": {"type": "long", "otherwise": {"age_cap": {"cap": 85}}},
        "dec_age": {"type": "decimal(5,1)", "otherwise": "age_cap"},
        "label": {"rules": [{"to": ["tricky"], "show": "raw"}], "otherwise": {"redact": TRICKY_CONST}},
    }, "row_filter": {"columns": ["label"], "rules": [{"to": ["tricky"], "where": "label LIKE 'it\\'s%'"}],
                      "otherwise": "label IS NULL"}}}}
    return LoadedPolicy(policy_from_data(data, "test"), "0" * 64, "test")


STRINGS = {
    "zip": ["12345", "03601", " 03601-1234 ", "123456789", "1234", "12345 6789", "ABCDE", "", None, "\t82301\n",
            "12345-678", "89300", "1234567890", "٠١٢٣٤"],
    "email": ["jane.doe@x.org", "a@b", "@x.org", "no-at-sign", "two@at@x.org", "Zoë@exämple.de", "", None, "j@",
              "ab\n@x.org", "日本@例え.jp"],
    "code": ["ABCDEFG", "ABCD", "ABCDE", "A", "", None, "ÄÖÜßéè", "日本語テキスト", "a😀b😀c"],
}
STRINGS["email2"] = STRINGS["email"]
STRINGS["code0"] = STRINGS["code"]
TIMES = [datetime(2021, 5, 17, 13, 45, 12, 123456, tzinfo=timezone.utc),
         datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc), datetime(2020, 1, 1, tzinfo=timezone.utc),
         datetime(2021, 12, 31, 23, 30, tzinfo=timezone.utc), datetime(1900, 3, 1, 1, tzinfo=timezone.utc), None]
DATES = [date(2021, 5, 17), date(1969, 12, 31), date(2020, 3, 31), date(2020, 4, 1), None]
WEIGHTS = [89.0, 89.5, 90.0, 120.3, float("nan"), None, -1.0]
BIG = [84, 85, 86, 10**12, None]


@pytest.fixture(scope="module")
def extras(spark):
    ir = build_ir(_policy())
    gen = Databricks()
    _as_role(spark, set())  # a temporary SQL function checks at creation that the functions it calls exist
    for fn in ir.functions:
        spark.sql(gen.create_function(fn, temporary=True).sql)
    yield {fn.name.leaf: fn for fn in ir.functions}
    for fn in ir.functions:
        spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS {fn.name.leaf}")
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")


def _as_role(spark, groups: set[str]) -> None:
    """Here ``is_account_group_member`` is a temporary SQL function (no Python worker: these tests check
    renderings, not the binding, which ``test_sql_exec.py`` does with a Python UDF)."""
    body = f"g IN ({', '.join(string(x) for x in sorted(groups))})" if groups else "FALSE"
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")
    spark.sql(f"CREATE TEMPORARY FUNCTION is_account_group_member(g STRING) RETURNS BOOLEAN RETURN {body}")


def _ingest(kind: str, params: dict, values: pa.Array) -> list:
    cls = registry.get(kind)
    strategy = cls(cls.params_model.model_validate(params), ColumnContext("extras", "c", "c"))
    return strategy.apply(values).to_pylist()


def _masked(spark, fn: str, values: list, sql_type: str, wrap: str = "{}", arg: str = "v"):
    """``(i, m)``: ``m`` is SQL function ``fn`` applied to ``values[i]``."""
    spark.createDataFrame(list(enumerate(values)), f"i INT, v {sql_type}").createOrReplaceTempView("sqlx_values")
    return spark.sql(f"SELECT i, {wrap.format(f'{fn}({arg})')} AS m FROM sqlx_values")


def _frame(spark, values: list, sql_type: str):
    """``(i, m)`` with ``m = values[i]``: what :func:`_masked` should give."""
    return spark.createDataFrame(list(enumerate(values)), f"i INT, m {sql_type}")


def _assert_same(got, want) -> None:
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


def _sql_values(spark, fn: str, values: list, sql_type: str) -> list:
    return [r.m for r in _masked(spark, fn, values, sql_type).orderBy("i").collect()]


@pytest.mark.parametrize("column,kind,params", [
    ("zip", "zip3", {}),
    ("email", "partial", {"keep_first": 1, "keep_domain": True}),
    ("email2", "partial", {"keep_first": 1, "keep_last": 1, "keep_domain": True, "mask_char": "#"}),
    ("code", "partial", {"keep_first": 2, "keep_last": 2, "mask_char": "x"}),
    ("code0", "partial", {}),
])
def test_string_renderings_match_ingest(spark, extras, column, kind, params):
    _as_role(spark, set())
    values = STRINGS[column]
    want = _ingest(kind, params, pa.array(values, pa.string()))
    _assert_same(_masked(spark, f"mask_extras_{column}", values, "STRING"), _frame(spark, want, "STRING"))


def test_string_renderings_spot_values(spark, extras):
    _as_role(spark, set())
    assert _sql_values(spark, "mask_extras_zip", ["03601", " 12345-6789 ", "1234", None], "STRING") == \
        ["000", "123", None, None]
    assert _sql_values(spark, "mask_extras_email", ["jane.doe@x.org", "two@at@x.org", "nope"], "STRING") == \
        ["j*******@x.org", "t*****@x.org", "****"]
    assert _sql_values(spark, "mask_extras_code", ["ABCDEFG", "ABCD"], "STRING") == ["ABxxxFG", "xxxx"]


@pytest.mark.parametrize("column,unit", [("seen_m", "month"), ("seen_q", "quarter"), ("seen_y", "year"),
                                         ("seen_w", "week"), ("seen_d", "day")])
def test_timestamps_truncate_in_utc_whatever_the_session_zone(spark, extras, column, unit):
    _as_role(spark, set())
    micros = [None if t is None else int(t.timestamp()) * 1_000_000 + t.microsecond for t in TIMES]
    expected = _ingest("generalize_date", {"to": unit}, pa.array(micros, pa.timestamp("us", tz="UTC")).cast(
        pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    expected_micros = [None if t is None else int(t.timestamp()) * 1_000_000 + t.microsecond for t in expected]
    old = spark.conf.get("spark.sql.session.timeZone")
    try:
        for zone in ("UTC", "America/New_York", "Asia/Kolkata"):
            spark.conf.set("spark.sql.session.timeZone", zone)
            got = _masked(spark, f"mask_extras_{column}", micros, "BIGINT", wrap="unix_micros({})",
                          arg="timestamp_micros(v)")
            _assert_same(got, _frame(spark, expected_micros, "BIGINT"))
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)


def test_dates_truncate(spark, extras):
    _as_role(spark, set())
    got = _masked(spark, "mask_extras_visit", DATES, "DATE")
    want = _ingest("generalize_date", {"to": "quarter"}, pa.array(DATES, pa.date32()))
    _assert_same(got, _frame(spark, want, "DATE"))
    _assert_same(got, _frame(spark, [date(2021, 4, 1), date(1969, 10, 1), date(2020, 1, 1), date(2020, 4, 1), None],
                              "DATE"))


def test_dates_truncate_to_the_iso_monday(spark, extras):
    _as_role(spark, set())
    got = _sql_values(spark, "mask_extras_visit_w", DATES, "DATE")
    assert got == _ingest("generalize_date", {"to": "week"}, pa.array(DATES, pa.date32()))
    assert got == [date(2021, 5, 17), date(1969, 12, 29), date(2020, 3, 30), date(2020, 3, 30), None]


def _birth_dates(today: date, age: int) -> list:
    """Birth dates around the day a subject turns ``age`` today, plus 29 February and far-off ones."""
    turning = date(today.year - age, today.month, min(today.day, 28)) if (today.month, today.day) == (2, 29) else \
        date(today.year - age, today.month, today.day)
    near = [turning - timedelta(days=d) for d in (-2, -1, 0, 1, 2, 400)]
    return near + [date(1924, 2, 29), date(today.year - age + 1, 1, 1), date(today.year - age, 12, 31),
                   date(1990, 6, 1), None]


@pytest.mark.parametrize("column,sql_type,kind,params,age", [
    ("dob", "DATE", "generalize_date", {"to": "year"}, 90),
    ("birth_ts", "TIMESTAMP", "generalize_date", {"to": "month", "top_code_age": 85}, 85),
    ("dob_cap", "DATE", "age_cap", {"cap": 90}, 90),
    ("dob_cap_ts", "TIMESTAMP", "age_cap", {"cap": 80}, 80),
])
def test_birth_dates_are_top_coded_like_ingest(spark, extras, column, sql_type, kind, params, age):
    """Safe Harbor 90+: the SQL (current_date()) and the Arrow strategy (reference = today in UTC) agree, around the
    birthday that makes the subject ``age`` today; the dates of older subjects all become 1 January."""
    _as_role(spark, set())
    old = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # current_date() is the session's date; ingest's is UTC
    try:
        today = spark.sql("SELECT current_date() AS d").collect()[0].d
        births = _birth_dates(today, age)
        if sql_type == "DATE":
            got = _sql_values(spark, f"mask_extras_{column}", births, "DATE")
            arrow = pa.array(births, pa.date32())
        else:
            stamps = [None if b is None else datetime(b.year, b.month, b.day, 23, 30, tzinfo=timezone.utc)
                      for b in births]
            got = _sql_values(spark, f"mask_extras_{column}", stamps, "TIMESTAMP")
            arrow = pa.array(stamps, pa.timestamp("us", tz="UTC"))
            got = [None if g is None else g.astimezone(timezone.utc) if g.tzinfo else g.replace(tzinfo=timezone.utc)
                   for g in got]
        cls = registry.get(kind)
        strategy = cls(cls.params_model.model_validate({**params, "reference": today.isoformat()}),
                       ColumnContext("extras", column, column, phi="date_of_birth"))
        want = strategy.apply(arrow).to_pylist()
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)
    assert got == want
    first = date(today.year - age, 1, 1)
    as_date = [None if g is None else (g.date() if isinstance(g, datetime) else g) for g in got]
    assert as_date[2:6] == [first] * 4  # turning ``age`` today, or older
    assert as_date[1] != first or kind == "generalize_date"  # one day short of ``age``: not top-coded
    assert as_date[-2] != first and as_date[-1] is None


def test_age_cap_double_long_decimal(spark, extras):
    _as_role(spark, set())
    got = _masked(spark, "mask_extras_weight", WEIGHTS, "DOUBLE")
    want = _frame(spark, _ingest("age_cap", {"cap": 90}, pa.array(WEIGHTS, pa.float64())), "DOUBLE")
    _assert_same(got, want)
    _assert_same(want, _frame(spark, [89.0, 90.0, 90.0, 90.0, float("nan"), None, -1.0], "DOUBLE"))
    got = _masked(spark, "mask_extras_big_age", BIG, "BIGINT")
    want = _frame(spark, _ingest("age_cap", {"cap": 85}, pa.array(BIG, pa.int64())), "BIGINT")
    _assert_same(got, want)
    _assert_same(want, _frame(spark, [84, 85, 85, 85, None], "BIGINT"))
    got = _masked(spark, "mask_extras_dec_age", [Decimal("89.0"), Decimal("89.5"), None], "DECIMAL(5,1)")
    _assert_same(got, _frame(spark, [Decimal("89.0"), Decimal("90.0"), None], "DECIMAL(5,1)"))


def test_a_tricky_group_and_constant_stay_literals(spark, extras):
    """Quotes, backslashes, comment markers and backticks in a group name and a redact constant are inert."""
    values = ["it's me", "other", None]
    _as_role(spark, {TRICKY_GROUP})
    assert _sql_values(spark, "mask_extras_label", values, "STRING") == values
    assert _sql_values(spark, "filter_extras", values, "STRING") == [True, False, None]
    _as_role(spark, {"o'brien"})
    assert _sql_values(spark, "mask_extras_label", values, "STRING") == [TRICKY_CONST, TRICKY_CONST, None]
    assert _sql_values(spark, "filter_extras", values, "STRING") == [False, False, True]


#: Accepted wheres (as in tests/unit/test_sql_where.py): sqlglot's normalized form must mean on Spark exactly
#: what the author's text means on Spark.
WHERES = ["true", "s IN ('NY', 'NJ')", "s IS NOT NULL", "coalesce(n, 0) < 30 AND s = 'NY'",
          "upper(s) = 'NY' OR lower(s) LIKE 'n%'", "n BETWEEN 1 AND 10",
          "CASE WHEN n > 1 THEN s = 'NY' ELSE FALSE END", "year(d) >= 2020 AND month(d) = 1",
          "d > date_add(date'2021-01-01', -30)", "trim(s) <> '' AND length(s) < 5", "substring(s, 1, 1) = 'N'",
          "s rlike '^N'", "n % 2 = 0 AND n * 2 - 1 > 0", "s = 'it\\'s'", "cast(n as string) = '1'",
          "if(n > 1, true, false)", "datediff(d, date'2020-01-01') > 3", "s <=> NULL", "quarter(d) = 1",
          "date_trunc('MONTH', d) = d", "left(s, 1) = 'N' AND right(s, 1) = 'Y'", "s || 'x' = 'NYx'",
          "startswith(s, 'N')", "floor(n / 2) = 1 AND ceil(n / 2) = 2", "abs(n - 5) > 2",
          "to_date('2020-01-01') = d", "day(d) = 1", "date_sub(d, 1) < d", "s ILIKE 'ny'",
          "cast(d as timestamp) < current_timestamp()"]
ROWS = [("NY", date(2020, 1, 1), 3), ("nj", date(2021, 5, 17), 12), ("it's", date(2019, 12, 31), None),
        (None, None, 0), ("", date(2020, 2, 1), 2)]


def test_normalized_wheres_mean_what_was_written(spark):
    from lakehouse_phi.sql.where import check_where

    spark.createDataFrame(list(enumerate(ROWS)), "i INT, r STRUCT<s: STRING, d: DATE, n: INT>") \
        .selectExpr("i", "r.s AS s", "r.d AS d", "r.n AS n").createOrReplaceTempView("sqlx_where")
    probes, direct = [], []
    for k, where in enumerate(WHERES):
        checked = check_where(where, ["s", "d", "n"])
        assert checked.sql is not None, (where, checked.problems)
        spark.sql(f"CREATE OR REPLACE TEMPORARY FUNCTION sqlx_probe{k}(s STRING, d DATE, n INT) RETURNS BOOLEAN "
                  f"RETURN ({checked.sql})")
        probes.append(f"sqlx_probe{k}(s, d, n) AS f{k}")
        direct.append(f"({where}) AS w{k}")
    got = spark.sql(f"SELECT i, {', '.join(probes + direct)} FROM sqlx_where ORDER BY i").cache()
    assert got.count() == len(ROWS)
    for k, where in enumerate(WHERES):
        try:
            assert_column_equality(got, f"f{k}", f"w{k}")
        except ColumnsNotEqualError as exc:
            raise AssertionError(f"normalized where differs from {where!r}: {exc}") from None
    got.unpersist()
    for k in range(len(WHERES)):
        spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS sqlx_probe{k}")
