"""``erase`` with many subjects: seconds and peak memory as the subject list grows (issue 23.2).

    PYTHONPATH=. python benchmarks/erase_scale.py [--subjects 100000,1000000] [--rows 200000]

Each size runs in a fresh process against the same kind of Delta bronze (``--rows`` rows, one in ten of them a
subject), through the real command line (``lakehouse-phi erase --subjects FILE``). Subjects are streamed in chunks
into a temporary Delta table that is the source of one MERGE per table, so the peak stays near flat.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
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

KEYS = {"LAKEHOUSE_PHI_BENCH_PSEUDONYM": hashlib.sha256(b"bench/pseudonym").digest(),
        "LAKEHOUSE_PHI_BENCH_TRAIL": hashlib.sha256(b"bench/trail").digest()}
ENV = {k: base64.b64encode(v).decode() for k, v in KEYS.items()}
POLICY = """
version: 1
name: erase-scale
audit: {{key: trail}}
keys:
  pseudonym: {{provider: env, ref: LAKEHOUSE_PHI_BENCH_PSEUDONYM, version: 1}}
  trail: {{provider: env, ref: LAKEHOUSE_PHI_BENCH_TRAIL, version: 1}}
tables:
  patients:
    source: {{format: csv, path: landing/patients}}
    bronze: {bronze}
    record_key: [mrn]
    columns:
      mrn: {{type: string, required: true, phi: medical_record_number, ingest: {{strategy: hmac, key: pseudonym}}}}
      state: {{type: string}}
"""


def build(tmp: Path, rows: int) -> Path:
    import pyarrow as pa
    from deltalake import write_deltalake

    key = KEYS["LAKEHOUSE_PHI_BENCH_PSEUDONYM"]
    bronze = tmp / "bronze"
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        mrns = [f"MRN{start + i:07d}" for i in range(n)]
        write_deltalake(str(bronze), pa.table({
            "mrn": [hmac.new(key, m.encode(), hashlib.sha256).hexdigest() for m in mrns],
            "state": ["NY"] * n,
            "_key_versions": pa.array([[("mrn", 1)]] * n, pa.map_(pa.string(), pa.int32())),
            "_ingest_run_id": ["run-0"] * n,
            "_row_fingerprint": [hashlib.sha256(m.encode()).hexdigest() for m in mrns]}), mode="append")
    (tmp / "policy.yaml").write_text(POLICY.format(bronze=bronze))
    return bronze


def measure(tmp: str, subjects: str) -> dict:
    from lakehouse_phi.cli import main

    os.environ.update(ENV)
    t = time.perf_counter()
    code = main(["erase", f"{tmp}/policy.yaml", "--table", "patients", "--audit", f"{tmp}/audit.jsonl",
                 "--subjects", subjects, "--format", "json"])
    seconds = time.perf_counter() - t
    return {"exit": code, "seconds": round(seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def run_size(n: int, rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="lakehouse-phi-erase-scale-") as tmp:
        build(Path(tmp), rows)
        subjects = Path(tmp) / "subjects.txt"
        with subjects.open("w") as fh:
            for i in range(n):  # every tenth bronze row's MRN is a subject; the rest match nothing
                fh.write(f"MRN{i * 10:07d}\n")
        out = subprocess.run([sys.executable, __file__, "--measure", tmp, str(subjects)], check=True,
                             capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        erased = [json.loads(x) for x in (Path(tmp) / "audit.jsonl").read_text().splitlines()][-1]["details"]
        return {"subjects": n, "bronze_rows_deleted": erased["bronze_rows_deleted"], **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", default="100000,1000000")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        with open(os.devnull, "w") as sink:  # the command's own JSON goes nowhere; ours is the last line
            saved, sys.stdout = sys.stdout, sink
            try:
                result = measure(*args.measure)
            finally:
                sys.stdout = saved
        print(json.dumps(result))
        return 0
    print(f"{'subjects':>10} {'deleted':>8} {'seconds':>8} {'peak RSS MB':>12}")
    for n in (int(x) for x in args.subjects.split(",")):
        r = run_size(n, args.rows)
        print(f"{r['subjects']:>10,} {r['bronze_rows_deleted']:>8,} {r['seconds']:>8} {r['peak_rss_mb']:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
