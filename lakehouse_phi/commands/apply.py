"""``lakehouse-phi apply POLICY --target databricks|databricks-abac|dynamic-views --warehouse-id ID [--dry-run]
[--rollback] [--expected-sha256 SHA] [--profile NAME] [--format text|json]``.

Runs the statements of the compiled ``apply.sql`` (``rollback.sql`` with ``--rollback``) on a SQL warehouse
through databricks-sdk's Statement Execution API, with Databricks unified authentication (``DATABRICKS_HOST`` +
``DATABRICKS_TOKEN``, OAuth ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET`` for a service principal, or a
``~/.databrickscfg`` profile), planned by :mod:`lakehouse_phi.sql.plan`: it fails toward protection (a failed
statement keeps every mask, row filter, policy and protective REVOKE in place, revokes only the privileges this run
added, and exits 1 naming the statement). ``--dry-run`` prints the plan and contacts nothing; with
``--warehouse-id`` it also reads the current state (read-only) and shows what would be skipped or moved, and checks
the applying principal's privileges (:mod:`lakehouse_phi.databricks.privileges`; exit 1 when some are missing).
``--timeout SECONDS`` bounds the run (the running statement is cancelled). Exit codes: 0 applied, 1 refused or
failed, 2 bad usage or an invalid policy.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lakehouse_phi.commands._common import add_format, progress
from lakehouse_phi.commands.result import CommandResult, lines
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, JobRefused, PolicyError

if TYPE_CHECKING:
    from lakehouse_phi.sql.compile import Compiled
    from lakehouse_phi.sql.generator import Statement

_TARGETS = ("databricks", "databricks-abac", "dynamic-views")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", metavar="POLICY", help="path to the policy YAML")
    p.add_argument("--target", choices=_TARGETS, default="databricks", help="which compiled SQL to apply")
    p.add_argument("--warehouse-id", metavar="ID", help="the SQL warehouse that runs the statements")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan; contact nothing (with --warehouse-id: read the state, check privileges)")
    p.add_argument("--rollback", action="store_true", help="run the rollback statements instead")
    p.add_argument("--expected-sha256", metavar="SHA",
                   help="refuse unless the policy file has this SHA-256 (the one that was reviewed)")
    p.add_argument("--profile", metavar="NAME", help="a ~/.databrickscfg profile (default: unified auth)")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                   help="overall deadline of the run; the running statement is cancelled (default 3600)")
    add_format(p)


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.sql.compile import compile_policy

    as_json = args.format == "json"
    if not args.dry_run and not args.warehouse_id:
        return CommandResult(exit_code=EXIT_USAGE,
                             stderr=["lakehouse-phi apply: --warehouse-id ID is required (or --dry-run)"])
    try:
        loaded = load_policy(args.policy)
        compiled = compile_policy(loaded, args.target)
    except PolicyError as exc:
        if as_json:
            return CommandResult({"policy": args.policy, "valid": False,
                                  "problems": [{"place": p.place, "message": p.message} for p in exc.problems]},
                                 exit_code=EXIT_USAGE)
        raise
    if args.expected_sha256 is not None and args.expected_sha256.strip().lower() != loaded.sha256:
        raise JobRefused(f"{args.policy} has sha256 {loaded.sha256}, not the expected {args.expected_sha256.strip()}"
                         "; review the policy and pass its SHA-256")
    head = {"policy": args.policy, "sha256": loaded.sha256, "target": args.target,
            "action": "rollback" if args.rollback else "apply"}
    if args.dry_run:
        return _dry_run(args, compiled, head)
    return _apply(args, compiled, head)


def _statements(args: argparse.Namespace, compiled: Compiled) -> tuple[Statement, ...]:
    return tuple(compiled.rollback if args.rollback else compiled.apply)


def _dry_run(args: argparse.Namespace, compiled: Compiled, head: dict[str, Any]) -> CommandResult:
    """``--dry-run``: print the plan. Without ``--warehouse-id`` nothing is contacted; with it the current state is
    read (``SELECT``s on ``information_schema`` only) so the plan shows moves and skips."""
    from lakehouse_phi.sql.plan import make_plan

    state, findings = None, []
    if args.warehouse_id:
        from lakehouse_phi.databricks.privileges import check
        from lakehouse_phi.sql.plan import read_state

        try:
            warehouse = _warehouse(args)
            state = read_state(warehouse.run, compiled)
            findings = check(warehouse.client, compiled)
        except Exception as exc:  # noqa: BLE001 - auth, unknown warehouse: the SDK's own message
            return CommandResult(exit_code=EXIT_REFUSED, stderr=[
                f"lakehouse-phi apply: reading the current state failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"])
    plan = make_plan(compiled, state, rollback=args.rollback)
    missing = [f for f in findings if f.missing]
    contacted = "read-only state queries were run" if state is not None else "nothing was contacted"
    data = {**head, "dry_run": True, "changed_signatures": list(plan.changed),
            "privileges": [{"securable_type": f.securable_type, "name": f.name,
                            "missing": list(f.missing), "note": f.note} for f in findings],
            "skipped": [{"kind": s.kind, "about": s.about} for s in plan.skipped],
            "statements": [{"kind": s.kind, "about": s.about, "sql": s.sql} for s in plan.all]}
    text = lines(
        f"-- plan: {head['action']} {len(plan.all)} statements of {args.policy} (sha256 {head['sha256']}), "
        f"target {args.target}; {contacted}. Protections run first and GRANTs last; a failure keeps every "
        "protection and revokes only what the run granted.",
        *(f"-- {name}: signature changed; moved through a versioned function (never unmasked)"
          for name in plan.changed),
        *(f"-- skipped until {st.requires} exists: {st.kind} {st.about}" for st in plan.skipped),
        *(f"-- privileges: {f}" for f in findings),
        *(f"-- [{i}] {st.kind} {st.about}\n{st.sql};" for i, st in enumerate(plan.all, 1)))
    notes = [f"lakehouse-phi apply: the applying principal lacks privileges on {len(missing)} securable(s): "
             + "; ".join(str(f) for f in missing)] if missing else []
    return CommandResult(data, text, EXIT_REFUSED if missing else EXIT_OK, stderr=notes)


def _warehouse(args: argparse.Namespace) -> Any:
    from databricks.sdk import WorkspaceClient

    from lakehouse_phi.databricks.apply import Warehouse

    client = WorkspaceClient(profile=args.profile) if args.profile else WorkspaceClient()
    return Warehouse(client, args.warehouse_id, timeout=args.timeout)


def _apply(args: argparse.Namespace, compiled: Compiled, head: dict[str, Any]) -> CommandResult:
    """Read the state, plan, run on the warehouse; a failure is reported and exits 1."""
    from databricks.sdk.errors import DatabricksError

    from lakehouse_phi.sql.plan import ApplyFailed, StatementFailed, apply

    as_json = args.format == "json"
    say = (lambda _m: None) if as_json else progress
    warehouse = None
    try:
        warehouse = _warehouse(args)
        plan, ran = apply(warehouse.run, compiled, say, rollback=args.rollback)
    except ApplyFailed as exc:
        return CommandResult({**head, "ok": False, "failed_statement": exc.index, "kind": exc.statement.kind,
                              "about": exc.statement.about, "error_code": exc.error.code,
                              "revoked": exc.revoked, "revoke_failures": exc.revoke_failures}, exit_code=EXIT_REFUSED,
                             stderr=[] if as_json else [f"lakehouse-phi apply: {exc}"])
    except StatementFailed as exc:
        return CommandResult(exit_code=EXIT_REFUSED, stderr=[f"lakehouse-phi apply: {exc}; nothing was applied"])
    except (DatabricksError, ValueError) as exc:  # auth, unknown warehouse, bad host: the SDK's own message
        return CommandResult(exit_code=EXIT_REFUSED, stderr=[
            f"lakehouse-phi apply: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}; "
            "nothing was applied"])
    done = [] if as_json else [
        f"lakehouse-phi apply: {head['action']} of {ran} statements done on warehouse {args.warehouse_id}"
        + (f"; {len(plan.skipped)} skipped until ingest creates their tables" if plan.skipped else "")]
    return CommandResult({**head, "ok": True, "statements": ran, "changed_signatures": list(plan.changed),
                          "skipped": [{"kind": s.kind, "about": s.about} for s in plan.skipped],
                          "statement_ids": warehouse.statement_ids}, stderr=done)
