"""``lakehouse-phi risk`` and ``lakehouse-phi export`` / ``export verify``.

    lakehouse-phi risk POLICY --table T [--source TABLE_OR_PATH] [--format text|json|html]
    lakehouse-phi export POLICY --table T --out DIR [--source ...] [--audit ...]
    lakehouse-phi export verify DIR --public-key PEM

``risk`` exits 1 when k or l is below the policy's ``risk:``; ``export verify`` exits 1 when any byte of a file or
of the manifest changed.
"""

from __future__ import annotations

import argparse
import html
from typing import Any, TextIO

from lakehouse_phi.commands.result import CommandResult, TextWriter, lines, sorted_keys
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One module for both commands: the parser's name says which."""
    if p.prog.split()[-1] == "risk":
        p.add_argument("policy", metavar="POLICY")
        p.add_argument("--table", required=True, help="the entry under tables: to measure")
        p.add_argument("--source", help="the masked table: a name or a Delta/Parquet path (default: its bronze)")
        p.add_argument("--top", type=int, default=10, help="how many of the smallest classes to list (default 10)")
        p.add_argument("--engine", default="auto", help="active | local | connect | sail | sc://host:port | auto")
        p.add_argument("--format", choices=("text", "json", "html"), default="text")
        return
    p.add_argument("policy", metavar="POLICY|verify", help="a policy file, or `verify` to check an export")
    p.add_argument("directory", nargs="?", metavar="DIR", help="verify: the export directory")
    p.add_argument("--table", help="the entry under tables: to export")
    p.add_argument("--out", help="a new directory for the Parquet files, manifest.json and manifest.sig")
    p.add_argument("--source", help="the masked table: a name or a Delta/Parquet path (default: its bronze)")
    p.add_argument("--audit", help="audit trail: a .jsonl file or a Delta table/path (default: beside bronze)")
    p.add_argument("--public-key", help="verify: the signer's Ed25519 public key (PEM)")
    p.add_argument("--key", action="append", default=[], metavar="NAME=PROVIDER:REF",
                   help="use another provider for the signing key this run (version kept)")
    p.add_argument("--engine", default="auto", help="active | local | connect | sail | sc://host:port | auto")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace, spark: Any = None) -> CommandResult:
    if args.command == "risk":
        return _risk(args, spark)
    if args.policy == "verify":
        return _verify(args)
    return _export(args, spark)


# --------------------------------------------------------------------------------------------------- risk
def _risk(args: argparse.Namespace, spark: Any) -> CommandResult:
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.release.risk import risk_of_table
    from lakehouse_phi.spark.session import get_session

    loaded = load_policy(args.policy)
    if args.table not in loaded.policy.tables:
        raise UsageError(f"--table {args.table!r}: not under tables: (declared: {', '.join(loaded.policy.tables)})")
    spark = spark or get_session(args.engine)
    report = risk_of_table(spark, loaded.policy.tables[args.table], args.table, args.source, args.top)
    doc = report.to_dict()
    text: str | TextWriter = (lines(risk_html(doc)) if args.format == "html"
                              else lambda stream: print_risk(doc, file=stream))
    return CommandResult(sorted_keys(doc), text, EXIT_OK if report.ok else EXIT_REFUSED)


def _figure(value: Any, required: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value}" + ("" if required is None else f" (policy {required}: {'ok' if value >= required else 'BELOW'})")


