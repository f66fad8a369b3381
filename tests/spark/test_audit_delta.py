"""The Delta audit trail on a real Delta engine (pysail, Spark Connect) and read back with delta-rs, no Spark."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest

deltalake = pytest.importorskip("deltalake")
from deltalake import DeltaTable, write_deltalake  # noqa: E402
from deltalake.exceptions import CommitFailedError  # noqa: E402

from lakehouse_phi.audit import DeltaSink, canonical_json, new_event, open_sink, read_trail, verify, verify_trail  # noqa: E402
from lakehouse_phi.audit.chain import event_hash  # noqa: E402
from lakehouse_phi.audit.sinks import DELTA_COLUMNS  # noqa: E402
from lakehouse_phi.deltars import read_delta  # noqa: E402
from lakehouse_phi.errors import JobRefused  # noqa: E402

pytestmark = pytest.mark.spark


def ev(i: int) -> dict:
    return new_event(run_id=f"run-{i}", actor="etl", event="ingest", policy_name="clinic", policy_sha256="12" * 32,
                     table="patients", rows_read=100, rows_written=97, rows_quarantined=3,
                     columns={"ssn": {"strategy": "hmac", "key_version": 2}},
                     details={"quarantine_reasons": {"bad_date": 3}, "engine": "sail", "format": "delta"})


@pytest.fixture(scope="module")
def trail(sail, tmp_path_factory):
    """Four events appended through pysail to an append-only Delta table."""
    path = str(tmp_path_factory.mktemp("audit") / "audit_delta")
    sink = open_sink(path, spark=sail)
    assert isinstance(sink, DeltaSink)
    sealed = [sink.append(ev(i)) for i in range(4)]
    return path, sink, sealed


def rows_of(path: str) -> list[dict]:
    return read_delta(path).to_pylist()


def copy_with(rows: list[dict], dest: str, mode: str = "error") -> str:
    """A tampered copy written with delta-rs (the original is append-only), in the trail's schema."""
    types = {"BIGINT": pa.int64(), "STRING": pa.string()}
    schema = pa.schema([(n, types[t]) for n, t in DELTA_COLUMNS])
    write_deltalake(dest, pa.Table.from_pylist(rows, schema=schema), mode=mode)
    return dest


def test_created_append_only_with_typed_columns_and_record(trail, sail):
    path, sink, sealed = trail
    assert DeltaTable(path).metadata().configuration.get("delta.appendOnly") == "true"
    rows = rows_of(path)
    assert len(rows) == 4
    for row in rows:
        record = json.loads(row["record"])
        assert row["record"] == canonical_json(record) and event_hash(record) == row["hash"]
        for name, _ in DELTA_COLUMNS[:-1]:
            assert row[name] == record[name]
    assert sink.last() == sealed[-1]
    assert sink.read_all() == sealed
    assert sail.read.format("delta").load(path).filter("rows_quarantined = 3").count() == 4


def test_chain_verifies_without_spark(trail):
    path, _, sealed = trail
    events = read_trail(path)  # delta-rs
    assert [e["seq"] for e in events] == [0, 1, 2, 3] and events == sealed
    r = verify_trail(path)
    assert r.ok and r.events == 4 and r.last_hash == sealed[-1]["hash"]


def test_delete_is_rejected_by_delta_rs_and_pysail_and_trail_still_verifies(trail, sail):
    path, _, _ = trail
    with pytest.raises(CommitFailedError, match="append-only"):
        DeltaTable(path).delete("seq = 1")
    with pytest.raises(Exception, match="append-only"):
        sail.sql(f"DELETE FROM delta.`{path}` WHERE seq = 1").collect()
    r = verify_trail(path)
    assert r.ok and r.events == 4


