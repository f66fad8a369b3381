"""``lakehouse-phi audit verify AUDIT``: re-check the audit trail's hash chain without Spark.

Exit 0 when intact (prints the number of events and the last hash), 1 naming the first broken event, 2 when the
trail is missing or unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys

from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lakehouse_phi.cli_common import add_format

    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True
    v = sub.add_parser("verify", help="re-check the hash chain; exit 1 naming the first broken event",
                       description="Re-check the audit trail's hash chain. Exit 0 intact, 1 naming the first broken "
                                   "event, 2 when the trail is missing or unreadable. Removing events from the end "
                                   "is not detectable by the chain alone: compare the last hash with an anchor.")
    v.add_argument("audit", metavar="AUDIT", help="the .jsonl trail or the Delta trail directory")
    add_format(v)


def run(args: argparse.Namespace) -> int:
    from lakehouse_phi.audit.sinks import verify_trail

    result = verify_trail(args.audit)  # UsageError (exit 2) when missing or unreadable
    if args.format == "json":
        print(json.dumps({"audit": args.audit, **result.to_dict()}, indent=2))
    elif result.ok:
        last = result.last_hash or "-"
        print(f"{args.audit}: intact, {result.events} event{'s' if result.events != 1 else ''}, last hash {last}")
        print("note: removing events from the end is not detectable by the chain alone; compare the last hash "
              "with an anchor", file=sys.stderr)
    else:
        print(f"{args.audit}: BROKEN at position {result.first_bad} (recorded seq {result.seq}, event_id "
              f"{result.event_id}): {result.reason}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_REFUSED
