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
from lakehouse_phi.policy.advice import UNKEYED_TRAIL, policy_warnings

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse_phi.audit.chain import VerifyResult
    from lakehouse_phi.policy import LoadedPolicy
    from lakehouse_phi.policy.model import KeySpec
    from lakehouse_phi.spark.batch import IngestResult

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
    for sub in ("landing", "bronze", "quarantine", "audit", "sql", "keys"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for name in ("report.html", RISK_FILE):
        (root / name).unlink(missing_ok=True)
    env, overrides = local_keys(loaded.policy)  # random, for this process only
    os.environ.update(env)
    key_file = _write_audit_key(loaded, root, env, overrides)
    done = _pipeline(args, loaded, root, overrides)
    elapsed = time.perf_counter() - started

    tables = _print_tables(out_console, loaded, done)
    for table, risk in done.risk.items():
        tables[table]["risk"] = risk
    verified = done.verified
    out_console.print(f"audit trail {done.audit}: {'intact' if verified.ok else 'BROKEN: ' + verified.reason}, "
                      f"{verified.events} events · governance SQL: {len(done.compiled)} files in {root / 'sql'} · "
                      f"{elapsed:.1f} s")
    _print_trail_key(out_console, loaded, done.audit, key_file)
    out_console.print(f"compliance report: {done.report_path} (open it in a browser; names, counts and versions only)")
    out_console.print(f"bronze tables under {root / 'bronze'} ({done.fmt}); read them with Spark, or delta-rs: "
                      f"`python -c \"from lakehouse_phi.deltars import read_delta; "
                      f"print(read_delta('{root / 'bronze' / next(iter(loaded.policy.tables))}'))\"`")
    breaking = _print_risk(out_console, loaded, done.risk)
    if args.format == "json":
        summary = {"policy": loaded.name, "policy_sha256": loaded.sha256, "out": str(root), "tables": tables,
                   "report": str(done.report_path), "audit": done.audit, "audit_ok": verified.ok,
                   "audit_events": verified.events, "audit_sealed": verified.sealed,
                   "audit_key": loaded.policy.audit_key, "audit_key_file": None if key_file is None else str(key_file),
                   "risk_breaks_policy": breaking, "sql": done.compiled, "table_format": done.fmt,
                   "seconds": round(elapsed, 1), "conf_errors": done.conf_errors,
                   "warnings": policy_warnings(loaded.policy)}
        print(json.dumps(summary, indent=2, sort_keys=True))
    return EXIT_OK if verified.ok else EXIT_REFUSED


#: the demo's measured risk, as ``lakehouse-phi risk --format json`` writes it (one document, every table)
RISK_FILE = "risk.json"


def _write_audit_key(loaded: LoadedPolicy, root: Path, env: Mapping[str, str],
                     overrides: Mapping[str, KeySpec]) -> Path | None:
    """The trail key made for this run, written where the user can find it (``keys/<name>.key``, mode 600, standard
    base64 as the ``file`` provider reads it); None when the policy seals nothing."""
    name = loaded.policy.audit_key
    if name is None:
        return None
    spec = overrides.get(name) or loaded.policy.keys[name]
    path = root / "keys" / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(env[spec.ref] + "\n")
    return path


def _print_trail_key(out_console: Console, loaded: LoadedPolicy, audit: str, key_file: Path | None) -> None:
    """Where the trail key is and how to verify with and without it; the warning when the policy seals nothing."""
    from rich.markup import escape

    name = loaded.policy.audit_key
    if key_file is None or name is None:
        out_console.print(f"[yellow]warning:[/] {escape(UNKEYED_TRAIL)}")
        return
    out_console.print(
        f"audit trail sealed under key '{name}', made for this run only: {key_file} (mode 600). Without it, "
        f"`lakehouse-phi audit verify {audit}` exits 2 (a sealed trail cannot be called intact without its key); "
        f"with it: `lakehouse-phi audit verify {audit} --key {name}=file:{key_file}`", soft_wrap=True)


def _print_risk(out_console: Console, loaded: LoadedPolicy, risk: Mapping[str, dict[str, Any]]) -> list[str]:
    """The measured k/l of every table with ``risk:``, then, plainly, which tables break their targets and what
    ``export`` does about it; returns those tables."""
    breaking = []
    for table, r in risk.items():
        ell = f", l = {r['l']} (policy {r['l_required']}) of {', '.join(r['sensitive'])}" if r["sensitive"] else ""
        out_console.print(f"risk {table}: k = {r['k']} (policy {r['k_required']}){ell} over "
                          f"{', '.join(r['quasi_identifiers'])}; {r['records_below_k']:,} of {r['records']:,} "
                          "records in classes below k")
        if not r["ok"]:
            breaking.append(table)
    for table in breaking:
        r = risk[table]
        what = []
        if r["k_required"] is not None and r["k"] is not None and r["k"] < r["k_required"]:
            what.append(f"its k: k = {r['k']} where the policy asks for {r['k_required']}: {r['records_below_k']:,} "
                        f"of {r['records']:,} records are in groups of fewer than {r['k_required']} records sharing "
                        f"{', '.join(r['quasi_identifiers'])}, small enough to single a person out")
        if r["l_required"] is not None and r["l"] is not None and r["l"] < r["l_required"]:
            what.append(f"its l: l = {r['l']} where the policy asks for {r['l_required']} "
                        f"({r['records_below_l']:,} records)")
        if loaded.policy.tables[table].export is not None:
            release = (f"`lakehouse-phi export {loaded.path} --table {table} --out DIR` releases only the records "
                       "of groups that reach k and l and suppresses the others (their count is in its signed "
                       "manifest)")
        else:
            release = (f"{table} has no export: section, so `lakehouse-phi export` refuses to release it at all")
        out_console.print(
            f"[bold red]{table} breaks {' and '.join(what)}.[/] Bronze is not a release: {release}; "
            f"`lakehouse-phi risk {loaded.path} --table {table}` exits 1 until the quasi-identifiers are "
            "coarsened.", soft_wrap=True)
    if risk and not breaking:
        out_console.print("every table with risk targets meets them.")
    return breaking


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
    #: table -> its measured risk (``RiskReport.to_dict()`` without the smallest classes' values)
    risk: dict[str, dict[str, Any]]


def _pipeline(args: argparse.Namespace, loaded: LoadedPolicy, root: Path, overrides: Mapping[str, KeySpec]) -> _Done:
    """Landing data -> Spark -> config validator -> ingest of each table -> audit check -> SQL -> report, with a
    progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from lakehouse_phi.audit.sinks import verify_trail
    from lakehouse_phi.audit.verify import policy_seal_keys
    from lakehouse_phi.report import write_report
    from lakehouse_phi.spark.batch import run_ingest
    from lakehouse_phi.spark.job import IngestOptions
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
        progress.update(step, description="measuring re-identification risk")
        risk = _measure_risk(spark, loaded, results)
        (root / RISK_FILE).write_text(json.dumps({"tables": risk}, indent=2, sort_keys=True), encoding="utf-8")
        progress.update(step, description="verifying the audit trail and compiling governance SQL")
        seal_keys, expect = policy_seal_keys(loaded, key_specs=overrides)
        verified = verify_trail(audit, keys=seal_keys, expect_key=expect)
        compiled = _compile(loaded, root / "sql")
        progress.update(step, description="writing the compliance report")
        report_path, _ = write_report(args.policy, str(root / "report.html"), [audit], [str(root / RISK_FILE)],
                                      seal_keys=seal_keys)
        progress.update(step, advance=1, description="done")
    return _Done(spark, fmt, conf_errors, results, audit, verified, compiled, report_path, risk)


def _measure_risk(spark: Any, loaded: LoadedPolicy, results: Mapping[str, IngestResult]) -> dict[str, dict[str, Any]]:
    """k, l and the records in classes below them, for every table with ``risk:``, over its bronze; the smallest
    classes (their quasi-identifier values) are left out: the report and the summary show figures only."""
    from lakehouse_phi.release.risk import risk_of_table

    out = {}
    for table, spec in loaded.policy.tables.items():
        if spec.risk and table in results:
            doc = risk_of_table(spark, spec, table, results[table].bronze).to_dict()
            doc.pop("smallest", None)
            out[table] = doc
    return out


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


def _compile(loaded: Any, out: Path) -> list[str]:
    """The governance SQL for every target, as ``lakehouse-phi compile --out`` writes it."""
    from lakehouse_phi.sql.compile import compile_policy, write
    from lakehouse_phi.sql.dialects import TARGETS

    return [str(p) for target in TARGETS for p in write(compile_policy(loaded, target).files(), out)]
