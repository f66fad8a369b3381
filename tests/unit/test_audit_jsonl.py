"""The JSON-lines trail: append-only, locked, fsynced, verifiable."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from lakehouse_phi.audit import JsonlSink, new_event, open_sink, read_trail, verify, verify_trail
from lakehouse_phi.audit.sinks import DeltaSink
from lakehouse_phi.errors import JobRefused, UsageError


def ev(i: int = 0) -> dict:
    return new_event(run_id=f"r{i}", actor="etl", event="ingest", policy_name="clinic", policy_sha256="cd" * 32,
                     table="patients", rows_read=10, rows_written=9, rows_quarantined=1,
                     columns={"ssn": {"strategy": "hmac", "key_version": 3}}, details={"worker": i})


def test_append_chains_and_reads_back(tmp_path):
    sink = JsonlSink(tmp_path / "sub" / "audit.jsonl")
    assert sink.last() is None and sink.read_all() == []
    a = sink.append(ev(0))
    b = sink.append(ev(1))
    assert (a["seq"], b["seq"]) == (0, 1) and b["prev_hash"] == a["hash"]
    assert sink.last() == b
    assert sink.read_all() == [a, b]
    lines = (tmp_path / "sub" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == b
    assert verify(read_trail(str(sink.path))).ok


def test_last_reads_a_long_tail(tmp_path):
    sink = JsonlSink(tmp_path / "a.jsonl")
    big = ev(0)
    big["details"] = {"counts": {f"reason_{i}": i for i in range(9000)}}  # one line > 64 KiB
    sink.append(big)
    sink.append(big)
    last = sink.last()
    assert last["seq"] == 1 and verify(sink.read_all()).ok


def _append_many(path: str, worker: int, n: int) -> int:
    sink = JsonlSink(path)
    for _ in range(n):
        sink.append(ev(worker))
    return n


def test_concurrent_processes_do_not_fork_the_chain(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    with ProcessPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(_append_many, [path] * 4, range(4), [15] * 4)) == 60
    events = read_trail(path)
    r = verify(events)
    assert r.ok and r.events == 60
    assert [e["seq"] for e in events] == list(range(60))


def test_refuses_to_append_after_a_damaged_tail(tmp_path):
    sink = JsonlSink(tmp_path / "a.jsonl")
    sink.append(ev(0))
    text = sink.path.read_text().replace('"rows_written":9', '"rows_written":8')
    sink.path.write_text(text)
    with pytest.raises(JobRefused, match="audit verify"):
        sink.append(ev(1))
    sink.path.write_text(text.rstrip("\n"))  # an interrupted write: no final newline
    with pytest.raises(JobRefused, match="incomplete"):
        sink.append(ev(1))


def test_edit_in_file_is_named_by_verify_trail(tmp_path):
    sink = JsonlSink(tmp_path / "a.jsonl")
    sealed = [sink.append(ev(i)) for i in range(4)]
    lines = sink.path.read_text().splitlines()
    lines[1] = lines[1].replace('"rows_read":10', '"rows_read":11')
    sink.path.write_text("\n".join(lines) + "\n")
    r = verify_trail(str(sink.path))
    assert (r.ok, r.first_bad, r.event_id) == (False, 1, sealed[1]["event_id"])


def test_garbled_line_is_named_not_unreadable(tmp_path):
    sink = JsonlSink(tmp_path / "a.jsonl")
    for i in range(3):
        sink.append(ev(i))
    lines = sink.path.read_text().splitlines()
    lines[1] = lines[1][:40]
    sink.path.write_text("\n".join(lines) + "\n")
    r = verify_trail(str(sink.path))
    assert not r.ok and r.first_bad == 1 and "JSON object" in r.reason
    with pytest.raises(UsageError, match="event 1"):
        read_trail(str(sink.path))


def test_missing_trail_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_trail(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UsageError, match="no such file"):
        verify_trail(str(tmp_path / "nope"))


def test_open_sink_picks_by_suffix(tmp_path):
    assert isinstance(open_sink(str(tmp_path / "a.jsonl")), JsonlSink)
    assert isinstance(open_sink(str(tmp_path / "a.JSON")), JsonlSink)
    with pytest.raises(UsageError, match="Spark session"):
        open_sink(str(tmp_path / "audit_delta"))
    assert isinstance(open_sink("main.audit.trail", spark=object()), DeltaSink)


def test_new_file_permissions_are_not_world_readable(tmp_path):
    sink = JsonlSink(tmp_path / "a.jsonl")
    sink.append(ev(0))
    assert os.stat(sink.path).st_mode & 0o007 == 0