def print_risk(r: dict, console: Any = None, file: TextIO | None = None) -> None:
    """k, l, the classes below them and the smallest classes, as rich text on ``console`` (default: one on
    ``file``, else stdout)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(file=file)
    console.print(f"[bold]{r['table']}[/] ({r['source']}): {r['records']:,} records in {r['classes']:,} classes over "
                  f"{', '.join(r['quasi_identifiers'])}")
    console.print(f"k = {_figure(r['k'], r['k_required'])} · l = {_figure(r['l'], r['l_required'])}"
                  + (f" over {', '.join(r['sensitive'])}" if r["sensitive"] else ""))
    if r["k_required"] is not None:
        console.print(f"below k: {r['classes_below_k']:,} classes, {r['records_below_k']:,} records · below l: "
                      f"{r['classes_below_l']:,} classes, {r['records_below_l']:,} records")
    t = Table(*r["quasi_identifiers"], "records", "l", title="smallest classes", title_justify="left")
    for c in r["smallest"]:
        t.add_row(*["NULL" if v is None else v for v in c["values"].values()], str(c["records"]),
                  "" if c["l"] is None else str(c["l"]))
    console.print(t)
    console.print("[green]meets the policy[/]" if r["ok"] else "[red]below the policy: not releasable as is[/]")


def risk_html(r: dict) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in r["quasi_identifiers"]) + "<th>records</th><th>l</th>"
    rows = "".join("<tr>" + "".join(f"<td>{e('NULL' if v is None else v)}</td>" for v in c["values"].values())
                   + f"<td>{c['records']}</td><td>{'' if c['l'] is None else c['l']}</td></tr>" for c in r["smallest"])
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(str(r[k]))}</td></tr>" for k in (
        "table", "source", "records", "classes", "k", "k_required", "l", "l_required", "classes_below_k",
        "records_below_k", "classes_below_l", "records_below_l", "ok"))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>risk: {e(r['table'])}</title></head><body>"
            f"<h1>Re-identification risk: {e(r['table'])}</h1><table>{facts}</table>"
            f"<h2>Smallest classes</h2><table><tr>{head}</tr>{rows}</table></body></html>")


# ------------------------------------------------------------------------------------------------- export
def _export(args: argparse.Namespace, spark: Any) -> CommandResult:
    from lakehouse_phi.keys.overrides import parse_key_overrides
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.policy.advice import warn_about
    from lakehouse_phi.release.export import run_export
    from lakehouse_phi.spark.session import get_session

    if args.directory is not None:
        raise UsageError(f"unexpected argument {args.directory!r}; write `export POLICY --table T --out DIR` or "
                         "`export verify DIR --public-key PEM`")
    if not args.table or not args.out:
        raise UsageError("export needs --table and --out")
    loaded = load_policy(args.policy)
    warn_about(loaded.policy)  # the export's event goes to the trail too
    overrides = parse_key_overrides(args.key, loaded.policy)
    spark = spark or get_session(args.engine)
    result = run_export(spark, loaded, args.table, args.out, args.source, args.audit, overrides)
    summary = {"out": result.out, "run_id": result.run_id, "records_read": result.records_read,
               "records_exported": result.records_exported, "records_suppressed": result.records_suppressed,
               "classes_suppressed": result.classes_suppressed, "k_achieved": result.k_achieved,
               "l_achieved": result.l_achieved, "files": len(result.manifest["files"]),
               "audit_hash": result.event.get("hash")}
    return CommandResult(sorted_keys(summary), lines(
        f"{args.table}: exported {result.records_exported:,} of {result.records_read:,} records "
        f"({result.records_suppressed:,} suppressed in {result.classes_suppressed:,} classes below k/l); "
        f"k = {result.k_achieved}, l = {result.l_achieved}; signed manifest in {result.out}"), EXIT_OK)


def _verify(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.release.export import load_public_key, verify_export

    if not args.directory or not args.public_key:
        raise UsageError("export verify needs DIR and --public-key PEM")
    report = verify_export(args.directory, load_public_key(args.public_key))
    result = CommandResult(sorted_keys(report.to_dict()), exit_code=EXIT_OK if report.ok else EXIT_REFUSED)
    if args.format == "json":
        return result
    if report.ok:
        result.text = lines(f"{args.directory}: intact, signature valid, {report.files} file(s)")
    else:
        result.stderr = [f"{args.directory}: NOT intact", *(f"  - {p}" for p in report.problems)]
    return result
