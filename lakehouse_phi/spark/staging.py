"""One evaluation per run: the masked batch is computed once, then every decision and every write reads that copy.

Spark evaluates a DataFrame again for every action, and on Spark Connect (Databricks serverless, standard access
mode, pysail) nothing can be persisted: without this step the mask pass would run once for the tally, once per
count and once per write, and files landing in between would be written without having been counted or scanned.

:func:`evaluated` stages the pass's rows once, eagerly:

1. ``localCheckpoint(eager=True)`` where the engine has it: classic Spark, Spark Connect to Spark 4, pysail (its
   server gets a checkpoint folder from :func:`lakehouse_phi.storage.engines.start_sail` and writes the checkpoint
   there as Parquet files, not into memory: staging through the spool below instead used as much, issue 21.4). The
   checkpoint cuts the lineage: a lost block fails the run instead of running the pass again.
2. Else, on an engine whose executors write this machine's files, a Parquet spool in a temporary folder
   (:func:`lakehouse_phi.storage.spool.spooled`), removed after; else a staging Delta table beside a bronze *table*
   (``<schema>.__lhp_staging_<run>``), written once and dropped after. A remote bronze *path* on an engine with
   neither is refused (nothing could remove a remote staging folder there).

The tally (rows, quarantined, reasons, PHI-scan hits) is one aggregation over the staged rows, and
:meth:`~lakehouse_phi.spark.mask.MaskResult.over` splits the staged rows into ``valid``/``quarantine``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.spark.mask import MaskResult
from lakehouse_phi.spark.tally import tally_spark
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.rules import spark_error_class
from lakehouse_phi.storage.targets import Target

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

@contextlib.contextmanager
def evaluated(result: MaskResult, beside: Target, *, table_format: str = "delta") -> Iterator[MaskResult]:
    """``result`` over a staged copy of its rows, with its tally; the copy is released on exit.

    Args:
        beside: the bronze target (a fallback staging table is made beside a catalog table).
    """
    spark = result.masked.sparkSession
    staged, release = _stage(spark, result.masked, beside, table_format, result.run_id)
    try:
        tally = tally_spark(staged, result.plan.scan_columns)
        yield result.over(staged, tally)
    finally:
        release()


def _stage(spark: SparkSession, masked: DataFrame, beside: Target, table_format: str,
           run_id: str) -> tuple[DataFrame, Callable[[], None]]:
    try:
        staged = masked.localCheckpoint(eager=True)
        return staged, lambda: None
    except Exception as exc:  # noqa: BLE001 - engines say "no checkpoint" in many classes; reduced to its class
        reason = spark_error_class(exc)
        log.info("this engine has no localCheckpoint (%s); staging the masked batch once", reason)
    if caps(spark).local_files:
        from lakehouse_phi.storage.spool import ParquetSpool, spooled

        stack = contextlib.ExitStack()
        spool = stack.enter_context(spooled(masked))
        assert isinstance(spool, ParquetSpool)
        return spark.read.parquet("file://" + spool.folder), stack.close
    if beside.is_path:
        raise JobRefused(f"this engine can neither checkpoint the masked batch ({reason}) nor remove a staging "
                         f"folder beside the remote bronze {beside}; write bronze as a catalog table, or run on an "
                         "engine with localCheckpoint (Spark 4, Databricks, pysail)")
    name = f"__lhp_staging_{uuid.UUID(run_id).hex if _is_uuid(run_id) else uuid.uuid4().hex}"
    table = ".".join([*beside.location.split(".")[:-1], name])
    masked.write.format(table_format).mode("error").saveAsTable(table)

    def drop_table() -> None:
        spark.sql(f"DROP TABLE IF EXISTS {Target.table(table).sql_ref(table_format)}").collect()

    return spark.table(table), drop_table


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
