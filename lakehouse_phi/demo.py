"""``lakehouse-phi demo``: the whole story on synthetic data, locally.

Generated landing data for every table -> the config validator -> bronze ingest of each table (real Delta tables
on pysail; Parquet on a Spark without Delta) -> the audit trail verified -> the governance SQL compiled -> the HTML
compliance report (``demo_output/report.html``). Keys are random, made for this process only. Runs from any folder:
the example policy ships inside the package (``lakehouse_phi/examples/policy.yaml``) and the data is generated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED
from lakehouse_phi.examples import EXAMPLE_POLICY

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse_phi.audit.chain import VerifyResult
    from lakehouse_phi.policy import LoadedPolicy
    from lakehouse_phi.policy.model import KeySpec
    from lakehouse_phi.spark.ingest import IngestResult

#: the worked example, shipped as package data so that the demo runs from any folder

#: Patients in the demo's FHIR export (with two encounters each): modest, so the demo stays fast.
FHIR_PATIENTS = 200


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lakehouse_phi.cli_common import add_format

    p.add_argument("--policy", default=str(EXAMPLE_POLICY), help="default: the worked example inside the package")
    p.add_argument("--out", default="demo_output",
                   help="where landing, bronze, quarantine, audit, SQL and report.html go (default: ./demo_output)")
    p.add_argument("--patients", type=int, default=50_000, help="patients (3 encounters and 2 claims each)")
    p.add_argument("--malformed-rate", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--engine", default="auto", help="auto (pysail when installed, for Delta), local, connect, sail")
    add_format(p)


def run(args: argparse.Namespace) -> int:
    import pyspark  # noqa: F401 - without [spark], stop (exit 2, what to install) before generating any data
    from rich.console import Console

    from lakehouse_phi.keys.local import local_keys
    from lakehouse_phi.policy import load_policy

    out_console = Console(stderr=args.format == "json")
    started = time.perf_counter()
    loaded = load_policy(args.policy)
    root = Path(args.out).resolve()
    for sub in ("landing", "bronze", "quarantine", "audit", "sql"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "report.html").unlink(missing_ok=True)
    env, overrides = local_keys(loaded.policy)  # random, for this process only
    os.environ.update(env)
    done = _pipeline(args, loaded, root, overrides)
    elapsed = time.perf_counter() - started

    tables = _print_tables(out_console, loaded, done)
    _print_risk(out_console, loaded, done, tables)
    verified = done.verified
    out_console.print(f"audit trail {done.audit}: {'intact' if verified.ok else 'BROKEN: ' + verified.reason}, "
                      f"{verified.events} events · governance SQL: {len(done.compiled)} files in {root / 'sql'} · "
                      f"{elapsed:.1f} s")
    out_console.print(f"compliance report: {done.report_path} (open it in a browser; names, counts and versions only)")
    out_console.print(f"bronze tables under {root / 'bronze'} ({done.fmt}); read them with Spark, or delta-rs: "
                      f"`python -c \"from lakehouse_phi.deltars import read_delta; "
                      f"print(read_delta('{root / 'bronze' / next(iter(loaded.policy.tables))}'))\"`")
    if args.format == "json":
        summary = {"policy": loaded.name, "policy_sha256": loaded.sha256, "out": str(root), "tables": tables,
                   "report": str(done.report_path), "audit": done.audit, "audit_ok": verified.ok,
                   "audit_events": verified.events, "sql": done.compiled, "table_format": done.fmt,
                   "seconds": round(elapsed, 1), "conf_errors": done.conf_errors}
        print(json.dumps(summary, indent=2, sort_keys=True))
    return EXIT_OK if verified.ok else EXIT_REFUSED


@dataclass
class _Done:
    """What the demo's pipeline produced."""

    spark: Any
    fmt: str
    conf_errors: list[str]
    results: dict[str, IngestResult]
    audit: str
    verified: VerifyResult
    compiled: list[str]
    report_path: Path


