"""Streaming ingest, exactly once, with the batch job's guards: Structured Streaming lists the landing folder's new
files (Auto Loader ``cloudFiles`` on Databricks, Spark's ``binaryFile`` source elsewhere; paths only), and
``foreachBatch`` reads each micro-batch's files with the batch reader, masks them with
:func:`~lakehouse_phi.spark.mask.mask` and writes quarantine, bronze and the audit events
(:func:`~lakehouse_phi.spark.job.write_batch`, which evaluates each micro-batch once).

The guards: the key check values are compared before the first micro-batch; every new file is screened (CSV
header read in Python and checked, schema drift) and a bad one is skipped with an ``ingest_refused`` event naming it
by label, so the stream advances; every failed micro-batch leaves an audit event. Nothing from a header reaches the
stream's plan, checkpoint or stderr. What Spark itself requires: its file source records each processed file's
path in the checkpoint (``sources/0``), and a micro-batch's read names its files in that batch's plan.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse_phi.engine.drift import check_drift
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.plan import name_hasher, roster_refs
from lakehouse_phi.errors import JobRefused, LakehousePhiError, UsageError
from lakehouse_phi.keys.providers import KeyRing
from lakehouse_phi.policy.columns import CORRUPT as CORRUPT_COL
from lakehouse_phi.policy.columns import SOURCE_FILE as SOURCE_FILE_COL
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import TableSpec
from lakehouse_phi.spark.job import IngestOptions, Job, audit_refusal, check_keys, plan_job, preflight, write_batch
from lakehouse_phi.spark.mask import mask, resolve_keys
from lakehouse_phi.spark.read import file_columns, read_landing
from lakehouse_phi.spark.rosters import read_rosters
from lakehouse_phi.storage.engines import caps
from lakehouse_phi.storage.rules import spark_error_class
from lakehouse_phi.storage.targets import local_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
#: Spark's ``binaryFile`` schema (a streaming source needs it given); ``content`` is never selected, so never read.
BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"
_INTERVAL = re.compile(r"^processing-time=(\d+\s*(ms|milliseconds?|s|seconds?|minutes?|min))$")


@dataclass
class StreamResult:
    run_id: str
    app_id: str
    batches: list[dict]
    audit: str
    #: labels of the files refused and skipped (each has an ``ingest_refused`` event)
    skipped_files: list[str] = dataclasses.field(default_factory=list)


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


def file_stream(spark: SparkSession, path: str, max_files: int | None) -> DataFrame:
    """The landing folder as a stream of new *file paths* (one row per file, column ``path``): Auto Loader
    (``cloudFiles`` of ``binaryFile``) on Databricks, Spark's ``binaryFile`` source elsewhere; file contents are
    not read here (only ``path`` is selected). Each micro-batch's files are then read by the batch reader, so the
    stream gets every check the batch job has, and no header name reaches the stream's plan or checkpoint."""
    local = local_path(path)
    if local is not None and not os.path.isabs(local):
        path = os.path.abspath(local)  # Spark resolves a relative path against the JVM's working directory
    if caps(spark).autoloader:
        reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", "binaryFile")
        if max_files:
            reader = reader.option("cloudFiles.maxFilesPerTrigger", str(max_files))
    else:
        reader = spark.readStream.format("binaryFile")
        if max_files:
            reader = reader.option("maxFilesPerTrigger", str(max_files))
    return reader.schema(BINARY_FILE_SCHEMA).load(path).select("path")


def ingest_stream(spark: SparkSession, loaded: LoadedPolicy, table: str, options: IngestOptions | None = None, *,
                  checkpoint: str, trigger: str = "available-now", max_files_per_trigger: int | None = None,
                  timeout_s: float | None = None) -> StreamResult:
    """Run the streaming ingest of ``tables.<table>`` until the trigger ends it (``available-now``) or the process
    is stopped (``processing-time=...``).

    Raises:
        UsageError: bad options, or an engine without ``foreachBatch`` (pysail).
        JobRefused: a refusal before the stream starts (the key check among them), or a micro-batch that failed
            (naming the run id; the failure is in the audit trail).
    """
    opts = options or IngestOptions()
    if not caps(spark).foreach_batch:
        raise UsageError("streaming ingest needs foreachBatch, which pysail does not have; run it on Spark "
                         "(--engine local, or --engine auto, which picks it for --stream) or Databricks")
    kwargs = parse_trigger(trigger)
    job = plan_job(spark, loaded, table, opts)
    spec = loaded.policy.tables[table]
    source_path = opts.input_path or spec.source.path
    app_id = app_id_for(table, checkpoint)
    job.details["stream"] = {"app_id": app_id, "trigger": trigger}
    try:
        preflight(spark, [source_path, job.bronze.location, job.quarantine.location, job.audit_target], opts,
                  job.details)
        keys = resolve_keys(loaded, table, key_overrides=opts.key_overrides, fetchers=opts.fetchers)
        check_keys(spark, job, keys)  # before the first micro-batch, as the batch job does before reading
        files = file_stream(spark, source_path, max_files_per_trigger)
        rosters = read_rosters(spark, loaded, table) if roster_refs(loaded, table) else None  # read once, at start
    except LakehousePhiError as exc:
        if not isinstance(exc, UsageError):
            audit_refusal(job, exc)
        raise
    each_batch = _MicroBatches(spark, job, keys, app_id, trigger, source_path, rosters)
    query = (files.writeStream.foreachBatch(each_batch).option("checkpointLocation", checkpoint)
             .trigger(**kwargs).start())
    try:
        query.awaitTermination(int(timeout_s)) if timeout_s else query.awaitTermination()
    except Exception as exc:  # noqa: BLE001 - the stream's own failure (StreamingQueryException and kin)
        if each_batch.failure and isinstance(each_batch.failure[0], LakehousePhiError):
            raise each_batch.failure[0] from None
        raise JobRefused(f"run {job.run_id}: the stream failed ({spark_error_class(exc)}); its audit trail has the "
                         "failed micro-batch; restart it with the same --checkpoint: committed micro-batches are "
                         "not written twice") from None
    finally:
        if query.isActive:
            query.stop()
    return StreamResult(run_id=job.run_id, app_id=app_id, batches=each_batch.batches, audit=job.audit_target,
                        skipped_files=each_batch.skipped)


