"""Incremental bronze on real Delta (pysail reads, delta-rs writes and reads back): corrections land, re-delivery
is a no-op, ``latest`` keeps one row per key, refusals write no bronze, every commit has its audit events, paths
with spaces and quotes work, and two concurrent first runs never duplicate a row."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from chispa import assert_df_equality

from lakehouse_phi import synth
from lakehouse_phi.deltars import read_delta
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark import job as job_mod
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from tests.helpers import EXAMPLE, demo_env
from tests.spark.test_ingest import cli

DeltaTable = pytest.importorskip("deltalake").DeltaTable  # the [local] extra

ENV, OVERRIDES = demo_env()
MARKERS = ("_ingest_run_id", "_ingested_at", "_quarantined_at", "_key_versions")  # (a map cannot be sorted)


def opts(tmp: Path, landing: Path, **kw) -> IngestOptions:
    base = dict(input_path=str(landing), bronze=str(tmp / "bronze"), quarantine=str(tmp / "quarantine"),
                audit=str(tmp / "audit.jsonl"), key_overrides=OVERRIDES, fetchers=Fetchers(environ=ENV),
                allow_insecure=True, table_format="delta")
    return IngestOptions(**{**base, **kw})


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rd(path: Path) -> pa.Table:
    """A Delta table read back by delta-rs, with plain Arrow types."""
    table = read_delta(path)
    return table.cast(pa.schema([_plain(f) for f in table.schema]))


def frame(session, path: Path, drop=MARKERS):
    """A Delta table read back by delta-rs, as a classic Spark frame for chispa (run markers dropped)."""
    table = rd(path)
    return session.createDataFrame(table.drop_columns([c for c in drop if c in table.column_names]))


def _plain(f: pa.Field) -> pa.Field:
    """delta-rs reads strings as string_view, which PySpark cannot convert."""
    t = f.type
    if t == pa.string_view() or t == pa.large_string():
        return pa.field(f.name, pa.string())
    if pa.types.is_map(t):
        return pa.field(f.name, pa.map_(pa.string(), t.item_type))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or getattr(pa.types, "is_list_view", lambda _: False)(t):
        inner = t.value_type
        if pa.types.is_struct(inner):
            inner = pa.struct([_plain(x) for x in inner])
        return pa.field(f.name, pa.list_(inner))
    return f


@pytest.fixture(scope="module")
def loaded():
    return load_policy(EXAMPLE)


# --------------------------------------------------------------------------------------------------- history
def test_history_lands_corrections_and_ignores_redelivery(spark, sail, loaded, tmp_path):
    patients = synth.generate("patients", 1200, seed=31, malformed_rate=0.05)
    synth.write_tables(tmp_path / "a", {"patients": patients})
    landing = tmp_path / "a" / "landing" / "patients"
    first = run_ingest(sail, loaded, "patients", opts(tmp_path, landing))
    assert first.rows_inserted == first.rows_written == 1200 - first.rows_quarantined
    bronze_1 = frame(spark, tmp_path / "bronze")
    quarantine_1 = frame(spark, tmp_path / "quarantine")

    again = run_ingest(sail, loaded, "patients", opts(tmp_path, landing))        # the same extract again
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, again.rows_written)
    assert_df_equality(frame(spark, tmp_path / "bronze"), bronze_1, ignore_row_order=True)
    assert_df_equality(frame(spark, tmp_path / "quarantine"), quarantine_1, ignore_row_order=True)

    # one patient moves: zip and address change, everything else is the same extract
    valid_rows = [i for i in range(1200) if i not in set(synth.generate_table("patients", 1200, 31, 0.05)
                                                         .malformed_rows())]
    moved = valid_rows[7]
    corrected = synth.inject(synth.inject(patients, "zip", "10001", [moved]), "address", "1 New Street", [moved])
    synth.write_tables(tmp_path / "b", {"patients": corrected})
    third = run_ingest(sail, loaded, "patients", opts(tmp_path, tmp_path / "b" / "landing" / "patients"))
    assert (third.rows_inserted, third.rows_updated) == (1, 0)
    assert third.rows_read == third.rows_inserted + third.rows_updated + third.rows_unchanged + third.rows_quarantined
    bronze = rd(tmp_path / "bronze")
    assert bronze.num_rows == first.rows_inserted + 1
    mrn_token = bronze.filter(pc.equal(bronze.column("_ingest_run_id"), third.run_id)).column("mrn")[0].as_py()
    versions = bronze.filter(pc.equal(bronze.column("mrn"), mrn_token))
    assert sorted(versions.column("_ingest_run_id").to_pylist()) == sorted([first.run_id, third.run_id])
    assert len(set(versions.column("_row_fingerprint").to_pylist())) == 2
    assert rd(tmp_path / "quarantine").num_rows == first.rows_quarantined  # never doubled

    # the audit events count every row once, and each bronze commit names its run
    for ev in (e for e in events(tmp_path / "audit.jsonl") if e["event"] == "ingest"):
        d = ev["details"]
        assert ev["rows_read"] == d["rows_inserted"] + d["rows_updated"] + d["rows_unchanged"] + ev["rows_quarantined"]
    history = DeltaTable(str(tmp_path / "bronze")).history()
    assert {h.get("userMetadata") for h in history if h["operation"] != "SET TBLPROPERTIES"} >= {
        first.run_id, third.run_id}
    assert all(v == {"mrn": 1, "ssn": 3, "ssn_token": 1, "last_name": 1, "member_id": 2, "_row_fingerprint": 1}
               for v in (dict(m) for m in bronze.column("_key_versions").to_pylist()))


# ---------------------------------------------------------------------------------------------------- latest
LATEST_POLICY = """
version: 1
name: latest-test
keys:
  pseudonym: {provider: env, ref: LAKEHOUSE_PHI_PSEUDONYM_KEY, version: 1}
