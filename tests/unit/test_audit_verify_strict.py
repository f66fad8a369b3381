"""Issue 23.3: `audit verify` as an attacker with file access tries it, on real Delta tables (delta-rs) and real
trails, through the command line.

* ``--key`` is as strict as ``--policy``: a seal-stripped, foreign-key or empty trail is not intact;
* a Delta trail whose own history holds a RESTORE, a DELETE after ``appendOnly`` was turned off, or an overwrite is
  not intact, even though the chain left behind is;
* ``--against`` binds every bronze and quarantine commit to its run by version and operation: a DELETE (or an
  overwrite, a second SET TBLPROPERTIES, a MERGE) tagged with a copied run id fails, so does a RESTORE, a commit
  without a run id, a quarantine table removed while the trail says it was written;
* the HTML report shows exactly the verdict of ``audit verify --policy`` (one function).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from lakehouse_phi.audit.anchor import ANCHOR_HASH, ANCHOR_SEQ, check_against
from lakehouse_phi.audit.chain import GENESIS_HASH, canonical_json, event_hash
from lakehouse_phi.keys.providers import SecretKey
from tests.helpers import run_cli

deltalake = pytest.importorskip("deltalake")
DeltaTable, CommitProperties, write_deltalake = deltalake.DeltaTable, deltalake.CommitProperties, \
    deltalake.write_deltalake

K1 = bytes(range(32))
OTHER = bytes(range(50, 82))
ENV = {"TRAIL_K1": base64.b64encode(K1).decode(), "OTHER_K": base64.b64encode(OTHER).decode()}
POLICY = """
version: 1
name: clinic
audit: {key: trail}
keys:
  trail: {provider: env, ref: TRAIL_K1, version: 1}
  pseudonym: {provider: env, ref: OTHER_K, version: 1}
