"""Failures that need an engine, through ``main([...])`` on the classic local session: Delta asked of a Spark
without Delta, and a missing key. One message with the fix, the contract's exit code, nothing written."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi.cli import main
from tests.helpers import DEK_VAR, EXAMPLE, demo_env

ENV, _ = demo_env()


@pytest.fixture
def landing(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("mrn,ssn,first_name,last_name,dob,age,sex,zip,state,phone,email,address,member_id,registered_at\n"
                    "MRN0000001,123-45-6789,Ann,Lee,1980-01-02,44,F,02139,MA,617-555-0100,ann@example.org,1 Main St,"
                    "123456789,2024-01-02T03:04:05\n")
    return path


def _ingest(tmp_path, landing, *extra: str) -> list[str]:
    return ["ingest", str(EXAMPLE), "--table", "patients", "--engine", "active", "--input", str(landing),
            "--bronze", str(tmp_path / "bronze"), "--audit", str(tmp_path / "audit.jsonl"), "--allow-insecure",
            *extra]


def test_delta_table_on_a_spark_without_delta_is_refused_before_anything(spark, tmp_path, landing, capsys, monkeypatch):
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    # a catalog table name needs the engine's own Delta (a Delta *path* would be written through delta-rs)
    argv = _ingest(tmp_path, landing, "--table-format", "delta", "--key", f"phi-dek=env:{DEK_VAR}",
                   "--bronze", "main.bronze.patients")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "this engine has no Delta" in err and "--table-format parquet" in err and "--engine sail" in err
    assert "Traceback" not in err
    assert main([*argv, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["code"] == "engine" and doc["error"]["place"] == "--table-format"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patients.csv"]  # nothing read, nothing written


def test_a_missing_key_names_its_declaration_and_how_to_pass_one(spark, tmp_path, landing, capsys, monkeypatch):
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("LAKEHOUSE_PHI_FPE_KEY")
    argv = _ingest(tmp_path, landing, "--table-format", "parquet", "--key", f"phi-dek=env:{DEK_VAR}")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "keys.fpe-key" in err and "LAKEHOUSE_PHI_FPE_KEY is not set" in err
    assert "--key NAME=env:VAR" in err and "--key NAME=file:PATH" in err
    assert "Traceback" not in err and err.count(" error: ") == 1
    assert not (tmp_path / "bronze").exists()
    # the refusal is audited, without a value
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["ingest_refused"] and "123-45-6789" not in json.dumps(events)
