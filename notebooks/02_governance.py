# Databricks notebook source
# MAGIC %md
# MAGIC # Governance: Unity Catalog masks and row filters from the policy
# MAGIC
# MAGIC For a governance admin. The SQL comes from the same policy file that drives bronze ingest, through the
# MAGIC same Python API as `lakehouse-phi compile` (and is the same text as the reviewed files under
# MAGIC `sql_policies/`). Steps: **review** the generated SQL, **dry run** (nothing in the catalog changes),
# MAGIC **apply** statement by statement with `spark.sql`, and **roll back** when needed.
# MAGIC
# MAGIC * Target `databricks`: `CREATE OR REPLACE FUNCTION` per mask and row filter; per governed table its tags,
# MAGIC   column comments, `SET ROW FILTER` and `SET MASK` (`ALTER MATERIALIZED VIEW` / `ALTER STREAMING TABLE` for
# MAGIC   those kinds); tags and comments on every PHI column of the bronze tables; then the `governance.grants`.
# MAGIC   Target `databricks-abac`: the same functions, tags and grants, bound by `CREATE POLICY … MATCH COLUMNS
# MAGIC   hasTagValue(…)` on each schema. Target `dynamic-views`: the same functions and a `<table>_governed` view per
# MAGIC   table; readers are granted the view and lose SELECT on the table.
# MAGIC * For jobs and CI, `lakehouse-phi apply POLICY --target … --warehouse-id ID` runs the same statements on a SQL
# MAGIC   warehouse (the bundle's `governance_apply` job) with the same rule as this notebook: a failure keeps every
# MAGIC   protection and revokes only the privileges the run added.
# MAGIC * You need `USE CATALOG`/`USE SCHEMA`, `CREATE FUNCTION` on the function schema, `MANAGE` (or ownership) on the
# MAGIC   governed tables, `APPLY TAG` (and `ASSIGN` on governed tags), `MODIFY` for the column comments, `MANAGE` on
# MAGIC   the schemas for ABAC policies and on every securable granted on (README, "Privileges the applying principal
# MAGIC   needs"). Masks read the decrypt key with `try_secret()` (DBR 15.0+): a reader without access to the scope
# MAGIC   gets NULL, never an error.
# MAGIC * Nothing runs until you set the `action` widget: it starts as `review`.

# COMMAND ----------

# MAGIC %md
# MAGIC ### Install the pinned lakehouse_phi wheel
# MAGIC From a Unity Catalog volume or a workspace file, never by package name: `lakehouse-phi` is not on PyPI, and a
# MAGIC name anyone could register later must never be installed into a PHI workspace. Build and upload it once per
# MAGIC release (`pip wheel . --no-deps -w dist` or `databricks bundle deploy`, then
# MAGIC `databricks fs cp dist/lakehouse_phi-0.1.0-py3-none-any.whl dbfs:/Volumes/main/governance/artifacts/`).
# MAGIC The `wheel` widget may point at another copy of a wheel; it must be a `.whl` under `/Volumes/` or `/Workspace/`.

# COMMAND ----------

WHEEL = "/Volumes/main/governance/artifacts/lakehouse_phi-0.1.0-py3-none-any.whl"  # pinned: this release
dbutils.widgets.text("wheel", WHEEL, "lakehouse_phi wheel (volume or workspace path)")
wheel = dbutils.widgets.get("wheel").strip()
if not (wheel.endswith(".whl") and wheel.startswith(("/Volumes/", "/Workspace/"))):
    raise ValueError(f"wheel {wheel!r}: give the path of a lakehouse_phi .whl under /Volumes/ or /Workspace/")

# COMMAND ----------

# MAGIC %pip install $wheel

# COMMAND ----------

dbutils.library.restartPython()  # the wheel may have changed packages the REPL had imported

# COMMAND ----------

dbutils.widgets.text("policy", "/Workspace/Shared/lakehouse_phi/conf/policy.yaml", "Policy file")
dbutils.widgets.dropdown("target", "databricks", ["databricks", "databricks-abac", "dynamic-views"], "Target")
dbutils.widgets.dropdown("action", "review", ["review", "dry run", "apply", "rollback"], "Action")
dbutils.widgets.text("expected_sha256", "", "Policy SHA-256 you reviewed (required to apply or roll back)")

# COMMAND ----------

from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy
from lakehouse_phi.sql.runner import apply, dry_run, rollback

loaded = load_policy(dbutils.widgets.get("policy"))  # raises PolicyError listing every problem with its place
compiled = compile_policy(loaded, dbutils.widgets.get("target"))
action = dbutils.widgets.get("action")
print(f"policy {loaded.name}  sha256 {loaded.sha256}")
print(f"target {compiled.target}: {len(compiled.apply)} statements to apply, {len(compiled.rollback)} to roll back")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. Review
# MAGIC The exact statements that apply and rollback run, in order. Compare with `sql_policies/<target>/` in git:
# MAGIC the files there are these bytes (CI runs `lakehouse-phi compile --check`).

# COMMAND ----------

files = compiled.files()
displayHTML("".join(
    f"<h3>{name}</h3><pre style='font-size:12px'>{text.replace('&', '&amp;').replace('<', '&lt;')}</pre>"
    for name, text in files.items()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Dry run
# MAGIC Checks without changing the catalog: every statement parsed with sqlglot (and the `SET MASK` / `ROW FILTER`
# MAGIC statements sqlglot does not model matched in full); every function body created as a session-scoped
# MAGIC `TEMPORARY` function and dropped again, so Databricks resolves every built-in, `is_account_group_member` and
# MAGIC `secret`; every governed table read for its schema, each masked and filter column present with the
# MAGIC declared type (a mask whose type differs from its column's would fail at `SET MASK`).

# COMMAND ----------

if action in ("dry run", "apply"):
    problems = dry_run(spark, compiled, progress=print)
    if problems:
        for p in problems:
            print("PROBLEM", p)
        raise RuntimeError(f"dry run found {len(problems)} problem(s); nothing was changed")
    print("dry run: ready to apply")
else:
    print("skipped (action is", repr(action) + ")")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Apply, or 4. roll back
# MAGIC Statement by statement, exactly as `lakehouse-phi apply` does it (`lakehouse_phi.sql.plan`): protections first,
# MAGIC GRANTs last; the first failure stops the run, keeps every mask, row filter and policy in place, revokes only
# MAGIC the privileges this run added, and names the statement. Applying is idempotent (`CREATE OR REPLACE`, re-setting a mask or filter), so after fixing a failure run
# MAGIC it again. Rollback unbinds every mask and row filter (or drops the views) before dropping the functions.

# COMMAND ----------

def _confirm() -> None:
    expected = dbutils.widgets.get("expected_sha256").strip()
    if expected != loaded.sha256:
        raise RuntimeError("set the expected_sha256 widget to the SHA-256 printed above (the policy you reviewed) "
                           "before applying or rolling back")


if action == "apply":
    _confirm()
    n = apply(spark, compiled, progress=print)
    print(f"applied {n} statements")
elif action == "rollback":
    _confirm()
    n = rollback(spark, compiled, progress=print)
    print(f"rolled back with {n} statements")
else:
    print("nothing applied (action is", repr(action) + ")")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Check what a role sees
# MAGIC Run as a member of each group (or ask one) — e.g. `SELECT * FROM main.silver.patients LIMIT 10` — and
# MAGIC compare with the policy. The same functions were executed role by role on local Spark by the project's tests
# MAGIC (`tests/spark/test_sql_exec*.py`).
