"""``lakehouse-phi suggest SOURCE --table T [--format csv|json|parquet] [--out FILE]``: profile a source with Spark
and write a DRAFT policy for it (to review) that ``validate`` accepts.

Exit 0 with the draft written (stdout, or ``--out``), 2 for bad usage (a missing source, a header that looks like
data). The draft never holds a value of the source: evidence is shares and header names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lakehouse_phi.commands.result import CommandResult
from lakehouse_phi.errors import EXIT_OK, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="a file or folder of CSV (with a header row), JSON Lines or Parquet")
    p.add_argument("--table", required=True, help="the name of the table entry in the draft (tables.<T>)")
    p.add_argument("--format", dest="source_format", choices=("csv", "json", "parquet"),
                   help="the SOURCE's format (default: from the file extension, else csv); the draft is YAML")
    p.add_argument("--out", metavar="FILE", help="write the draft here (default: stdout)")
    p.add_argument("--sample-rows", type=int, default=10_000, metavar="N",
                   help="rows whose values the detectors read (default 10,000; counts and pattern fits use every row)")
    p.add_argument("--engine", default="auto", help="auto (pysail when installed), local, connect, sail, active")


def run(args: argparse.Namespace) -> CommandResult:
    """The draft goes to ``--out`` or, as the result's text, to stdout (``--format`` names the source's format
    here: the command has no JSON output)."""
    from lakehouse_phi.policy.load import parse_yaml, policy_from_data
    from lakehouse_phi.spark.session import get_session
    from lakehouse_phi.suggest.classify import classify
    from lakehouse_phi.suggest.profile import profile_source, source_format
    from lakehouse_phi.suggest.render import render_draft

    if not Path(args.source).exists() and "://" not in args.source:
        raise UsageError(f"SOURCE {args.source}: no such file or folder", place="SOURCE")
    if args.sample_rows < 1:
        raise UsageError("--sample-rows must be at least 1", place="--sample-rows")
    fmt = source_format(args.source, args.source_format)
    spark = get_session(args.engine, app="lakehouse-phi-suggest")
    profiles = profile_source(spark, args.source, fmt, args.sample_rows)
    suggestions = [classify(p) for p in profiles]
    rows = profiles[0].rows if profiles else 0
    sampled = max((len(p.sample) for p in profiles), default=0)
    text = render_draft(args.table, args.source, fmt, rows, min(sampled, args.sample_rows), suggestions)
    policy_from_data(parse_yaml(text, "draft"), "draft")  # the draft validates, or this is a bug: stop here
    for p in profiles:
        p.sample.clear()  # the sampled values go no further
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    n_phi = sum(1 for s in suggestions if s.phi)
    where = args.out or "stdout"
    note = (f"wrote a DRAFT policy to {where}: {n_phi} of {len(suggestions)} columns look like PHI. It is a guess "
            "from shares of values and header names: REVIEW every column, then `lakehouse-phi validate` it")
    data = {"table": args.table, "source_format": fmt, "out": args.out, "columns": len(suggestions),
            "phi_columns": n_phi}
    return CommandResult(data, "" if args.out else text, EXIT_OK, stderr=[note])
