"""Issue 16 item 5 on pysail with real Delta: the key check values are recorded in bronze's properties and the audit
event; a rerun with other material under the same key version refuses before reading, naming the key."""

from __future__ import annotations

import base64
import json

import pytest

from lakehouse_phi.deltars import read_delta
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.keys.providers import Fetchers, check_value
from lakehouse_phi.spark.ingest import run_ingest
from tests.spark.test_hostile_read import ENV, _landing, _options, _policy

DeltaTable = pytest.importorskip("deltalake").DeltaTable  # the [local] extra


def test_other_material_under_the_same_version_refuses_naming_the_key(sail, tmp_path):
    _landing(tmp_path, bad=False)
    first = run_ingest(sail, _policy(), "people", _options(tmp_path, "delta", "audit"))
    expected = {"k": {"version": 1, "check": check_value(base64.b64decode(ENV["K"]))}}
    props = DeltaTable(str(tmp_path / "bronze")).metadata().configuration
    assert json.loads(props["lakehouse_phi.key_checks"]) == expected
    assert first.event["details"]["key_checks"] == expected

    other = base64.b64encode(bytes(range(100, 132))).decode()
    opts = _options(tmp_path, "delta", "audit")
    opts.fetchers = Fetchers(environ={"K": other})
    with pytest.raises(JobRefused) as info:
        run_ingest(sail, _policy(), "people", opts)
    message = str(info.value)
    assert "key 'k' version 1" in message and other not in message
    assert len(read_delta(tmp_path / "bronze")) == first.rows_written  # nothing written again
    events = sorted((json.loads(r["record"]) for r in read_delta(tmp_path / "audit").to_pylist()),
                    key=lambda e: e["seq"])
    assert [e["event"] for e in events] == ["ingest_started", "ingest", "ingest_refused"]
    assert events[2]["details"]["key_checks"]["k"]["check"] == check_value(bytes(range(100, 132)))

    same = run_ingest(sail, _policy(), "people", _options(tmp_path, "delta", "audit"))  # the right key: runs
    assert same.rows_inserted == 0
