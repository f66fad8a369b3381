"""The ``dynamic-views`` output, statement by statement as generated, created and queried on local Spark.

The worked example with its catalog renamed to ``spark_catalog`` (the only catalog of a local session) and its
schemas prefixed so nothing collides: the ``apply`` statements run verbatim, creating persistent SQL functions and
views over real tables; each role then reads the views. A persistent function may not call a temporary one, so
``is_account_group_member`` and ``try_secret`` are bound as persistent SQL functions in ``spark_catalog.default``
(resolved through Spark's search path, as Databricks resolves its built-ins). ``rollback`` then drops everything.
"""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.sql.compile import compile_policy
from lakehouse_phi.sql.quoting import string
from lakehouse_phi.sql.runner import apply, dry_run, rollback
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt

pytestmark = pytest.mark.spark

KEY = bytes(range(40, 72))
SCHEMAS = {"governance": "lhp_sqlx_governance", "silver": "lhp_sqlx_silver", "gold": "lhp_sqlx_gold"}
GROUPS = {"admins": {"phi-admins"}, "billing": {"phi-billing"}, "clinicians": {"phi-clinicians"},
          "researchers": {"research-analysts"}, "nobody": set()}


def _policy(change=None) -> LoadedPolicy:
    data = yaml.safe_load(Path("conf/policy.yaml").read_text())
    gov = data["governance"]
    gov.pop("grants", None)  # open-source Spark has no GRANT; the grants are checked without an engine
    gov["function_schema"] = f"spark_catalog.{SCHEMAS['governance']}"
    renamed = {}
    for name, spec in gov["tables"].items():
        _, schema, table = name.split(".")
        renamed[f"spark_catalog.{SCHEMAS[schema]}.{table}"] = spec
    gov["tables"] = renamed
    if change is not None:
        change(renamed)
    return LoadedPolicy(policy_from_data(data, "test"), "1" * 64, "test")


def _bind(spark, groups: set[str]) -> None:
    body = f"g IN ({', '.join(string(x) for x in sorted(groups))})" if groups else "FALSE"
    spark.sql("CREATE OR REPLACE FUNCTION spark_catalog.default.is_account_group_member(g STRING) "
              f"RETURNS BOOLEAN RETURN {body}")


@pytest.fixture(scope="module")
def views(spark, tmp_path_factory):
    compiled = compile_policy(_policy(), "dynamic-views")
    root = tmp_path_factory.mktemp("lhp_sqlx_wh")
    for schema in SCHEMAS.values():
        spark.sql(f"CREATE DATABASE IF NOT EXISTS spark_catalog.{schema} LOCATION '{root / schema}'")
    # A Python UDF of the same name (another test module) would shadow the persistent binding: drop it.
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS try_secret")
    key = string(base64.b64encode(KEY).decode())
    spark.sql("CREATE OR REPLACE FUNCTION spark_catalog.default.try_secret(s STRING, k STRING) RETURNS STRING "
              f"RETURN CASE WHEN s = 'phi-keys' AND k = 'ssn-dek' THEN {key} END")
    _bind(spark, set())
    ssn = ["123-45-6789", None, "987654321"]
    cipher = Encrypt(Encrypt.params_model(key="phi-dek"), ColumnContext("patients", "ssn", "ssn"), KEY).apply(
        pa.array(ssn, pa.string())).to_pylist()
    silver, gold = SCHEMAS["silver"], SCHEMAS["gold"]
    spark.createDataFrame(
        [(1, "MRN1", cipher[0], "555-867-5309", date(1950, 7, 4), 93, "NY"),
         (2, "MRN2", cipher[1], None, date(1988, 3, 9), 35, "CA"),
         (3, "MRN3", cipher[2], "5551234", None, None, None)],
        "id INT, mrn STRING, ssn STRING, phone STRING, dob DATE, age INT, state STRING",
    ).write.format("parquet").saveAsTable(f"spark_catalog.{silver}.patients")
    spark.createDataFrame([(1, "NY", 3, "note one"), (2, "NJ", 31, "note two")],
                          "id INT, facility_state STRING, length_of_stay INT, note STRING",
                          ).write.format("parquet").saveAsTable(f"spark_catalog.{silver}.encounters")
    spark.createDataFrame([(1, "medicare", "ACCT-000123", Decimal("12.50")), (2, "Aetna", "99", Decimal("1.00"))],
                          "id INT, payer STRING, account_number STRING, amount DECIMAL(12,2)",
                          ).write.format("parquet").saveAsTable(f"spark_catalog.{gold}.claims")
    lines: list[str] = []
    assert apply(spark, compiled, progress=lines.append) == len(compiled.apply) == 14
    assert lines[0] == f"[1/14] create_schema spark_catalog.{SCHEMAS['governance']} (function schema)"
    assert lines[1] == "[2/14] create_function main.silver.patients.ssn".replace("main.silver",
                                                                                 f"spark_catalog.{silver}")
    yield compiled
    for schema in SCHEMAS.values():
        spark.sql(f"DROP DATABASE IF EXISTS spark_catalog.{schema} CASCADE")
    spark.sql("DROP FUNCTION IF EXISTS spark_catalog.default.is_account_group_member")
    spark.sql("DROP FUNCTION IF EXISTS spark_catalog.default.try_secret")


