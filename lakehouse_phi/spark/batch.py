"""The batch ingest: :func:`run_ingest` reads what has landed once, masks it in one pass and writes it through the
shared job (:mod:`lakehouse_phi.spark.job`): audit check -> pre-flight -> keys -> key check -> read ->
:func:`~lakehouse_phi.spark.mask.mask` -> :func:`~lakehouse_phi.spark.job.write_batch` (evaluate once, tally,
refusals, quarantine, bronze, audit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakehouse_phi.engine.plan import name_hasher, roster_refs
from lakehouse_phi.errors import LakehousePhiError, UsageError
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.spark.job import IngestOptions, audit_refusal, check_keys, plan_job, preflight, write_batch
from lakehouse_phi.spark.mask import mask, resolve_keys
from lakehouse_phi.spark.read import read_landing
from lakehouse_phi.spark.rosters import read_rosters

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["IngestOptions", "IngestResult", "run_ingest"]


@dataclass
class IngestResult:
    run_id: str
    table: str
    rows_read: int
    rows_written: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    columns: dict[str, dict]
    phi_scan: dict[str, dict[str, int]]
    conf_findings: list[dict]
    bronze: str
    quarantine: str
    audit: str
    event: dict
    #: what a reviewer would flag in the policy (an unsealed trail...), also logged as warnings
    warnings: list[str] = field(default_factory=list)
    #: ``spark`` or ``delta-rs``: what wrote this run's Delta
    writer: str = "spark"


def run_ingest(spark: SparkSession, loaded: LoadedPolicy, table: str,
               options: IngestOptions | None = None) -> IngestResult:
    """Run the bronze ingest for ``tables.<table>`` of the policy. See the module docstring for the steps.

    Raises:
        UsageError: unknown table or bad options (exit 2).
        JobRefused / KeyMaterialError: the job will not run (exit 1), or failed after a commit (the message names
            the run id; its ``ingest_started`` event is in the trail).
    """
    opts = options or IngestOptions()
    job = plan_job(spark, loaded, table, opts)
    spec = loaded.policy.tables[table]
    source_path = opts.input_path or spec.source.path
    try:
        job.say("checking the Spark configuration")
        findings = preflight(spark, [source_path, job.bronze.location, job.quarantine.location, job.audit_target],
                             opts, job.details)
        job.say("resolving keys")
        keys = resolve_keys(loaded, table, key_overrides=opts.key_overrides, fetchers=opts.fetchers)
        check_keys(spark, job, keys)
        job.say(f"reading {spec.source.format} from {source_path}")
        names = name_hasher(spec, keys)
        landing = read_landing(
            spark, spec.source.format, source_path, spec.source.options, declared=list(spec.columns),
            file_label=((lambda i, p: f"file #{i} ({p})") if spec.source_file == "path"
                        else (lambda i, p: names.file_label(p, i))),
            names=names if spec.source_file == "hash" else None)
        job.details["source_files"] = {"read": landing.files, "skipped": landing.skipped_files}
        rosters = read_rosters(spark, loaded, table) if roster_refs(loaded, table) else None
        result = mask(landing.df, loaded, table, keys=keys, run_id=job.run_id, where=source_path,
                      source_columns=landing.columns, rosters=rosters)
    except LakehousePhiError as exc:
        if not isinstance(exc, UsageError):
            audit_refusal(job, exc)
        raise
    outcome = write_batch(spark, job, result, keys)
    return IngestResult(run_id=job.run_id, table=table, rows_read=outcome.tally.rows_read,
                        rows_written=outcome.tally.rows_valid, rows_inserted=outcome.written.rows_inserted,
                        rows_updated=outcome.written.rows_updated, rows_unchanged=outcome.written.rows_unchanged,
                        rows_quarantined=outcome.tally.rows_quarantined, quarantine_reasons=outcome.tally.reasons,
                        columns=result.plan.plan.column_report(), phi_scan=outcome.tally.phi_scan,
                        conf_findings=findings, bronze=str(job.bronze), quarantine=str(job.quarantine),
                        audit=job.audit_target, event=outcome.event, warnings=job.warnings, writer=job.writer)