@dataclasses.dataclass
class _MicroBatches:
    """The ``foreachBatch`` function: each micro-batch's new files screened one by one (a bad file is skipped with
    an ``ingest_refused`` event naming it by label), read by the batch reader, masked, and written by
    :func:`write_batch` as one idempotent commit (app id, batch id), unless the trail's last event already closed
    it (a restart replaying that batch). Every failed micro-batch leaves an audit event."""

    spark: SparkSession
    job: Job
    keys: KeyRing
    app_id: str
    trigger: str
    source_path: str
    rosters: Mapping[str, Sequence[str | None]] | None = None
    batches: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failure: list[BaseException] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        if self._already_written(batch_id):
            log.info("micro-batch %s of %s already written and audited; skipped", batch_id, self.app_id)
            return
        stream_info = {"app_id": self.app_id, "batch_id": int(batch_id), "trigger": self.trigger}
        job = dataclasses.replace(self.job, details={**self.job.details, "stream": stream_info})
        loaded, table = job.loaded, job.table
        spec = loaded.policy.tables[table]
        names = name_hasher(spec, self.keys)
        files = sorted(str(r[0]) for r in batch_df.collect())
        good, refused = self._screen(job, files, names)
        if not good:
            self.batches.append({"batch_id": int(batch_id), "rows_read": 0, "rows_inserted": 0,
                                 "files_skipped": refused})
            return
        try:
            landing = read_landing(self.spark, spec.source.format, self.source_path, spec.source.options,
                                   declared=list(spec.columns), file_label=self._labeller(spec, names),
                                   names=names if spec.source_file == "hash" else None, files=good)
            result = mask(landing.df, loaded, table, keys=self.keys, run_id=job.run_id,
                          where=f"micro-batch {batch_id}", source_columns=landing.columns, rosters=self.rosters)
        except Exception as exc:
            audit_refusal(job, exc if isinstance(exc, LakehousePhiError) else JobRefused(
                f"micro-batch {batch_id} could not be read ({spark_error_class(exc)})"))
            self.failure.append(exc)
            raise
        try:
            outcome = write_batch(self.spark, job, result, self.keys, txn=(self.app_id, int(batch_id)),
                                  extra={"stream": stream_info,
                                         "source_files": {"read": len(good), "skipped": refused}},
                                  audit_every_failure=True)
        except BaseException as exc:
            self.failure.append(exc)
            raise
        self.batches.append({"batch_id": int(batch_id), "rows_read": outcome.tally.rows_read,
                             "rows_inserted": outcome.written.rows_inserted, "seq": outcome.event["seq"],
                             "files_skipped": refused})

    def _screen(self, job: Job, files: list[str], names: NameHasher) -> tuple[list[str], int]:
        """The files of a micro-batch that the batch reader would accept; each other one is skipped with an
        ``ingest_refused`` event (its label, never its path unless the policy says paths are safe)."""
        spec = job.loaded.policy.tables[job.table]
        label_of = self._labeller(spec, names)
        good: list[str] = []
        for position, f in enumerate(files, start=1):
            label = label_of(position, f)
            try:
                found = file_columns(self.spark, spec.source.format, f, spec.source.options, list(spec.columns),
                                     label)
                check_drift(spec, job.table, [c for c in found if c not in (SOURCE_FILE_COL, CORRUPT_COL)], label,
                            names)
            except JobRefused as exc:
                skipped = dataclasses.replace(job, details={**job.details, "skipped_file": label})
                audit_refusal(skipped, JobRefused(f"{exc} (file skipped; the stream goes on)"))
                log.warning("%s of %s refused and skipped (see the audit trail)", label, job.table)
                self.skipped.append(label)
                continue
            good.append(f)
        return good, len(files) - len(good)

    @staticmethod
    def _labeller(spec: TableSpec, names: NameHasher) -> Callable[[int, str], str]:
        if spec.source_file == "path":
            return lambda i, p: f"file #{i} ({p})"
        return lambda i, p: names.file_label(p, i)

    def _already_written(self, batch_id: int) -> bool:
        last = self.job.sink.last()
        stream = ((last or {}).get("details") or {}).get("stream", {})
        return (last is not None and last.get("event") == "ingest" and stream.get("app_id") == self.app_id
                and stream.get("batch_id") == batch_id)
