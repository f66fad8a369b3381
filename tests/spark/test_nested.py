"""Nested columns end to end: FHIR R4 Patient and Encounter resources (ndjson) and Parquet structs, masked leaf by
leaf on pysail, classic Spark and Spark Connect; bronze keeps the nesting and no sentinel PHI reaches any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_phi.deltars import read_delta
from lakehouse_phi.engine.plan import ERRORS_COL
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.load import LoadedPolicy, parse_yaml, policy_from_data
from lakehouse_phi.spark.ingest import IngestOptions, run_ingest
from lakehouse_phi.synth import fhir
from tests.helpers import EXAMPLE, ROOT, demo_env

ENV, OVERRIDES = demo_env()
SENTINELS = {"family": "Quixotrellan", "given": "Zebulonquartz", "phone": "555-987-6543", "line": "4242 Sentinel Lane",
             "city": "Vorpalton", "mrn": "MRN9876543", "maiden": "Frabjousson", "kin": "Jabberwockson"}


@pytest.fixture(scope="module")
def loaded():
    return load_policy(EXAMPLE)


def _landing(root: Path, n: int = 40) -> list[dict]:
    pats = fhir.patients(n, seed=7)
    p = pats[3]
    p["name"] = [{"use": "official", "family": SENTINELS["family"], "given": [SENTINELS["given"], "Ann"]}]
    p["telecom"] = [{"system": "phone", "value": SENTINELS["phone"], "use": "home"}]
    p["address"] = [{"use": "home", "line": [SENTINELS["line"]], "city": SENTINELS["city"], "state": "MA",
                     "postalCode": "02115"}]
    p["identifier"] = [{"system": "http://hospital.example.org/mrn", "value": SENTINELS["mrn"]}]
    p["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                       "valueString": SENTINELS["maiden"]}]
    p["contact"] = [{"name": {"family": SENTINELS["kin"]}}]
    fhir.write_fhir(root, 0)  # the folders
    # two files whose structs hold different fields (a JSON reader infers each file's shape differently)
    for p in pats[: n // 2]:
        for name in p["name"]:
            name.pop("prefix", None)
        p.pop("telecom", None)
    pats[-1]["name"][0]["suffix"] = ["Jr."]
    (root / fhir.FHIR_LANDING["Patient"] / "Patient.ndjson").write_bytes(fhir.ndjson(pats[: n // 2]))
    (root / fhir.FHIR_LANDING["Patient"] / "Patient-2.ndjson").write_bytes(fhir.ndjson(pats[n // 2:]))
    (root / fhir.FHIR_LANDING["Encounter"] / "Encounter.ndjson").write_bytes(
        fhir.ndjson(fhir.encounters(pats, 2, seed=7)))
    return pats


def _options(tmp: Path, table: str, resource: str, **kw) -> IngestOptions:
    base = dict(input_path=str(tmp / fhir.FHIR_LANDING[resource]), bronze=str(tmp / "bronze" / table),
                quarantine=str(tmp / "quarantine" / table), audit=str(tmp / "audit.jsonl"),
                key_overrides=OVERRIDES, fetchers=Fetchers(environ=ENV), allow_insecure=True)
    return IngestOptions(**{**base, **kw})


def _every_text(root: Path) -> str:
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    return "\n".join(parts)


def _check_patients(rows: list[dict], pats: list[dict]) -> None:
    by_zip = {r["home_zip3"] for r in rows}
    assert by_zip - {None} <= {"021", "627", "122", "787", "972", "802", "537", "857"}
    assert len(rows) == len(pats)
    for r in rows:
        assert r.get(ERRORS_COL) in (None, [])
        assert len(r["id"]) == 64 and r["extension"] is None and r["contact"] is None
    # the shape is kept: as many names, givens and address lines as the resource had, in order
    assert sorted(len(r["name"] or []) for r in rows) == sorted(len(p.get("name", [])) for p in pats)
    assert sorted(len(r["address"] or []) for r in rows) == sorted(len(p.get("address", [])) for p in pats)
    lines = sorted(len(a["line"]) for r in rows for a in (r["address"] or []))
    assert lines == sorted(len(a["line"]) for p in pats for a in p.get("address", []))
    assert all(a["line"] == ["[REDACTED]"] * len(a["line"]) for r in rows for a in (r["address"] or []))
    assert all(g is None for r in rows for n in (r["name"] or []) for g in (n["given"] or []))
    assert all(len(t["value"]) > 4 and t["value"].startswith("*") for r in rows for t in (r["telecom"] or []))


def test_fhir_patient_and_encounter_on_pysail_delta(sail, loaded, tmp_path):
    pats = _landing(tmp_path)
    assert SENTINELS["family"] in _every_text(tmp_path / "landing")  # positive control
    first = run_ingest(sail, loaded, "patient_fhir", _options(tmp_path, "patient_fhir", "Patient",
                                                               table_format="delta"))
    assert first.rows_read == 40 and first.rows_written == 40 and first.rows_quarantined == 0
    rows = read_delta(tmp_path / "bronze" / "patient_fhir").to_pylist()
    _check_patients(rows, pats)
    # a re-delivered export changes nothing (fingerprints over the declared leaves)
    again = run_ingest(sail, loaded, "patient_fhir", _options(tmp_path, "patient_fhir", "Patient",
                                                               table_format="delta"))
    assert again.rows_inserted == 0
    enc = run_ingest(sail, loaded, "encounter_fhir", _options(tmp_path, "encounter_fhir", "Encounter",
                                                               table_format="delta"))
    assert enc.rows_written == 80
    erows = read_delta(tmp_path / "bronze" / "encounter_fhir").to_pylist()
    assert all(r["subject"]["display"] is None and len(r["subject"]["reference"]) == 64 for r in erows)
    assert all(r["period"]["start"].day == 1 for r in erows)
    produced = _every_text(tmp_path / "bronze") + _every_text(tmp_path / "quarantine") \
        + (tmp_path / "audit.jsonl").read_text()
    for s in SENTINELS.values():
        assert s not in produced, f"sentinel {s!r} leaked"
    event = next(json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()
                 if json.loads(x)["event"] == "ingest")
    assert event["columns"]["name[].family"] == {"strategy": "hmac", "key_version": 1}
    _risk_and_export(sail, loaded, tmp_path, rows)


def _risk_and_export(session, loaded, tmp: Path, rows: list[dict]) -> None:
    """risk and export read the leaf address[0].postalCode through the column derived from it (home_zip3)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lakehouse_phi.policy.model import KeySpec
    from lakehouse_phi.release.export import run_export
    from lakehouse_phi.release.risk import risk_of_table

    spec = loaded.policy.tables["patient_fhir"]
    report = risk_of_table(session, spec, "patient_fhir", str(tmp / "bronze" / "patient_fhir"))
    assert report.quasi_identifiers == ["gender", "birthDate", "home_zip3"] and report.records == len(rows)
    classes = {(r["gender"], r["birthDate"], r["home_zip3"]) for r in rows}
    assert report.classes == len(classes)
    signer = tmp / "signer.pem"
    signer.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # k = 2 over (gender, home_zip3), so that some of the 40 records are released
    cut = spec.model_copy(update={"risk": spec.risk.model_copy(update={"k": 2}),
                                  "export": spec.export.model_copy(update={"columns": ["gender", "home_zip3"]})})
    loaded = LoadedPolicy(loaded.policy.model_copy(update={"tables": {**loaded.policy.tables, "patient_fhir": cut}}),
                          loaded.sha256, loaded.path)
    out = tmp / "export"
    overrides = {"export-signer": KeySpec(provider="file", ref=str(signer))}
    if loaded.policy.audit is not None:  # the trail's sealing key, from the same fixed test material
        spec_audit = loaded.policy.keys[loaded.policy.audit.key]
        (tmp / "audit.key").write_text(ENV[spec_audit.ref])
        overrides[loaded.policy.audit.key] = KeySpec(provider="file", ref=str(tmp / "audit.key"),
                                                     version=spec_audit.version)
    result = run_export(session, loaded, "patient_fhir", str(out), source=str(tmp / "bronze" / "patient_fhir"),
                        audit=str(tmp / "export_audit.jsonl"), key_overrides=overrides)
    exported = pq.read_table(out / "data").to_pylist()
    assert 0 < len(exported) == result.records_exported and set(exported[0]) == {"gender", "home_zip3"}
    assert result.k_achieved >= 2
    _leaf_risk_and_export(session, loaded, tmp, rows, overrides)


