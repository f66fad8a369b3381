# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze ingest with lakehouse_phi
# MAGIC
# MAGIC Masks PHI at the extraction boundary, before anything is written: the policy's strategies run as one
# MAGIC vectorized Arrow pass over the landing data (`lakehouse_phi.mask`); failing rows go to a quarantine that holds
# MAGIC no raw PHI; valid rows are merged into bronze by the table's `bronze_mode` (`history`: every distinct version,
# MAGIC `latest`: one row per record key); the run leaves a pending and a closing hash-chained audit event.
# MAGIC For a streaming ingest use `lakehouse_phi.ingest_stream` (Auto Loader + `foreachBatch`, exactly once), for a
# MAGIC Lakeflow Declarative Pipeline `03_bronze_dlt.py`.
# MAGIC
# MAGIC This notebook calls the same API as `lakehouse-phi ingest` and the `spark-submit` entry
# MAGIC (`jobs/bronze_ingest.py`). Keys with `provider: databricks` are read with `dbutils.secrets`; `env` keys come
# MAGIC from the cluster's environment (e.g. `spark_env_vars: {LAKEHOUSE_PHI_PSEUDONYM_KEY: "{{secrets/phi-keys/pseudonym}}"}`).

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
dbutils.widgets.dropdown("table", "patients", ["patients", "encounters", "claims"], "Table")
dbutils.widgets.text("input", "", "Landing path (blank: the policy's)")
dbutils.widgets.text("bronze", "", "Bronze table or path (blank: the policy's)")
dbutils.widgets.text("quarantine", "", "Quarantine table or path (blank: the policy's)")
dbutils.widgets.text("audit", "", "Audit table or path (blank: beside bronze)")
dbutils.widgets.dropdown("allow_insecure", "false", ["false", "true"], "Local runs only: allow insecure config")

# COMMAND ----------

from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest


def widget(name):
    value = dbutils.widgets.get(name).strip()
    return value or None

loaded = load_policy(dbutils.widgets.get("policy"))
print(f"policy {loaded.name} sha256 {loaded.sha256}")

# COMMAND ----------

result = run_ingest(spark, loaded, dbutils.widgets.get("table"), IngestOptions(
    input_path=widget("input"),
    bronze=widget("bronze"),
    quarantine=widget("quarantine"),
    audit=widget("audit"),
    table_format="delta",
    allow_insecure=dbutils.widgets.get("allow_insecure") == "true",
    fetchers=Fetchers(dbutils=lambda: dbutils),
    progress=print,
))

# COMMAND ----------

# MAGIC %md
# MAGIC ## What happened (counts only: the driver never sees a value)

# COMMAND ----------

summary = [
    ("rows read", result.rows_read),
    ("rows valid", result.rows_written),
    ("rows inserted into bronze", result.rows_inserted),
    ("rows updated in bronze (latest)", result.rows_updated),
    ("rows unchanged (already in bronze)", result.rows_unchanged),
    ("rows quarantined", result.rows_quarantined),
]
summary += [(f"quarantined: {reason}", n) for reason, n in sorted(result.quarantine_reasons.items())]
display(spark.createDataFrame(summary, "metric string, value long"))
display(spark.createDataFrame([(c, i["strategy"], i["key_version"]) for c, i in result.columns.items()],
                              "column string, strategy string, key_version int"))
assert result.rows_read == result.rows_inserted + result.rows_updated + result.rows_unchanged + result.rows_quarantined
print(f"audit event {result.event['event_id']} hash {result.event['hash']} in {result.audit}")
