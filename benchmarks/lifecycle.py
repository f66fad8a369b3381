"""Lifecycle commands on a local Delta table (delta-rs, no Spark): ``rekey`` of N rows written under key version 1
(encrypt, fpe and a derived hmac rewritten), ``erase`` of 100 subjects, ``purge`` of half the rows.

    PYTHONPATH=. python benchmarks/lifecycle.py [ROWS]

Prints seconds and rows per second for each step; the table is built with the real engine (``TablePlan``).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lakehouse_phi.keys.providers import Fetchers  # noqa: E402 - after the sys.path line
from lakehouse_phi.lifecycle.erase import erase  # noqa: E402 - after the sys.path line
from lakehouse_phi.lifecycle.purge import purge  # noqa: E402 - after the sys.path line
from lakehouse_phi.lifecycle.rekey import rekey  # noqa: E402 - after the sys.path line
from lakehouse_phi.lifecycle.tables import Context, resolve_targets  # noqa: E402 - after the sys.path line
from lakehouse_phi.policy import load_policy  # noqa: E402 - after the sys.path line
from tests.unit.lifecycle_helpers import ENV, masked, policy_text, rows, write  # noqa: E402 - after the sys.path line


def main(n: int) -> None:
    os.environ.update(ENV)
    with tempfile.TemporaryDirectory() as tmp:
        bronze = Path(tmp) / "bronze"
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(policy_text(bronze, rotated=("token", "dek", "fpe-key")))
        old, new = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
        half = n // 2
        t = time.perf_counter()
        write(bronze, masked(policy, rows(half), 1, old, "run-a"), "run-a")
        write(bronze, masked(policy, rows(n - half, start=half), 1, new, "run-b"), "run-b")
        print(f"build {n:,} rows: {time.perf_counter() - t:.1f} s")
        loaded = load_policy(policy)

        def ctx() -> Context:
            spec = loaded.policy.tables["patients"]
            return Context(loaded, "patients", resolve_targets(spec, str(bronze), None, str(Path(tmp) / "a.jsonl")),
                           actor="bench", fetchers=Fetchers(environ=ENV))

        for label, fn in (("rekey", lambda: rekey(ctx())),
                          ("rekey again (nothing stale)", lambda: rekey(ctx())),
                          ("erase 100 subjects", lambda: erase(ctx(), [f"MRN{i:07d}" for i in range(0, n, n // 100)])),
                          ("purge", lambda: purge(ctx(), dt.date(2024, 3, 1)))):
            t = time.perf_counter()
            result = fn()
            secs = time.perf_counter() - t
            extra = getattr(result, "bronze_rows_rewritten", None)
            extra = extra if extra is not None else getattr(result, "bronze_rows_deleted", "")
            print(f"{label}: {secs:.2f} s ({n / secs:,.0f} rows/s scanned; bronze rows changed: {extra})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