def _leaf_risk_and_export(session, loaded, tmp: Path, rows: list[dict], overrides: dict) -> None:
    """risk and export name the leaf itself (address[0].postalCode, read with get(): NULL for a patient without
    an address), released as address_0_postalCode."""
    from collections import Counter

    from lakehouse_phi.release.export import run_export
    from lakehouse_phi.release.risk import risk_of_table

    spec = loaded.policy.tables["patient_fhir"]
    leaf = spec.model_copy(update={"risk": spec.risk.model_copy(update={"k": 2}), "export": spec.export.model_copy(
        update={"columns": ["gender", "address[0].postalCode"]})})
    loaded = LoadedPolicy(loaded.policy.model_copy(update={"tables": {**loaded.policy.tables, "patient_fhir": leaf}}),
                          loaded.sha256, loaded.path)
    first = [(r["gender"], (r["address"][0] or {}).get("postalCode") if r["address"] else None) for r in rows]
    assert any(z is None for _, z in first) and any(z is not None for _, z in first)  # both cases are exercised
    classes = Counter(first)
    report = risk_of_table(session, leaf, "patient_fhir", str(tmp / "bronze" / "patient_fhir"))
    assert report.quasi_identifiers == ["gender", "address_0_postalCode"]
    assert (report.records, report.classes, report.k) == (len(rows), len(classes), min(classes.values()))
    out = tmp / "export_leaf"
    result = run_export(session, loaded, "patient_fhir", str(out), source=str(tmp / "bronze" / "patient_fhir"),
                        audit=str(tmp / "export_audit.jsonl"), key_overrides=overrides)
    exported = pq.read_table(out / "data").to_pylist()
    kept = Counter({c: n for c, n in classes.items() if n >= leaf.risk.k})
    assert 0 < sum(kept.values()) < len(rows)  # some released, some suppressed
    assert Counter((r["gender"], r["address_0_postalCode"]) for r in exported) == kept
    assert result.manifest["columns"] == ["gender", "address_0_postalCode"] and result.k_achieved >= leaf.risk.k


