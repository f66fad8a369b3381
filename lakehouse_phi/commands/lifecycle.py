"""``lakehouse-phi rekey|erase|purge POLICY --table T [--bronze …] [--quarantine …] [--audit …]``.

One module for the three lifecycle commands (they share their options); the command is the parser's own name.
Exit 0 done, 1 refused (a key cannot be resolved, an hmac output cannot be re-keyed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult, lines, sorted_keys
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, UsageError

if TYPE_CHECKING:
    from lakehouse_phi.lifecycle.tables import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    command = p.prog.split()[-1]
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--table", required=True, help="the entry under tables:")
    p.add_argument("--bronze", help="bronze Delta table path or URI (default: the policy's)")
    p.add_argument("--quarantine", help="quarantine Delta table path (default: the policy's, or <bronze>_quarantine)")
    p.add_argument("--audit", help="audit trail: a .jsonl file or a Delta path (default: beside bronze)")
    p.add_argument("--key", action="append", default=[], metavar="NAME=PROVIDER:REF",
                   help="use another provider for a key's active version this run (version kept)")
    p.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
    if command == "erase":
        p.add_argument("--subjects", required=True, metavar="FILE",
                       help="raw record-key values, one per line; - reads stdin (never pass them as arguments)")
        p.add_argument("--by", metavar="COLUMN",
                       help="the column that names the subject (default: the record key), matched by its hmac "
                            "pseudonym or, when kept raw, by value; e.g. --by mrn on encounters or claims")
        p.add_argument("--vacuum-hours", type=int, metavar="H",
                       help="then VACUUM both tables retaining H hours of history (0 drops the erased rows' files "
                            "now; readers of older versions lose them)")
    elif command == "purge":
        p.add_argument("--as-of", metavar="DATE", help="YYYY-MM-DD (default: today, UTC)")
    elif command == "rekey":
        p.add_argument("--allow-partial", action="store_true",
                       help="re-key what can be, leaving hmac/date_shift outputs that cannot be recomputed at their "
                            "old version (named in the report)")
    add_format(p)


def _context(args: argparse.Namespace) -> Context:
    from lakehouse_phi.audit.sealing import session_actor
    from lakehouse_phi.keys.overrides import parse_key_overrides
    from lakehouse_phi.lifecycle.tables import Context, resolve_targets
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.policy.advice import warn_about

    loaded = load_policy(args.policy)
    warn_about(loaded.policy)  # an unsealed trail, a short retention: said by every command that writes the trail
    if args.table not in loaded.policy.tables:
        raise UsageError(f"--table {args.table!r}: not under tables: (declared: {', '.join(loaded.policy.tables)})")
    overrides = parse_key_overrides(args.key, loaded.policy)
    spec = loaded.policy.tables[args.table]
    audit = args.audit or (loaded.policy.audit.location if loaded.policy.audit and not args.bronze else None)
    return Context(loaded, args.table, resolve_targets(spec, args.bronze, args.quarantine, audit),
                   actor=session_actor(None), key_overrides=overrides)


def run(args: argparse.Namespace) -> CommandResult:
    ctx = _context(args)
    result: Any
    if args.command == "erase":
        from lakehouse_phi.lifecycle.erase import erase

        if args.subjects == "-":
            result = erase(ctx, sys.stdin, dry_run=args.dry_run, vacuum_hours=args.vacuum_hours, by=args.by)
        else:
            try:
                fh = open(args.subjects, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--subjects {args.subjects}: cannot read it ({exc.strerror})") from None
            with fh:
                result = erase(ctx, fh, dry_run=args.dry_run, vacuum_hours=args.vacuum_hours, by=args.by)
        code = EXIT_OK
        said = [f"{ctx.table}: {'would delete' if args.dry_run else 'deleted'} {result.bronze_rows_deleted} bronze "
                f"and {result.quarantine_rows_deleted} quarantine rows of {result.subjects} subject(s), matched by "
                f"{result.pseudonym_column}" + (f" under key '{result.key}' versions {result.key_versions}"
                                                 if result.key else " (kept raw)")]
        if result.vacuumed_files is not None:
            said.append(f"vacuumed: {result.vacuumed_files} old file(s) removed")
        else:
            said.append("the erased rows stay in older data files until vacuumed; run (after the retention "
                        "period, or with --vacuum-hours):")
            said += [f"  {s}" for s in result.vacuum]
    elif args.command == "purge":
        from lakehouse_phi.lifecycle.purge import purge

        try:
            as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
        except ValueError:
            raise UsageError(f"--as-of {args.as_of!r}: write a date as YYYY-MM-DD") from None
        result = purge(ctx, as_of, dry_run=args.dry_run)
        code = EXIT_OK
        said = [f"{ctx.table}: {'would delete' if args.dry_run else 'deleted'} {result.bronze_rows_deleted} bronze "
                f"and {result.quarantine_rows_deleted} quarantine rows ingested before {result.cutoff} "
                f"(retention {result.retention_days} days as of {result.as_of})"]
        if result.rows_without_timestamp:
            said.append(f"kept {result.rows_without_timestamp} row(s) without an ingest timestamp (age unknown)")
        said += [f"  {s}" for s in result.vacuum]
    else:
        from lakehouse_phi.lifecycle.rekey import rekey

        result = rekey(ctx, dry_run=args.dry_run, allow_partial=args.allow_partial)
        code = EXIT_OK if result.ok else EXIT_REFUSED
        said = result.lines()
    data = sorted_keys({"command": args.command, **result.to_dict()})
    if args.format == "json" or code == EXIT_OK:
        return CommandResult(data, lines(*said), code)
    return CommandResult(data, exit_code=code, stderr=said)  # refused: what was done and what was not, on stderr