def test_cli_verifies_a_delta_directory(trail, tmp_path):
    path, _, sealed = trail
    proc = subprocess.run([sys.executable, "-m", "lakehouse_phi", "audit", "verify", path, "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["last_hash"] == sealed[-1]["hash"]
    bad = rows_of(path)
    del bad[[r["seq"] for r in bad].index(2)]
    broken = copy_with(bad, str(tmp_path / "gap"))
    proc = subprocess.run([sys.executable, "-m", "lakehouse_phi", "audit", "verify", broken],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and sealed[3]["event_id"] in proc.stderr


def test_edited_record_is_named(trail, tmp_path):
    path, _, sealed = trail
    rows = rows_of(path)
    row = next(r for r in rows if r["seq"] == 1)
    row["record"] = row["record"].replace('"rows_written":97', '"rows_written":98')
    r = verify_trail(copy_with(rows, str(tmp_path / "t")))
    assert (r.ok, r.first_bad, r.event_id) == (False, 1, sealed[1]["event_id"]) and "hash" in r.reason


def test_edited_typed_column_is_named(trail, tmp_path):
    path, _, sealed = trail
    rows = rows_of(path)
    next(r for r in rows if r["seq"] == 2)["rows_quarantined"] = 0
    r = verify_trail(copy_with(rows, str(tmp_path / "t")))
    assert (r.ok, r.first_bad, r.event_id) == (False, 2, sealed[2]["event_id"]) and "rows_quarantined" in r.reason


def test_reordering_by_swapping_seq_breaks_the_hash(trail, tmp_path):
    """Delta rows have no order; the order is seq + prev_hash inside the hashed record. Swapping seqs is caught."""
    path, _, _ = trail
    rows = rows_of(path)
    a, b = (next(r for r in rows if r["seq"] == s) for s in (1, 2))
    for row, new in ((a, 2), (b, 1)):
        rec = json.loads(row["record"])
        rec["seq"] = new
        row["record"], row["seq"] = canonical_json(rec), new
    r = verify_trail(copy_with(rows, str(tmp_path / "t")))
    assert not r.ok and r.first_bad == 1


def test_reordering_rows_on_disk_changes_nothing(trail, tmp_path):
    path, _, sealed = trail
    rows = list(reversed(rows_of(path)))
    dest = copy_with(rows, str(tmp_path / "t"))
    assert read_trail(dest) == sealed and verify_trail(dest).ok


def as_row(event: dict) -> dict:
    return {**{n: event.get(n) for n, _ in DELTA_COLUMNS[:-1]}, "record": canonical_json(event)}


def test_forged_append_is_named(trail, tmp_path):
    """Append-only still allows appends: a well-formed forged event chained after seq 1 forks the chain."""
    from lakehouse_phi.audit import seal

    path, _, sealed = trail
    dest = copy_with(rows_of(path), str(tmp_path / "t"))
    copy_with([as_row(seal(ev(99), sealed[1]))], dest, mode="append")  # correct hash, seq 2, links to seq 1
    r = verify_trail(dest)
    assert not r.ok and r.first_bad == 2 and "fork" in r.reason


def test_sink_refuses_to_chain_onto_a_forked_or_damaged_tail(trail, tmp_path, sail):
    from lakehouse_phi.audit import seal

    path, _, sealed = trail
    forked = copy_with(rows_of(path), str(tmp_path / "forked"))
    copy_with([as_row(seal(ev(98), sealed[2]))], forked, mode="append")  # a second seq 3
    with pytest.raises(JobRefused, match="fork"):
        DeltaSink(sail, forked).append(ev(5))
    damaged = copy_with(rows_of(path), str(tmp_path / "damaged"))
    bad_tail = {**seal(ev(97), sealed[3]), "rows_read": 1}  # content no longer matches its hash
    copy_with([as_row(bad_tail)], damaged, mode="append")
    with pytest.raises(JobRefused, match="does not match its hash"):
        DeltaSink(sail, damaged).append(ev(5))
    assert len(rows_of(damaged)) == 5  # nothing was appended


def test_table_name_with_location(sail, tmp_path):
    sink = DeltaSink(sail, "lakehouse_phi_audit_test", location=str(tmp_path / "named"))
    first = sink.append(ev(0))
    second = sink.append(ev(1))
    assert second["prev_hash"] == first["hash"]
    assert DeltaTable(str(tmp_path / "named")).metadata().configuration.get("delta.appendOnly") == "true"
    assert verify(sink.read_all()).ok and verify_trail(str(tmp_path / "named")).ok


def test_concurrent_writers_do_not_fork_the_delta_chain(sail, tmp_path):
    """Appends go through MERGE on seq, so racing writers conflict and retry instead of both taking a seq."""
    import threading

    path = str(tmp_path / "conc")
    DeltaSink(sail, path).append(ev(0))
    errors: list[str] = []

    def work(w: int) -> None:
        for _ in range(3):
            try:
                DeltaSink(sail, path).append(ev(w))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    r = verify_trail(path)
    assert r.ok and r.events == 10