tables:
  patients:
    source: {format: csv, path: landing/patients}
    bronze: /tmp/bronze
    record_key: [mrn]
    columns:
      mrn: {type: string, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
"""


def cli(*args: str) -> tuple[int, dict, str]:
    proc = run_cli("audit", "verify", *args, "--format", "json", env=ENV)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr


def event(run_id: str, kind: str = "ingest", **details) -> dict:
    return new_event(run_id=run_id, actor="etl", event=kind, policy_name="clinic", policy_sha256="ab" * 32,
                     table="patients", rows_read=2, rows_written=2, rows_quarantined=0, columns={}, details=details)


def commit(path: Path, run_id: str | None, rows: list[int] | None = None, mode: str = "append") -> int:
    props = CommitProperties(custom_metadata={"userMetadata": run_id}) if run_id else None
    write_deltalake(str(path), pa.table({"x": rows or [1]}), mode=mode, commit_properties=props)
    return DeltaTable(str(path)).version()


def props(run_id: str | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata={"userMetadata": run_id}) if run_id else None


@pytest.fixture
def lake(tmp_path):
    """Two audited ingest runs as the job makes them: pending event, bronze (and quarantine) commits, closing
    event recording the versions, then the anchor properties (SET TBLPROPERTIES, tagged with the run id)."""
    bronze, quarantine, trail = tmp_path / "bronze", tmp_path / "bronze_quarantine", tmp_path / "audit.jsonl"
    sink = JsonlSink(trail, SecretKey("trail", 1, K1))
    for run, rows in (("run-a", [1, 2]), ("run-b", [3, 4])):
        sink.append(event(run, "ingest_started", pending=True))
        q = commit(quarantine, run, [90])
        b = commit(bronze, run, rows)
        closing = sink.append(event(run, "ingest", pending=False, bronze=str(bronze), quarantine=str(quarantine),
                                    commits={"bronze": [b], "quarantine": [q]}))
        DeltaTable(str(bronze)).alter.set_table_properties(
            {ANCHOR_SEQ: str(closing["seq"]), ANCHOR_HASH: closing["hash"]}, raise_if_not_exists=False,
            commit_properties=props(run))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return tmp_path, bronze, quarantine, trail, policy


def test_a_genuine_lake_verifies(lake):
    _root, bronze, _quarantine, trail, policy = lake
    code, out, _ = cli(str(trail), "--policy", str(policy), "--against", str(bronze))
    assert code == 0 and out["ok"] and out["against"]["problems"] == []
    assert out["against"]["commits"] == 4 and out["against"]["quarantine_commits"] == 2
    code, out, _ = cli(str(trail), "--key", "trail=env:TRAIL_K1", "--against", str(bronze))
    assert code == 0 and out["sealed"] == 4


# ------------------------------------------------------------------------------------ --key as strict as --policy
def _rehash(path: Path, change) -> None:
    events = [json.loads(line) for line in path.read_text().splitlines()]
    prev, out = GENESIS_HASH, []
    for ev in events:
        ev = change(ev)
        ev["prev_hash"] = prev
        ev["hash"] = event_hash(ev)
        prev = ev["hash"]
        out.append(canonical_json(ev))
    path.write_text("".join(line + "\n" for line in out))


@pytest.mark.parametrize("keyarg", [("--key", "trail=env:TRAIL_K1"), ("--key", "trail@1=env:TRAIL_K1"),
                                    ("--policy", None)], ids=["key", "key@1", "policy"])
def test_stripped_seals_fail_with_key_as_with_policy(lake, keyarg):
    _root, _bronze, _q, trail, policy = lake
    _rehash(trail, lambda ev: {k: v for k, v in ev.items() if k not in ("seal_key", "seal_key_version", "mac")})
    flag, value = keyarg
    code, out, _ = cli(str(trail), flag, value or str(policy))
    assert code == 1 and out["first_bad"] == 0 and "no event is sealed" in out["reason"]


@pytest.mark.parametrize("keyarg", [("--key", "trail=env:TRAIL_K1"), ("--policy", None)], ids=["key", "policy"])
def test_an_empty_or_blank_keyed_trail_is_not_intact(lake, keyarg):
    _root, _bronze, _q, trail, policy = lake
    flag, value = keyarg
    for text in ("", "\n\n"):
        trail.write_text(text)
        code, out, _ = cli(str(trail), flag, value or str(policy))
        assert code == 1 and not out["ok"] and any("empty trail" in p for p in out["problems"])


@pytest.mark.parametrize("keyarg", [("--key", "trail=env:TRAIL_K1"), ("--policy", None)], ids=["key", "policy"])
@pytest.mark.parametrize("unsealed", [1, 3])
def test_unsealed_events_before_sealed_ones_fail(tmp_path, keyarg, unsealed):
    """A keyed key means every event must be sealed: unsealed events ahead of sealed ones are not accepted."""
    trail, policy = tmp_path / "audit.jsonl", tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    for i in range(unsealed):
        JsonlSink(trail).append(event(f"plain-{i}"))
    JsonlSink(trail, SecretKey("trail", 1, K1)).append(event("sealed"))
    flag, value = keyarg
    code, out, _ = cli(str(trail), flag, value or str(policy))
    assert code == 1 and out["first_bad"] == 0 and "every event must be sealed" in out["reason"]


def test_a_trail_resealed_under_another_key_fails_with_key(lake):
    """The attacker rewrites every event and seals it with a key of their own, then names that key's name: the
    expected name is 'trail', whatever material the attacker passes."""
    _root, _bronze, _q, trail, _policy = lake
    trail.write_text("")
    sink = JsonlSink(trail, SecretKey("mine", 1, OTHER))
    sink.append(event("run-x"))
    code, out, _ = cli(str(trail), "--key", "trail=env:TRAIL_K1")
    assert code == 1 and "sealed under key 'mine'" in out["reason"]
    code, out, _ = cli(str(trail), "--key", "trail=env:OTHER_K")  # the attacker's material under the right name
    assert code == 1 and "sealed under key 'mine'" in out["reason"]


def test_the_key_material_must_match(lake):
    _root, _bronze, _q, trail, _policy = lake
    code, out, _ = cli(str(trail), "--key", "trail=env:OTHER_K")
    assert code == 1 and "seal does not match" in out["reason"]


def test_a_truncated_keyed_trail_fails_against_bronze(lake):
    _root, bronze, _q, trail, _policy = lake
    trail.write_text("".join(trail.read_text().splitlines(keepends=True)[:2]))  # run-b's events cut
    code, out, _ = cli(str(trail), "--key", "trail=env:TRAIL_K1", "--against", str(bronze))
    problems = " | ".join(out["against"]["problems"])
    assert code == 1 and "cut tail" in problems and "'run-b' has no event" in problems
    trail.write_text("")
    code, out, _ = cli(str(trail), "--key", "trail=env:TRAIL_K1", "--against", str(bronze))
    assert code == 1 and "cut tail" in " | ".join(out["against"]["problems"])


# ------------------------------------------------------------------------ --against: version and operation binding
def _problems(bronze: Path, trail: Path, quarantine: Path | None = None) -> str:
    events = [json.loads(line) for line in trail.read_text().splitlines()]
    return " | ".join(check_against(str(bronze), events, None if quarantine is None else str(quarantine)).problems)


def test_delete_of_every_row_with_a_copied_run_id_fails(lake):
    _root, bronze, _q, trail, _policy = lake
    DeltaTable(str(bronze)).delete(commit_properties=props("run-b"))
    text = _problems(bronze, trail)
    assert "bronze version 4 (DELETE) carries the id of run 'run-b', an ingest run, which never performs DELETE" \
        in text


@pytest.mark.parametrize("attack", ["overwrite", "append", "merge", "json-metadata"])
def test_ingest_operations_with_a_copied_run_id_fail_by_version(lake, attack):
    _root, bronze, _q, trail, _policy = lake
    if attack == "merge":
        (DeltaTable(str(bronze)).merge(pa.table({"x": [1]}), "t.x = s.x", source_alias="s", target_alias="t",
                                       commit_properties=props("run-a"))
         .when_matched_update_all().execute())
    elif attack == "json-metadata":
        commit(bronze, json.dumps({"run_id": "run-a"}), [666])
    else:
        commit(bronze, "run-a", [666], mode=attack)
    text = _problems(bronze, trail)
    assert "carries the id of run 'run-a', but no event of that run records bronze version 4" in text


def test_a_second_anchor_commit_with_a_copied_run_id_fails(lake):
    """Only one SET TBLPROPERTIES follows each closing event; a forged one (turning appendOnly off, moving the
    anchor) with the last run's id is caught."""
    _root, bronze, _q, trail, _policy = lake
    DeltaTable(str(bronze)).alter.set_table_properties({"delta.appendOnly": "false"},
                                                       commit_properties=props("run-b"))
    assert "bronze version 4 (SET TBLPROPERTIES) carries the id of run 'run-b'" in _problems(bronze, trail)


def test_restore_is_reported_with_or_without_a_run_id(lake):
    _root, bronze, _q, trail, _policy = lake
    DeltaTable(str(bronze)).restore(1)
    assert "RESTORE: bronze version 4 (RESTORE) rolled the table back" in _problems(bronze, trail)
    DeltaTable(str(bronze)).restore(2, commit_properties=props("run-a"))
    assert "bronze version 5 (RESTORE)" in _problems(bronze, trail) and "'run-a'" in _problems(bronze, trail)


def test_an_erase_run_id_copied_onto_a_later_delete_fails(lake):
    _root, bronze, _quarantine, trail, _policy = lake
    DeltaTable(str(bronze)).delete("x = 1", commit_properties=props("run-e"))
    JsonlSink(trail, SecretKey("trail", 1, K1)).append(event("run-e", "erase", commits={"bronze": [4]}))
    assert _problems(bronze, trail) == ""  # the genuine erase is bound
    DeltaTable(str(bronze)).delete(commit_properties=props("run-e"))  # every row, with the erase's run id
    assert "bronze version 5 (DELETE) carries the id of run 'run-e', but no event of that run records" \
        in _problems(bronze, trail)


def test_commits_without_a_run_id_or_unknown_runs(lake):
    _root, bronze, _q, trail, _policy = lake
    commit(bronze, None, [7])
    commit(bronze, "run-nobody", [8])
    text = _problems(bronze, trail)
    assert "bronze version 4 (WRITE) names no run id" in text and "run 'run-nobody' has no event" in text


# ------------------------------------------------------------------------------------------------- quarantine
def test_quarantine_commits_are_bound_too(lake):
    _root, bronze, quarantine, trail, _policy = lake
    DeltaTable(str(quarantine)).delete(commit_properties=props("run-a"))
    commit(quarantine, None, [5])
    text = _problems(bronze, trail)
    assert "quarantine version 2 (DELETE) carries the id of run 'run-a'" in text
    assert "quarantine version 3 (WRITE) names no run id" in text


def test_a_removed_quarantine_is_reported(lake):
    import shutil

    _root, bronze, quarantine, trail, _policy = lake
    shutil.rmtree(quarantine)
    assert "no Delta table there, but run 'run-a' recorded commits to it" in _problems(bronze, trail)


def test_quarantine_named_explicitly(lake, tmp_path):
    root, bronze, quarantine, trail, policy = lake
    moved = root / "elsewhere_q"
    quarantine.rename(moved)
    code, out, _ = cli(str(trail), "--policy", str(policy), "--against", str(bronze), "--quarantine", str(moved))
    assert code == 0, out
    commit(moved, None, [1])
    code, out, _ = cli(str(trail), "--policy", str(policy), "--against", str(bronze), "--quarantine", str(moved))
    assert code == 1 and out["against"]["quarantine"] == str(moved)


# ------------------------------------------------------------------------------------- older and crashed runs
def test_a_crashed_run_is_bound_by_the_unfinished_event(tmp_path):
    bronze, trail = tmp_path / "bronze", tmp_path / "audit.jsonl"
    sink = JsonlSink(trail)
    sink.append(event("run-c", "ingest_started", pending=True))
    commit(bronze, "run-c")
    sink.append(event("run-d", "ingest_unfinished", pending_run_id="run-c", commits={"bronze": [0]}))
    assert "version 0" not in _problems(bronze, trail)
    commit(bronze, "run-c", [9])  # a copy of the crashed run's id
    assert "bronze version 1 (WRITE) carries the id of run 'run-c', but no event" in _problems(bronze, trail)


def test_older_events_with_one_version_bound_the_run_from_both_sides(tmp_path):
    bronze, trail = tmp_path / "bronze", tmp_path / "audit.jsonl"
    sink = JsonlSink(trail)
    commit(bronze, "run-1")
    commit(bronze, "run-1")
    sink.append(event("run-1", commits={"bronze": 1}))
    commit(bronze, "run-2")
    sink.append(event("run-2", commits={"bronze": 2}))
    assert "unaudited commit" not in _problems(bronze, trail)
    commit(bronze, "run-1")  # version 3 with the first run's id: above its recorded version
    commit(bronze, "run-2")  # version 4 with the second run's id
    text = _problems(bronze, trail)
    assert "bronze version 3 (WRITE) carries the id of run 'run-1'" in text
    assert "bronze version 4 (WRITE) carries the id of run 'run-2'" in text


# ------------------------------------------------------------------------------------ the Delta trail's own history
@pytest.fixture
def delta_trail(tmp_path):
    from lakehouse_phi.audit.sinks import DeltaSink

    path = tmp_path / "trail"
    sink = DeltaSink(None, str(path), seal_key=SecretKey("trail", 1, K1), run_id="run-t")  # delta-rs, no Spark
    for i in range(4):
        sink.append(event(f"run-{i}"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return path, policy


def test_a_genuine_delta_trail_verifies(delta_trail):
    path, policy = delta_trail
    code, out, _ = cli(str(path), "--policy", str(policy))
    assert code == 0 and out["events"] == 4 and out["problems"] == []


def test_a_restored_delta_trail_is_not_intact(delta_trail):
    """RESTORE to an earlier version is allowed by appendOnly and leaves an intact, shorter chain."""
    path, policy = delta_trail
    DeltaTable(str(path)).restore(1)
    code, out, _ = cli(str(path), "--policy", str(policy))
    assert out["first_bad"] is None and out["events"] < 4  # the chain alone sees nothing
    assert code == 1 and any("(RESTORE) rolled back to version 1" in p for p in out["problems"])


def test_append_only_turned_off_then_delete(delta_trail):
    path, _policy = delta_trail
    DeltaTable(str(path)).alter.set_table_properties({"delta.appendOnly": "false"})
    code, out, _ = cli(str(path), "--key", "trail=env:TRAIL_K1")
    assert code == 1 and any("turned delta.appendOnly off" in p for p in out["problems"])
    DeltaTable(str(path)).delete("seq = 3")  # the last event: the chain stays intact
    code, out, _ = cli(str(path), "--key", "trail=env:TRAIL_K1")
    problems = " | ".join(out["problems"])
    assert code == 1 and out["first_bad"] is None and "(DELETE) an append-only trail" in problems


# ------------------------------------------------------------------------------------ the report: the same verdict
@pytest.mark.parametrize("tamper", ["none", "strip", "empty", "foreign", "restore"])
def test_the_report_shows_the_verdict_of_audit_verify(tmp_path, delta_trail, tamper):
    path, policy = delta_trail
    if tamper == "strip":
        import shutil

        events = [json.loads(r["record"]) for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist()]
        shutil.rmtree(path)
        path = tmp_path / "stripped.jsonl"
        path.write_text("".join(canonical_json(e) + "\n" for e in sorted(events, key=lambda e: e["seq"])))
        _rehash(path, lambda ev: {k: v for k, v in ev.items() if k not in ("seal_key", "seal_key_version", "mac")})
    elif tamper == "empty":
        path = tmp_path / "empty.jsonl"
        path.write_text("")
    elif tamper == "foreign":
        path = tmp_path / "foreign.jsonl"
        JsonlSink(path, SecretKey("trail", 1, OTHER)).append(event("run-f"))
    elif tamper == "restore":
        DeltaTable(str(path)).restore(2)
    code, out, _ = cli(str(path), "--policy", str(policy))
    html = tmp_path / "report.html"
    proc = run_cli("report", str(policy), "--audit", str(path), "--out", str(html), "--format", "json", env=ENV)
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    page = html.read_text()
    assert report["audit_intact"] is out["ok"] and proc.returncode == code
    assert ("BROKEN" in page) is (not out["ok"])
    assert (tamper == "none") is out["ok"]


# ------------------------------------------------------------------ the lifecycle commands' own commits are bound
def test_rekey_erase_vacuum_and_purge_verify_and_a_copied_id_does_not(tmp_path):
    """Real rekey, erase (with its VACUUM) and purge runs on delta-rs tables after an audited ingest: every commit
    is bound to its run by version and operation; a later DELETE tagged with the erase's run id is not."""
    import datetime as dt

    from tests.unit.lifecycle_helpers import ENV as LC_ENV
    from tests.unit.lifecycle_helpers import masked, material, policy_text, rows, write

    utc = dt.timezone.utc
    bronze, quarantine, trail = tmp_path / "bronze", tmp_path / "bronze_quarantine", tmp_path / "audit.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(bronze))  # token, dek, fpe-key rotated to v2; audit key 'trail'
    sink = JsonlSink(trail, SecretKey("trail", 1, material("trail", 1)))
    sink.append(event("run-a", "ingest_started", pending=True))
    write(bronze, masked(policy, rows(6), 1, dt.datetime(2024, 1, 1, tzinfo=utc), "run-a"), "run-a")
    write(quarantine, masked(policy, rows(2, start=20), 1, dt.datetime(2024, 1, 1, tzinfo=utc), "run-a"), "run-a")
    closing = sink.append(event("run-a", "ingest", commits={"bronze": [0], "quarantine": [0]},
                                bronze=str(bronze), quarantine=str(quarantine)))
    DeltaTable(str(bronze)).alter.set_table_properties({ANCHOR_SEQ: str(closing["seq"]), ANCHOR_HASH: closing["hash"]},
                                                       raise_if_not_exists=False, commit_properties=props("run-a"))
    common = [str(policy), "--table", "patients", "--bronze", str(bronze), "--audit", str(trail)]
    for args, stdin in ((["rekey", *common], None),
                        (["erase", *common, "--subjects", "-", "--vacuum-hours", "0"], "MRN0000001\n"),
                        (["purge", *common, "--as-of", "2024-01-15"], None)):  # nothing old enough yet
        proc = run_cli(*args, stdin=stdin, env=LC_ENV)
        assert proc.returncode == 0, (args[0], proc.stderr)
    ops = {h["operation"] for h in DeltaTable(str(bronze)).history()}
    assert {"MERGE", "VACUUM START", "VACUUM END"} <= ops, ops
    verify = ["audit", "verify", str(trail), "--policy", str(policy), "--against", str(bronze), "--format", "json"]
    proc = run_cli(*verify, env=LC_ENV)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, out.get("against", out)
    erase_run = next(json.loads(line)["run_id"] for line in trail.read_text().splitlines()
                     if json.loads(line)["event"] == "erase")
    assert DeltaTable(str(bronze)).to_pyarrow_table().num_rows == 5
    DeltaTable(str(bronze)).delete(commit_properties=props(erase_run))  # every row, with the erase's run id
    proc = run_cli(*verify, env=LC_ENV)
    problems = " | ".join(json.loads(proc.stdout)["against"]["problems"])
    assert proc.returncode == 1 and f"carries the id of run '{erase_run}', but no event of that run records" in problems
