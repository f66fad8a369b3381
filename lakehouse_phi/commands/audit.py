"""``lakehouse-phi audit verify TRAIL [--policy POLICY | --key NAME=PROVIDER:REF] [--against BRONZE
[--quarantine Q]]``: re-check the audit trail without Spark.

Exit 0 when intact (prints the number of events and the last hash), 1 naming the first broken event (or an empty
keyed trail, a Delta trail whose history was restored or rewritten, or that is not append-only or keeps its log or
removed files less than ``audit.retention_days``, a bronze anchor / commit the trail does not account for), 2 when
the trail is missing or unreadable, or when a keyed trail is checked without its key. The
verification itself is :func:`lakehouse_phi.audit.verify.verify_audit`, which the HTML report runs too.
"""

from __future__ import annotations

import argparse

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True
    v = sub.add_parser("verify", help="re-check the hash chain and seals; exit 1 naming the first broken event",
                       description="Re-check the audit trail's hash chain and, for a keyed trail, every event's "
                                   "HMAC seal. Exit 0 intact, 1 naming the first broken event (or a bronze anchor "
                                   "or commit the trail does not account for), 2 when the trail is missing or "
                                   "unreadable or a keyed trail is checked without its key.")
    v.add_argument("audit", metavar="TRAIL", help="the .jsonl trail or the Delta trail directory")
    keys = v.add_mutually_exclusive_group()
    keys.add_argument("--policy", metavar="POLICY",
                      help="the policy whose audit.key (all its versions) seals the trail; the trail must be sealed")
    keys.add_argument("--key", action="append", default=[], metavar="NAME[@VERSION]=PROVIDER:REF",
                      help="a trail key without the policy, e.g. trail=env:TRAIL_KEY (repeatable; without "
                           "@VERSION it serves every version)")
    v.add_argument("--retention-days", type=int, metavar="N",
                   help="the days a Delta trail's log and removed files must be kept (default: the policy's "
                        "audit.retention_days, else 2190, six years); a shorter setting exits 1")
    v.add_argument("--against", metavar="BRONZE",
                   help="a Delta bronze table: its anchor (last audited seq and hash) must be in the trail, and "
                        "every commit of it and of its quarantine must be bound to an audited run by version and "
                        "operation (RESTORE and unaudited history entries are reported)")
    v.add_argument("--quarantine", metavar="TABLE",
                   help="with --against: the quarantine table to check (default: the one the trail's events name "
                        "for BRONZE, else BRONZE_quarantine)")
    add_format(v)


def _seal_keys(args: argparse.Namespace) -> tuple[object, list[str]]:
    from lakehouse_phi.audit.verify import arg_seal_keys, policy_seal_keys

    if args.policy:
        from lakehouse_phi.policy import load_policy

        return policy_seal_keys(load_policy(args.policy))
    return arg_seal_keys(args.key)


def _retention_days(args: argparse.Namespace) -> int:
    """``--retention-days``, else the policy's ``audit.retention_days``, else six years."""
    from lakehouse_phi.policy.model import DEFAULT_AUDIT_RETENTION_DAYS

    if args.retention_days:
        return int(args.retention_days)
    if args.policy:
        from lakehouse_phi.policy import load_policy

        return load_policy(args.policy).policy.audit_retention_days
    return DEFAULT_AUDIT_RETENTION_DAYS


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.audit.verify import verify_audit
    from lakehouse_phi.errors import UsageError

    if args.quarantine and not args.against:
        raise UsageError("--quarantine is checked with --against BRONZE; pass both", place="--quarantine")
    keys, expect = _seal_keys(args)  # a missing or weak key: exit 1 naming it; a bad policy: exit 2
    verdict = verify_audit(args.audit, keys, expect, against=args.against,  # type: ignore[arg-type]
                           quarantine=args.quarantine, retention_days=_retention_days(args))
    result, against, code = verdict.result, verdict.against, verdict.code
    if args.format == "json":
        return CommandResult(verdict.to_dict(), exit_code=code)
    out: list[str] = []
    err: list[str] = []
    if result.first_bad is not None:
        err.append(f"{args.audit}: BROKEN at position {result.first_bad} (recorded seq {result.seq}, event_id "
                   f"{result.event_id}): {result.reason}")
    elif result.missing_key:
        err.append(f"{args.audit}: {result.reason}")
    err += [f"{args.audit}: NOT INTACT: {problem}" for problem in verdict.problems]
    if result.first_bad is None and not result.missing_key and not verdict.problems:
        last = result.last_hash or "-"
        sealed = f", {result.sealed} sealed" if result.sealed else ""
        out.append(f"{args.audit}: intact, {result.events} event{'s' if result.events != 1 else ''}{sealed}, "
                   f"last hash {last}\n")
        if against is None:
            err.append("note: removing events from the end is not detectable by the chain alone; compare with the "
                       "bronze anchor (--against BRONZE)")
    if against is not None:
        if against.ok:
            out.append(f"{args.against}: anchor seq {against.anchor_seq} is in the trail; all {against.commits} "
                       f"bronze and {against.quarantine_commits} quarantine commits are audited\n")
        err += [f"{args.against}: {problem}" for problem in against.problems]
    return CommandResult(verdict.to_dict(), "".join(out), code, stderr=err)
