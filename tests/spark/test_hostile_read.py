"""Issue 16 items 1, 2 and 10 on real engines: column shifts on classic Spark's permissive CSV reader, a second
file with a reordered header, names and file paths that carry PHI, skipped ``_``/``.`` files.

Every check scans what the job wrote (values read back, and the bytes of uncompressed Parquet files, Delta logs
and the audit trail) and what it printed for sentinel values that only hostile rows, headers and file names hold.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakehouse_phi.deltars import read_delta
from lakehouse_phi.engine.names import NameHasher
from lakehouse_phi.engine.plan import ERRORS_COL, SOURCE_FILE_COL
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from lakehouse_phi.spark.read import read_landing

SENT = "zyxwvu"          # in shifted values, an undeclared header, undeclared values and a file name
SSN = "078-05-1120"      # in a file name and an undeclared header
ENV = {"K": base64.b64encode(bytes(range(32))).decode()}

HEADER = f"mrn,phone,email,note,address,{SENT}_ssn_{SSN}"
GOOD1 = "MRN0000001,555-123-4567,ann@x.org,ok,1 Main St,{s}a"
BAD_ROWS = [
    f"MRN0000002,{SENT}.bob@example.org,hi,2 Elm St,{SENT}b",                   # a field missing: shifts left
    f'MRN0000003,"555-000-1111,{SENT}.c@example.org,n,3 Oak St,{SENT}c',         # unterminated quote
    f'MRN0000004,555-222-3333,"{SENT}.multi\nline{SENT}@example.org",z,4 Pine St,{SENT}d',  # embedded newline
    f"MRN0000005,555-222-3334,e@x.org,z,5 Ash St,{SENT}e,{SENT}EXTRA",           # an extra field
]
GOOD6 = "MRN0000006,555-222-3335,f@x.org,last,6 Fir St,{s}f"
# a second file, named after a patient, whose header is in another order: values must land by name
FILE2 = f"{SENT} Smith {SSN}.csv"
HEADER2 = f"email,mrn,address,{SENT}_ssn_{SSN},note,phone"
ROW2 = "g@x.org,MRN0000007,7 Yew St,{s}g,n7,555-999-0000"


def _policy(source_file: str = "hash") -> LoadedPolicy:
    data = {"version": 1, "name": "hostile", "keys": {"k": {"provider": "env", "ref": "K"}},
            "tables": {"people": {
                "source": {"format": "csv", "path": "landing", "options": {"header": "true"}},
                "bronze": "b", "record_key": ["mrn"], "on_unclassified": "drop", "source_file": source_file,
                "phi_scan": {"sample_rows": 0},
                "columns": {
                    "mrn": {"type": "string", "required": True, "pattern": r"^MRN\d{7}$",
                            "phi": "medical_record_number", "ingest": {"strategy": "hmac", "key": "k"}},
                    "phone": {"type": "string", "phi": "phone", "pattern": r"^\d{3}-\d{3}-\d{4}$",
                              "ingest": {"strategy": "keep", "justification": "callbacks"}},
                    "email": {"type": "string", "phi": "email",
                              "ingest": {"strategy": "partial", "keep_first": 1, "keep_domain": True}},
                    "note": {"type": "string"},  # non-PHI, kept raw, no pattern: what a shift would expose
                    "address": {"type": "string", "phi": "address", "ingest": {"strategy": "redact"}}}}}}
    return LoadedPolicy(policy=policy_from_data(data), path="hostile.yaml", sha256="0" * 64)  # type: ignore[call-arg]


def _landing(root: Path, bad: bool = True) -> Path:
    land = root / "landing"
    land.mkdir(parents=True)
    rows = [GOOD1.format(s=SENT), *(BAD_ROWS if bad else []), GOOD6.format(s=SENT)]
    (land / "part-00000.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    (land / FILE2).write_text("\n".join([HEADER2, ROW2.format(s=SENT)]) + "\n")
    (land / "_SUCCESS").write_text("")
    (land / f".{SENT}.csv.crc").write_text(f"{SENT}\n")
    return land


def _options(root: Path, fmt: str, audit: str) -> IngestOptions:
    return IngestOptions(input_path=str(root / "landing"), bronze=str(root / "bronze"),
                         quarantine=str(root / "quarantine"), audit=str(root / audit), table_format=fmt,
                         fetchers=Fetchers(environ=ENV), allow_insecure=True)


def _rows(path: Path, fmt: str) -> list[dict]:
    if not path.exists():
        return []
    if fmt == "delta":
        return read_delta(path).to_pylist()
    return [r for f in sorted(path.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _bytes_hold(root: Path, needle: str) -> list[str]:
    hits = []
    for f in root.rglob("*"):
        if f.is_file() and "landing" not in f.parts and needle.encode() in f.read_bytes():
            hits.append(str(f.relative_to(root)))
    return hits


def _no_sentinel_anywhere(root: Path, text: str) -> None:
    for needle in (SENT, SSN, SSN.replace("-", "")):
        assert needle not in text, needle
        assert _bytes_hold(root, needle) == [], needle


def test_classic_spark_quarantines_shifted_rows_maps_headers_by_name_and_hashes_names(spark, tmp_path, capfd):
    _landing(tmp_path)
    before = spark.conf.get("spark.sql.parquet.compression.codec")
    spark.conf.set("spark.sql.parquet.compression.codec", "uncompressed")  # so the byte scan sees every value
    try:
        result = run_ingest(spark, _policy(), "people", _options(tmp_path, "parquet", "audit.jsonl"))
    finally:
        spark.conf.set("spark.sql.parquet.compression.codec", before)
    bronze, quarantine = _rows(tmp_path / "bronze", "parquet"), _rows(tmp_path / "quarantine", "parquet")
    # every input row is in bronze or quarantine: 3 good rows, 4 hostile ones (the newline splits one into two)
    assert result.rows_written == len(bronze) == 3 and result.rows_quarantined == len(quarantine) == 5
    assert sorted(r["phone"] for r in bronze) == ["555-123-4567", "555-222-3335", "555-999-0000"]
    assert sorted(r["note"] for r in bronze) == ["last", "n7", "ok"]  # file 2's values landed by name
    for r in quarantine:  # a row that did not parse withholds every value
        assert [e["rule"] for e in r[ERRORS_COL]] == ["malformed_row"]
        assert all(r[c] is None for c in ("mrn", "phone", "email", "note", "address"))
    assert result.quarantine_reasons == {"_row:malformed_row": 5}
    assert all(len(r[SOURCE_FILE_COL]) == 32 for r in bronze + quarantine)
    hasher = NameHasher(base64.b64decode(ENV["K"]))  # the fingerprint key: the same hash as in file labels
    land = tmp_path / "landing"
    assert {r[SOURCE_FILE_COL] for r in bronze} == {hasher.file_hash(f"file:{land / n}")
                                                    for n in ("part-00000.csv", FILE2)}
    details = result.event["details"]
    assert details["source_files"] == {"read": 2, "skipped": 2}
    assert len(details["dropped_columns"]) == 1 and details["dropped_columns"][0].startswith("#6 h:")
    out = capfd.readouterr()
    _no_sentinel_anywhere(tmp_path, out.out + out.err + json.dumps(result.event))


def test_classic_spark_flags_a_missing_field_whatever_the_projection(spark, tmp_path, capsys):
    """Spark's parser counts only the fields a projection asks for: the reader's guard keeps every column in the
    scan, so selecting one column still flags the short row."""
    _landing(tmp_path)
    hasher = NameHasher(base64.b64decode(ENV["K"]))
    for declared in ((), ("mrn", "phone", "email", "note", "address")):
        landing = read_landing(spark, "csv", str(tmp_path / "landing"), {"header": "true"}, declared=declared,
                               names=hasher if declared else None)
        flags = landing.df.select("mrn", "_corrupt_record").collect()
        assert sum(r[1] is not None for r in flags) == 5 and landing.malformed_rows == "quarantine"
        assert landing.columns[-1] == f"{SENT}_ssn_{SSN}"  # the names, for the drift check (never printed)
    # with the declared columns and a hasher given, neither a header name (an undeclared one may be PHI) nor a
    # file name reaches the Spark plan, though the two files have different headers
    capsys.readouterr()
    landing.df.explain(True)
    plan = capsys.readouterr().out
    assert "_c5" in plan and "FileScan" in plan and SENT not in plan and SSN not in plan
    assert sorted(r["phone"] for r in landing.df.where("_corrupt_record IS NULL").collect()) == [
        "555-123-4567", "555-222-3335", "555-999-0000"]


def test_classic_spark_refuses_a_file_lacking_a_declared_column_naming_it_by_position(spark, tmp_path, capfd):
    land = _landing(tmp_path, bad=False)
    (land / f"{SENT}-{SSN}-2.csv").write_text("mrn,phone,email,address\nMRN0000009,555-000-0000,a@b.c,x\n")
    with pytest.raises(JobRefused) as info:
        run_ingest(spark, _policy(), "people", _options(tmp_path, "parquet", "audit.jsonl"))
    message = str(info.value)
    assert "file #3 (h:" in message and "lacks declared column(s) note" in message
    assert not (tmp_path / "bronze").exists() and not (tmp_path / "quarantine").exists()
    out = capfd.readouterr()
    _no_sentinel_anywhere(tmp_path, out.out + out.err + message)


def test_source_file_path_when_the_policy_says_paths_are_safe(spark, tmp_path):
    _landing(tmp_path, bad=False)
    run_ingest(spark, _policy("path"), "people", _options(tmp_path, "parquet", "audit.jsonl"))
    paths = {r[SOURCE_FILE_COL] for r in _rows(tmp_path / "bronze", "parquet")}
    assert len(paths) == 2 and all(p.startswith("file:") and p.endswith(".csv") for p in paths)


def test_pysail_refuses_a_file_that_does_not_parse_and_maps_good_files_by_name(sail, tmp_path, capfd):
    _landing(tmp_path)
    with pytest.raises(JobRefused) as info:
        run_ingest(sail, _policy(), "people", _options(tmp_path, "delta", "audit"))
    assert "file #1 (h:" in str(info.value) and "does not parse" in str(info.value)  # part-00000 sorts first
    assert not (tmp_path / "bronze").exists() and not (tmp_path / "quarantine").exists()
    out = capfd.readouterr()
    _no_sentinel_anywhere(tmp_path, out.out + out.err + str(info.value))

    clean = tmp_path / "clean"
    _landing(clean, bad=False)
    result = run_ingest(sail, _policy(), "people", _options(clean, "delta", "audit"))
    bronze = _rows(clean / "bronze", "delta")
    assert sorted(r["phone"] for r in bronze) == ["555-123-4567", "555-222-3335", "555-999-0000"]
    assert sorted(r["note"] for r in bronze) == ["last", "n7", "ok"]
    assert all(len(r[SOURCE_FILE_COL]) == 32 for r in bronze)
    assert result.event["details"]["source_files"] == {"read": 2, "skipped": 2}
    out = capfd.readouterr()
    _no_sentinel_anywhere(clean, out.out + out.err + json.dumps(result.event))
