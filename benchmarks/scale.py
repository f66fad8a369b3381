"""The ingest job at scale on one machine: rows/s and peak driver memory as the run grows (issue 21.4).

    PYTHONPATH=. python benchmarks/scale.py [--rows 1000000,3000000] [--table claims] [--engine sail] [--json]
    LAKEHOUSE_PHI_BENCH_10M=1 PYTHONPATH=. python benchmarks/scale.py      # adds the 10,000,000-row run

Each size runs in a fresh process: the landing data is generated in files of :data:`PART_ROWS` rows first (by
another process, so its memory and time are not counted; its seconds are reported apart as ``landing_s``), then
the real ``run_ingest`` writes a Delta bronze, quarantine and audit trail through delta-rs, and the process reports
its wall time and peak resident memory (``ru_maxrss`` of the process, which hosts the driver and, for pysail, the
engine; for classic Spark the driver JVM is a child process, reported apart from its ``VmHWM``), with the
machine's load averages before and after. With the masked batch streamed to delta-rs
(:mod:`lakehouse_phi.storage.spool`) the peak stays flat as rows grow; with a whole-run collect it grew with the
rows, and on pysail it grew too until the landing files were read a core's share at a time, its row groups made
smaller and the hash buckets split by the driver (issue 21.4, README "Scale").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_ROWS = "1000000,3000000"
PART_ROWS = 250_000


def land(root: Path, table: str, rows: int) -> Path:
    """``rows`` synthetic rows of ``table`` written as landing files of :data:`PART_ROWS` rows each."""
    from lakehouse_phi import synth

    def parts():
        for i, start in enumerate(range(0, rows, PART_ROWS)):
            yield synth.generate(table, min(PART_ROWS, rows - start), seed=1000 + i, malformed_rate=0.01)

    return synth.write_tables(root, {table: parts()})[table]


def measure(landing: str, table: str, engine: str, workdir: str) -> dict:
    """One ingest run in this process; returns seconds, counts and peak memory."""
    from bench_data import demo_env, example_policy

    from lakehouse_phi.keys.providers import Fetchers
    from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
    from lakehouse_phi.spark.session import get_session

    spark = get_session(engine)
    env, overrides = demo_env()
    t = time.perf_counter()
    result = run_ingest(spark, example_policy(), table, IngestOptions(
        input_path=landing, bronze=f"{workdir}/bronze", audit=f"{workdir}/audit", table_format="delta",
        key_overrides=overrides, fetchers=Fetchers(environ=env), allow_insecure=True))
    seconds = time.perf_counter() - t
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"rows_read": result.rows_read, "rows_written": result.rows_written, "seconds": round(seconds, 2),
            "rows_per_s": round(result.rows_read / seconds), "peak_rss_mb": round(me.ru_maxrss / 1024),
            "peak_child_rss_mb": _children_peak_mb()}


def _children_peak_mb() -> int:
    """Peak resident memory (``VmHWM``) of this process's live children: the classic driver JVM."""
    peak = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            if ppid != os.getpid():
                continue
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) // 1024)
        except (OSError, ValueError, IndexError):
            continue
    return peak


def run_size(rows: int, table: str, engine: str, say) -> dict:
    with tempfile.TemporaryDirectory(prefix="lakehouse-phi-scale-") as tmp:
        say(f"{rows:,} rows: landing")
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--land", tmp, "--table", table, "--rows", str(rows)], check=True)
        landing_s = round(time.perf_counter() - t, 2)
        landing = next(Path(tmp).glob(f"landing/{table}"))
        say(f"{rows:,} rows: ingest ({engine})")
        load_before = _load()
        out = subprocess.run([sys.executable, __file__, "--measure", str(landing), "--table", table,
                              "--engine", engine, "--workdir", tmp], check=True, capture_output=True, text=True)
        return {"rows": rows, **json.loads(out.stdout.strip().splitlines()[-1]), "landing_s": landing_s,
                "files": len(list(landing.iterdir())), "load_before": load_before, "load_after": _load()}


def _load() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (what ``uptime`` prints)."""
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated sizes (default {DEFAULT_ROWS}; "
                                                             "LAKEHOUSE_PHI_BENCH_10M=1 adds 10,000,000)")
    parser.add_argument("--table", default="claims", help="the example policy's table (default claims)")
    parser.add_argument("--engine", default="sail", help="sail (default) or local (classic Spark)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--land", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.land:
        land(Path(args.land), args.table, int(args.rows))
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, args.table, args.engine, args.workdir)))
        return 0
    sizes = [int(x) for x in args.rows.split(",") if x]
    if os.environ.get("LAKEHOUSE_PHI_BENCH_10M") and 10_000_000 not in sizes:
        sizes.append(10_000_000)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = [run_size(n, args.table, args.engine, say) for n in sizes]
    if args.json:
        print(json.dumps({"table": args.table, "engine": args.engine, "runs": results}, indent=2))
    else:
        print(f"{'rows':>12} {'seconds':>9} {'rows/s':>9} {'peak RSS MB':>12} {'child RSS MB':>13} "
              f"{'landing s':>10} {'load':>6}")
        for r in results:
            print(f"{r['rows']:>12,} {r['seconds']:>9} {r['rows_per_s']:>9,} {r['peak_rss_mb']:>12,} "
                  f"{r['peak_child_rss_mb']:>13,} {r['landing_s']:>10} {r['load_after'][0]:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
