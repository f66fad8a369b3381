"""``lakehouse-phi report POLICY [--audit TRAIL ...] [--risk FILE ...] [--conf-report FILE ...] --out FILE.html``.

Exit 0 when the report is written and every audit chain given is intact, 1 when a chain is broken (the report is
still written and says where), 2 for bad usage (a missing trail or file).
"""

from __future__ import annotations

import argparse

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", metavar="POLICY", help="path to the policy YAML")
    p.add_argument("--audit", metavar="TRAIL", action="append", default=[],
                   help="an audit trail (.jsonl file or Delta directory); repeatable")
    p.add_argument("--risk", metavar="FILE", action="append", default=[],
                   help="a `lakehouse-phi risk --format json` result; repeatable")
    p.add_argument("--conf-report", metavar="FILE", action="append", default=[],
                   help="a `lakehouse-phi check-conf --format json` result; repeatable")
    p.add_argument("--out", metavar="FILE.html", required=True, help="where to write the page")
    add_format(p)


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.report import write_report

    path, intact = write_report(args.policy, args.out, args.audit, args.risk, args.conf_report)
    notes = [] if args.format == "json" else [
        f"wrote {path}" + ("" if intact else " (an audit chain is BROKEN: see the page)")]
    return CommandResult({"report": str(path), "audit_intact": intact, "trails": args.audit},
                         exit_code=EXIT_OK if intact else EXIT_REFUSED, stderr=notes)
