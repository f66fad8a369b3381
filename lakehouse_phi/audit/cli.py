"""``lakehouse-phi audit verify TRAIL [--policy POLICY | --key NAME=PROVIDER:REF] [--against BRONZE]``: re-check the
audit trail without Spark.

Exit 0 when intact (prints the number of events and the last hash), 1 naming the first broken event (or a bronze
anchor / commit the trail does not account for), 2 when the trail is missing or unreadable, or when a keyed trail is
checked without its key.
"""

from __future__ import annotations

import argparse
import json
import sys

from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lakehouse_phi.cli_common import add_format

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
    v.add_argument("--against", metavar="BRONZE",
                   help="a Delta bronze table: its anchor (last audited seq and hash) must be in the trail, and "
                        "every commit's run must have an event")
    add_format(v)


def _seal_keys(args: argparse.Namespace) -> tuple[object, str | None]:
    from lakehouse_phi.audit.sealing import parse_key_args, ring_seal_keys
    from lakehouse_phi.keys.providers import load_keys

    if args.policy:
        from lakehouse_phi.policy import load_policy

        policy = load_policy(args.policy).policy
        if policy.audit is None:
            return {}, None
        ring = load_keys(policy.keys, [(policy.audit.key, "hmac")], with_previous=True)
        return ring_seal_keys(ring, [policy.audit.key]), policy.audit.key
    return parse_key_args(args.key), None


def run(args: argparse.Namespace) -> int:
    from lakehouse_phi.audit.sinks import read_trail, verify_trail

    keys, expect = _seal_keys(args)  # a missing key: exit 1 naming it; a bad policy: exit 2
    result = verify_trail(args.audit, keys=keys, expect_key=expect)  # type: ignore[arg-type]
    against = None
    if args.against:
        from lakehouse_phi.audit.anchor import check_against

        against = check_against(args.against, read_trail(args.audit) if result.first_bad is None else [])
    tampered = result.first_bad is not None or (against is not None and not against.ok)
    code = EXIT_REFUSED if tampered else EXIT_USAGE if result.missing_key else EXIT_OK
    if args.format == "json":
        out = {"schema_version": 1, "audit": args.audit, **result.to_dict()}
        if against is not None:
            out["against"] = against.to_dict()
        out["ok"] = code == EXIT_OK
        print(json.dumps(out, indent=2))
        return code
    if result.first_bad is not None:
        print(f"{args.audit}: BROKEN at position {result.first_bad} (recorded seq {result.seq}, event_id "
              f"{result.event_id}): {result.reason}", file=sys.stderr)
    elif result.missing_key:
        print(f"{args.audit}: {result.reason}", file=sys.stderr)
    else:
        last = result.last_hash or "-"
        sealed = f", {result.sealed} sealed" if result.sealed else ""
        print(f"{args.audit}: intact, {result.events} event{'s' if result.events != 1 else ''}{sealed}, "
              f"last hash {last}")
        if against is None:
            print("note: removing events from the end is not detectable by the chain alone; compare with the bronze "
                  "anchor (--against BRONZE)", file=sys.stderr)
    if against is not None:
        if against.ok:
            print(f"{args.against}: anchor seq {against.anchor_seq} is in the trail; all {against.commits} "
                  "commits are audited")
        for problem in against.problems:
            print(f"{args.against}: {problem}", file=sys.stderr)
    return code
