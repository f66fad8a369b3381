"""``lakehouse-phi demo``: the whole story on synthetic data, locally.

The pipeline is :func:`lakehouse_phi.demo.run_demo` (its progress bar on stderr); this module takes the options and
says what the demo made: the rows per table, the strategy of each column, the audit trail and its key, the report,
the measured risk. With ``--format json`` that account goes to stderr and the summary object to stdout. Exit 0 when
the trail verifies, 1 when it does not.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult, sorted_keys
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED
from lakehouse_phi.examples import EXAMPLE_POLICY

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse_phi.demo import DemoOutputs, DemoRun
    from lakehouse_phi.policy import LoadedPolicy


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default=str(EXAMPLE_POLICY), help="default: the worked example inside the package")
    p.add_argument("--out", default="demo_output",
                   help="where landing, bronze, quarantine, audit, SQL and report.html go (default: ./demo_output)")
    p.add_argument("--patients", type=int, default=50_000, help="patients (3 encounters and 2 claims each)")
    p.add_argument("--malformed-rate", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--engine", default="auto", help="auto (pysail when installed, for Delta), local, connect, sail")
    add_format(p)


def run(args: argparse.Namespace) -> CommandResult:
    import pyspark  # noqa: F401 - without [spark], stop (exit 2, what to install) before generating any data
    from rich.console import Console

    from lakehouse_phi.demo import run_demo
    from lakehouse_phi.policy.advice import policy_warnings

    made = run_demo(args.policy, args.out, patients=args.patients, malformed_rate=args.malformed_rate,
                    seed=args.seed, engine=args.engine)
    loaded, done, verified = made.loaded, made.done, made.done.verified
    tables = _table_summaries(done)
    for table, risk in done.risk.items():
        tables[table]["risk"] = risk
    summary = {"policy": loaded.name, "policy_sha256": loaded.sha256, "out": str(made.root), "tables": tables,
               "report": str(done.report_path), "audit": done.audit, "audit_ok": verified.ok,
               "audit_events": verified.events, "audit_sealed": verified.sealed,
               "audit_key": loaded.policy.audit_key,
               "audit_key_file": None if made.key_file is None else str(made.key_file),
               "risk_breaks_policy": [t for t, r in done.risk.items() if not r["ok"]], "sql": done.compiled,
               "table_format": done.fmt, "seconds": round(made.seconds, 1), "conf_errors": done.conf_errors,
               "warnings": policy_warnings(loaded.policy)}
    code = EXIT_OK if verified.ok else EXIT_REFUSED
    if args.format == "json":  # the account for people goes to stderr, the summary to stdout
        _say(Console(stderr=True), made)
        return CommandResult(sorted_keys(summary), exit_code=code)
    return CommandResult(sorted_keys(summary), lambda stream: _say(Console(file=stream), made), code)


def _say(console: Console, made: DemoRun) -> None:
    """What the demo made, for people."""
    loaded, done, verified, root = made.loaded, made.done, made.done.verified, made.root
    _print_tables(console, loaded, done)
    console.print(f"audit trail {done.audit}: {'intact' if verified.ok else 'BROKEN: ' + verified.reason}, "
                  f"{verified.events} events · governance SQL: {len(done.compiled)} files in {root / 'sql'} · "
                  f"{made.seconds:.1f} s")
    _print_trail_key(console, loaded, done.audit, made.key_file)
    console.print(f"compliance report: {done.report_path} (open it in a browser; names, counts and versions only)")
    console.print(f"bronze tables under {root / 'bronze'} ({done.fmt}); read them with Spark, or delta-rs: "
                  f"`python -c \"from lakehouse_phi.deltars import read_delta; "
                  f"print(read_delta('{root / 'bronze' / next(iter(loaded.policy.tables))}'))\"`")
    _print_risk(console, loaded, done.risk)


def _table_summaries(done: DemoOutputs) -> dict[str, dict[str, Any]]:
    """The summary's ``tables``: rows and strategies per table."""
    summary: dict[str, dict[str, Any]] = {}
    for table, r in done.results.items():
        assert r.rows_read == r.rows_written + r.rows_quarantined
        summary[table] = {"rows_read": r.rows_read, "rows_written": r.rows_written,
                          "rows_quarantined": r.rows_quarantined, "quarantine_reasons": r.quarantine_reasons,
                          "columns": r.columns, "bronze": r.bronze, "quarantine": r.quarantine}
    return summary


def _print_tables(out_console: Console, loaded: LoadedPolicy, done: DemoOutputs) -> None:
    """The rows per table and the strategy of each column."""
    from rich.table import Table

    t = Table("table", "read", "bronze", "quarantined", "top quarantine reasons", "format",
              title=f"lakehouse-phi demo: policy {loaded.name} ({loaded.sha256[:12]}…)", title_justify="left")
    for table, r in done.results.items():
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantine_reasons.items(), key=lambda kv: -kv[1])[:3])
        t.add_row(table, f"{r.rows_read:,}", f"{r.rows_written:,}", f"{r.rows_quarantined:,}", reasons, done.fmt)
    out_console.print(t)
    s = Table("table", "column", "strategy", "key version", title="strategies per column", title_justify="left")
    for table, r in done.results.items():
        for col, info in r.columns.items():
            if info["strategy"] != "keep":
                s.add_row(table, col, info["strategy"], "" if info["key_version"] is None else str(info["key_version"]))
    out_console.print(s)


def _print_trail_key(out_console: Console, loaded: LoadedPolicy, audit: str, key_file: Path | None) -> None:
    """Where the trail key is and how to verify with and without it; the warning when the policy seals nothing."""
    from rich.markup import escape

    from lakehouse_phi.policy.advice import UNKEYED_TRAIL

    name = loaded.policy.audit_key
    if key_file is None or name is None:
        out_console.print(f"[yellow]warning:[/] {escape(UNKEYED_TRAIL)}")
        return
    out_console.print(
        f"audit trail sealed under key '{name}', made for this run only: {key_file} (mode 600). Without it, "
        f"`lakehouse-phi audit verify {audit}` exits 2 (a sealed trail cannot be called intact without its key); "
        f"with it: `lakehouse-phi audit verify {audit} --key {name}=file:{key_file}`", soft_wrap=True)


def _print_risk(out_console: Console, loaded: LoadedPolicy, risk: Mapping[str, dict[str, Any]]) -> None:
    """The measured k/l of every table with ``risk:``, then, plainly, which tables break their targets and what
    ``export`` does about it."""
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
