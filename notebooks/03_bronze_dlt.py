# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze with Lakeflow Declarative Pipelines (DLT) and lakehouse_phi
# MAGIC
# MAGIC Two streaming tables over Auto Loader (`cloudFiles`): `<table>_bronze` (the masked valid rows) and
# MAGIC `<table>_quarantine` (rows that failed a check, masked the same way, with `_phi_errors`). Both come from
# MAGIC `lakehouse_phi.mask`, the engine under `lakehouse-phi ingest`: one vectorized Arrow pass that parses, checks,
# MAGIC masks and fingerprints every row (`_row_fingerprint`, `_ingest_run_id`, `_ingested_at`, `_key_versions`).
# MAGIC
# MAGIC Pipeline configuration: `lakehouse_phi.policy` (path of the policy file) and `lakehouse_phi.table`. Keys with
# MAGIC `provider: databricks` are read with `dbutils.secrets`, `env` keys from the pipeline cluster's environment.
# MAGIC The pipeline appends; `bronze_mode: latest`, quarantine de-duplication, the quarantine-rate refusal and the
# MAGIC audit trail are the job's (`lakehouse-phi ingest --stream`), not DLT's: use `dlt.apply_changes` keyed on the
# MAGIC record key and sequenced by `sequence_by` downstream if you need one row per key here.

# COMMAND ----------

# MAGIC %pip install lakehouse-phi

# COMMAND ----------

import dlt
from pyspark.sql import functions as F

from lakehouse_phi import load_policy, mask
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.spark.mask import resolve_keys

POLICY = spark.conf.get("lakehouse_phi.policy")
TABLE = spark.conf.get("lakehouse_phi.table")
loaded = load_policy(POLICY)
spec = loaded.policy.tables[TABLE]
# resolved once, when the pipeline starts: a missing key stops it before any file is read
keys = resolve_keys(loaded, TABLE, fetchers=Fetchers(dbutils=lambda: dbutils))


def landing():
    """The landing folder through Auto Loader. New columns stop the stream (fail closed); values Auto Loader
    rescues (a row that did not fit the schema) become the corrupt-record column, whose rows the mask pass
    quarantines with their raw columns nulled."""
    return (spark.readStream.format("cloudFiles")
            .option("cloudFiles.format", spec.source.format)
            .option("cloudFiles.schemaEvolutionMode", "failOnNewColumns")
            .options(**spec.source.options)
            .load(spec.source.path)
            .withColumnRenamed("_rescued_data", "_corrupt_record")
            .select("*", F.col("_metadata.file_path").alias("_source_file")))


def masked():
    # the drift check runs here, when the pipeline builds its graph
    return mask(landing(), loaded, TABLE, keys=keys, where=spec.source.path)


PROPERTIES = {"lakehouse_phi.policy_name": loaded.policy.name, "lakehouse_phi.policy_sha256": loaded.sha256,
              "delta.enableChangeDataFeed": "true"}


@dlt.table(name=f"{TABLE}_bronze", comment=f"{TABLE}: PHI masked at ingest by lakehouse_phi ({loaded.policy.name})",
           table_properties=PROPERTIES)
def bronze():
    return masked().valid


@dlt.table(name=f"{TABLE}_quarantine", comment=f"{TABLE}: rows that failed a check, masked like bronze",
           table_properties=PROPERTIES)
def quarantine():
    return masked().quarantine
