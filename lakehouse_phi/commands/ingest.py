"""``lakehouse-phi ingest POLICY --table T [...]``: the bronze ingest job on the current or a local Spark."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from lakehouse_phi.commands._common import add_format, progress
from lakehouse_phi.commands.result import CommandResult, lines, sorted_keys
from lakehouse_phi.errors import EXIT_OK, JobRefused, LakehousePhiError, UsageError, delta_unavailable


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--table", required=True, help="the entry under tables: to ingest")
    p.add_argument("--input", help="read the source from this path instead of source.path")
    p.add_argument("--bronze", help="bronze table name or path (default: the policy's)")
    p.add_argument("--quarantine", help="quarantine table name or path (default: the policy's, or <bronze>_quarantine)")
    p.add_argument("--audit", help="audit trail: a .jsonl file or a Delta table/path (default: beside bronze)")
    p.add_argument("--engine", default="auto",
                   help="active | local | connect | sail | sc://host:port | auto (default: the active session, "
                        "else pysail when installed, else local; a --stream run skips pysail, which cannot stream); "
                        "auto says on stderr which it chose")
    p.add_argument("--table-format", choices=("auto", "delta", "parquet"), default="auto",
                   help="auto (default): delta where the engine has Delta, else parquet")
    p.add_argument("--writer", choices=("auto", "spark", "delta-rs"), default="auto",
                   help="how Delta is written: spark (SQL MERGE INTO, as on Databricks), delta-rs (Delta paths, "
                        "app transactions), or auto (default): spark where the engine writes Delta itself, else "
                        "delta-rs for paths")
    p.add_argument("--allow-insecure", action="store_true",
                   help="local runs only: proceed despite insecure-config errors (printed and audited)")
    p.add_argument("--key", action="append", default=[], metavar="NAME=PROVIDER:REF",
                   help="use another provider for a key this run, e.g. phi-dek=env:LAKEHOUSE_PHI_DEK (version kept)")
    s = p.add_argument_group("streaming (exactly once, one audit event per micro-batch)")
    s.add_argument("--stream", action="store_true", help="ingest the landing folder as a stream (foreachBatch)")
    s.add_argument("--checkpoint", metavar="DIR", help="the stream's checkpoint directory (required with --stream)")
    s.add_argument("--trigger", default="available-now",
                   help="available-now (default: what has landed, then stop) or processing-time=INTERVAL")
    s.add_argument("--max-files-per-trigger", type=int, metavar="N", help="at most N files per micro-batch")
    add_format(p)


def run(args: argparse.Namespace, spark: Any = None) -> CommandResult:
    """The ingest on ``spark`` (default: the session ``--engine`` names); ``jobs/bronze_ingest.py`` passes the
    session spark-submit made."""
    from lakehouse_phi.keys.overrides import parse_key_overrides
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.spark.batch import run_ingest
    from lakehouse_phi.spark.job import IngestOptions
    from lakehouse_phi.spark.session import choose_engine, get_session
    from lakehouse_phi.storage.tables import default_table_format, delta_writable

    loaded = load_policy(args.policy)  # an invalid policy stops here: exit 2, before Spark starts
    overrides = parse_key_overrides(args.key, loaded.policy)
    if args.table not in loaded.policy.tables:
        raise UsageError(f"--table {args.table!r}: not under tables: (declared: {', '.join(loaded.policy.tables)})")
    if args.stream and not args.checkpoint:
        raise UsageError("--stream needs --checkpoint DIR (where the stream records its progress)")
    if args.checkpoint and not args.stream:
        raise UsageError("--checkpoint is for --stream runs")
    if spark is None:
        if args.engine == "auto":
            engine, reason = choose_engine("auto", streaming=args.stream)
            progress(f"[ingest {args.table}] engine auto: {engine} ({reason})")
        spark = get_session(args.engine, streaming=args.stream)
    fmt = default_table_format(spark) if args.table_format == "auto" else args.table_format
    if fmt == "delta" and not delta_writable(spark, args.bronze or loaded.policy.tables[args.table].bronze):
        raise delta_unavailable()  # before anything is read or written
    say = (lambda msg: progress(f"[ingest {args.table}] {msg}")) if args.format == "text" else None
    options = IngestOptions(
        input_path=args.input, bronze=args.bronze, quarantine=args.quarantine, audit=args.audit, table_format=fmt,
        allow_insecure=args.allow_insecure, key_overrides=overrides, progress=say, writer=args.writer)
    if args.stream:
        from lakehouse_phi.spark.stream import ingest_stream

        try:
            streamed = ingest_stream(spark, loaded, args.table, options, checkpoint=args.checkpoint,
                                     trigger=args.trigger, max_files_per_trigger=args.max_files_per_trigger)
        except LakehousePhiError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine's message (and traceback) may quote data: its class only
            raise _engine_failure(args.table, exc) from None
        out = {"run_id": streamed.run_id, "table": args.table, "app_id": streamed.app_id,
               "batches": streamed.batches, "audit": streamed.audit, "table_format": fmt}
        return CommandResult(sorted_keys(out), lines(f"{args.table}: {len(streamed.batches)} micro-batch(es) "
                                                     f"written, run {streamed.run_id}"), EXIT_OK)
    try:
        result = run_ingest(spark, loaded, args.table, options)
    except LakehousePhiError:
        raise
    except Exception as exc:  # noqa: BLE001 - an engine's message (and traceback) may quote data: its class only
        raise _engine_failure(args.table, exc) from None
    summary = {
        "run_id": result.run_id, "table": result.table, "table_format": fmt, "rows_read": result.rows_read,
        "rows_written": result.rows_written, "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated, "rows_unchanged": result.rows_unchanged,
        "rows_quarantined": result.rows_quarantined, "quarantine_reasons": result.quarantine_reasons,
        "columns": result.columns, "phi_scan": result.phi_scan, "bronze": result.bronze,
        "quarantine": result.quarantine, "audit": result.audit, "audit_hash": result.event.get("hash"),
        "warnings": result.warnings, "writer": result.writer,
    }
    return CommandResult(sorted_keys(summary), lambda stream: print_summary(summary, file=stream), EXIT_OK)


def print_summary(s: dict, console: Any = None, file: TextIO | None = None) -> None:
    """The run's counts and each column's strategy, as rich tables on ``console`` (default: one on ``file``, else
    stdout)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(file=file)
    console.print(f"[bold]{s['table']}[/]: read {s['rows_read']:,} · valid {s['rows_written']:,} "
                  f"({s['rows_inserted']:,} new, {s['rows_updated']:,} updated, {s['rows_unchanged']:,} unchanged) · "
                  f"quarantined {s['rows_quarantined']:,} → {s['bronze']} [{s['table_format']}]")
    if s["quarantine_reasons"]:
        t = Table("column", "rule", "rows", title="quarantined by reason", title_justify="left")
        for k, n in sorted(s["quarantine_reasons"].items()):
            col, rule = k.split(":", 1)
            t.add_row(col, rule, f"{n:,}")
        console.print(t)
    t = Table("column", "strategy", "key version", title="strategies", title_justify="left")
    for col, info in s["columns"].items():
        t.add_row(col, info["strategy"], "" if info["key_version"] is None else str(info["key_version"]))
    console.print(t)


def _engine_failure(table: str, exc: BaseException) -> JobRefused:
    from lakehouse_phi.storage.rules import spark_error_class

    return JobRefused(f"the ingest of table {table} failed in the engine ({spark_error_class(exc)}); its message is "
                      "not shown, as it may quote data: see the Spark driver log")
