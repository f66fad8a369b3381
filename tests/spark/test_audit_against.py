"""``audit verify --against BRONZE`` with a bronze table whose anchor properties a real Delta engine (pysail) set,
read back with delta-rs; and the actor from the engine's ``session_user()``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from lakehouse_phi.audit.anchor import check_against
from lakehouse_phi.audit.sealing import session_actor
from lakehouse_phi.storage.tables import set_table_properties

pytestmark = pytest.mark.spark


def _event(i: int) -> dict:
    return new_event(run_id=f"run-{i}", actor="etl", event="ingest", policy_name="clinic", policy_sha256="ab" * 32,
                     table="patients", rows_read=1, rows_written=1, rows_quarantined=0, columns={})


@pytest.fixture(scope="module")
def anchored(sail, tmp_path_factory):
    """A trail of 3 events, a bronze table written by pysail and anchored at the last event (seq 2)."""
    root = tmp_path_factory.mktemp("against")
    trail = root / "audit.jsonl"
    sink = JsonlSink(trail)
    events = [sink.append(_event(i)) for i in range(3)]
    bronze = str(root / "bronze")
    sail.createDataFrame([(1, "x")], "id INT, v STRING").write.format("delta").mode("append").save(bronze)
    set_table_properties(sail, bronze, {"lakehouse_phi.audit_seq": str(events[-1]["seq"]),
                                        "lakehouse_phi.audit_hash": events[-1]["hash"]})
    return trail, events, bronze


def test_anchor_found_in_an_intact_trail(anchored):
    _trail, events, bronze = anchored
    result = check_against(bronze, events)
    assert (result.anchor_seq, result.anchor_hash) == (2, events[-1]["hash"])
    assert not any("anchor" in p or "cut tail" in p for p in result.problems)
    # pysail's commits carry no run id in userMetadata: each is named as unaudited
    assert result.problems and all(p.startswith("unaudited commit: bronze version") for p in result.problems)


def test_cut_tail_exits_1(anchored, tmp_path):
    trail, _events, bronze = anchored
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(trail.read_text().splitlines()[:2]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "lakehouse_phi", "audit", "verify", str(cut), "--against", bronze,
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout)
    assert out["first_bad"] is None and out["events"] == 2  # the chain alone says nothing
    assert proc.returncode == 1
    assert any("cut tail: bronze's anchor is seq 2, but the trail ends at seq 1" in p
               for p in out["against"]["problems"])


def test_replaced_anchor_event(anchored):
    _trail, events, bronze = anchored
    forged = [*events[:2], {**events[2], "hash": "f" * 64}]
    assert any("hash differs" in p for p in check_against(bronze, forged).problems)


def test_session_actor_from_the_engine(sail, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_PHI_ACTOR", raising=False)
    actor = session_actor(sail)
    assert isinstance(actor, str) and actor
    monkeypatch.setenv("LAKEHOUSE_PHI_ACTOR", "svc-etl")
    assert session_actor(sail) == "svc-etl"


def test_delta_sink_seals_through_spark(sail, tmp_path):
    from lakehouse_phi.audit import open_sink, verify_trail
    from lakehouse_phi.keys.providers import SecretKey

    key = SecretKey("trail", 3, bytes(range(32)))
    path = str(tmp_path / "trail")
    sink = open_sink(path, sail, seal_key=key)
    sealed = [sink.append(_event(i)) for i in range(2)]
    assert all(e["seal_key_version"] == 3 for e in sealed)
    assert verify_trail(path, keys={("trail", 3): key.material}, expect_key="trail").sealed == 2
    missing = verify_trail(path)
    assert not missing.ok and missing.missing_key == "trail@3"


def test_lifecycle_commands_append_to_a_trail_spark_created(sail, tmp_path):
    """ingest writes the Delta trail through Spark; erase/purge/rekey append to it through delta-rs."""
    from lakehouse_phi.audit import open_audit, open_sink, verify_trail

    path = str(tmp_path / "trail")
    first = [open_sink(path, sail).append(_event(i)) for i in range(2)]
    third = open_audit(path, run_id="run-2").append(_event(2))
    assert third["seq"] == 2 and third["prev_hash"] == first[-1]["hash"]
    result = verify_trail(path)
    assert result.ok and result.events == 3 and result.last_hash == third["hash"]


def test_real_ingests_verify_against_bronze_and_a_copied_run_id_does_not(sail, tmp_path):
    """Two ingests on pysail (bronze and quarantine through the job's own writers): every commit is bound to its
    run by version and operation; a DELETE of every row tagged with the last run's id is not (issue 23.3)."""
    from deltalake import CommitProperties, DeltaTable

    from lakehouse_phi import synth
    from lakehouse_phi.policy import load_policy
    from lakehouse_phi.spark.ingest import run_ingest
    from tests.helpers import EXAMPLE, run_cli
    from tests.spark.test_bronze import ENV, opts

    loaded = load_policy(EXAMPLE)
    synth.write_landing(tmp_path, {"claims": 150}, seed=3, malformed_rate=0.05)
    landing = tmp_path / "landing" / "claims"
    first = run_ingest(sail, loaded, "claims", opts(tmp_path, landing))
    synth.write_landing(tmp_path / "b", {"claims": 60}, seed=4, malformed_rate=0.05)
    second = run_ingest(sail, loaded, "claims", opts(tmp_path, tmp_path / "b" / "landing" / "claims"))
    assert first.rows_quarantined and second.rows_inserted
    args = ["audit", "verify", str(tmp_path / "audit.jsonl"), "--against", str(tmp_path / "bronze"),
            "--quarantine", str(tmp_path / "quarantine"), "--policy", str(EXAMPLE),  # a sealed trail: its key
            "--format", "json"]
    proc = run_cli(*args, env=ENV)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, out["against"]["problems"]
    assert out["against"]["commits"] >= 4 and out["against"]["quarantine_commits"] >= 1
    DeltaTable(str(tmp_path / "bronze")).delete(
        commit_properties=CommitProperties(custom_metadata={"userMetadata": second.run_id}))
    proc = run_cli(*args, env=ENV)
    problems = " | ".join(json.loads(proc.stdout)["against"]["problems"])
    assert proc.returncode == 1 and "(DELETE) carries the id of run" in problems and second.run_id in problems
