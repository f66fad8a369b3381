"""``lakehouse-phi validate POLICY``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from lakehouse_phi.errors import EXIT_OK, EXIT_USAGE, PolicyError, Problem

if TYPE_CHECKING:
    from lakehouse_phi.policy.load import LoadedPolicy


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lakehouse_phi.cli_common import add_format

    p.add_argument("policy", metavar="POLICY", help="path to the policy YAML")
    add_format(p)


def collect_problems(path: str) -> tuple[LoadedPolicy | None, list[Problem]]:
    """Load the policy, then build the SQL IR (which checks every governance ``where``); all problems together."""
    from lakehouse_phi.policy import load_policy

    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        return None, exc.problems
    from lakehouse_phi.sql.ir import build_ir

    try:
        build_ir(loaded)
    except PolicyError as exc:
        return loaded, exc.problems
    return loaded, []


def run(args: argparse.Namespace) -> int:
    from lakehouse_phi.policy.advice import policy_warnings

    loaded, problems = collect_problems(args.policy)
    warnings = policy_warnings(loaded.policy) if loaded is not None else []
    if args.format == "json":
        out = {"policy": args.policy, "valid": not problems,
               "problems": [{"place": p.place, "message": p.message} for p in problems], "warnings": warnings}
        if loaded is not None and not problems:
            out.update(name=loaded.name, sha256=loaded.sha256)
        print(json.dumps(out, indent=2))
    elif problems:
        n = len(problems)
        print(f"{args.policy}: {n} problem{'s' if n != 1 else ''}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
    else:
        assert loaded is not None  # no problems: the policy loaded
        pol = loaded.policy
        print(f"{args.policy}: valid (policy {pol.name}, sha256 {loaded.sha256[:12]}…, {len(pol.tables)} tables, "
              f"{len(pol.governance.tables) if pol.governance else 0} governed tables)")
    for w in warnings if args.format != "json" else ():
        print(f"{args.policy}: warning: {w}", file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK
