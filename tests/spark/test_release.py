"""`lakehouse-phi risk` and `export`: k and l checked against reference values on generated data
(``tests/release_data.py``), which the pycanon lane holds to pycanon, an independent implementation
(``tests/reference/``, its own virtualenv); suppression, the signed manifest, `export verify` against flipped bytes,
the audit event; no direct identifier in any output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lakehouse_phi.audit.sinks import read_trail, verify_trail
from lakehouse_phi.cli import emit
from lakehouse_phi.commands import release as release_cmd
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.policy.load import LoadedPolicy, policy_from_data
from lakehouse_phi.release.export import run_export, verify_export
from lakehouse_phi.release.risk import HIDDEN, release_columns, risk_of_table
from tests.release_data import QI, SENSITIVE, SENTINEL, reference, release_frame, release_rows, rows_sha256


def _run(args: argparse.Namespace, spark=None) -> int:
    """``risk`` / ``export`` as the CLI runs them (on this session): the result printed once, its exit code."""
    return emit(release_cmd.run(args, spark), as_json=args.format == "json")


REFERENCE = {tuple(c["quasi_identifiers"]): (c["k"], c["l"]) for c in reference()["cases"]}


def _k_l(df, qi) -> tuple[int, int]:
    """k and l of a frame, counted with pandas (for frames the reference file does not cover: exports)."""
    g = df.groupby(list(qi))
    return int(g.size().min()), int(g["diagnosis_code"].nunique().min())


def _policy(tmp: Path, k: int, l: int, signer: Path, qi: list[str] = QI) -> LoadedPolicy:  # noqa: E741
    data = {"version": 1, "name": "release-test",
            "keys": {"k": {"provider": "env", "ref": "RELEASE_TEST_K"},
                     "signer": {"provider": "file", "ref": str(signer)}},
            "tables": {"patients": {
                "source": {"format": "parquet", "path": "x"}, "bronze": str(tmp / "bronze"),
                "risk": {"k": k, "l": l},
                "export": {"columns": [*qi, *SENSITIVE], "signing_key": "signer"},
                "columns": {
                    "mrn": {"phi": "medical_record_number", "ingest": {"strategy": "hmac", "key": "k"}},
                    "dob": {"type": "date", "phi": "date_of_birth", "quasi_identifier": True,
                            "ingest": {"strategy": "generalize_date", "to": "month"},
                            "derive": {"birth_year": {"strategy": "generalize_date", "to": "year"}}},
                    "zip": {"phi": "zip", "ingest": "zip3", "quasi_identifier": True},
                    "sex": {"quasi_identifier": True},
                    "diagnosis_code": {"sensitive": True},
                    "surname_token": {"phi": "name", "ingest": {"strategy": "hmac", "key": "k"}}}}}}
    return LoadedPolicy(policy_from_data(data, "test"), "a" * 64, "test")


@pytest.fixture(scope="module")
def release_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    df = release_frame()
    assert rows_sha256(release_rows()) == reference()["data_sha256"]  # the data the reference values are of
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / "masked.parquet")
    (tmp / "bronze").mkdir()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / "bronze" / "part-0.parquet")
    key = Ed25519PrivateKey.generate()
    signer = tmp / "signer.pem"
    signer.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    pub = tmp / "signer.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return tmp, df, signer, pub


def test_release_columns_follow_the_export():
    pol = _policy(Path("/tmp"), 5, 2, Path("/tmp/x.pem")).policy.tables["patients"]
    cols = release_columns(pol)
    assert cols.quasi_identifiers == ("birth_year", "zip", "sex") and cols.sensitive == ("diagnosis_code",)
    without_export = pol.model_copy(update={"export": None})
    assert release_columns(without_export).quasi_identifiers == ("dob", "zip", "sex")


@pytest.mark.parametrize("qi", [list(q) for q in REFERENCE], ids="+".join)
def test_k_and_l_match_the_pycanon_reference(spark, release_env, qi):
    tmp, df, signer, _ = release_env
    loaded = _policy(tmp, 5, 2, signer, qi)
    report = risk_of_table(spark, loaded.policy.tables["patients"], "patients", str(tmp / "masked.parquet"), top=5)
    assert (report.k, report.l) == REFERENCE[tuple(qi)]
    sizes = df.groupby(qi).size()
    distinct = df.groupby(qi)["diagnosis_code"].nunique()
    assert report.records == len(df) and report.classes == len(sizes)
    assert report.records_below_k == int(sizes[sizes < 5].sum()) and report.classes_below_k == int((sizes < 5).sum())
    assert report.records_below_l == int(sizes[distinct < 2].sum())
    assert [c["records"] for c in report.smallest] == sorted(sizes)[:5]
    assert report.ok == (report.k >= 5 and report.l >= 2)


def test_risk_cli_exit_codes_and_formats(spark, release_env, tmp_path, capsys):
    tmp, _, signer, _ = release_env
    import yaml

    strict, lax = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    for path, k, l in ((strict, 5, 2), (lax, 1, 1)):  # noqa: E741
        path.write_text(yaml.safe_dump(json.loads(_policy(tmp, k, l, signer).policy.model_dump_json())))
    args = argparse.Namespace(command="risk", policy=str(strict), table="patients", source=str(tmp / "masked.parquet"),
                              top=10, engine="local", format="json")
    assert _run(args, spark) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == REFERENCE[tuple(QI)][0] and out["ok"] is False
    args.policy, args.format = str(lax), "html"
    assert _run(args, spark) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "Smallest classes" in page
    args.format = "text"
    assert _run(args, spark) == 0
    text = capsys.readouterr().out
    assert "meets the policy" in text
    for output in (json.dumps(out), page, text):
        assert SENTINEL not in output and "tok000" not in output


def test_a_direct_identifier_quasi_identifier_is_hidden(spark, release_env):
    tmp, _, signer, _ = release_env
    loaded = _policy(tmp, 2, 1, signer)
    spec = loaded.policy.tables["patients"]
    cols = dict(spec.columns)
    cols["surname_token"] = cols["surname_token"].model_copy(update={"quasi_identifier": True})
    export = spec.export.model_copy(update={"columns": [*spec.export.columns, "surname_token"]})
    spec = spec.model_copy(update={"columns": cols, "export": export})
    report = risk_of_table(spark, spec, "patients", str(tmp / "masked.parquet"))
    assert all(c["values"]["surname_token"] == HIDDEN for c in report.smallest)
    assert SENTINEL not in json.dumps(report.to_dict())


def test_export_suppresses_signs_and_verifies(spark, release_env, tmp_path, monkeypatch):
    tmp, df, signer, pub = release_env
    loaded = _policy(tmp, 5, 2, signer)
    audit = tmp_path / "audit.jsonl"
    out = tmp_path / "export"
    result = run_export(spark, loaded, "patients", str(out), source=str(tmp / "masked.parquet"), audit=str(audit))
    # what pandas says should go: classes below k=5 or with fewer than 2 diagnoses
    g = df.groupby(QI)
    bad = (g["mrn"].transform("size") < 5) | (g["diagnosis_code"].transform("nunique") < 2)
    assert result.records_suppressed == int(bad.sum()) > 0
    assert result.records_exported == len(df) - int(bad.sum())
    exported = pq.read_table(out / "data").to_pandas()
    assert list(exported.columns) == ["birth_year", "zip", "sex", "diagnosis_code"]
    assert len(exported) == result.records_exported
    assert _k_l(exported, QI) == (result.k_achieved, result.l_achieved)
    assert result.k_achieved >= 5 and result.l_achieved >= 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records_suppressed"] == result.records_suppressed and manifest["policy_sha256"] == "a" * 64
    assert sum(f["rows"] for f in manifest["files"]) == len(exported)
    # one export audit event, counts only, and the trail verifies
    events = read_trail(str(audit))
    assert [e["event"] for e in events] == ["export"]
    assert events[0]["details"]["records_suppressed"] == result.records_suppressed
    assert verify_trail(str(audit)).ok
    assert SENTINEL not in audit.read_text() and "tok000" not in audit.read_text()
    # verify: intact, then any flipped byte, an extra file, or another key fails
    from lakehouse_phi.release.export import load_public_key

    key = load_public_key(str(pub))
    assert verify_export(str(out), key).ok
    args = argparse.Namespace(command="export", policy="verify", directory=str(out), public_key=str(pub),
                              format="text")
    assert _run(args) == 0
    targets = [out / manifest["files"][0]["path"], out / "manifest.json"]
    for target in targets:
        original = target.read_bytes()
        for at in (0, len(original) // 2, len(original) - 1):
            flipped = bytearray(original)
            flipped[at] ^= 0x01
            target.write_bytes(bytes(flipped))
            assert not verify_export(str(out), key).ok, (target.name, at)
            assert _run(args) == 1
        target.write_bytes(original)
        assert verify_export(str(out), key).ok
    (out / "data" / "extra.parquet").write_bytes(b"PAR1")
    assert not verify_export(str(out), key).ok
    (out / "data" / "extra.parquet").unlink()
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_export(str(out), other).ok
    # a second export into the same directory is refused; a missing signing key stops before anything is written
    from lakehouse_phi.errors import KeyMaterialError, UsageError

    with pytest.raises(UsageError):
        run_export(spark, loaded, "patients", str(out), source=str(tmp / "masked.parquet"), audit=str(audit))
    broken = _policy(tmp, 5, 2, tmp_path / "missing.pem")
    with pytest.raises(KeyMaterialError):
        run_export(spark, broken, "patients", str(tmp_path / "never"), source=str(tmp / "masked.parquet"),
                   audit=str(audit))
    assert not (tmp_path / "never").exists()


def test_risk_and_export_over_a_delta_bronze_on_spark_connect(sail, release_env, tmp_path):
    """The default source is the policy's bronze: here a real Delta table written through pysail (Spark Connect)."""
    tmp, df, signer, pub = release_env
    bronze = tmp_path / "bronze"
    sail.createDataFrame(df).write.format("delta").save(str(bronze))
    assert (bronze / "_delta_log").is_dir()
    loaded = _policy(tmp, 5, 2, signer)
    spec = loaded.policy.tables["patients"].model_copy(update={"bronze": str(bronze)})
    report = risk_of_table(sail, spec, "patients")
    assert report.source == str(bronze)
    assert (report.k, report.l) == REFERENCE[tuple(QI)]
    tables = dict(loaded.policy.tables, patients=spec)
    loaded = LoadedPolicy(loaded.policy.model_copy(update={"tables": tables}), loaded.sha256, loaded.path)
    result = run_export(sail, loaded, "patients", str(tmp_path / "out"), audit=str(tmp_path / "audit.jsonl"))
    exported = pq.read_table(tmp_path / "out" / "data").to_pandas()
    assert _k_l(exported, QI)[0] == result.k_achieved >= 5
    from lakehouse_phi.release.export import load_public_key

    assert verify_export(str(tmp_path / "out"), load_public_key(str(pub))).ok


@pytest.mark.parametrize("engine", ["spark", "sail"])
def test_an_export_that_suppresses_every_record(engine, request, release_env, tmp_path):
    """k above the number of records: nothing may be released. Each engine writes an empty release (pysail writes no
    file at all) and the export neither crashes nor signs records it does not hold."""
    session = request.getfixturevalue(engine)
    tmp, df, signer, pub = release_env
    out = tmp_path / "out"
    try:
        result = run_export(session, _policy(tmp, len(df) + 1, 2, signer), "patients", str(out),
                            source=str(tmp / "masked.parquet"), audit=str(tmp_path / "audit.jsonl"))
    except JobRefused as exc:  # a refusal is acceptable, a crash is not: nothing signed then
        assert "Traceback" not in str(exc)
        assert not (out / "manifest.sig").exists()
        return
    assert result.records_exported == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records_exported"] == 0
    assert not list(out.glob("_staging_*"))
    from lakehouse_phi.release.export import load_public_key

    assert verify_export(str(out), load_public_key(str(pub))).ok