def test_bad_leaf_quarantined_by_path_on_classic_spark_json(spark, loaded, tmp_path):
    pats = _landing(tmp_path, 12)
    pats[5]["gender"] = "SENTINEL-GENDER"
    pats[6]["address"] = [{"line": ["x"], "postalCode": {"nested": "SENTINEL-ZIP"}}]  # a struct in a scalar leaf
    (tmp_path / fhir.FHIR_LANDING["Patient"] / "Patient-2.ndjson").unlink()
    (tmp_path / fhir.FHIR_LANDING["Patient"] / "Patient.ndjson").write_bytes(fhir.ndjson(pats))
    res = run_ingest(spark, loaded, "patient_fhir", _options(tmp_path, "patient_fhir", "Patient",
                                                             table_format="parquet"))
    assert res.rows_read == 12 and res.rows_quarantined >= 1
    q = pq.read_table(tmp_path / "quarantine" / "patient_fhir").to_pylist()
    reasons = sorted((e["column"], e["rule"]) for r in q for e in r[ERRORS_COL])
    assert ("gender", "pattern") in reasons
    text = _every_text(tmp_path / "quarantine") + _every_text(tmp_path / "bronze")
    assert "SENTINEL-GENDER" not in text and "SENTINEL-ZIP" not in text


PARQUET_POLICY = """
version: 1
name: nested-parquet
keys: {pseudonym: {provider: env, ref: LAKEHOUSE_PHI_PSEUDONYM_KEY}}
tables:
  people:
    source: {format: parquet, path: landing/people}
    bronze: out/people
    record_key: [pid]
    on_unclassified: ON_UNCLASSIFIED
    columns:
      pid: {type: string, required: true, phi: medical_record_number, ingest: {strategy: hmac, key: pseudonym}}
      visits:
        type: array<struct>
        fields:
          "[].day":   {type: date, phi: date, ingest: {strategy: generalize_date, to: month}}
          "[].notes[]": {type: string, phi: free_text, ingest: scrub_text}
          "[].code":  {type: string, pattern: '^[A-Z]\\d{2}$'}
      home:
        type: struct
        fields:
          .zip: {type: string, phi: zip, ingest: zip3}
      tags: {type: array<string>, phi: name, ingest: redact}
"""


def _parquet_landing(root: Path, extra_field: bool = False) -> None:
    visit = [("day", pa.date32()), ("notes", pa.list_(pa.string())), ("code", pa.string())]
    if extra_field:
        visit.append(("Secretfieldname", pa.string()))
    schema = pa.schema([("pid", pa.string()), ("visits", pa.list_(pa.struct(visit))),
                        ("home", pa.struct([("zip", pa.string())])), ("tags", pa.list_(pa.string()))])
    rows = [{"pid": "a", "visits": [{"day": __import__("datetime").date(2020, 5, 17), "notes": [
        "call 617-555-0123"], "code": "A01"}, None], "home": {"zip": "02115"}, "tags": ["Zed", None]},
            {"pid": "b", "visits": [{"day": None, "notes": None, "code": "bad"}], "home": None, "tags": []}]
    if extra_field:
        for r in rows:
            for v in r["visits"]:
                if v:
                    v["Secretfieldname"] = "SENTINEL-EXTRA"
    (root / "landing" / "people").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), root / "landing" / "people" / "part-0.parquet")


