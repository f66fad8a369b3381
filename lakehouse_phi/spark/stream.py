"""Streaming ingest, exactly once: Structured Streaming over the landing folder (Auto Loader ``cloudFiles`` on
Databricks, Spark's file source elsewhere) through :func:`~lakehouse_phi.spark.mask.mask`, and ``foreachBatch``
writing quarantine, bronze and the audit events of each micro-batch
(:func:`~lakehouse_phi.spark.ingest.write_batch`).

A micro-batch replayed after a crash adds nothing twice:

* Delta through delta-rs: both commits carry the app transaction (app id from the checkpoint, version = batch
  id); a replayed batch whose transaction the table already holds is skipped.
* Delta through Spark: the ``txnAppId``/``txnVersion`` writer options (appends; MERGE relies on the rule below).
* Always: the fingerprint rule (history skips a held (record key, fingerprint); latest leaves an equal fingerprint
  untouched; quarantine skips a held fingerprint).

The audit trail gets ``ingest_started`` and ``ingest`` per micro-batch (``details.stream``: app id and batch id);
a batch whose closing event is already the trail's last event is not written or audited again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from lakehouse_phi.engine.drift import CORRUPT_COL
from lakehouse_phi.engine.plan import SOURCE_FILE_COL, roster_refs
from lakehouse_phi.errors import JobRefused, LakehousePhiError, UsageError
from lakehouse_phi.keys.providers import KeyRing
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.spark.ingest import IngestOptions, Job, _audit_refusal, _preflight, plan_job, write_batch
from lakehouse_phi.spark.mask import MaskResult, mask, resolve_keys
from lakehouse_phi.spark.rosters import read_rosters
from lakehouse_phi.spark.session import functions
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.rules import spark_error_class

log = logging.getLogger(__name__)
_INTERVAL = re.compile(r"^processing-time=(\d+\s*(ms|milliseconds?|s|seconds?|minutes?|min))$")


@dataclass
class StreamResult:
    run_id: str
    app_id: str
    batches: list[dict]
    audit: str


def parse_trigger(text: str) -> dict[str, Any]:
    """``available-now`` or ``processing-time=INTERVAL`` (e.g. ``processing-time=10 seconds``) as
    ``DataStreamWriter.trigger`` keyword arguments."""
    if text == "available-now":
        return {"availableNow": True}
    m = _INTERVAL.match(text.strip())
    if m:
        return {"processingTime": m.group(1)}
    raise UsageError(f"--trigger {text!r}: write available-now or processing-time=INTERVAL (e.g. "
                     "processing-time=30 seconds)")


def app_id_for(table: str, checkpoint: str) -> str:
    """The Delta app id of a stream: stable for one checkpoint, different for another."""
    digest = hashlib.sha256(os.path.abspath(checkpoint).encode("utf-8")).hexdigest()[:16]
    return f"lakehouse_phi:{table}:{digest}"


def stream_source(spark: Any, fmt: str, path: str, options: dict[str, str], max_files: int | None) -> Any:
    """The landing folder as a stream with ``_source_file``: Auto Loader on Databricks, the file source elsewhere.
    The schema is the one a batch read of the folder finds now (CSV: every column a string)."""
    from lakehouse_phi.spark.read import read_source

    static, _ = read_source(spark, fmt, path, options)
    schema = static.drop(SOURCE_FILE_COL).schema
    if caps(spark).autoloader:
        reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", fmt)
        if max_files:
            reader = reader.option("cloudFiles.maxFilesPerTrigger", str(max_files))
    else:
        reader = spark.readStream.format(fmt)
        if max_files:
            reader = reader.option("maxFilesPerTrigger", str(max_files))
    if fmt in ("csv", "json"):  # a row that does not parse is kept whole in _corrupt_record: quarantined, all NULL
        from pyspark.sql.types import StringType, StructField, StructType

        if CORRUPT_COL not in schema.fieldNames():
            schema = StructType([*schema.fields, StructField(CORRUPT_COL, StringType())])
        options = {**options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COL}
    if fmt == "csv":  # each new file's header is checked against these names: a shifted header fails the batch
        options = {**options, "enforceSchema": "false"}
    df = reader.options(**options).schema(schema).load(path)
    F = functions(spark)
    return df.select("*", F.col("_metadata.file_path").alias(SOURCE_FILE_COL))


def ingest_stream(spark: Any, loaded: LoadedPolicy, table: str, options: IngestOptions | None = None, *,
                  checkpoint: str, trigger: str = "available-now", max_files_per_trigger: int | None = None,
                  timeout_s: float | None = None) -> StreamResult:
    """Run the streaming ingest of ``tables.<table>`` until the trigger ends it (``available-now``) or the process
    is stopped (``processing-time=...``).

    Raises:
        UsageError: bad options, or an engine without ``foreachBatch`` (pysail).
        JobRefused: a refusal before the stream starts, or a micro-batch that failed (naming the run id).
    """
    opts = options or IngestOptions()
    if not caps(spark).foreach_batch:
        raise UsageError("streaming ingest needs foreachBatch, which pysail does not have; run it on Spark "
                         "(--engine local) or Databricks")
    kwargs = parse_trigger(trigger)
    job = plan_job(spark, loaded, table, opts)
    spec = loaded.policy.tables[table]
    source_path = opts.input_path or spec.source.path
    app_id = app_id_for(table, checkpoint)
    job.details["stream"] = {"app_id": app_id, "trigger": trigger}
    try:
        _preflight(spark, [source_path, job.bronze.location, job.quarantine.location, job.audit_target], opts,
                   job.details)
        keys = resolve_keys(loaded, table, key_overrides=opts.key_overrides, fetchers=opts.fetchers)
        stream = stream_source(spark, spec.source.format, source_path, dict(spec.source.options),
                               max_files_per_trigger)
        rosters = read_rosters(spark, loaded, table) if roster_refs(loaded, table) else None  # read once, at start
        result = mask(stream, loaded, table, keys=keys, run_id=job.run_id, where=source_path, rosters=rosters)
    except LakehousePhiError as exc:
        if not isinstance(exc, UsageError):
            _audit_refusal(job, exc)
        raise
    each_batch = _MicroBatches(spark, job, result, keys, app_id, trigger)
    query = (result.masked.writeStream.foreachBatch(each_batch).option("checkpointLocation", checkpoint)
             .trigger(**kwargs).start())
    try:
        query.awaitTermination(timeout_s) if timeout_s else query.awaitTermination()
    except Exception as exc:  # noqa: BLE001 - the stream's own failure (StreamingQueryException and kin)
        if each_batch.failure and isinstance(each_batch.failure[0], LakehousePhiError):
            raise each_batch.failure[0] from None
        raise JobRefused(f"run {job.run_id}: the stream failed ({spark_error_class(exc)}); restart it with the same "
                         "--checkpoint: committed micro-batches are not written twice") from None
    finally:
        if query.isActive:
            query.stop()
    return StreamResult(run_id=job.run_id, app_id=app_id, batches=each_batch.batches, audit=job.audit_target)


@dataclasses.dataclass
class _MicroBatches:
    """The ``foreachBatch`` function: each micro-batch written by :func:`write_batch` as one idempotent commit
    (app id, batch id), unless the trail's last event already closed it (a restart replaying that batch)."""

    spark: Any
    job: Job
    result: MaskResult
    keys: KeyRing
    app_id: str
    trigger: str
    batches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failure: list[BaseException] = dataclasses.field(default_factory=list)

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        if self._already_written(batch_id):
            log.info("micro-batch %s of %s already written and audited; skipped", batch_id, self.app_id)
            return
        stream_info = {"app_id": self.app_id, "batch_id": int(batch_id), "trigger": self.trigger}
        try:
            outcome = write_batch(self.spark, self.job, dataclasses.replace(self.result, masked=batch_df), self.keys,
                                  txn=(self.app_id, int(batch_id)), extra={"stream": stream_info})
        except BaseException as exc:
            self.failure.append(exc)
            raise
        self.batches.append({"batch_id": int(batch_id), "rows_read": outcome.tally.rows_read,
                             "rows_inserted": outcome.written.rows_inserted, "seq": outcome.event["seq"]})

    def _already_written(self, batch_id: int) -> bool:
        last = self.job.sink.last()
        stream = ((last or {}).get("details") or {}).get("stream", {})
        return (last is not None and last.get("event") == "ingest" and stream.get("app_id") == self.app_id
                and stream.get("batch_id") == batch_id)
