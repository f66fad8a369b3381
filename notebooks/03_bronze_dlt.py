# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze with Lakeflow Declarative Pipelines and lakehouse_phi
# MAGIC
# MAGIC **One** Auto Loader (`cloudFiles`) source, masked **once** by `lakehouse_phi.mask` (the engine under
# MAGIC `lakehouse-phi ingest`: one vectorized Arrow pass that parses, checks, masks and fingerprints every row), into a
# MAGIC private staging table; the bronze table (valid rows) and the quarantine table (rows that failed a check, masked
# MAGIC the same way, with `_phi_errors`: column and rule, never a value) are both read from that staging table, so
# MAGIC the landing files are read and masked one time, not once per output. A materialized view counts the rows per
# MAGIC update and carries the expectation on the policy's `max_quarantine_rate`.
# MAGIC
# MAGIC **Pipeline configuration** (the bundle's `resources/pipelines.yml` sets them):
# MAGIC
# MAGIC | key | meaning |
# MAGIC |---|---|
# MAGIC | `lakehouse_phi.wheel` | the lakehouse_phi wheel: a `.whl` under `/Volumes/` or `/Workspace/`, or a folder of them (the bundle's `${workspace.artifact_path}/.internal`: the newest version is taken) |
# MAGIC | `lakehouse_phi.policy` | the policy file (the bundle syncs `conf/policy.yaml` as a workspace file) |
# MAGIC | `lakehouse_phi.table` | the entry under `tables:` |
# MAGIC | `lakehouse_phi.landing` | the landing folder (a UC volume path); default: the policy's `source.path` |
# MAGIC | `lakehouse_phi.bronze`, `lakehouse_phi.quarantine` | table names; default: the policy's `bronze` / `quarantine` (else `<bronze>_quarantine`) |
# MAGIC | `lakehouse_phi.keys` | comma-separated `NAME=PROVIDER:REF`, like `--key` (e.g. `pseudonym=databricks:phi-keys/pseudonym`) |
# MAGIC
# MAGIC The package is installed from the wheel, never by name (`lakehouse-phi` is not on PyPI, and a name anyone could
# MAGIC register must never reach a PHI workspace), then Python restarts so the new packages are the ones imported.
# MAGIC The install is skipped when that wheel's version is already the installed one, so the cell is safe to re-run.
# MAGIC
# MAGIC **API.** Current `from pyspark import pipelines as dp` (`@dp.table`, `@dp.materialized_view`, `@dp.expect*`).
# MAGIC On a runtime that predates it, the legacy module has the same decorators: `import dlt as dp` (with
# MAGIC `@dp.table` for the materialized view, since `dlt` has no `materialized_view`); the cell below falls back to it.
# MAGIC
# MAGIC **What the job does and a pipeline does not.** The pipeline appends; `bronze_mode: latest`, quarantine
# MAGIC de-duplication and the audit trail are the job's (`lakehouse-phi ingest --stream`). The quarantine-rate
# MAGIC expectation fails the *update* (`expect_or_fail`) but, unlike the job's pre-write refusal, after the rows of
# MAGIC that update were appended: alert on the pipeline's failure, and use the job where a refusal must come first.

# COMMAND ----------

import os
import re
import subprocess
import sys
from importlib import metadata

_WHEEL_NAME = re.compile(r"^lakehouse_phi-([^-]+)-py3-none-any\.whl$")


def _version_key(version):
    """``0.1.0+1741091696780123321`` (the bundle's dynamic_version stamp) -> comparable tuple."""
    base, _, local = version.partition("+")
    return tuple(int(p) if p.isdigit() else 0 for p in base.split(".")), int(local) if local.isdigit() else -1


def pick_wheel(where):
    """The wheel to install: ``where`` itself, or the newest lakehouse_phi wheel in the folder ``where``."""
    where = where.strip().rstrip("/")
    if not where.startswith(("/Volumes/", "/Workspace/")):
        raise ValueError(f"lakehouse_phi.wheel {where!r}: give a .whl (or a folder of them) under /Volumes/ or "
                         "/Workspace/; the package is never installed by name")
    if where.endswith(".whl"):
        if not os.path.isfile(where):
            raise FileNotFoundError(f"lakehouse_phi.wheel {where!r}: no such file; deploy the bundle or upload the wheel")
        return where
    found = [(m.group(1), f) for f in sorted(os.listdir(where)) if (m := _WHEEL_NAME.match(f))]
    if not found:
        raise FileNotFoundError(f"lakehouse_phi.wheel {where!r}: no lakehouse_phi-*.whl in this folder; deploy the "
                                "bundle (databricks bundle deploy) or point the setting at a wheel")
    return os.path.join(where, max(found, key=lambda vf: _version_key(vf[0]))[1])


WHEEL = pick_wheel(spark.conf.get("lakehouse_phi.wheel"))
_wanted = _WHEEL_NAME.match(os.path.basename(WHEEL)).group(1)
try:
    _installed = metadata.version("lakehouse-phi")