def _people_policy(tmp: Path, on_unclassified: str = "fail") -> LoadedPolicy:
    text = PARQUET_POLICY.replace("ON_UNCLASSIFIED", on_unclassified)
    return LoadedPolicy(policy_from_data(parse_yaml(text, "p"), "p"), "0" * 64, str(tmp / "p.yaml"))


def _people_options(tmp: Path, **kw) -> IngestOptions:
    return IngestOptions(**{**dict(input_path=str(tmp / "landing" / "people"), bronze=str(tmp / "bronze"),
                                   quarantine=str(tmp / "quarantine"), audit=str(tmp / "audit.jsonl"),
                                   fetchers=Fetchers(environ=ENV), allow_insecure=True,
                                   table_format="parquet"), **kw})


@pytest.mark.parametrize("engine", ["spark", "sail"])
def test_parquet_structs(engine, request, tmp_path):
    session = request.getfixturevalue(engine)
    _parquet_landing(tmp_path)
    res = run_ingest(session, _people_policy(tmp_path), "people", _people_options(tmp_path))
    assert (res.rows_written, res.rows_quarantined) == (1, 1)
    a = pq.read_table(tmp_path / "bronze").to_pylist()[0]
    assert a["visits"][0]["day"].isoformat() == "2020-05-01" and a["visits"][1] is None
    assert a["visits"][0]["notes"] == ["call [PHONE]"] and a["home"] == {"zip": "021"}
    assert a["tags"] == ["[REDACTED]", None]
    b = pq.read_table(tmp_path / "quarantine").to_pylist()[0]
    assert [(e["column"], e["rule"]) for e in b[ERRORS_COL]] == [("visits[].code", "pattern")]
    assert b["tags"] == [] and b["home"] is None


def test_undeclared_struct_field_fails_closed_or_is_dropped(sail, tmp_path):
    _parquet_landing(tmp_path, extra_field=True)
    with pytest.raises(Exception) as err:
        run_ingest(sail, _people_policy(tmp_path, "fail"), "people", _people_options(tmp_path))
    message = str(err.value)
    assert "visits[].#4 h:" in message and "Secretfieldname" not in message
    assert not (tmp_path / "bronze").exists()
    res = run_ingest(sail, _people_policy(tmp_path, "drop"), "people", _people_options(tmp_path))
    assert res.rows_read == 2
    text = _every_text(tmp_path / "bronze") + _every_text(tmp_path / "quarantine") + \
        (tmp_path / "audit.jsonl").read_text()
    assert "SENTINEL-EXTRA" not in text and "Secretfieldname" not in text
    assert "visits[].#4 h:" in (tmp_path / "audit.jsonl").read_text()


def test_fhir_on_spark_connect_through_the_cli(tmp_path):
    _landing(tmp_path, 10)
    cmd = [sys.executable, "-m", "lakehouse_phi", "ingest", str(EXAMPLE), "--table", "patient_fhir", "--engine",
           "connect", "--table-format", "parquet", "--allow-insecure", "--input",
           str(tmp_path / fhir.FHIR_LANDING["Patient"]), "--bronze", str(tmp_path / "bronze"), "--format", "json",
           *_key_args()]
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["rows_read"] == 10 == summary["rows_written"]
    rows = pq.read_table(tmp_path / "bronze").to_pylist()
    assert all(isinstance(r["name"], list) for r in rows)
    assert SENTINELS["family"] not in json.dumps(rows, default=str)


def _key_args() -> list[str]:
    return [x for name, spec in OVERRIDES.items() for x in ("--key", f"{name}=env:{spec.ref}")]


def test_fhir_stream_on_classic_spark(spark, loaded, tmp_path):
    """The streaming job takes nested columns too: the same bronze rows as the batch job."""
    from lakehouse_phi.spark.stream import ingest_stream

    pats = _landing(tmp_path, 15)
    res = ingest_stream(spark, loaded, "patient_fhir", _options(tmp_path, "patient_fhir", "Patient",
                                                                table_format="parquet"),
                        checkpoint=str(tmp_path / "checkpoint"))
    assert res is not None
    rows = pq.read_table(tmp_path / "bronze" / "patient_fhir").to_pylist()
    assert len(rows) == len(pats) and all(isinstance(r["name"], list) for r in rows)
    assert SENTINELS["family"] not in json.dumps(rows, default=str)
