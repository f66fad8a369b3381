"""The bronze ingest job: pre-flight -> keys -> read -> drift check -> PHI scan -> parse/check/mask in one
``mapInArrow`` pass -> quarantine -> bronze (merged on ``record_key``) -> audit event.

The same function runs from the CLI, ``spark-submit`` (``jobs/bronze_ingest.py``) and Databricks
notebooks, on classic Spark and on Spark Connect (nothing here touches ``sparkContext``). Raw values stay inside
Spark's executors: the driver only ever sees counts, and messages name columns, rules and files, never values.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakehouse_phi.engine.drift import CORRUPT_COL, check_drift
from lakehouse_phi.engine.plan import ERRORS_COL, SOURCE_FILE_COL, TablePlan, key_needs
from lakehouse_phi.errors import JobRefused, KeyMaterialError, LakehousePhiError, UsageError
from lakehouse_phi.keys.providers import Fetchers, load_keys, verify_check_values
from lakehouse_phi.policy.load import LoadedPolicy
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.spark.keycheck import KEY_CHECKS_PROPERTY, recorded_key_checks
from lakehouse_phi.spark.read import read_landing
from lakehouse_phi.spark.session import functions, is_connect
from lakehouse_phi.spark.targets import (_exists, _read_target, _target_ref, _write,
                                         default_audit_target, set_table_properties)
from lakehouse_phi.transforms import detectors

RUN_ID_COL = "_ingest_run_id"
INGESTED_AT_COL = "_ingested_at"
QUARANTINED_AT_COL = "_quarantined_at"
TABLE_FORMATS = ("delta", "parquet")

#: The scrub_text detectors that the sampled scan of non-PHI columns applies (RE2 patterns that Java's regex reads
#: the same way; evaluated by Spark, only counts come back).
SCAN_DETECTORS = ("ssn", "email", "phone")


@dataclass
class IngestOptions:
    """Where the job reads and writes, and how. ``None`` means: as the policy says.

    Attributes:
        input_path: overrides ``tables.<t>.source.path``.
        bronze: a table name or a path (anything with ``/`` or a URI scheme is a path).
        quarantine: defaults to the policy's ``quarantine`` or ``<bronze>_quarantine``.
        audit: a ``.jsonl`` file or a Delta table/path; defaults beside bronze (see :func:`default_audit_target`).
        table_format: ``delta`` (Databricks, Delta-enabled Spark, pysail) or ``parquet``.
        allow_insecure: run despite ``error`` findings of the config validator (printed and audited).
        key_overrides: replace a key's provider/ref for this run (e.g. a local env var for a databricks key);
            the policy's version is kept.
    """

    input_path: str | None = None
    bronze: str | None = None
    quarantine: str | None = None
    audit: str | None = None
    table_format: str = "delta"
    allow_insecure: bool = False
    run_id: str | None = None
    actor: str | None = None
    key_overrides: Mapping[str, KeySpec] = field(default_factory=dict)
    fetchers: Fetchers | None = None
    progress: Callable[[str], None] | None = None


@dataclass
class IngestResult:
    run_id: str
    table: str
    rows_read: int
    rows_written: int
    rows_inserted: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    columns: dict[str, dict]
    phi_scan: dict[str, dict[str, int]]
    conf_findings: list[dict]
    bronze: str
    quarantine: str
    audit: str
    event: dict


# -------------------------------------------------------------------------------------------------- the job
@dataclass
class Prepared:
    """The masked frame of one ingest (one row per source row, ``_phi_errors`` empty for bronze rows)."""

    selected: Any
    masked: Any
    dropped: list[str]
    phi_scan: dict[str, dict[str, int]]
    #: files read and skipped (name starting with _ or .; None: not counted), for the audit event
    source_files: dict[str, int | None] = field(default_factory=dict)


def prepare(spark: Any, plan: TablePlan, source_path: str) -> Prepared:
    """Read the source, stop on schema drift, scan non-PHI columns, and bind the fused mask pass (lazily).

    Raises:
        JobRefused: unreadable source, a declared column missing, an undeclared column under
            ``on_unclassified: fail``, or PHI-looking values in non-PHI columns under ``phi_scan.on_detect: fail``.
    """
    spec, table = plan.spec, plan.table
    declared = list(spec.columns)
    label = ((lambda i, p: f"file #{i} ({p})") if spec.source_file == "path" else
             (lambda i, p: plan.names.file_label(p, i)))
    landing = read_landing(spark, spec.source.format, source_path, spec.source.options, declared=declared,
                           file_label=label, names=plan.names if spec.source_file == "hash" else None)
    df = landing.df
    drift = check_drift(spec, table, landing.columns, source_path, plan.names)
    F = functions(spark)
    extra = [CORRUPT_COL] if CORRUPT_COL in df.columns else []  # a row that did not parse: quarantined, all NULL
    selected = df.select(*[F.col(f"`{c}`").cast("string").alias(c) for c in declared], SOURCE_FILE_COL, *extra)
    scan = _phi_scan(selected.where(F.col(CORRUPT_COL).isNull()) if extra else selected, spec)
    flagged = {c: k for c, k in scan.items() if any(k.values())}
    if flagged and spec.phi_scan.on_detect == "fail":
        summary = "; ".join(f"{c}: " + ", ".join(f"{n} {kind}" for kind, n in k.items() if n)
                            for c, k in flagged.items())
        raise JobRefused(f"non-PHI column(s) hold values that look like PHI ({summary}); classify them with phi: "
                         f"and a strategy, or set tables.{table}.phi_scan.on_detect: warn")
    if flagged:
        print(f"lakehouse-phi: warning: non-PHI column(s) of {table} hold values that look like PHI: "
              f"{', '.join(sorted(flagged))} (counts in the audit event)", file=sys.stderr)
    masked = selected.mapInArrow(plan.process_iter, plan.result_ddl([SOURCE_FILE_COL]))
    return Prepared(selected=selected, masked=masked, dropped=drift.dropped, phi_scan=scan,
                    source_files={"read": landing.files, "skipped": landing.skipped_files})


def run_ingest(spark: Any, loaded: LoadedPolicy, table: str, options: IngestOptions | None = None) -> IngestResult:
    """Run the bronze ingest for ``tables.<table>`` of the policy. See the module docstring for the steps.

    Raises:
        UsageError: unknown table or bad options (exit 2).
        JobRefused / KeyMaterialError: the job will not run (exit 1); nothing was written to bronze.
    """
    opts = options or IngestOptions()
    policy = loaded.policy
    if table not in policy.tables:
        raise UsageError(f"no table {table!r} under tables: in {loaded.path} (declared: {', '.join(policy.tables)})")
    if opts.table_format not in TABLE_FORMATS:
        raise UsageError(f"table format {opts.table_format!r}; allowed: {', '.join(TABLE_FORMATS)}")
    spec = policy.tables[table]
    run_id = opts.run_id or str(uuid.uuid4())
    actor = opts.actor or _actor()
    say = opts.progress or (lambda _msg: None)
    bronze = opts.bronze or spec.bronze
    quarantine = opts.quarantine or (f"{bronze}_quarantine" if opts.bronze else spec.quarantine_target)
    audit_target = opts.audit or default_audit_target(bronze, opts.table_format)
    source_path = opts.input_path or spec.source.path
    fmt = opts.table_format
    details: dict[str, Any] = {"engine": "spark-connect" if is_connect(spark) else "spark-classic",
                               "table_format": fmt, "allow_insecure": opts.allow_insecure,
                               "source_format": spec.source.format}
    base_event = dict(run_id=run_id, actor=actor, policy_name=policy.name, policy_sha256=loaded.sha256, table=table)

    try:
        # 1. pre-flight: the config validator, before any data is read
        say("checking the Spark configuration")
        findings = _preflight(spark, [source_path, bronze, quarantine, audit_target], opts, details)
        # 2. keys, before any data is read
        say("resolving keys")
        key_specs = {**policy.keys, **opts.key_overrides}
        keys = load_keys(key_specs, key_needs(spec), opts.fetchers)
        # issue 16: other material under the same key version refuses (hook: keys.providers.verify_check_values)
        details["key_checks"] = keys.check_values()
        verify_check_values(recorded_key_checks(spark, bronze, fmt), details["key_checks"], f"bronze {bronze}")
        plan = TablePlan(loaded, table, keys)
        # 3-5. read, check the source's columns against the policy, scan non-PHI columns, and mask
        say(f"reading {spec.source.format} from {source_path}")
        prepared = prepare(spark, plan, source_path)
        masked = prepared.masked
        details["phi_scan"] = prepared.phi_scan
        details["source_files"] = prepared.source_files
        if prepared.dropped:
            details["dropped_columns"] = prepared.dropped
        F = functions(spark)
        if not is_connect(spark):
            masked = masked.persist()
        has_errors = F.size(F.col(ERRORS_COL)) > 0
        say("masking, checking and counting")
        counts = {bool(r[0]): int(r[1]) for r in masked.groupBy(has_errors.alias("q")).count().collect()}
        rows_quarantined, rows_valid = counts.get(True, 0), counts.get(False, 0)
        reasons: dict[str, int] = {}
        if rows_quarantined:
            exploded = masked.where(has_errors).select(F.explode(ERRORS_COL).alias("e"))
            for r in exploded.groupBy("e.column", "e.rule").count().collect():
                reasons[f"{r[0]}:{r[1]}"] = int(r[2])
        # 6. quarantine (masked like bronze) then bronze (merged on the record key)
        now = F.current_timestamp()
        if rows_quarantined:
            say(f"writing {rows_quarantined} quarantined rows")
            q = masked.where(has_errors).withColumn(RUN_ID_COL, F.lit(run_id)).withColumn(QUARANTINED_AT_COL, now)
            _write(q, quarantine, fmt)
        say(f"merging {rows_valid} rows into bronze")
        valid = (masked.where(~has_errors).drop(ERRORS_COL)
                 .withColumn(RUN_ID_COL, F.lit(run_id)).withColumn(INGESTED_AT_COL, now))
        rows_inserted = _merge_bronze(spark, valid, bronze, fmt, spec.record_key, run_id)
        if not is_connect(spark):
            masked.unpersist()
    except LakehousePhiError as exc:
        if not isinstance(exc, UsageError):
            _audit_refusal(spark, audit_target, base_event, exc, details)
        raise
    # 7. the audit event: counts, never values
    from lakehouse_phi.audit.events import new_event
    from lakehouse_phi.audit.sinks import open_sink

    details.update(rows_inserted=rows_inserted, quarantine_reasons=reasons, bronze=bronze, quarantine=quarantine,
                   conf_findings=[f["rule"] for f in findings])
    event = new_event(event="ingest", rows_read=rows_valid + rows_quarantined, rows_written=rows_valid,
                      rows_quarantined=rows_quarantined, columns=plan.column_report(), details=details, **base_event)
    sealed = open_sink(audit_target, spark).append(event)
    if fmt == "delta":
        # provenance, and an anchor for the audit chain (whose tail alone could be truncated unnoticed)
        set_table_properties(spark, bronze, {
            "lakehouse_phi.policy_name": policy.name, "lakehouse_phi.policy_sha256": loaded.sha256,
            "lakehouse_phi.key_versions": json.dumps(keys.versions(), sort_keys=True),
            KEY_CHECKS_PROPERTY: json.dumps(keys.check_values(), sort_keys=True),
            "lakehouse_phi.last_run_id": run_id, "lakehouse_phi.audit_seq": str(sealed["seq"]),
            "lakehouse_phi.audit_hash": sealed["hash"]})
    return IngestResult(run_id=run_id, table=table, rows_read=rows_valid + rows_quarantined, rows_written=rows_valid,
                        rows_inserted=rows_inserted, rows_quarantined=rows_quarantined, quarantine_reasons=reasons,
                        columns=plan.column_report(), phi_scan=prepared.phi_scan, conf_findings=findings,
                        bronze=bronze, quarantine=quarantine, audit=audit_target, event=sealed)


def _actor() -> str:
    for var in ("LAKEHOUSE_PHI_ACTOR", "DATABRICKS_USER", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover
        return "unknown"


def _preflight(spark: Any, paths: list[str], opts: IngestOptions, details: dict) -> list[dict]:
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
        print(f"lakehouse-phi: WARNING: --allow-insecure: running despite {len(errors)} insecure setting(s): "
              f"{', '.join(details['conf_errors'])} (recorded in the audit event)", file=sys.stderr)
    return findings


def _master(spark: Any) -> str | None:
    try:
        return spark.conf.get("spark.master", None)
    except Exception:
        return None


def _local_session(spark: Any) -> bool:
    """Driver and executors in this machine's one process: a ``local[...]`` master, or this process's own pysail
    server (which reports no master). A Spark Connect URL to anything else is not local, whatever its host."""
    from lakehouse_phi.confcheck.check import is_local_master
    from lakehouse_phi.spark.session import is_sail

    return is_sail(spark) or is_local_master(_master(spark))


def _phi_scan(selected: Any, spec: Any) -> dict[str, dict[str, int]]:
    """Counts of sampled values of non-PHI string columns that match SSN/email/phone patterns."""
    F = functions(selected.sparkSession)
    cols = [c for c, s in spec.columns.items()
            if s.phi is None and s.type == "string" and s.effective_ingest.strategy == "keep"]
    if not cols or spec.phi_scan.sample_rows == 0:
        return {}
    aggs = [F.sum(F.col(f"`{c}`").rlike(p).cast("int")).alias(f"{c}\u0001{k}")
            for c in cols for k, p in ((k, detectors.PATTERNS[k]) for k in SCAN_DETECTORS)]
    row = selected.limit(spec.phi_scan.sample_rows).agg(*aggs).collect()[0]
    out: dict[str, dict[str, int]] = {}
    for name, value in row.asDict().items():
        c, k = name.split("\u0001")
        out.setdefault(c, {})[k] = int(value or 0)
    return out


def _merge_bronze(spark: Any, valid: Any, bronze: str, fmt: str, record_key: list[str], run_id: str) -> int:
    """Insert the rows whose record key bronze does not hold yet; return how many were inserted."""
    if record_key:
        valid = valid.dropDuplicates(record_key)
    if not _exists(spark, bronze, fmt):
        _write(valid, bronze, fmt)
        return _read_target(spark, bronze, fmt).count()
    before = _read_target(spark, bronze, fmt).count()
    if not record_key:
        _write(valid, bronze, fmt)
    elif fmt == "delta":
        view = f"lakehouse_phi_src_{run_id.replace('-', '')}"
        valid.createOrReplaceTempView(view)
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in record_key)
        spark.sql(f"MERGE INTO {_target_ref(bronze, 'delta')} AS t USING {view} AS s ON {on} "
                  "WHEN NOT MATCHED THEN INSERT *")
        spark.catalog.dropTempView(view)
    else:
        existing = _read_target(spark, bronze, fmt).select(*record_key)
        _write(valid.join(existing, on=record_key, how="left_anti"), bronze, fmt)
    return _read_target(spark, bronze, fmt).count() - before


def _audit_refusal(spark: Any, target: str, base_event: dict, exc: BaseException, details: dict) -> None:
    """Every run leaves an audit event, refused ones too (the message names places and rules, never values)."""
    try:
        from lakehouse_phi.audit.events import new_event
        from lakehouse_phi.audit.sinks import open_sink

        reason = "key" if isinstance(exc, KeyMaterialError) else "refused"
        event = new_event(event="ingest_refused", rows_read=0, rows_written=0, rows_quarantined=0, columns={},
                          details={**details, "reason": reason, "message": str(exc)[:2000]}, **base_event)
        open_sink(target, spark).append(event)
    except Exception as audit_exc:  # the refusal itself is what the user must see
        print(f"lakehouse-phi: could not record the refusal in the audit trail {target} "
              f"({type(audit_exc).__name__})", file=sys.stderr)
