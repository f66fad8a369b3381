"""``lakehouse-phi suggest`` as a user runs it (a subprocess, pysail): on sources it has never seen (CSV with odd
headers, JSON Lines, Parquet with typed columns), each holding sentinel PHI, the draft validates, suggests the right
category for each column, a conservative strategy, a pattern where every value fits, says it is a draft, and holds
no value of the source; a header that is itself data is refused without being shown."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.helpers import ROOT

FIRST = ["Maria", "James", "Olivia", "Robert", "Linda", "Michael", "Sofia", "Daniel"]
LAST = ["Garcia", "Smith", "Johnson", "Brown", "Davis", "Miller", "Wilson"]


def _rows(n: int, seed: int) -> list[dict]:
    """Sentinel PHI: every value is generated, and every one is searched for in the output."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append({
            "soc_sec_no": f"{rnd.randint(100, 665)}-{rnd.randint(10, 99)}-{rnd.randint(1000, 9999)}",
            "chart": f"MR{rnd.randint(0, 99_999_999):08d}",
            "given": rnd.choice(FIRST),
            "pt_phone": f"({rnd.randint(201, 989)}) {rnd.randint(201, 989)}-{rnd.randint(1000, 9999)}",
            "contact_email": f"{rnd.choice(FIRST).lower()}{i}@sentinel-mail.example",
            "DOB": f"{rnd.randint(1930, 2005)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            "zip_code": f"{rnd.randint(10000, 99999)}",
            "triage_note": (f"Pt {rnd.choice(FIRST)} {rnd.choice(LAST)} seen 03/{rnd.randint(10, 28)}/2024; call "
                            f"({rnd.randint(201, 989)}) 555-{rnd.randint(1000, 9999)} re labs, SSN "
                            f"{rnd.randint(100, 665)}-{rnd.randint(10, 99)}-{rnd.randint(1000, 9999)}"),
            "charge": f"{rnd.randint(1, 999)}.{rnd.randint(10, 99)}",
            "state": rnd.choice(["NY", "NJ", "CA", "TX"]),
            "visit_count": str(rnd.randint(1, 40)),
            "client_ip": f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        })
    return out


EXPECTED = {"soc_sec_no": "ssn", "chart": "medical_record_number", "given": "name", "pt_phone": "phone",
            "contact_email": "email", "DOB": "date_of_birth", "zip_code": "zip", "triage_note": "free_text",
            "charge": None, "state": None, "visit_count": None, "client_ip": "ip"}


def suggest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse_phi", "suggest", *args, "--engine", "sail"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable})


def validate(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse_phi", "validate", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _values(rows: list[dict]) -> set[str]:
    """Every sentinel value, and every word of at least 4 characters of the notes."""
    out = set()
    for row in rows:
        for v in row.values():
            out.add(v)
            out.update(w.strip(";,()") for w in v.split() if len(w.strip(";,()")) >= 4)
    return {v for v in out if (len(v) >= 4 and not v.isalpha()) or v in FIRST or v in LAST}


def _check(text: str, rows: list[dict], expected: dict[str, str | None], stderr: str) -> dict:
    leaked = sorted(v for v in _values(rows) if v in text or v in stderr)
    assert not leaked, f"{len(leaked)} source values in the draft"
    assert "DRAFT" in text and "REVIEW IT BEFORE USE" in text and "REVIEW every column" in stderr
    doc = yaml.safe_load(text)
    cols = next(iter(doc["tables"].values()))["columns"]
    assert {c: cols[c].get("phi") for c in cols} == expected
    for name, spec in cols.items():  # conservative: nothing PHI is kept as it is
        if spec.get("phi"):
            assert spec["ingest"]["strategy"] != "keep", name
    assert doc["audit"]["key"] == "audit-trail"  # safe by default: the draft seals its trail
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if line.startswith("      ")}
    for name in cols:  # one evidence comment per column, shares only
        assert "  # " in lines[name], name
    return cols


def test_a_csv_it_has_never_seen(tmp_path):
    rows = _rows(400, seed=11)
    src = tmp_path / "landing" / "visits.csv"
    src.parent.mkdir()
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "draft.yaml"
    done = suggest(str(src), "--table", "visits", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert validate(out).returncode == 0
    cols = _check(text, rows, EXPECTED, done.stderr)
    assert cols["soc_sec_no"] == {"type": "string", "pattern": r"^\d{3}-?\d{2}-?\d{4}$", "phi": "ssn",
                                  "ingest": {"strategy": "suppress"}}
    assert cols["chart"]["pattern"] == r"^[A-Z]{2}\d{8}$" and cols["chart"]["ingest"] == {
        "strategy": "hmac", "key": "pseudonym"}
    assert cols["DOB"]["type"] == "date" and cols["DOB"]["ingest"] == {"strategy": "generalize_date", "to": "year"}
    assert cols["zip_code"]["ingest"] == {"strategy": "zip3"} and cols["triage_note"]["ingest"]["strategy"] == \
        "scrub_text"
    assert cols["charge"] == {"type": "double"} and cols["visit_count"] == {"type": "int"}
    assert re.search(r"soc_sec_no: .*# 100% match ssn; header 'soc_sec_no'", text)
    # to stdout without --out
    done = suggest(str(src), "--table", "visits", "--format", "csv")
    assert done.returncode == 0 and done.stdout == text


def test_json_lines_and_parquet_with_their_own_types(tmp_path):
    rows = _rows(300, seed=12)
    (tmp_path / "json").mkdir()
    with (tmp_path / "json" / "part-0.json").open("w") as f:
        for r in rows:
            f.write(json.dumps({**r, "visit_count": int(r["visit_count"])}) + "\n")
    done = suggest(str(tmp_path / "json"), "--table", "visits", "--format", "json", "--out", str(tmp_path / "j.yaml"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert validate(tmp_path / "j.yaml").returncode == 0
    cols = _check((tmp_path / "j.yaml").read_text(), rows, EXPECTED, done.stderr)
    assert cols["visit_count"]["type"] == "long"

    table = pa.table({**{k: [r[k] for r in rows] for k in rows[0] if k != "DOB"},
                      "DOB": [dt.date.fromisoformat(r["DOB"]) for r in rows]})
    pq.write_table(table, tmp_path / "visits.parquet")
    done = suggest(str(tmp_path / "visits.parquet"), "--table", "visits", "--out", str(tmp_path / "p.yaml"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert validate(tmp_path / "p.yaml").returncode == 0
    cols = _check((tmp_path / "p.yaml").read_text(), rows, EXPECTED, done.stderr)
    assert cols["DOB"]["type"] == "date" and "parquet" in (tmp_path / "p.yaml").read_text()


@pytest.mark.parametrize("header", ["123-45-6789", "jane.doe@sentinel-mail.example"])
def test_a_header_that_is_data_is_refused_and_not_shown(tmp_path, header):
    src = tmp_path / "noheader.csv"
    src.write_text(f"id,{header}\n1,x\n")
    done = suggest(str(src), "--table", "t", "--out", str(tmp_path / "d.yaml"))
    assert done.returncode == 2 and "column #2's header looks like data" in done.stderr
    assert header not in done.stderr + done.stdout and not (tmp_path / "d.yaml").exists()