def _pipeline(args: argparse.Namespace, loaded: LoadedPolicy, root: Path, overrides: Mapping[str, KeySpec]) -> _Done:
    """Landing data -> Spark -> config validator -> ingest of each table -> audit check -> SQL -> report, with a
    progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from lakehouse_phi.audit.sinks import verify_trail
    from lakehouse_phi.report import write_report
    from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
    from lakehouse_phi.spark.session import get_session
    from lakehouse_phi.storage.tables import default_table_format
    from lakehouse_phi.synth import write_landing
    from lakehouse_phi.synth.fhir import FHIR_LANDING, write_fhir

    err = Console(stderr=True)
    tables = list(loaded.policy.tables)
    results = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        step = progress.add_task("generating landing data", total=3 + len(tables))

        def describe(table: str) -> Callable[[str], None]:
            return lambda msg: progress.update(step, description=f"{table}: {msg}")
        rows = {"patients": args.patients, "encounters": 3 * args.patients, "claims": 2 * args.patients}
        fhir_paths = {path: resource for resource, path in FHIR_LANDING.items()}
        resources = {t: fhir_paths[sp.source.path] for t, sp in loaded.policy.tables.items()
                     if sp.source.path in fhir_paths}
        landing = write_landing(root, {t: rows.get(t, args.patients) for t in tables if t not in resources},
                                seed=args.seed, malformed_rate=args.malformed_rate)
        if resources:  # FHIR Patient and Encounter ndjson: a modest export, masked leaf by leaf
            written = write_fhir(root, min(args.patients, FHIR_PATIENTS), 2, seed=args.seed)
            landing.update({t: written[r] for t, r in resources.items()})
        progress.update(step, advance=1, description="starting Spark")
        spark = get_session(args.engine, app="lakehouse-phi-demo")
        fmt = default_table_format(spark)
        progress.update(step, advance=1, description="checking the Spark configuration")
        conf_errors = _check_conf(spark, root, err)
        audit = str(root / "audit" / ("trail" if fmt == "delta" else "trail.jsonl"))
        for table in tables:
            progress.update(step, description=f"ingesting {table}")
            results[table] = run_ingest(spark, loaded, table, IngestOptions(
                input_path=str(landing[table]), bronze=str(root / "bronze" / table),
                quarantine=str(root / "quarantine" / table), audit=audit, table_format=fmt,
                allow_insecure=True, key_overrides=overrides,
                progress=describe(table)))
            progress.update(step, advance=1)
        progress.update(step, description="verifying the audit trail and compiling governance SQL")
        verified = verify_trail(audit)
        compiled = _compile(loaded, root / "sql")
        progress.update(step, description="writing the compliance report")
        report_path, _ = write_report(args.policy, str(root / "report.html"), [audit])
        progress.update(step, advance=1, description="done")
    return _Done(spark, fmt, conf_errors, results, audit, verified, compiled, report_path)


def _check_conf(spark: Any, root: Path, err: Console) -> list[str]:
    """The config validator's error rules on this engine; said, not enforced (the demo runs --allow-insecure)."""
    from lakehouse_phi.confcheck import check_session

    report = check_session(spark, [str(root)])
    conf_errors = sorted({f.rule for f in report.errors})
    if conf_errors:
        err.print(f"[yellow]config validator:[/] {len(report.errors)} error finding(s) on this local engine "
                  f"({', '.join(conf_errors)}). A cluster job would stop here; the demo is local, so it runs with "
                  "--allow-insecure, which the audit event records.")
    return conf_errors


def _print_tables(out_console: Console, loaded: LoadedPolicy, done: _Done) -> dict[str, dict[str, Any]]:
    """The rows per table and the strategy of each column; returns the summary's ``tables``."""
    from rich.table import Table

    summary: dict[str, dict[str, Any]] = {}
    t = Table("table", "read", "bronze", "quarantined", "top quarantine reasons", "format",
              title=f"lakehouse-phi demo: policy {loaded.name} ({loaded.sha256[:12]}…)", title_justify="left")
    for table, r in done.results.items():
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantine_reasons.items(), key=lambda kv: -kv[1])[:3])
        t.add_row(table, f"{r.rows_read:,}", f"{r.rows_written:,}", f"{r.rows_quarantined:,}", reasons, done.fmt)
        assert r.rows_read == r.rows_written + r.rows_quarantined
        summary[table] = {"rows_read": r.rows_read, "rows_written": r.rows_written,
                          "rows_quarantined": r.rows_quarantined, "quarantine_reasons": r.quarantine_reasons,
                          "columns": r.columns, "bronze": r.bronze, "quarantine": r.quarantine}
    out_console.print(t)
    s = Table("table", "column", "strategy", "key version", title="strategies per column", title_justify="left")
    for table, r in done.results.items():
        for col, info in r.columns.items():
            if info["strategy"] != "keep":
                s.add_row(table, col, info["strategy"], "" if info["key_version"] is None else str(info["key_version"]))
    out_console.print(s)
    return summary


def _print_risk(out_console: Console, loaded: LoadedPolicy, done: _Done, summary: dict[str, dict[str, Any]]) -> None:
    """The re-identification risk of each table with ``risk:``, added to its summary."""
    from lakehouse_phi.release.risk import risk_of_table

    for table, spec in ((t, sp) for t, sp in loaded.policy.tables.items() if sp.risk and t in done.results):
        risk = risk_of_table(done.spark, spec, table, done.results[table].bronze)
        ell = f", l = {risk.l} (policy {risk.l_required}) of {', '.join(risk.sensitive)}" if risk.sensitive else ""
        out_console.print(f"risk {table}: k = {risk.k} (policy {risk.k_required}){ell} over "
                          f"{', '.join(risk.quasi_identifiers)}; "
                          f"{risk.records_below_k:,} of {risk.records:,} records in classes below k")
        summary[table]["risk"] = risk.to_dict()


def _compile(loaded: Any, out: Path) -> list[str]:
    """The governance SQL for every target, as ``lakehouse-phi compile --out`` writes it."""
    from lakehouse_phi.sql.compile import compile_policy, write
    from lakehouse_phi.sql.dialects import TARGETS

    return [str(p) for target in TARGETS for p in write(compile_policy(loaded, target).files(), out)]
