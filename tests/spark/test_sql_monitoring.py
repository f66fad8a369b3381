"""``sql_policies/monitoring/``: the audit queries run on local Spark over a table with the documented schema of
``system.access.audit`` (only the table name differs), holding reads of governed, bronze and other tables, an old
event, a refused read, metadata lookups that are no reads (``getTable``) and governance changes keyed on their
documented action names (grants, functions, table changes, ABAC policies)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql.ir import build_ir
from lakehouse_phi.sql.monitoring import governance_changes, who_read_what
from tests.helpers import EXAMPLE

pytestmark = pytest.mark.spark

#: the documented columns of system.access.audit
AUDIT_SCHEMA = (
    "account_id STRING, workspace_id STRING, version STRING, event_time TIMESTAMP, event_date DATE, "
    "source_ip_address STRING, user_agent STRING, session_id STRING, "
    "user_identity STRUCT<email: STRING, subject_name: STRING>, service_name STRING, action_name STRING, "
    "request_id STRING, request_params MAP<STRING, STRING>, "
    "response STRUCT<status_code: INT, error_message: STRING, result: STRING>, audit_level STRING, event_id STRING, "
    "identity_metadata STRUCT<run_by: STRING, run_as: STRING, acting_resource: STRING>"
)
TABLE = "spark_catalog.lhp_mon.audit"


def _event(when: datetime, who: str, action: str, name: str, status: int = 200, service: str = "unityCatalog",
           key: str = "full_name_arg"):
    return ("acct", "ws", "2.0", when, when.date(), "10.0.0.1", "agent", "sess", (who, who), service, action,
            f"req-{when.timestamp()}-{action}", {key: name}, (status, None, None), "WORKSPACE_LEVEL",
            f"ev-{who}-{when.timestamp()}-{action}", (None, None, None))


def _read(when: datetime, who: str, text: str, status: int = 200, service: str = "databrickssql"):
    action = "commandSubmit" if service == "databrickssql" else "runCommand"
    return _event(when, who, action, text, status, service, key="commandText")


@pytest.fixture(scope="module")
def audit(spark, tmp_path_factory):
    now = datetime.combine(date.today(), datetime.min.time()) + timedelta(hours=9)
    rows = [
        _read(now - timedelta(days=2), "alice@example.org", "SELECT ssn FROM main.silver.patients WHERE id = 1"),
        _read(now - timedelta(days=1), "alice@example.org", "select * from `MAIN`.`silver`.`Patients` p"),  # case
        _read(now - timedelta(hours=5), "bob@example.org", "SELECT count(*) FROM main.silver.patients",
              service="notebook"),
        _read(now - timedelta(hours=4), "ingest-sp-uuid", "MERGE INTO main.bronze.claims t USING src s ON 1 = 1"),
        _read(now - timedelta(hours=3), "eve@example.org", "SELECT * FROM main.silver.patients", status=403),
        _read(now - timedelta(days=40), "old@example.org", "SELECT * FROM main.silver.patients"),  # too old
        _read(now - timedelta(hours=2), "carol@example.org", "SELECT * FROM main.sales.orders"),  # not governed
        _read(now - timedelta(hours=2), "dan@example.org", "SELECT * FROM main.silver.patients_archive"),  # other
        _event(now - timedelta(hours=2), "browse@example.org", "getTable", "main.silver.patients"),  # metadata only
        _event(now - timedelta(hours=1), "admin@example.org", "updateTables", "main.silver.patients"),
        _event(now - timedelta(hours=1), "admin@example.org", "createFunction", "main.governance.mask_patients_ssn",
               key="full_name"),
        _event(now - timedelta(hours=1), "admin@example.org", "updatePermissions", "main.gold.claims",
               key="securable_full_name"),
        _event(now - timedelta(hours=1), "admin@example.org", "deletePolicy", "main.silver",
               key="on_securable_fullname"),
        _event(now - timedelta(hours=1), "admin@example.org", "updatePermissions", "main.sales.orders",
               key="securable_full_name"),  # not governed
        _event(now - timedelta(hours=1), "admin@example.org", "getSecret", "main.silver.patients",
               service="secrets"),
    ]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS spark_catalog.lhp_mon LOCATION '{tmp_path_factory.mktemp('mon')}'")
    spark.createDataFrame(rows, AUDIT_SCHEMA).write.format("parquet").saveAsTable(TABLE)
    yield build_ir(load_policy(EXAMPLE))
    spark.sql("DROP DATABASE IF EXISTS spark_catalog.lhp_mon CASCADE")


def _run(spark, sql: str) -> list[tuple]:
    return [tuple(r) for r in spark.sql(sql.rstrip().rstrip(";")).collect()]


def test_who_read_what_lists_principals_per_governed_table(spark, audit):
    """Statements that name the table (SQL warehouse or notebook), not metadata lookups; never the text itself."""
    rows = _run(spark, who_read_what(audit, audit_table=TABLE))
    got = [(t, role, who, n) for t, role, who, n, _, _ in rows]
    assert not any("ssn" in str(v) for r in rows for v in r)
    assert got == [("main.bronze.claims", "bronze", "ingest-sp-uuid", 1),
                   ("main.silver.patients", "governed", "bob@example.org", 1),
                   ("main.silver.patients", "governed", "alice@example.org", 2)]
    alice = next(r for r in rows if r[2] == "alice@example.org")
    assert alice[4] < alice[5]  # first read before last read


def test_governance_changes_list_grants_functions_tables_and_policies(spark, audit):
    rows = _run(spark, governance_changes(audit, audit_table=TABLE))
    assert sorted((who, action, name) for _, who, action, name, _ in rows) == [
        ("admin@example.org", "createFunction", "main.governance.mask_patients_ssn"),
        ("admin@example.org", "deletePolicy", "main.silver"),
        ("admin@example.org", "updatePermissions", "main.gold.claims"),
        ("admin@example.org", "updateTables", "main.silver.patients")]

