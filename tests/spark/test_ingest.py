"""The bronze ingest job on real engines: pysail (Delta, read back with delta-rs), classic Spark and local Spark
Connect (Parquet), spark-submit, and the Databricks notebook's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakehouse_phi import synth
from lakehouse_phi.deltars import read_delta
from lakehouse_phi.engine.plan import ERRORS_COL, key_needs
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from lakehouse_phi.spark.mask import mask
from lakehouse_phi.spark.read import read_source
from tests.helpers import DEK_VAR, EXAMPLE, ROOT, demo_env

DeltaTable = pytest.importorskip("deltalake").DeltaTable  # the [local] extra

ENV, OVERRIDES = demo_env()
KEY_ARGS = ["--key", f"phi-dek=env:{DEK_VAR}"]
BIN = Path(sys.executable).parent


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lakehouse_phi", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def options(tmp: Path, table: str, **kw) -> IngestOptions:
    base = dict(input_path=str(tmp / "landing" / table), bronze=str(tmp / "bronze" / table),
                quarantine=str(tmp / "quarantine" / table), audit=str(tmp / "audit"), key_overrides=OVERRIDES,
                fetchers=Fetchers(environ=ENV), allow_insecure=True)
    return IngestOptions(**{**base, **kw})


def delta_rows(path: Path) -> list[dict]:
    return read_delta(path).to_pylist()


@pytest.fixture(scope="module")
def loaded():
    return load_policy(EXAMPLE)


# ------------------------------------------------------------------------------------------- counts and merge
def test_counts_add_up_and_a_rerun_changes_nothing(sail, loaded, tmp_path):
    n, rate, seed = 3000, 0.05, 11
    synth.write_landing(tmp_path, {"patients": n}, seed=seed, malformed_rate=rate)
    expected_bad = len(synth.generate_table("patients", n, seed, rate).malformed_rows())

    first = run_ingest(sail, loaded, "patients", options(tmp_path, "patients", table_format="delta"))
    assert first.rows_read == n == first.rows_written + first.rows_quarantined
    assert first.rows_quarantined == expected_bad > 0
    assert first.rows_inserted == first.rows_written
    event = first.event
    assert (event["rows_read"], event["rows_written"], event["rows_quarantined"]) == (n, n - expected_bad,
                                                                                      expected_bad)
    bronze = delta_rows(tmp_path / "bronze" / "patients")
    quarantine = delta_rows(tmp_path / "quarantine" / "patients")
    assert len(bronze) == n - expected_bad and len(quarantine) == expected_bad
    assert all(r[ERRORS_COL] for r in quarantine) and ERRORS_COL not in bronze[0]
    assert sum(len(r[ERRORS_COL]) for r in quarantine) == sum(first.quarantine_reasons.values())

    props = DeltaTable(str(tmp_path / "bronze" / "patients")).metadata().configuration
    assert props["lakehouse_phi.policy_sha256"] == loaded.sha256
    assert json.loads(props["lakehouse_phi.key_versions"]) == {"fpe-key": 2, "phi-dek": 3, "pseudonym": 1}
    assert props["lakehouse_phi.audit_hash"] == event["hash"]

    second = run_ingest(sail, loaded, "patients", options(tmp_path, "patients", table_format="delta"))
    assert second.rows_inserted == 0 and second.rows_read == n
    again = delta_rows(tmp_path / "bronze" / "patients")
    stable = ("mrn", "ssn_token", "last_name", "member_id", "zip", "age", "email")

    def view(rows):
        return sorted(tuple(r[c] for c in stable) for r in rows)

    assert view(again) == view(bronze)          # same rows, same tokens: nothing added, nothing changed
    assert {r["_ingest_run_id"] for r in again} == {first.run_id}


def test_same_input_and_key_give_the_same_tokens_in_another_run(sail, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 500}, seed=3, malformed_rate=0.0)
    a = run_ingest(sail, loaded, "claims", options(tmp_path, "claims", table_format="delta",
                                                   bronze=str(tmp_path / "a")))
    b = run_ingest(sail, loaded, "claims", options(tmp_path, "claims", table_format="delta",
                                                   bronze=str(tmp_path / "b")))
    assert a.rows_written == b.rows_written == 500
    tokens = [sorted((r["claim_id"], r["mrn"], r["member_id"]) for r in delta_rows(tmp_path / x)) for x in "ab"]
    assert tokens[0] == tokens[1]


def test_parquet_on_classic_spark_merges_on_record_key(spark, loaded, tmp_path):
    synth.write_landing(tmp_path, {"claims": 800}, seed=5, malformed_rate=0.05)
    opts = options(tmp_path, "claims", table_format="parquet", audit=str(tmp_path / "audit.jsonl"))
    first = run_ingest(spark, loaded, "claims", opts)
    second = run_ingest(spark, loaded, "claims", opts)
    assert first.rows_read == 800 == first.rows_written + first.rows_quarantined
    assert second.rows_inserted == 0
    bronze = pq.read_table(tmp_path / "bronze" / "claims")
    assert bronze.num_rows == first.rows_written
    out = cli("audit", "verify", str(tmp_path / "audit.jsonl"), "--policy", str(EXAMPLE))  # a sealed trail
    assert out.returncode == 0 and "4 events" in out.stdout  # per run: ingest_started, then ingest


# ------------------------------------------------------------------------------------------------ no leaks
SENTINELS = {
    "ssn": "999-88-7777", "first_name": "Zebulonquartz", "last_name": "Quixotrellan",
    "email": "zebulon.quartz@sentinel-phi.example", "address": "4242 Sentinel Lane", "mrn": "MRN9876543",
    "member_id": "987-654-3210",
}
BAD_SENTINELS = {"ssn": "99-887-766", "mrn": "MRNX987654", "first_name": "Vorpalindrome"}
NOTE_SENTINEL = "Called back at 999-88-7777, wrote to zebulon.quartz@sentinel-phi.example re MRN9876543"
EXTRA_SENTINEL = "Quixotrellan 999887777"
ALL = [*SENTINELS.values(), *BAD_SENTINELS.values(), "999887777"]


def _landing_with_sentinels(root: Path, extra_patient_column: bool) -> int:
    gen = synth.generate_table("patients", 400, seed=21, malformed_rate=0.05)
    malformed = sorted(gen.malformed_rows())
    bad_row = int(malformed[0])
    good_row = next(i for i in range(400) if i not in set(malformed))
    patients = gen.table
    for col, value in SENTINELS.items():
        patients = synth.inject(patients, col, value, [good_row])
    for col, value in BAD_SENTINELS.items():
        patients = synth.inject(patients, col, value, [bad_row])
    if extra_patient_column:
        patients = patients.append_column("insurance_memo", patients.column("mrn").cast("string"))
        patients = synth.inject(patients, "insurance_memo", EXTRA_SENTINEL, [good_row, bad_row])
    encounters = synth.generate("encounters", 300, seed=21, malformed_rate=0.05, patients=400)
    encounters = synth.inject(encounters, "note", NOTE_SENTINEL, [0, 1], embed=True)
    encounters = encounters.append_column("insurance_memo", encounters.column("mrn"))
    encounters = synth.inject(encounters, "insurance_memo", EXTRA_SENTINEL, list(range(300)))
    synth.write_tables(root, {"patients": patients, "encounters": encounters})
    return good_row


def _every_text(root: Path) -> str:
    """All bytes under ``root`` as text, with Parquet files decoded (their pages are compressed)."""
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    return "\n".join(parts)


def test_sentinel_phi_is_found_in_no_output_byte(tmp_path):
    _landing_with_sentinels(tmp_path, extra_patient_column=False)
    landing_text = _every_text(tmp_path / "landing")
    for s in ALL:
        assert s in landing_text, f"positive control: sentinel {s!r} must be in the landing data"
    out_dir = tmp_path / "out"
    runs = [cli("ingest", str(EXAMPLE), "--table", t, "--engine", "sail", "--allow-insecure", *KEY_ARGS,
                "--input", str(tmp_path / "landing" / t), "--bronze", str(out_dir / "bronze" / t),
                "--audit", str(out_dir / "audit")) for t in ("patients", "encounters")]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    # the refused run: an undeclared column under on_unclassified: fail
    _landing_with_sentinels(tmp_path / "drift", extra_patient_column=True)
    refused = cli("ingest", str(EXAMPLE), "--table", "patients", "--engine", "sail", "--allow-insecure", *KEY_ARGS,
                  "--input", str(tmp_path / "drift" / "landing" / "patients"),
                  "--bronze", str(out_dir / "drift_bronze"), "--audit", str(out_dir / "audit"))
    # an undeclared column is named by position and keyed hash only (a name may be PHI)
    assert refused.returncode == 1 and "not declared" in refused.stderr and "insurance_memo" not in refused.stderr
    assert not (out_dir / "drift_bronze").exists()

    produced = _every_text(out_dir)
    assert "_delta_log" in "".join(str(p) for p in out_dir.rglob("*"))  # the Delta logs were scanned too
    streams = "".join(r.stdout + r.stderr for r in [*runs, refused])
    for s in ALL:
        assert s not in produced, f"sentinel {s!r} leaked into an output file"
        assert s not in streams, f"sentinel {s!r} leaked into stdout/stderr"
    events = [json.loads(r["record"]) for r in delta_rows(out_dir / "audit")]
    events.sort(key=lambda e: e["seq"])
    assert [e["event"] for e in events] == ["ingest_started", "ingest", "ingest_started", "ingest", "ingest_refused"]
    dropped = events[3]["details"]["dropped_columns"]   # encounters: on_unclassified: drop
    assert len(dropped) == 1 and dropped[0].startswith("#") and " h:" in dropped[0]
    assert "insurance_memo" not in dropped[0]


def test_plan_text_holds_no_key_and_no_value(spark, sail, loaded, tmp_path):
    _landing_with_sentinels(tmp_path, extra_patient_column=False)
    keys = load_keys({**loaded.policy.keys, **OVERRIDES}, key_needs(loaded.policy.tables["patients"]),
                     Fetchers(environ=ENV))
    secrets = [ENV[v] for v in ENV] + [k.material.hex() for k in keys.values()]
    for session in (spark, sail):
        source, _ = read_source(session, "csv", str(tmp_path / "landing" / "patients"), {"header": "true"})
        masked = mask(source, loaded, "patients", keys=keys).masked
        text = (masked._explain_string(extended=True) if hasattr(masked, "_explain_string")
                and "connect" in type(masked).__module__ else masked._jdf.queryExecution().toString())
        assert "MapInArrow" in text or "MapPartitions" in text  # positive control: the mask pass is in the plan
        for s in secrets + ALL:
            assert s not in text
        assert masked.count() == 400


# ---------------------------------------------------------------------------------------------- failure modes
@pytest.fixture(scope="module")
def claims_landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    synth.write_landing(root, {"claims": 200}, seed=2, malformed_rate=0.0)
    return root


def _ingest_claims(root: Path, *extra: str, env: dict | None = None, policy: str = str(EXAMPLE)):
    return cli("ingest", policy, "--table", "claims", "--engine", "sail", "--input", str(root / "landing" / "claims"),
               "--bronze", str(root / "bronze"), "--audit", str(root / "audit.jsonl"), *extra, env=env)


def test_missing_key_exits_1_naming_the_key_and_writes_nothing(claims_landing):
    out = _ingest_claims(claims_landing, "--allow-insecure", env={"LAKEHOUSE_PHI_PSEUDONYM_KEY": ""})
    assert out.returncode == 1
    assert "key 'pseudonym'" in out.stderr and "LAKEHOUSE_PHI_PSEUDONYM_KEY" in out.stderr
    assert "Traceback" not in out.stderr and not (claims_landing / "bronze").exists()


def test_unreadable_source_exits_1(claims_landing, tmp_path):
    out = cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", "sail", "--allow-insecure",
              "--input", str(tmp_path / "nowhere"), "--bronze", str(tmp_path / "bronze"))
    assert out.returncode == 1 and "cannot read the source" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "bronze").exists()


def test_invalid_policy_exits_2_before_spark(tmp_path, claims_landing):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("strategy: hmac, key: pseudonym}", "strategy: hmac, key: nokey}", 1))
    out = _ingest_claims(claims_landing, "--allow-insecure", policy=str(bad))
    assert out.returncode == 2 and "nokey" in out.stderr and not (claims_landing / "bronze").exists()


def test_insecure_session_stops_before_reading_data_naming_each_rule(tmp_path):
    out = cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", "sail", "--input", str(tmp_path / "nowhere"),
              "--bronze", str(tmp_path / "bronze"))
    assert out.returncode == 1
    assert "io-encryption" in out.stderr and "cannot read the source" not in out.stderr
    assert not (tmp_path / "bronze").exists()


def test_allow_insecure_is_printed_and_audited(claims_landing):
    out = _ingest_claims(claims_landing, "--allow-insecure", "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--allow-insecure" in out.stderr
    event = json.loads((claims_landing / "audit.jsonl").read_text().splitlines()[-1])
    assert event["details"]["allow_insecure"] is True and "io-encryption" in event["details"]["conf_errors"]


# ------------------------------------------------------------------------------------- three entries, one engine
def test_spark_connect_local_session_runs_the_job(claims_landing, tmp_path):
    out = cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", "connect", "--table-format", "parquet",
              "--allow-insecure", "--input", str(claims_landing / "landing" / "claims"),
              "--bronze", str(tmp_path / "bronze"), "--format", "json")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["rows_read"] == 200 == summary["rows_written"] + summary["rows_quarantined"]
    assert pq.read_table(tmp_path / "bronze").num_rows == summary["rows_written"]


def test_spark_submit_entry_with_a_secure_session(claims_landing, tmp_path):
    cmd = [str(BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.io.encryption.enabled=true",
           "--conf", "spark.io.encryption.keySizeBits=256", "--conf", "spark.ui.enabled=false",
           str(ROOT / "jobs" / "bronze_ingest.py"), str(EXAMPLE), "--table", "claims", "--table-format", "parquet",
           "--input", str(claims_landing / "landing" / "claims"), "--bronze", str(tmp_path / "bronze"),
           "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable})
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout[out.stdout.index("{"):])
    assert summary["rows_read"] == 200 and "allow-insecure" not in out.stderr


def test_databricks_notebook_code_runs_locally(sail, tmp_path):
    from tests.notebook import run_notebook

    synth.write_landing(tmp_path, {"claims": 300}, seed=8, malformed_rate=0.02)
    secrets = {("phi-keys", "ssn-dek"): ENV[DEK_VAR]}
    widgets = {"policy": str(EXAMPLE), "table": "claims", "input": str(tmp_path / "landing" / "claims"),
               "bronze": str(tmp_path / "bronze"), "quarantine": str(tmp_path / "quarantine"),
               "audit": str(tmp_path / "audit")}
    os.environ.update({k: v for k, v in ENV.items() if k != DEK_VAR})
    widgets["allow_insecure"] = "true"  # pysail reports no io-encryption setting; a local run says so explicitly
    ns = run_notebook(ROOT / "notebooks" / "01_bronze_ingest.py", spark=sail, widgets=widgets, secrets=secrets)
    result = ns["result"]
    assert result.rows_read == 300 == result.rows_written + result.rows_quarantined
    assert len(delta_rows(tmp_path / "bronze")) == result.rows_written


# ------------------------------------------------------------------------------ PHI-looking values in non-PHI columns
def _policy_with_scan(tmp: Path, on_detect: str) -> Path:
    text = EXAMPLE.read_text().replace(
        "    record_key: [claim_id]\n",
        f"    record_key: [claim_id]\n    phi_scan: {{sample_rows: 1000, on_detect: {on_detect}}}\n")
    path = tmp / f"policy-{on_detect}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("on_detect", ["warn", "fail"])
def test_phi_looking_values_in_a_non_phi_column_are_reported(tmp_path, on_detect):
    claims = synth.generate("claims", 300, seed=4)
    claims = synth.inject(claims, "payer", "call 555-201-7788 or jane.roe@mail.example", list(range(0, 300, 10)))
    synth.write_tables(tmp_path, {"claims": claims})
    out = cli("ingest", str(_policy_with_scan(tmp_path, on_detect)), "--table", "claims", "--engine", "sail",
              "--allow-insecure", "--input", str(tmp_path / "landing" / "claims"), "--bronze", str(tmp_path / "bronze"),
              "--audit", str(tmp_path / "audit.jsonl"), "--format", "json")
    event = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert "555-201-7788" not in out.stderr + out.stdout + json.dumps(event)
    if on_detect == "warn":
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout)["phi_scan"]["payer"] == {"ssn": 0, "email": 30, "phone": 30}
        assert event["details"]["phi_scan"]["payer"]["phone"] == 30 and "payer" in out.stderr
    else:
        assert out.returncode == 1 and "payer: 30 email, 30 phone" in out.stderr
        assert event["event"] == "ingest_refused" and not (tmp_path / "bronze").exists()


def test_scrub_replacements_counted_per_tag_in_the_audit_event(sail, loaded, tmp_path):
    """details.scrub: per scrub_text column, replacements per tag, counted from what was written; counts only."""
    synth.write_landing(tmp_path, {"encounters": 400}, seed=5, malformed_rate=0.0)
    result = run_ingest(sail, loaded, "encounters", options(tmp_path, "encounters", table_format="delta"))
    counts = result.event["details"]["scrub"]["note"]
    assert counts and all(isinstance(k, str) and type(v) is int and v > 0 for k, v in counts.items())
    notes = [r["note"] or "" for r in delta_rows(tmp_path / "bronze" / "encounters")]
    for tag, n in counts.items():
        assert n == sum(t.count(f"[{tag}]") for t in notes), tag
    assert {"SSN", "PHONE", "DATE"} <= set(counts)


def test_known_rosters_are_read_from_the_other_tables_source(sail, tmp_path):
    """encounters.note with known: [patients.first_name, patients.last_name]: the batch job reads the patients'
    landing, and every patient's name goes from every note, whatever its case, with no cue beside it."""
    import yaml

    synth.write_landing(tmp_path, {"patients": 50, "encounters": 20}, seed=9, malformed_rate=0.0)
    data = yaml.safe_load(EXAMPLE.read_text())
    data["tables"]["patients"]["source"]["path"] = str(tmp_path / "landing" / "patients")
    data["tables"]["encounters"]["columns"]["note"]["ingest"]["known"] = ["patients.first_name",
                                                                         "patients.last_name"]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(data))
    lines = (tmp_path / "landing" / "patients").glob("*.csv")
    first, last = next(iter(lines)).read_text().splitlines()[1].split(",")[2:4]
    first, last = first.strip('"'), last.strip('"')
    record = json.loads((tmp_path / "landing" / "encounters" / "part-00000.json").read_text().splitlines()[0])
    record.update(encounter_id="E999999999", note=f"spoke to {first.lower()} {last.upper()} re results; ok")
    (tmp_path / "landing" / "encounters" / "extra.json").write_text(json.dumps(record) + "\n")
    result = run_ingest(sail, load_policy(policy_file), "encounters",
                        options(tmp_path, "encounters", table_format="delta"))
    rows = {r["encounter_id"]: r["note"] for r in delta_rows(tmp_path / "bronze" / "encounters")}
    assert result.rows_written == 21
    assert "[NAME]" in rows["E999999999"] and last.upper() not in rows["E999999999"]
    assert first.lower() not in rows["E999999999"].lower()
    assert result.event["details"]["scrub"]["note"]["NAME"] >= 1
