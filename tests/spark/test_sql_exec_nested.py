"""Governance over nested columns on local Spark: the compiler's one mask function per column rebuilds it with the
governed leaves masked (``transform`` / ``named_struct``), per role, NULLs and element order kept."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import LoadedPolicy, parse_yaml, policy_from_data
from lakehouse_phi.sql.dialects import Databricks
from lakehouse_phi.sql.ir import build_ir

pytestmark = pytest.mark.spark

POLICY = """
version: 1
name: nested-gov
groups: {clinicians: phi-clinicians, billing: phi-billing}
governance:
  function_schema: main.governance
  tables:
    main.silver.patient_fhir:
      masks:
        telecom:
          type: array<struct<system:string,value:string,use:string>>
          fields:
            "[].value":
              rules:
                - {to: [clinicians], show: raw}
                - {to: [billing], show: {partial: {keep_last: 4}}}
              otherwise: hide
        name:
          type: "array<struct<use:string,family:string,given:array<string>>>"
          fields:
            "[].given[]": {rules: [{to: [clinicians], show: raw}], otherwise: {redact: "***"}}
            "[].family": {rules: [{to: [clinicians, billing], show: raw}], otherwise: hide}
        period:
          type: struct<start:timestamp,end:timestamp>
          fields:
            .end: {type: timestamp, rules: [{to: [clinicians], show: raw}], otherwise: {generalize_date: year}}
"""
TS = datetime(2024, 5, 17, 10, 30, tzinfo=timezone.utc)
ROWS = [
    (1, [{"system": "phone", "value": "555-123-4567", "use": "home"}, None,
         {"system": "email", "value": None, "use": "work"}],
     [{"use": "official", "family": "Smith", "given": ["Ann", None, "Marie"]}, None],
     {"start": TS, "end": TS}),
    (2, None, [], None),
    (3, [], [{"use": None, "family": None, "given": None}], {"start": None, "end": None}),
]
DDL = ("id INT, telecom ARRAY<STRUCT<system:STRING,value:STRING,use:STRING>>, "
       "name ARRAY<STRUCT<use:STRING,family:STRING,given:ARRAY<STRING>>>, "
       "period STRUCT<`start`:TIMESTAMP,`end`:TIMESTAMP>")


@pytest.fixture(scope="module")
def governed(spark):
    loaded = LoadedPolicy(policy_from_data(parse_yaml(POLICY, "t"), "t"), "0" * 64, "t")
    ir = build_ir(loaded)
    gen = Databricks(ir)
    _as_role(spark, set())  # the function must exist when the temporary masks are created
    for fn in ir.functions:
        spark.sql(gen.create_function(fn, temporary=True).sql)
    spark.createDataFrame(ROWS, DDL).createOrReplaceTempView("nested_fhir")
    yield
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")


def _as_role(spark, groups: set[str]) -> None:
    body = " OR ".join(f"g = '{g}'" for g in sorted(groups)) or "false"
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")
    spark.sql(f"CREATE TEMPORARY FUNCTION is_account_group_member(g STRING) RETURNS BOOLEAN RETURN {body}")


def _view(spark, groups: set[str]) -> list[dict]:
    _as_role(spark, groups)
    rows = spark.sql("SELECT id, mask_patient_fhir_telecom(telecom) AS telecom, mask_patient_fhir_name(name) AS name,"
                     " mask_patient_fhir_period(period) AS period FROM nested_fhir ORDER BY id").collect()
    return [r.asDict(recursive=True) for r in rows]


def test_clinicians_see_raw_leaves_and_the_same_shape(spark, governed):
    got = _view(spark, {"phi-clinicians"})
    assert got[0]["telecom"] == [{"system": "phone", "value": "555-123-4567", "use": "home"}, None,
                                 {"system": "email", "value": None, "use": "work"}]
    assert got[0]["name"] == [{"use": "official", "family": "Smith", "given": ["Ann", None, "Marie"]}, None]
    assert got[0]["period"]["end"].replace(tzinfo=None) == TS.replace(tzinfo=None)
    assert (got[1]["telecom"], got[1]["name"], got[1]["period"]) == (None, [], None)
    assert got[2]["telecom"] == [] and got[2]["name"] == [{"use": None, "family": None, "given": None}]
    assert got[2]["period"] == {"start": None, "end": None}


def test_billing_sees_partial_phones_and_redacted_given_names(spark, governed):
    got = _view(spark, {"phi-billing"})
    assert [t and t["value"] for t in got[0]["telecom"]] == ["********4567", None, None]
    assert [t and t["system"] for t in got[0]["telecom"]] == ["phone", None, "email"]  # other leaves unchanged
    assert got[0]["name"] == [{"use": "official", "family": "Smith", "given": ["***", None, "***"]}, None]
    assert got[0]["period"]["end"].year == 2024 and got[0]["period"]["end"].month == 1
    assert got[0]["period"]["start"].replace(tzinfo=None) == TS.replace(tzinfo=None)


def test_everyone_else_sees_governed_leaves_hidden(spark, governed):
    got = _view(spark, set())
    assert [t and t["value"] for t in got[0]["telecom"]] == [None, None, None]
    assert got[0]["name"][0]["family"] is None and got[0]["name"][0]["given"] == ["***", None, "***"]
    assert got[1]["telecom"] is None and got[1]["name"] == []


@pytest.mark.parametrize("mask, problem", [
    ({"type": "array<struct<value:string>>"}, "names the leaves it governs under fields"),
    ({"type": "array<struct<value:string>>", "fields": {"[].nope": {}}}, "has no field 'nope'"),
    ({"type": "array<struct<value:string>>", "fields": {"[].value": {"type": "date"}}}, "declares date"),
    ({"type": "array<struct<value:string>>", "fields": {"[].value": {"otherwise": "age_cap"}}}, "age_cap"),
    ({"type": "string", "fields": {"[].value": {}}}, "fields: is for a nested column"),
    ({"type": "array<struct<value:string>>", "otherwise": "hide", "fields": {"[].value": {}}}, "per leaf"),
])
def test_nested_mask_errors_name_their_place(mask, problem):
    import json

    text = (f"version: 1\nname: t\ngovernance:\n  function_schema: main.g\n  tables:\n    main.s.t:\n"
            f"      masks:\n        c: {json.dumps(mask)}\n")
    with pytest.raises(PolicyError) as err:
        policy_from_data(parse_yaml(text, "t"), "t")
    assert problem in str(err.value) and "governance.tables.main.s.t.masks.c" in str(err.value), str(err.value)