def _read(spark, view: str) -> dict[int, dict]:
    return {r["id"]: r.asDict() for r in spark.sql(f"SELECT * FROM {view}").collect()}


def test_view_columns_keep_every_column_masked_ones_last(spark, views):
    cols = spark.table(f"spark_catalog.{SCHEMAS['silver']}.patients_governed").columns
    assert cols == ["id", "mrn", "state", "ssn", "phone", "dob", "age"]


P_VIEW = f"spark_catalog.{SCHEMAS['silver']}.patients_governed"
MASKED = "***-**-****"


@pytest.mark.parametrize("role,expected", [
    ("clinicians", {1: (MASKED, "555-867-5309", date(1950, 7, 4), 93), 2: (None, None, date(1988, 3, 9), 35),
                    3: (MASKED, "5551234", None, None)}),
    ("billing", {1: ("123-45-6789", "********5309", date(1950, 1, 1), 90), 2: (None, None, date(1988, 1, 1), 35)}),
    ("researchers", {1: (MASKED, None, date(1950, 1, 1), 90)}),
    ("admins", {1: (MASKED, None, date(1950, 1, 1), 90), 2: (None, None, date(1988, 1, 1), 35),
                3: (MASKED, None, None, None)}),
    ("nobody", {}),
])
def test_patients_view_per_role(spark, views, role, expected):
    _bind(spark, GROUPS[role])
    got = {i: (r["ssn"], r["phone"], r["dob"], r["age"]) for i, r in _read(spark, P_VIEW).items()}
    assert got == expected
    assert all(r["mrn"] == f"MRN{i}" for i, r in _read(spark, P_VIEW).items())


@pytest.mark.parametrize("role,encounters,claims", [
    ("clinicians", {1: "note one", 2: "note two"}, {}),
    ("researchers", {1: "[NOTE WITHHELD]"}, {1: ("#########23", None)}),
    ("billing", {}, {1: ("ACCT-000123", Decimal("12.50")), 2: ("99", Decimal("1.00"))}),
    ("admins", {1: "[NOTE WITHHELD]", 2: "[NOTE WITHHELD]"}, {1: ("#########23", Decimal("12.50")),
                                                              2: ("##", Decimal("1.00"))}),
])
def test_encounters_and_claims_views_per_role(spark, views, role, encounters, claims):
    _bind(spark, GROUPS[role])
    got = _read(spark, f"spark_catalog.{SCHEMAS['silver']}.encounters_governed")
    assert {i: r["note"] for i, r in got.items()} == encounters
    got = _read(spark, f"spark_catalog.{SCHEMAS['gold']}.claims_governed")
    assert {i: (r["account_number"], r["amount"]) for i, r in got.items()} == claims


def test_apply_is_idempotent_and_rollback_removes_everything(spark, views):
    apply(spark, views)  # a second apply replaces in place
    _bind(spark, GROUPS["billing"])
    assert len(_read(spark, P_VIEW)) == 2
    show = f"SHOW USER FUNCTIONS IN spark_catalog.{SCHEMAS['governance']}"
    assert len([r[0] for r in spark.sql(show).collect() if SCHEMAS["governance"] in r[0]]) == 10
    assert rollback(spark, views) == 13
    for schema in ("silver", "gold"):
        left = [r.tableName for r in spark.sql(f"SHOW TABLES IN spark_catalog.{SCHEMAS[schema]}").collect()]
        assert not [t for t in left if t.endswith("_governed")]
    assert not [r[0] for r in spark.sql(show).collect() if SCHEMAS["governance"] in r[0]]
    rollback(spark, views)  # rollback twice is harmless
    apply(spark, views)  # and apply works again afterwards


def test_dry_run_passes_on_the_real_tables(spark, views):
    for target in ("dynamic-views", "databricks"):
        assert dry_run(spark, compile_policy(_policy(), target)) == []


def test_dry_run_finds_type_mismatch_missing_column_missing_table_and_bad_body(spark, views):
    silver = f"spark_catalog.{SCHEMAS['silver']}"

    def change(tables):
        tables[f"{silver}.patients"]["masks"]["age"]["type"] = "long"
        tables[f"{silver}.patients"]["masks"]["nope"] = {"otherwise": "hide"}
        tables[f"{silver}.missing"] = {"masks": {"x": {"otherwise": "hide"}}}

    bad = _policy(change)
    problems = dry_run(spark, compile_policy(bad, "databricks"))
    assert f"{silver}.patients.age: the table has int, the policy says bigint" in problems
    assert f"{silver}.patients.nope: no such column" in problems
    assert any(p.startswith(f"{silver}.missing: cannot read the table") for p in problems)
    spark.sql("DROP FUNCTION spark_catalog.default.try_secret")  # the engine now refuses the decrypt body
    try:
        problems = dry_run(spark, compile_policy(_policy(), "databricks"))
        assert [p.split(":")[0] for p in problems] == [f"spark_catalog.{SCHEMAS['governance']}.mask_patients_ssn"]
    finally:
        key = string(base64.b64encode(KEY).decode())
        spark.sql("CREATE OR REPLACE FUNCTION spark_catalog.default.try_secret(s STRING, k STRING) RETURNS STRING "
                  f"RETURN CASE WHEN s = 'phi-keys' AND k = 'ssn-dek' THEN {key} END")
