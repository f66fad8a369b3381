"""``lakehouse-phi validate POLICY``: load and check a policy; every problem with its place."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult, lines
from lakehouse_phi.errors import EXIT_OK, EXIT_USAGE, PolicyError, Problem

if TYPE_CHECKING:
    from lakehouse_phi.policy.load import LoadedPolicy


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.policy.advice import policy_warnings

    loaded, problems = collect_problems(args.policy)
    warnings = policy_warnings(loaded.policy) if loaded is not None else []
    code = EXIT_USAGE if problems else EXIT_OK
    data: dict[str, Any] = {"policy": args.policy, "valid": not problems,
                            "problems": [{"place": p.place, "message": p.message} for p in problems],
                            "warnings": warnings}
    if loaded is not None and not problems:
        data.update(name=loaded.name, sha256=loaded.sha256)
    if args.format == "json":
        return CommandResult(data, exit_code=code)
    text = ""
    err: list[str] = []
    if problems:
        n = len(problems)
        err = [f"{args.policy}: {n} problem{'s' if n != 1 else ''}:", *(f"  - {p}" for p in problems)]
    else:
        assert loaded is not None  # no problems: the policy loaded
        pol = loaded.policy
        text = lines(f"{args.policy}: valid (policy {pol.name}, sha256 {loaded.sha256[:12]}…, {len(pol.tables)} "
                     f"tables, {len(pol.governance.tables) if pol.governance else 0} governed tables)")
    err += [f"{args.policy}: warning: {w}" for w in warnings]
    return CommandResult(data, text, code, stderr=err)
