"""The ingest job shared by the batch run (:mod:`lakehouse_phi.spark.batch`) and each micro-batch of the stream
(:mod:`lakehouse_phi.spark.stream`): targets and trail (:func:`plan_job`), pre-flight (:func:`preflight`), the key
check (:func:`check_keys`), and :func:`write_batch`: evaluate the pass once (staged) -> tally -> refusals ->
pending audit event -> quarantine -> bronze -> audit event.

Runs from the CLI, ``spark-submit`` (``jobs/bronze_ingest.py``), Databricks notebooks and jobs, on classic Spark and
Spark Connect. Messages name columns, rules, files and run ids, never values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse_phi.errors import JobRefused, KeyMaterialError, LakehousePhiError, UsageError
from lakehouse_phi.keys.providers import Fetchers, KeyRing, verify_check_values
from lakehouse_phi.observe.alerts import per_tag
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.spark.bronze import WriteSpec, Written, choose_writer, make_flow
from lakehouse_phi.spark.mask import MaskResult
from lakehouse_phi.spark.session import is_connect
from lakehouse_phi.spark.staging import evaluated
from lakehouse_phi.spark.tally import Tally
from lakehouse_phi.storage import tables
from lakehouse_phi.storage.delta import DeltaRsTable, uses_deltars
from lakehouse_phi.storage.keycheck import KEY_CHECKS_PROPERTY, recorded_key_checks
from lakehouse_phi.storage.rules import spark_error_class
from lakehouse_phi.storage.targets import Target, default_audit_target

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["IngestOptions", "Job", "Outcome", "append_event", "audit_refusal", "check_keys", "plan_job", "preflight",
           "write_batch"]

log = logging.getLogger(__name__)
TABLE_FORMATS = ("delta", "parquet")


@dataclass
class IngestOptions:
    """Where the job reads and writes, and how. ``None`` means: as the policy says.

    Attributes:
        input_path: overrides ``tables.<t>.source.path``.
        bronze: a :class:`~lakehouse_phi.storage.targets.Target`, or text parsed by ``Target.parse`` (a path when it
            has a URI scheme, starts with ``/``, ``.`` or ``~`` or holds ``/``; else a table name).
        quarantine: defaults to the policy's ``quarantine`` or ``<bronze>_quarantine``.
        audit: a ``.jsonl`` file or a Delta table/path; defaults to the policy's ``audit.table``/``audit.path``, else
            beside bronze (see :func:`default_audit_target`; also when ``bronze`` is given).
        table_format: ``delta`` (Databricks, Delta-enabled Spark, pysail, delta-rs) or ``parquet``.
        allow_insecure: run despite ``error`` findings of the config validator (printed and audited).
        key_overrides: replace a key's provider/ref for this run (the policy's version is kept).
        writer: ``auto``, ``spark`` or ``delta-rs`` (:func:`~lakehouse_phi.spark.bronze.choose_writer`).
    """

    input_path: str | None = None
    bronze: str | Target | None = None
    quarantine: str | Target | None = None
    audit: str | None = None
    table_format: str = "delta"
    allow_insecure: bool = False
    run_id: str | None = None
    actor: str | None = None
    key_overrides: Mapping[str, KeySpec] = field(default_factory=dict)
    fetchers: Fetchers | None = None
    progress: Callable[[str], None] | None = None
    writer: str = "auto"


@dataclass
class Job:
    """One resolved run: targets, audit sink, base event fields."""

    loaded: LoadedPolicy
    table: str
    run_id: str
    bronze: Target
    quarantine: Target
    audit_target: str
    table_format: str
    sink: Any
    base_event: dict
    details: dict
    say: Callable[[str], None]
    warnings: list[str] = field(default_factory=list)
    #: when the run was planned (time.perf_counter), for its duration metric
    started: float = field(default_factory=time.perf_counter)
    #: ``spark`` or ``delta-rs``: what writes this run's Delta
    writer: str = "spark"


def plan_job(spark: Any, loaded: LoadedPolicy, table: str, opts: IngestOptions) -> Job:
    """Resolve the targets and the audit sink, and check the trail (tail intact, writable) before any data is read;
    a run left pending by a crash is recorded first (``ingest_unfinished``)."""
    from lakehouse_phi.audit.sealing import seal_key, session_actor
    from lakehouse_phi.audit.sinks import open_sink
    from lakehouse_phi.policy.advice import warn_about

    policy = loaded.policy
    if table not in policy.tables:
        raise UsageError(f"no table {table!r} under tables: in {loaded.path} (declared: {', '.join(policy.tables)})")
    if opts.table_format not in TABLE_FORMATS:
        raise UsageError(f"table format {opts.table_format!r}; allowed: {', '.join(TABLE_FORMATS)}")
    spec = policy.tables[table]
    bronze = Target.parse(opts.bronze or spec.bronze)
    if opts.quarantine:
        quarantine = Target.parse(opts.quarantine)
    elif opts.bronze:
        quarantine = Target(bronze.kind, f"{bronze.location.rstrip('/')}_quarantine")
    else:
        quarantine = Target.parse(spec.quarantine_target)
    # the policy's audit.table/path, unless this run writes bronze elsewhere (then the trail goes beside it, as the
    # quarantine does)
    policy_trail = policy.audit.location if policy.audit is not None and not opts.bronze else None
    audit_target = opts.audit or policy_trail or default_audit_target(bronze, opts.table_format)
    run_id = opts.run_id or str(uuid.uuid4())
    writer = choose_writer(spark, bronze, opts.table_format, opts.writer)
    details: dict[str, Any] = {"engine": "spark-connect" if is_connect(spark) else "spark-classic", "writer": writer,
                               "table_format": opts.table_format, "allow_insecure": opts.allow_insecure,
                               "source_format": spec.source.format, "bronze_mode": spec.bronze_mode}
    base_event = {"run_id": run_id, "actor": opts.actor or session_actor(spark), "policy_name": policy.name,
                  "policy_sha256": loaded.sha256, "table": table}
    # the trail's sealing key (audit.key) is resolved before any data is read: a missing one stops the job
    sink = open_sink(audit_target, spark, seal_key=seal_key(policy, opts.key_overrides, opts.fetchers),
                     retention_days=policy.audit_retention_days)
    warnings = warn_about(policy)  # every run says it: the CLI, spark-submit jobs and notebooks alike
    job = Job(loaded=loaded, table=table, run_id=run_id, bronze=bronze, quarantine=quarantine,
              audit_target=audit_target, table_format=opts.table_format, sink=sink, base_event=base_event,
              details=details, say=opts.progress or (lambda _msg: None), warnings=warnings, writer=writer)
    check_trail(job, spark)
    return job


def check_trail(job: Job, spark: Any) -> None:
    """Refuse to start when the trail cannot take this run's events: damaged tail, or not writable. Record a run
    that started committing and never completed (its ``ingest_started`` is the last event for this table)."""
    from lakehouse_phi.audit.sinks import check_tail

    last = job.sink.last()
    check_tail(last, job.audit_target)
    _check_writable(job.audit_target)
    if last is not None and last.get("event") == "ingest_started" and last.get("table") == job.table:
        pending = last.get("run_id")
        commits = _commits_of(spark, job, pending)
        log.warning("run %s of %s started writing and left no closing event; recording it", pending, job.table)
        append_event(job, "ingest_unfinished", rows=(0, 0, 0), details={
            "pending_run_id": pending, "commits": commits,
            "message": f"run {pending} wrote its pending event and no closing event (crashed or still running); "
                       "the commits listed carry its run id"})


def _check_writable(audit_target: str) -> None:
    local = Target.parse(audit_target).local
    if local is None:
        return  # a table name or a remote URI: the pending event, written before any commit, is the check
    probe = local
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe.rstrip("/")) or "."
    if not os.access(probe, os.W_OK):
        raise JobRefused(f"audit trail {audit_target}: not writable ({probe}); fix its permissions or pass --audit")


def _commits_of(spark: Any, job: Job, run_id: str | None) -> dict[str, list[int]]:
    """Delta versions whose ``userMetadata`` is ``run_id`` (delta-rs paths; other targets: unknown)."""
    out: dict[str, list[int]] = {}
    for name, t in (("bronze", job.bronze), ("quarantine", job.quarantine)):
        if run_id is None or not uses_deltars(spark, t, job.table_format):
            continue
        table = DeltaRsTable(t)
        if table.exists():
            out[name] = table.run_versions(run_id)
    return out


def append_event(job: Job, event: str, *, rows: tuple[int, int, int], details: dict, columns: dict | None = None,
            run_id: str | None = None) -> dict:
    from lakehouse_phi.audit.events import new_event

    base = {**job.base_event, **({"run_id": run_id} if run_id else {})}
    ev = new_event(event=event, rows_read=rows[0], rows_written=rows[1], rows_quarantined=rows[2],
                   columns=columns or {}, details={**job.details, **details}, **base)
    return job.sink.append(ev)


@dataclass
class Outcome:
    tally: Tally
    written: Written
    event: dict


def check_keys(spark: SparkSession, job: Job, keys: KeyRing) -> None:
    """Other key material under the same version would write every record again under new pseudonyms: compare the
    check values recorded on bronze with this run's, before any data is read (batch) or before the first
    micro-batch (stream)."""
    job.details["key_checks"] = keys.check_values()
    verify_check_values(recorded_key_checks(spark, job.bronze, job.table_format), job.details["key_checks"],
                        f"bronze {job.bronze}")


def write_batch(spark: SparkSession, job: Job, result: MaskResult, keys: KeyRing, *,
                txn: tuple[str, int] | None = None, extra: dict | None = None,
                audit_every_failure: bool = False) -> Outcome:
    """Evaluate the pass once (staged: :func:`~lakehouse_phi.spark.staging.evaluated`), tally it, apply the
    refusals, then write quarantine and bronze from the staged ``valid``/``quarantine`` between a pending and a
    closing audit event. Shared by the batch job and each streaming micro-batch (``txn``: app id and batch id;
    ``audit_every_failure``: an engine failure before any commit is audited too, as a stream's must be)."""
    spec = job.loaded.policy.tables[job.table]
    job = dataclasses.replace(job, details={**job.details, **(extra or {})})  # this batch's details only
    if result.dropped:
        job.details["dropped_columns"] = result.dropped
    wspec = WriteSpec(bronze=job.bronze, quarantine=job.quarantine, table_format=job.table_format,
                      record_key=list(spec.record_key), bronze_mode=spec.bronze_mode, sequence_by=spec.sequence_by,
                      run_id=job.run_id, txn=txn, writer=job.writer)
    columns = result.plan.plan.column_report()
    committed = False
    flow = None
    tally = None
    tally_scrub: dict[str, int] = {}
    batch_started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        job.say("masking, checking and counting (one pass, staged)")
        with evaluated(result, job.bronze, table_format=job.table_format) as staged:
            assert staged.tally is not None
            tally = staged.tally
            flow = make_flow(spark, staged, wspec)
            timings["tally"] = time.perf_counter() - batch_started
            job.details["phi_scan"] = tally.phi_scan
            scrubbed = flow.scrub_counts()
            if scrubbed:
                job.details["scrub"] = scrubbed  # replacements per scrub_text column and tag: counts, never values
            tally_scrub = per_tag(scrubbed)  # per detector, summed over the columns: the metrics' and alerts' view
            job.details["key_versions"] = result.key_versions
            _refuse_on_scan(job, spec, tally)
            _check_alerts(job, tally, tally_scrub)
            refusal = _over_quarantine_rate(job, spec, tally)
            append_event(job, "ingest_started", rows=(tally.rows_read, 0, tally.rows_quarantined), columns=columns,
                         details={"pending": True})
            committed = True  # from here on, a failure names the run id
            job.say(f"writing {tally.rows_quarantined} quarantined rows")
            job.details["quarantine_rows_new"] = flow.write_quarantine() if tally.rows_quarantined or txn else 0
            if refusal is not None:
                raise JobRefused(refusal)
            job.say(f"merging {tally.rows_valid} rows into bronze ({spec.bronze_mode})")
            written = flow.write_bronze()
            _check_written(job, tally, written)
            job.details.update(rows_inserted=written.rows_inserted, rows_updated=written.rows_updated,
                               rows_unchanged=written.rows_unchanged, rows_superseded=written.rows_superseded,
                               quarantine_reasons=tally.reasons, bronze=str(job.bronze),
                               quarantine=str(job.quarantine), commits=flow.versions())
        sealed = append_event(job, "ingest", rows=(tally.rows_read, tally.rows_valid, tally.rows_quarantined),
                              columns=columns, details={"pending": False})
        _mark_bronze(spark, job, keys, written, sealed)
        _record_metrics(job, tally, tally_scrub, "ok", timings, batch_started, written=tally.rows_valid)
        return Outcome(tally=tally, written=written, event=sealed)
    except Exception as exc:
        if committed and flow is not None:  # the refusal event records what this run committed (verify --against)
            with contextlib.suppress(Exception):
                job.details["commits"] = flow.versions()
        _record_metrics(job, tally, tally_scrub, "refused", timings, batch_started, written=0)
        _failed(job, exc, committed, audit_every_failure)
        raise
    finally:
        if flow is not None:
            flow.release()


def _check_written(job: Job, tally: Tally, written: Written) -> None:
    """The write's own counts against the tally: a MERGE that reports more rows than the run holds (or a count that
    does not add up) is a job error; its closing event is not written, the pending one names the run."""
    parts = (written.rows_inserted, written.rows_updated, written.rows_unchanged, written.rows_superseded)
    if min(parts) < 0 or sum(parts[:3]) + tally.rows_quarantined != tally.rows_read:
        raise JobRefused(f"run {job.run_id}: bronze counts do not add up (read {tally.rows_read}, quarantined "
                         f"{tally.rows_quarantined}, inserted {written.rows_inserted}, updated {written.rows_updated}, "
                         f"unchanged {written.rows_unchanged}); its closing audit event was not written; check "
                         f"bronze {job.bronze} for another writer, then rerun")


def _check_alerts(job: Job, tally: Tally, scrub: dict[str, int]) -> None:
    """The policy's ``alerts:`` on this run's counts: a ``fail`` refuses it before anything is written, a ``warn``
    is said now and in the run's output; both are recorded in the audit event (``details.alerts``)."""
    from lakehouse_phi.observe import alerts

    spec = job.loaded.policy.alerts_for(job.table)
    if not any(getattr(spec, n) is not None for n in type(spec).model_fields):
        return
    previous = alerts.previous_scrub_rate(job.sink.read_all(), job.table) if alerts.needs_history(spec) else None
    fired = alerts.evaluate(spec, _counts(job, tally, scrub, "ok"), previous)
    if not fired:
        return
    job.details["alerts"] = [f.to_dict() for f in fired]
    failing = [f for f in fired if f.action == "fail"]
    for f in fired:
        if f.action == "warn":
            job.warnings.append(f.message(job.table))
            log.warning("%s", f.message(job.table))
    if failing:
        raise alerts.AlertRefused("; ".join(f.message(job.table) for f in failing) + f"; nothing was written (run "
                                  f"{job.run_id}); the alert is recorded in the audit trail")


def _counts(job: Job, tally: Tally | None, scrub: dict[str, int], outcome: str, written: int = 0) -> Any:
    from lakehouse_phi.observe import RunCounts

    return RunCounts(policy=job.loaded.policy.name, table=job.table, outcome=outcome,
                     rows_read=tally.rows_read if tally else 0, rows_written=written,
                     rows_quarantined=tally.rows_quarantined if tally else 0,
                     quarantine_reasons=dict(tally.reasons) if tally else {},
                     phi_scan=tally.phi_scan if tally else {}, scrub_replacements=dict(scrub),
                     engine=job.details.get("engine"), table_format=job.table_format)


def _record_metrics(job: Job, tally: Tally | None, scrub: dict[str, int], outcome: str, timings: dict[str, float],
                    batch_started: float, written: int) -> None:
    """The run's (or micro-batch's) counts and durations to OpenTelemetry, where configured (a no-op otherwise)."""
    from lakehouse_phi.observe.metrics import record_run

    now = time.perf_counter()
    counts = _counts(job, tally, scrub, outcome, written)
    counts.durations = {**timings, "write": now - batch_started - timings.get("tally", 0.0),
                        "total": now - job.started}
    if "tally" not in timings:
        counts.durations.pop("write")
    record_run(counts)


def _over_quarantine_rate(job: Job, spec: Any, tally: Tally) -> str | None:
    """The refusal when more than ``max_quarantine_rate`` of the rows were quarantined (quarantine is still
    written, bronze is not)."""
    rate = tally.rows_quarantined / tally.rows_read if tally.rows_read else 0.0
    if spec.max_quarantine_rate is None or rate <= spec.max_quarantine_rate:
        return None
    return (f"quarantine rate {rate:.4f} ({tally.rows_quarantined} of {tally.rows_read} rows) is above "
            f"tables.{job.table}.max_quarantine_rate {spec.max_quarantine_rate}; no bronze rows were written (run "
            f"{job.run_id}); the quarantined rows are in {job.quarantine}")


def _mark_bronze(spark: Any, job: Job, keys: KeyRing, written: Written, sealed: dict) -> None:
    """Delta bronze carries the policy, key versions and check values, and the closing event it matches."""
    if job.table_format == "delta" and (written.rows_inserted or written.rows_updated
                                        or tables.exists(spark, job.bronze, "delta")):
        tables.set_table_properties(spark, job.bronze, {
            "lakehouse_phi.policy_name": job.loaded.policy.name,
            "lakehouse_phi.policy_sha256": job.loaded.sha256,
            "lakehouse_phi.key_versions": json.dumps(keys.versions(), sort_keys=True),
            KEY_CHECKS_PROPERTY: json.dumps(keys.check_values(), sort_keys=True),
            "lakehouse_phi.last_run_id": job.run_id, "lakehouse_phi.audit_seq": str(sealed["seq"]),
            "lakehouse_phi.audit_hash": sealed["hash"]}, run_id=job.run_id)


def _failed(job: Job, exc: Exception, committed: bool, audit_all: bool = False) -> None:
    """Audit a refusal (not a usage error) and, once writing started, re-raise as a refusal naming the run id;
    returns when ``exc`` itself is to be raised."""
    if isinstance(exc, LakehousePhiError):
        if not isinstance(exc, UsageError):
            audit_refusal(job, exc)
        if committed and job.run_id not in str(exc):
            raise JobRefused(f"run {job.run_id} failed after it started writing: {exc}") from None
        return
    error = spark_error_class(exc)
    if not committed:
        if audit_all:  # a stream's micro-batch that failed in the engine before writing: audited too
            audit_refusal(job, JobRefused(f"run {job.run_id} failed before writing ({error}); nothing was written"))
        return
    audit_refusal(job, JobRefused(f"failed after it started writing ({error})"))
    raise JobRefused(f"run {job.run_id} failed after it started writing ({error}); its ingest_started event is in "
                     f"{job.audit_target}; rerun: re-delivered rows are not written twice") from None


def _refuse_on_scan(job: Job, spec: Any, tally: Tally) -> None:
    flagged = {c: k for c, k in tally.phi_scan.items() if any(k.values())}
    if flagged and spec.phi_scan.on_detect == "fail":
        summary = "; ".join(f"{c}: " + ", ".join(f"{n} {kind}" for kind, n in k.items() if n)
                            for c, k in sorted(flagged.items()))
        raise JobRefused(f"non-PHI column(s) hold values that look like PHI ({summary}; every row scanned); "
                         "nothing was written; classify them with phi: and a strategy, or set "
                         f"tables.{job.table}.phi_scan.on_detect: warn")
    if flagged:
        log.warning("non-PHI column(s) of %s hold values that look like PHI: %s (counts in the audit event)",
                    job.table, ", ".join(sorted(flagged)))


def preflight(spark: Any, paths: list[str], opts: IngestOptions, details: dict) -> list[dict]:
    from lakehouse_phi.confcheck import check_session

    report = check_session(spark, paths)
    findings = [f.to_dict() if hasattr(f, "to_dict") else dict(f.__dict__) for f in report.findings]
    errors = [f for f in findings if f.get("severity") == "error"]
    details["conf_errors"] = sorted({f["rule"] for f in errors})
    if report.compute is not None:  # audited: where it ran, and what the platform (not the job) guarantees there
        details["compute"] = report.compute.kind
        details["conf_platform_managed"] = sorted(p.rule for p in report.platform_managed)
    lines = "; ".join(f"{f['rule']} ({f.get('setting')}): {f.get('fix')}" for f in errors)
    if errors and not opts.allow_insecure:
        raise JobRefused(f"insecure Spark configuration, {len(errors)} error finding(s): {lines}. Fix the settings "
                         "(see `lakehouse-phi check-conf`), or for a local run only pass --allow-insecure")
    if errors and not _local_session(spark):  # issue 16: --allow-insecure is for a local master only
        raise JobRefused(f"--allow-insecure is only honoured on a local master (local[...] or this process's pysail "
                         f"server); this session's master is {_master(spark) or 'not reported'}. Fix the "
                         f"{len(errors)} error finding(s): {lines}")
    if errors:
        log.warning("--allow-insecure: running despite %d insecure setting(s): %s (recorded in the audit event)",
                    len(errors), ", ".join(details["conf_errors"]))
    return findings


def _master(spark: Any) -> str | None:
    try:
        return spark.conf.get("spark.master", None)
    except Exception as exc:  # noqa: BLE001 - Connect servers that report no master
        log.debug("spark.master not readable (%s)", type(exc).__name__)
        return None


def _local_session(spark: Any) -> bool:
    """Driver and executors in this machine's one process: a ``local[...]`` master, or this process's own pysail
    server (which reports no master). A Spark Connect URL to anything else is not local, whatever its host."""
    from lakehouse_phi.confcheck.check import is_local_master
    from lakehouse_phi.spark.session import is_sail

    return is_sail(spark) or is_local_master(_master(spark))


def audit_refusal(job: Job, exc: BaseException) -> None:
    """Every run leaves an audit event, refused ones too (the message names places and rules, never values)."""
    from lakehouse_phi.observe.alerts import AlertRefused

    reason = "key" if isinstance(exc, KeyMaterialError) else "alert" if isinstance(exc, AlertRefused) else "refused"
    try:
        append_event(job, "ingest_refused", rows=(0, 0, 0), details={"reason": reason, "message": str(exc)[:2000]})
    except (LakehousePhiError, OSError, ValueError) as audit_exc:  # the refusal itself is what the user must see
        log.error("could not record the refusal of run %s in the audit trail %s (%s)", job.run_id,
                  job.audit_target, type(audit_exc).__name__)