except metadata.PackageNotFoundError:
    _installed = None
if _installed != _wanted:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", WHEEL])
    dbutils.library.restartPython()  # the wheel may have changed packages the interpreter had imported

# COMMAND ----------

try:
    from pyspark import pipelines as dp
except ImportError:  # a runtime before pyspark.pipelines: the legacy module, same decorators
    import dlt as dp
import uuid

from pyspark.sql import functions as F

from lakehouse_phi import load_policy, mask
from lakehouse_phi.keys.overrides import parse_key_overrides
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.spark.mask import resolve_keys, split_masked

POLICY = spark.conf.get("lakehouse_phi.policy")
TABLE = spark.conf.get("lakehouse_phi.table")
loaded = load_policy(POLICY)
spec = loaded.policy.tables[TABLE]
LANDING = spark.conf.get("lakehouse_phi.landing", "") or spec.source.path
BRONZE = spark.conf.get("lakehouse_phi.bronze", "") or spec.bronze
QUARANTINE = spark.conf.get("lakehouse_phi.quarantine", "") or spec.quarantine or f"{BRONZE}_quarantine"
STAGE = f"{BRONZE}_lhp_masked"
RUN_ID = str(uuid.uuid4())  # one per pipeline update (the graph is built anew for each): _ingest_run_id
RATE = f"{BRONZE}_quarantine_rate"
overrides = parse_key_overrides([k.strip() for k in spark.conf.get("lakehouse_phi.keys", "").split(",") if k.strip()],
                                loaded.policy)
# resolved once, when the pipeline starts: a missing key stops it before any file is read
keys = resolve_keys(loaded, TABLE, key_overrides=overrides, fetchers=Fetchers(dbutils=lambda: dbutils))
PROPERTIES = {"lakehouse_phi.policy_name": loaded.policy.name, "lakehouse_phi.policy_sha256": loaded.sha256}

# COMMAND ----------


@dp.table(name=STAGE, private=True, table_properties=PROPERTIES,
          comment=f"{TABLE}: every landed row once, masked by lakehouse_phi; bronze and quarantine read it")
def masked():
    """The one source: Auto Loader over the landing folder, masked in one pass. New columns stop the stream (fail
    closed); values Auto Loader rescues (a row that did not fit the schema) become the corrupt-record column, whose
    rows the mask pass quarantines with their raw columns nulled."""
    landing = (spark.readStream.format("cloudFiles")
               .option("cloudFiles.format", spec.source.format)
               .option("cloudFiles.schemaEvolutionMode", "failOnNewColumns")
               .options(**spec.source.options)
               .load(LANDING)
               .withColumnRenamed("_rescued_data", "_corrupt_record")
               .select("*", F.col("_metadata.file_path").alias("_source_file")))
    # the drift check runs here, when the pipeline builds its graph
    return mask(landing, loaded, TABLE, keys=keys, run_id=RUN_ID, where=LANDING).masked


def _split():
    return split_masked(spark.readStream.table(STAGE))


@dp.table(name=BRONZE, table_properties={**PROPERTIES, "delta.enableChangeDataFeed": "true"},
          comment=f"{TABLE}: PHI masked at ingest by lakehouse_phi ({loaded.policy.name})")
@dp.expect_all_or_fail({"fingerprinted": "_row_fingerprint IS NOT NULL", "run_recorded": "_ingest_run_id IS NOT NULL"})
def bronze():
    return _split()[0]


@dp.table(name=QUARANTINE, table_properties=PROPERTIES,
          comment=f"{TABLE}: rows that failed a check, masked like bronze, with the reasons in _phi_errors")
@dp.expect_or_fail("reason_recorded", "size(_phi_errors) > 0")
def quarantine():
    return _split()[1]


LIMIT = spec.max_quarantine_rate  # None: the rate is recorded, not enforced
RATE_EXPECTATIONS = {"rate_recorded": "quarantine_rate IS NOT NULL"}
if LIMIT is not None:
    RATE_EXPECTATIONS["quarantine_rate_within_policy"] = f"quarantine_rate <= {float(LIMIT)!r}"
materialized_view = getattr(dp, "materialized_view", dp.table)  # legacy dlt: @dlt.table over a batch read


@materialized_view(name=RATE, comment=f"{TABLE}: rows and quarantined rows per pipeline update (counts only)")
@dp.expect_all_or_fail(RATE_EXPECTATIONS)
def quarantine_rate():
    staged = spark.read.table(STAGE).where(F.col("_ingest_run_id") == RUN_ID)  # this update's rows
    return (staged.groupBy("_ingest_run_id")
            .agg(F.count(F.lit(1)).alias("rows"),
                 F.sum(F.when(F.size("_phi_errors") > 0, 1).otherwise(0)).alias("quarantined"))
            .withColumn("quarantine_rate", F.col("quarantined") / F.col("rows")))
