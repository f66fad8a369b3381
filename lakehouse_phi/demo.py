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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED

#: the worked example, shipped as package data so that the demo runs from any folder
DEFAULT_POLICY = Path(__file__).resolve().parent / "examples" / "policy.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lakehouse_phi.cli_common import add_format

    p.add_argument("--policy", default=str(DEFAULT_POLICY), help="default: the worked example inside the package")
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
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from lakehouse_phi.audit.sinks import verify_trail
    from lakehouse_phi.confcheck import check_session
    from lakehouse_phi.keys.local import local_keys
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.report import write_report
    from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
    from lakehouse_phi.spark.session import get_session
    from lakehouse_phi.spark.targets import default_table_format
    from lakehouse_phi.synth import write_landing

    err = Console(stderr=True)
    out_console = Console(stderr=args.format == "json")
    started = time.perf_counter()
    loaded = load_policy(args.policy)
    root = Path(args.out).resolve()
    for sub in ("landing", "bronze", "quarantine", "audit", "sql"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "report.html").unlink(missing_ok=True)
    env, overrides = local_keys(loaded.policy)  # random, for this process only
    os.environ.update(env)
    tables = list(loaded.policy.tables)
    results = {}
    summary: dict[str, Any] = {"policy": loaded.name, "policy_sha256": loaded.sha256, "out": str(root), "tables": {}}

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        step = progress.add_task("generating landing data", total=3 + len(tables))

        def describe(table: str) -> Callable[[str], None]:
            return lambda msg: progress.update(step, description=f"{table}: {msg}")
        rows = {"patients": args.patients, "encounters": 3 * args.patients, "claims": 2 * args.patients}
        landing = write_landing(root, {t: rows.get(t, args.patients) for t in tables}, seed=args.seed,
                                malformed_rate=args.malformed_rate)
        progress.update(step, advance=1, description="starting Spark")
        spark = get_session(args.engine, app="lakehouse-phi-demo")
        fmt = default_table_format(spark)
        progress.update(step, advance=1, description="checking the Spark configuration")
        report = check_session(spark, [str(root)])
        conf_errors = sorted({f.rule for f in report.errors})
        if conf_errors:
            err.print(f"[yellow]config validator:[/] {len(report.errors)} error finding(s) on this local engine "
                      f"({', '.join(conf_errors)}). A cluster job would stop here; the demo is local, so it runs with "
                      "--allow-insecure, which the audit event records.")
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

    elapsed = time.perf_counter() - started
    t = Table("table", "read", "bronze", "quarantined", "top quarantine reasons", "format",
              title=f"lakehouse-phi demo: policy {loaded.name} ({loaded.sha256[:12]}…)", title_justify="left")
    for table, r in results.items():
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantine_reasons.items(), key=lambda kv: -kv[1])[:3])
        t.add_row(table, f"{r.rows_read:,}", f"{r.rows_written:,}", f"{r.rows_quarantined:,}", reasons, fmt)
        assert r.rows_read == r.rows_written + r.rows_quarantined
        summary["tables"][table] = {"rows_read": r.rows_read, "rows_written": r.rows_written,
                                    "rows_quarantined": r.rows_quarantined, "quarantine_reasons": r.quarantine_reasons,
                                    "columns": r.columns, "bronze": r.bronze, "quarantine": r.quarantine}
    out_console.print(t)
    s = Table("table", "column", "strategy", "key version", title="strategies per column", title_justify="left")
    for table, r in results.items():
        for col, info in r.columns.items():
            if info["strategy"] != "keep":
                s.add_row(table, col, info["strategy"], "" if info["key_version"] is None else str(info["key_version"]))
    out_console.print(s)
    from lakehouse_phi.release.risk import risk_of_table  # re-identification risk of each table with risk:

    for table, spec in ((t, sp) for t, sp in loaded.policy.tables.items() if sp.risk and t in results):
        risk = risk_of_table(spark, spec, table, results[table].bronze)
        ell = f", l = {risk.l} (policy {risk.l_required}) of {', '.join(risk.sensitive)}" if risk.sensitive else ""
        out_console.print(f"risk {table}: k = {risk.k} (policy {risk.k_required}){ell} over "
                          f"{', '.join(risk.quasi_identifiers)}; "
                          f"{risk.records_below_k:,} of {risk.records:,} records in classes below k")
        summary["tables"][table]["risk"] = risk.to_dict()
    out_console.print(f"audit trail {audit}: {'intact' if verified.ok else 'BROKEN: ' + verified.reason}, "
                      f"{verified.events} events · governance SQL: {len(compiled)} files in {root / 'sql'} · "
                      f"{elapsed:.1f} s")
    out_console.print(f"compliance report: {report_path} (open it in a browser; names, counts and versions only)")
    out_console.print(f"bronze tables under {root / 'bronze'} ({fmt}); read them with Spark, or delta-rs: "
                      f"`python -c \"from lakehouse_phi.deltars import read_delta; "
                      f"print(read_delta('{root / 'bronze' / tables[0]}'))\"`")
    summary.update(report=str(report_path), audit=audit, audit_ok=verified.ok, audit_events=verified.events,
                   sql=compiled, table_format=fmt, seconds=round(elapsed, 1), conf_errors=conf_errors)
    if args.format == "json":
        print(json.dumps(summary, indent=2, sort_keys=True))
    return EXIT_OK if verified.ok else EXIT_REFUSED


def _compile(loaded: Any, out: Path) -> list[str]:
    """The governance SQL for every target, as ``lakehouse-phi compile --out`` writes it."""
    from lakehouse_phi.sql.compile import compile_policy, write
    from lakehouse_phi.sql.dialects import TARGETS

    return [str(p) for target in TARGETS for p in write(compile_policy(loaded, target).files(), out)]
