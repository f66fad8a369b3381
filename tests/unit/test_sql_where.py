"""The ``where`` checker: what it accepts (and how sqlglot re-emits it) and what it refuses."""

from __future__ import annotations

import pytest

from lakehouse_phi.sql.where import check_where

COLUMNS = ["s", "d", "n"]

#: (where as written, normalized SQL). The same list runs on Spark in tests/spark/test_sql_exec_renderings.py.
ACCEPTED = [
    ("true", "TRUE"),
    ("FALSE", "FALSE"),
    ("s IN ('NY', 'NJ')", "`s` IN ('NY', 'NJ')"),
    ("s IS NOT NULL", "NOT `s` IS NULL"),
    ("coalesce(n, 0) < 30 AND s = 'x'", "COALESCE(`n`, 0) < 30 AND `s` = 'x'"),
    ("upper(s) = 'MEDICARE' OR lower(s) LIKE 'm%'", "UPPER(`s`) = 'MEDICARE' OR LOWER(`s`) LIKE 'm%'"),
    ("n BETWEEN 1 AND 10", "`n` BETWEEN 1 AND 10"),
    ("CASE WHEN n > 1 THEN s = 'a' ELSE FALSE END", "CASE WHEN `n` > 1 THEN `s` = 'a' ELSE FALSE END"),
    ("year(d) >= 2020 AND month(d) = 1", "YEAR(`d`) >= 2020 AND MONTH(`d`) = 1"),
    ("d > date_add(current_date(), -30)", "`d` > DATE_ADD(CURRENT_DATE, -30)"),
    ("trim(s) <> '' AND length(s) < 5", "TRIM(`s`) <> '' AND LENGTH(`s`) < 5"),
    ("substring(s, 1, 2) = 'ab'", "SUBSTRING(`s`, 1, 2) = 'ab'"),
    ("s rlike '^a'", "REGEXP_LIKE(`s`, '^a')"),
    ("n % 2 = 0 AND n * 2 - 1 > 0", "`n` % 2 = 0 AND `n` * 2 - 1 > 0"),
    ("S = 'x'", "`S` = 'x'"),  # Spark names are case-insensitive
    ("s = 'it\\'s'", "`s` = 'it\\'s'"),
    ("cast(n as string) = '1'", "CAST(`n` AS STRING) = '1'"),
    ("if(n > 1, true, false)", "IF(`n` > 1, TRUE, FALSE)"),
    ("datediff(d, date'2020-01-01') > 3", "DATEDIFF(DAY, CAST('2020-01-01' AS DATE), `d`) > 3"),
    ("s <=> NULL", "`s` IS NOT DISTINCT FROM NULL"),
]


@pytest.mark.parametrize("where,normalized", ACCEPTED)
def test_accepted(where, normalized):
    assert check_where(where, COLUMNS).sql == normalized
    assert check_where(normalized, COLUMNS).sql == normalized  # a fixpoint


@pytest.mark.parametrize("where,message", [
    ("s IN (SELECT s FROM t)", "IN takes a list of values"),
    ("(SELECT max(n) FROM t) > 1", "subquery"),
    ("s = 'a'; SELECT 1", "';'"),
    ("s = 'a' --", "comments"),
    ("s = 'a' /**/", "comments"),
    ("x = 1", "unknown column 'x'"),
    ("t.s = 1", "names a table"),
    ("1", "must be a boolean"),
    ("n + 1", "must be a boolean"),
    ("count(*) > 1", "function count() is not allowed"),
    ("current_user() = 'me'", "current_user() is not allowed"),
    ("IS_ACCOUNT_GROUP_MEMBER('x')", "is not allowed in a where"),
    ("transform(array(1), x -> x) IS NULL", "is not allowed"),
    ("s = ?", "parameters"),
    ("cast(s as array<int>) IS NULL", "CAST to"),
    ("s[0] = 'a'", "is not allowed"),
    ("", "exactly one expression"),
    ("s = 'a' 'b", "does not parse"),
])
def test_refused(where, message):
    result = check_where(where, COLUMNS)
    assert result.sql is None
    assert any(message in p for p in result.problems), result.problems
