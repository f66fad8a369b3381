"""``notebooks/02_governance.py`` run cell by cell on local Spark, target ``dynamic-views``.

The worked example's governance section is moved into ``spark_catalog.lhp_nbgov_*`` (the only catalog of a local
session) and written to a policy file the notebook loads through its ``policy`` widget. The governed tables are real
Parquet tables; ``is_account_group_member`` and ``try_secret`` are persistent SQL functions in ``spark_catalog.default``
(a persistent view may not call a temporary function), bound as in ``test_sql_exec_views``. The ``databricks``
target's ``ALTER TABLE … SET MASK`` does not run on open-source Spark, so only ``dynamic-views`` is applied here.
"""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy
from lakehouse_phi.sql.quoting import string
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.encrypt import Encrypt
from tests.notebook import run_notebook
from tests.spark.test_sql_exec_views import GROUPS, KEY, _bind

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "02_governance.py"
SCHEMAS = {"governance": "lhp_nbgov_governance", "silver": "lhp_nbgov_silver", "gold": "lhp_nbgov_gold"}
VIEW = f"spark_catalog.{SCHEMAS['silver']}.patients_governed"


def _write_policy(path: Path) -> Path:
    """conf/policy.yaml with the governed tables and the function schema moved into ``spark_catalog``."""
    data = yaml.safe_load((ROOT / "conf" / "policy.yaml").read_text())
    gov = data["governance"]
    gov.pop("grants", None)  # open-source Spark has no GRANT; the grants are checked without an engine
    gov["function_schema"] = f"spark_catalog.{SCHEMAS['governance']}"
    gov["tables"] = {f"spark_catalog.{SCHEMAS[name.split('.')[1]]}.{name.split('.')[2]}": spec
                     for name, spec in gov["tables"].items()}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def policy(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lhp_nbgov")
    path = _write_policy(root / "policy.yaml")
    for schema in SCHEMAS.values():
        spark.sql(f"CREATE DATABASE IF NOT EXISTS spark_catalog.{schema} LOCATION '{root / schema}'")
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS is_account_group_member")  # a UDF of another module would shadow
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS try_secret")
    key = string(base64.b64encode(KEY).decode())
    spark.sql("CREATE OR REPLACE FUNCTION spark_catalog.default.try_secret(s STRING, k STRING) RETURNS STRING "
              f"RETURN CASE WHEN s = 'phi-keys' AND k = 'ssn-dek' THEN {key} END")
    _bind(spark, set())
    cipher = Encrypt(Encrypt.params_model(key="phi-dek"), ColumnContext("patients", "ssn", "ssn"), KEY).apply(
        pa.array(["123-45-6789", "987654321"], pa.string())).to_pylist()
    silver, gold = SCHEMAS["silver"], SCHEMAS["gold"]
    spark.createDataFrame(
        [(1, "MRN1", cipher[0], "555-867-5309", date(1950, 7, 4), 93, "NY"),
         (2, "MRN2", cipher[1], "5551234", date(1988, 3, 9), 35, None)],
        "id INT, mrn STRING, ssn STRING, phone STRING, dob DATE, age INT, state STRING",
    ).write.format("parquet").saveAsTable(f"spark_catalog.{silver}.patients")
    spark.createDataFrame([(1, "NY", 3, "note one")], "id INT, facility_state STRING, length_of_stay INT, note STRING",
                          ).write.format("parquet").saveAsTable(f"spark_catalog.{silver}.encounters")
    spark.createDataFrame([(1, "medicare", "ACCT-000123", Decimal("12.50"))],
                          "id INT, payer STRING, account_number STRING, amount DECIMAL(12,2)",
                          ).write.format("parquet").saveAsTable(f"spark_catalog.{gold}.claims")
    yield path
    for schema in SCHEMAS.values():
        spark.sql(f"DROP DATABASE IF EXISTS spark_catalog.{schema} CASCADE")
    spark.sql("DROP FUNCTION IF EXISTS spark_catalog.default.is_account_group_member")
    spark.sql("DROP FUNCTION IF EXISTS spark_catalog.default.try_secret")


def _run(spark, policy: Path, action: str, sha: str = "") -> dict:
    widgets = {"policy": str(policy), "target": "dynamic-views", "action": action, "expected_sha256": sha}
    return run_notebook(NOTEBOOK, spark=spark, widgets=widgets, secrets={})


def _views(spark) -> list[str]:
    return [f"{s}.{r.tableName}" for s in (SCHEMAS["silver"], SCHEMAS["gold"])
            for r in spark.sql(f"SHOW TABLES IN spark_catalog.{s}").collect() if r.tableName.endswith("_governed")]


def test_review_shows_the_statements_and_changes_nothing(spark, policy, capsys):
    ns = _run(spark, policy, "review")
    out = capsys.readouterr().out
    loaded = load_policy(policy)
    compiled = compile_policy(loaded, "dynamic-views")
    assert f"policy clinical-lakehouse  sha256 {loaded.sha256}" in out
    assert "target dynamic-views: 14 statements to apply, 13 to roll back" in out
    assert "skipped (action is 'review')" in out and "nothing applied (action is 'review')" in out
    [html] = ns["_displayed"]
    for name, text in compiled.files().items():
        assert f"<h3>{name}</h3>" in html
        assert text.replace("&", "&amp;").replace("<", "&lt;") in html
    quoted = ".".join(f"`{part}`" for part in VIEW.split("."))
    assert f"CREATE OR REPLACE VIEW {quoted}" in html
    assert _views(spark) == []


def test_dry_run_reports_ready(spark, policy, capsys):
    _run(spark, policy, "dry run")
    out = capsys.readouterr().out
    assert "static check: 27 statements, 0 problems" in out
    assert "dry run: ready to apply" in out and "PROBLEM" not in out
    assert _views(spark) == []


@pytest.mark.parametrize("action", ["apply", "rollback"])
@pytest.mark.parametrize("sha", ["", "0" * 64])
def test_apply_and_rollback_refused_without_the_reviewed_sha256(spark, policy, action, sha):
    with pytest.raises(RuntimeError, match="set the expected_sha256 widget"):
        _run(spark, policy, action, sha)
    assert _views(spark) == []


def test_apply_creates_the_views_and_rollback_removes_them(spark, policy, capsys):
    sha = load_policy(policy).sha256
    _run(spark, policy, "apply", sha)
    out = capsys.readouterr().out
    assert "dry run: ready to apply" in out and "applied 14 statements" in out
    assert sorted(_views(spark)) == [f"{SCHEMAS['gold']}.claims_governed", f"{SCHEMAS['silver']}.encounters_governed",
                                     f"{SCHEMAS['silver']}.patients_governed"]
    try:
        _bind(spark, GROUPS["clinicians"])
        rows = {r["id"]: (r["ssn"], r["phone"]) for r in spark.sql(f"SELECT * FROM {VIEW}").collect()}
        assert rows == {1: ("***-**-****", "555-867-5309"), 2: ("***-**-****", "5551234")}
        _bind(spark, GROUPS["billing"])  # decrypts ssn, keeps the last four phone digits, sees no null state
        rows = {r["id"]: (r["ssn"], r["phone"]) for r in spark.sql(f"SELECT * FROM {VIEW}").collect()}
        assert rows == {1: ("123-45-6789", "********5309")}
    finally:
        _bind(spark, set())
    _run(spark, policy, "rollback", sha)
    out = capsys.readouterr().out
    assert "rolled back with 13 statements" in out
    assert _views(spark) == []
    assert not spark.catalog.tableExists(VIEW)
    functions = spark.sql(f"SHOW USER FUNCTIONS IN spark_catalog.{SCHEMAS['governance']}").collect()
    assert not [r[0] for r in functions if SCHEMAS["governance"] in r[0]]