tables:
  members:
    source: {format: csv, path: landing/members, options: {header: "true"}}
    bronze: main.bronze.members
    record_key: [mrn]
    bronze_mode: latest
    SEQUENCE
    columns:
      mrn:        {type: string, required: true, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
      updated_at: {type: timestamp}
      plan:       {type: string}
"""


def _latest(tmp: Path, sequence_by: str | None):
    text = LATEST_POLICY.replace("SEQUENCE", f"sequence_by: {sequence_by}" if sequence_by else "")
    (tmp / "p.yaml").write_text(text)
    return load_policy(tmp / "p.yaml")


def _land(dir_: Path, name: str, rows: list[tuple[str, str, str]]) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text("mrn,updated_at,plan\n" + "".join(",".join(r) + "\n" for r in rows))
    return dir_


def _plans(path: Path) -> dict[str, str]:
    t = rd(path)
    assert len(set(t.column("mrn").to_pylist())) == t.num_rows  # one row per record key
    return sorted(t.column("plan").to_pylist())


def test_latest_keeps_one_row_per_key_newest_by_sequence_by(sail, tmp_path):
    policy = _latest(tmp_path, "updated_at")
    o = dict(bronze=str(tmp_path / "bronze"), quarantine=str(tmp_path / "q"), audit=str(tmp_path / "a.jsonl"),
             key_overrides={}, fetchers=Fetchers(environ=ENV), allow_insecure=True, table_format="delta")
    first = _land(tmp_path / "l1", "x.csv", [("A", "2024-01-01T00:00:00", "gold"),
                                             ("A", "2024-03-01T00:00:00", "plat"),
                                             ("A", "2024-02-01T00:00:00", "silver"),
                                             ("B", "2024-01-01T00:00:00", "b1")])
    r1 = run_ingest(sail, policy, "members", IngestOptions(input_path=str(first), **o))
    assert (r1.rows_inserted, r1.rows_updated, r1.rows_unchanged) == (2, 0, 2)   # two superseded versions of A
    assert _plans(tmp_path / "bronze") == ["b1", "plat"]
    second = _land(tmp_path / "l2", "y.csv", [("A", "2024-04-01T00:00:00", "bronze"),
                                              ("B", "2024-01-01T00:00:00", "b1"),
                                              ("C", "2024-01-01T00:00:00", "c1")])
    r2 = run_ingest(sail, policy, "members", IngestOptions(input_path=str(second), **o))
    assert (r2.rows_inserted, r2.rows_updated, r2.rows_unchanged) == (1, 1, 1)
    assert _plans(tmp_path / "bronze") == ["b1", "bronze", "c1"]
    r3 = run_ingest(sail, policy, "members", IngestOptions(input_path=str(second), **o))   # re-delivery
    assert (r3.rows_inserted, r3.rows_updated, r3.rows_unchanged) == (0, 0, 3)
    bronze = rd(tmp_path / "bronze")
    by_plan = dict(zip(bronze.column("plan").to_pylist(), bronze.column("_ingest_run_id").to_pylist()))
    assert by_plan == {"b1": r1.run_id, "bronze": r2.run_id, "c1": r2.run_id}     # untouched rows keep their run


def test_latest_without_sequence_by_takes_the_later_file_then_row(sail, tmp_path):
    policy = _latest(tmp_path, None)
    land = _land(tmp_path / "l", "2024-01.csv", [("A", "", "jan-1"), ("A", "", "jan-2")])
    _land(land, "2024-02.csv", [("A", "", "feb")])
    _land(tmp_path / "m", "only.csv", [("B", "", "first"), ("B", "", "second")])
    o = dict(quarantine=str(tmp_path / "q"), audit=str(tmp_path / "a.jsonl"), key_overrides={},
             fetchers=Fetchers(environ=ENV), allow_insecure=True, table_format="delta")
    run_ingest(sail, policy, "members", IngestOptions(input_path=str(land), bronze=str(tmp_path / "b1"), **o))
    run_ingest(sail, policy, "members", IngestOptions(input_path=str(tmp_path / "m"), bronze=str(tmp_path / "b2"), **o))
    assert _plans(tmp_path / "b1") == ["feb"] and _plans(tmp_path / "b2") == ["second"]


# ------------------------------------------------------------------------------------------------- refusals
def _policy_with(tmp: Path, table_lines: str, name: str = "p.yaml") -> Path:
    text = EXAMPLE.read_text().replace("    record_key: [claim_id]\n", "    record_key: [claim_id]\n" + table_lines)
    (tmp / name).write_text(text)
    return tmp / name


def test_a_bad_batch_above_max_quarantine_rate_writes_no_bronze(tmp_path):
    synth.write_landing(tmp_path, {"claims": 600}, seed=9, malformed_rate=0.05)
    policy = _policy_with(tmp_path, "    max_quarantine_rate: 0.01\n")
    out = cli("ingest", str(policy), "--table", "claims", "--engine", "sail", "--allow-insecure",
              "--input", str(tmp_path / "landing" / "claims"), "--bronze", str(tmp_path / "bronze"),
              "--audit", str(tmp_path / "audit.jsonl"))
    assert out.returncode == 1
    assert "quarantine rate 0.05" in out.stderr and "max_quarantine_rate 0.01" in out.stderr
    assert not (tmp_path / "bronze").exists()
    assert rd(tmp_path / "bronze_quarantine").num_rows == 30          # kept for inspection
    evs = events(tmp_path / "audit.jsonl")
    assert [e["event"] for e in evs] == ["ingest_started", "ingest_refused"]
    assert evs[0]["run_id"] in out.stderr and "max_quarantine_rate" in evs[1]["details"]["message"]


def test_phi_scan_fail_scans_every_row_and_writes_nothing(tmp_path):
    claims = synth.generate("claims", 12_000, seed=4)
    claims = synth.inject(claims, "payer", "ref 321-54-9876", [11_501])
    synth.write_tables(tmp_path, {"claims": claims})
    policy = _policy_with(tmp_path, "    phi_scan: {sample_rows: 1000, on_detect: fail}\n")
    out = cli("ingest", str(policy), "--table", "claims", "--engine", "sail", "--allow-insecure",
              "--input", str(tmp_path / "landing" / "claims"), "--bronze", str(tmp_path / "bronze"),
              "--audit", str(tmp_path / "audit.jsonl"))
    assert out.returncode == 1 and "payer: 1 ssn" in out.stderr and "321-54-9876" not in out.stderr
    assert not (tmp_path / "bronze").exists() and not (tmp_path / "bronze_quarantine").exists()
    assert [e["event"] for e in events(tmp_path / "audit.jsonl")] == ["ingest_refused"]


# ------------------------------------------------------------------------------------------ the audit fails closed
def test_a_damaged_trail_stops_the_run_before_any_data_is_read(sail, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 100}, seed=1, malformed_rate=0.0)
    trail = tmp_path / "audit.jsonl"
    trail.write_text('{"event": "ingest", "hash": "00"}\n')
    with pytest.raises(JobRefused, match="does not match its hash"):
        run_ingest(sail, loaded, "claims", opts(tmp_path, tmp_path / "landing" / "claims"))
    assert not (tmp_path / "bronze").exists()


def test_no_commit_without_its_event_and_the_next_run_reconciles(sail, loaded, tmp_path, monkeypatch):
    synth.write_landing(tmp_path, {"claims": 200}, seed=2, malformed_rate=0.02)
    landing = tmp_path / "landing" / "claims"
    real = job_mod.append_event

    def failing(job, event, **kw):  # the trail breaks after the pending event: closing and refusal events fail
        if event != "ingest_started":
            raise OSError("disk full")
        return real(job, event, **kw)

    monkeypatch.setattr(job_mod, "append_event", failing)
    with pytest.raises(JobRefused) as info:
        run_ingest(sail, loaded, "claims", opts(tmp_path, landing, run_id="run-crashed-1"))
    assert "run-crashed-1" in str(info.value)
    assert [e["event"] for e in events(tmp_path / "audit.jsonl")] == ["ingest_started"]  # written before commits
    monkeypatch.setattr(job_mod, "append_event", real)

    second = run_ingest(sail, loaded, "claims", opts(tmp_path, landing))
    evs = events(tmp_path / "audit.jsonl")
    assert [e["event"] for e in evs] == ["ingest_started", "ingest_unfinished", "ingest_started", "ingest"]
    commits = evs[1]["details"]["commits"]
    assert evs[1]["details"]["pending_run_id"] == "run-crashed-1" and commits["bronze"] == [0]
    assert second.rows_inserted == 0                                    # the crashed run's rows were committed once
    assert DeltaTable(str(tmp_path / "bronze")).history()[-1]["userMetadata"] == "run-crashed-1"


# ------------------------------------------------------------------------------------------- paths and races
def test_paths_with_spaces_and_quotes_work_on_pysail(sail, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 300}, seed=6, malformed_rate=0.03)
    odd = tmp_path / "lake house" / "it's \"here\""
    o = opts(tmp_path, tmp_path / "landing" / "claims", bronze=str(odd / "bronze claims"),
             quarantine=str(odd / "quarantine's"), audit=str(odd / "audit trail"))
    first = run_ingest(sail, loaded, "claims", o)
    second = run_ingest(sail, loaded, "claims", o)
    assert second.rows_inserted == 0 and rd(odd / "bronze claims").num_rows == first.rows_written
    assert rd(odd / "quarantine's").num_rows == first.rows_quarantined
    out = cli("audit", "verify", str(odd / "audit trail"), "--policy", str(EXAMPLE))  # a sealed trail
    assert out.returncode == 0 and "4 events" in out.stdout
    props = DeltaTable(str(odd / "bronze claims")).metadata().configuration
    assert props["lakehouse_phi.last_run_id"] == second.run_id
    names = {p.name for p in odd.iterdir()}
    assert {"audit trail", "bronze claims", "quarantine's"} <= names
    assert not any("%2" in n for n in names)  # no percent-encoded twin of a path (pysail's own writer makes one)


def _two_at_once(run) -> tuple[list, list[Exception]]:
    """``run()`` in two threads released together: (results, exceptions), collected for the test to assert on."""
    results, errors = [], []
    barrier = threading.Barrier(2)

    def one() -> None:
        try:
            barrier.wait()
            results.append(run())
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.parametrize("existing", [False, True], ids=["first-ingest", "existing-table"])
def test_concurrent_runs_never_duplicate_and_both_are_audited(sail, loaded, tmp_path, existing):
    synth.write_landing(tmp_path, {"claims": 1500}, seed=12, malformed_rate=0.02)
    landing = tmp_path / "landing" / "claims"
    if existing:
        synth.write_tables(tmp_path / "old", {"claims": synth.generate("claims", 50, seed=99)})
        run_ingest(sail, loaded, "claims", opts(tmp_path, tmp_path / "old" / "landing" / "claims"))
    results, errors = _two_at_once(lambda: run_ingest(sail, loaded, "claims", opts(tmp_path, landing)))
    assert not errors or all(isinstance(e, JobRefused) for e in errors)
    bronze = rd(tmp_path / "bronze")
    claims = bronze.column("claim_id").to_pylist()
    assert len(claims) == len(set(claims)) == (50 if existing else 0) + results[0].rows_written
    q = rd(tmp_path / "quarantine").column("_row_fingerprint").to_pylist()
    assert len(q) == len(set(q))
    assert sorted(r.rows_inserted for r in results) == [0, results[0].rows_written] or len(results) == 1
    evs = [e for e in events(tmp_path / "audit.jsonl") if e["event"] in ("ingest", "ingest_refused")]
    assert len(evs) == 2 + (1 if existing else 0)                                  # both runs audited


def test_concurrent_parquet_runs_serialize_on_the_lock(spark, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 800}, seed=13, malformed_rate=0.02)
    landing = tmp_path / "landing" / "claims"
    results, errors = _two_at_once(
        lambda: run_ingest(spark, loaded, "claims", opts(tmp_path, landing, table_format="parquet")))
    assert not errors
    bronze = spark.read.parquet(str(tmp_path / "bronze"))
    assert bronze.count() == bronze.select("claim_id").distinct().count() == results[0].rows_written
    quarantine = spark.read.parquet(str(tmp_path / "quarantine"))
    assert quarantine.count() == quarantine.select("_row_fingerprint").distinct().count() > 0
    assert sorted(r.rows_inserted for r in results) == [0, results[0].rows_written]
    assert [e["event"] for e in events(tmp_path / "audit.jsonl")].count("ingest") == 2


def test_latest_over_more_files_than_cores_still_takes_the_later_file_then_row(sail, tmp_path, monkeypatch):
    """pysail reads a folder file by file and runs them a core's share at a time (``read._file_by_file``: issue
    21.4); the order of versions of a key is still the later file, then the later row."""
    from lakehouse_phi.spark import read

    monkeypatch.setattr(read, "_cores", lambda: 2)
    policy = _latest(tmp_path, None)
    land = tmp_path / "l"
    for month in range(1, 6):  # five files, two partitions
        _land(land, f"2024-0{month}.csv", [("A", "", f"a{month}-1"), ("B", "", f"b{month}-1"),
                                            ("A", "", f"a{month}-2")] + ([("C", "", "c")] if month == 2 else []))
    landing = read.read_landing(sail, "csv", str(land), {"header": "true"}, declared=["mrn", "updated_at", "plan"])
    from lakehouse_phi.spark.session import functions

    F = functions(sail)
    assert landing.df.select(F.spark_partition_id().alias("p")).distinct().count() == 2
    o = dict(quarantine=str(tmp_path / "q"), audit=str(tmp_path / "a.jsonl"), key_overrides={},
             fetchers=Fetchers(environ=ENV), allow_insecure=True, table_format="delta")
    r = run_ingest(sail, policy, "members", IngestOptions(input_path=str(land), bronze=str(tmp_path / "b"), **o))
    assert r.rows_read == 16 and r.rows_inserted == 3
    assert _plans(tmp_path / "b") == ["a5-2", "b5-1", "c"]
