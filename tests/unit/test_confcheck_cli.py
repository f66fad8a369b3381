"""``lakehouse-phi check-conf``: exit codes, JSON shape, masking, precedence, the conf/ examples, no PySpark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse_phi.cli import main

CONF = Path(__file__).resolve().parents[2] / "conf"
PATHS = ["--paths", "s3a://phi-landing/in/", "s3a://phi-bronze/patients"]
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["check-conf", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("files", "code"), [
    (["--spark-conf", "spark-defaults.secure.conf"], 0),
    (["--spark-conf", "spark-defaults.insecure.conf"], 1),
    (["--cluster-json", "cluster.secure.json"], 0),
    (["--cluster-json", "cluster.insecure.json"], 1),
    (["--cluster-json", "cluster-policy.secure.json"], 0),
    (["--cluster-json", "cluster-policy.insecure.json"], 1),
])
def test_conf_examples(capsys, files, code):
    argv = [files[0], str(CONF / files[1]), *PATHS]
    assert main(["check-conf", *argv]) == code
    text = capsys.readouterr().out
    assert ("refused" in text) == (code == 1) and ACCESS_KEY not in text and SECRET_KEY not in text
    got, doc = run_json(capsys, *argv)
    assert got == code and doc["ok"] == (code == 0)


def test_insecure_examples_name_each_problem(capsys):
    _, doc = run_json(capsys, "--spark-conf", str(CONF / "spark-defaults.insecure.conf"), *PATHS)
    found = sorted({(f["rule"], f["bucket"]) for f in doc["findings"]}, key=str)
    assert found == sorted({("io-encryption-key-size", None), ("rpc-encryption", None),
                            ("s3a-sse-kms", "phi-bronze"), ("s3a-kms-key", "phi-landing"),
                            ("s3a-kms-key", "phi-bronze"), ("s3a-static-credentials", None)}, key=str)
    _, doc = run_json(capsys, "--cluster-json", str(CONF / "cluster.insecure.json"), *PATHS)
    assert {f["rule"] for f in doc["findings"] if f["severity"] == "error"} == {
        "io-encryption", "s3a-sse-kms", "s3a-kms-key", "s3a-static-credentials", "local-disk-encryption"}


def test_json_shape_and_masking(capsys, tmp_path):
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text(f"spark.hadoop.fs.s3a.access.key {ACCESS_KEY}\nspark.hadoop.fs.s3a.secret.key={SECRET_KEY}\n")
    code = main(["check-conf", "--spark-conf", str(defaults), "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 1 and ACCESS_KEY not in out and SECRET_KEY not in out
    assert set(doc) == {"schema_version", "ok", "errors", "warnings", "findings", "not_applied", "buckets", "sources"}
    assert doc["errors"] == 3 and doc["warnings"] == 3  # io, 2 credentials; key size, 2 rpc
    cred = [f for f in doc["findings"] if f["rule"] == "s3a-static-credentials"]
    assert {f["setting"] for f in cred} == {"spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key"}
    assert all(f["value"] == "***" and f["source"].startswith(str(defaults)) for f in cred)
    assert set(cred[0]) == {"rule", "severity", "setting", "value", "fix", "bucket", "source"}
    assert {n["rule"] for n in doc["not_applied"]} == {"s3a-sse-kms", "s3a-kms-key", "local-disk-encryption"}
    main(["check-conf", "--spark-conf", str(defaults)])
    text = capsys.readouterr().out
    assert "***" in text and ACCESS_KEY not in text and SECRET_KEY not in text
    assert "not applied: s3a-sse-kms: no s3a://" in text


def test_precedence_defaults_cluster_conf(capsys, tmp_path):
    defaults = tmp_path / "d.conf"
    defaults.write_text("spark.io.encryption.enabled false\nspark.io.encryption.keySizeBits 128\n")
    cluster = tmp_path / "c.json"
    cluster.write_text(json.dumps({"spark_conf": {"spark.io.encryption.keySizeBits": "256",
                                                  "spark.io.encryption.enabled": "false"},
                                   "enable_local_disk_encryption": True}))
    base = ["--spark-conf", str(defaults), "--cluster-json", str(cluster), "--conf", "spark.master=local[2]"]
    _, doc = run_json(capsys, *base)
    assert {f["rule"]: f["source"] for f in doc["findings"]} == {"io-encryption": f"{cluster}.spark_conf"}
    code, doc = run_json(capsys, *base, "--conf", "spark.io.encryption.enabled=True")
    assert code == 0 and doc["findings"] == []


def test_spark_submit_command_line(capsys):
    code, doc = run_json(capsys, "--spark-submit",
                         "spark-submit --master local[2] --conf spark.io.encryption.enabled=true "
                         "-c spark.io.encryption.keySizeBits=256 job.py --conf spark.io.encryption.enabled=false")
    assert code == 0 and doc["findings"] == [] and doc["not_applied"][0]["rule"] == "rpc-encryption"


@pytest.mark.parametrize("argv", [
    [],
    ["--spark-conf", "/nonexistent/spark-defaults.conf"],
    ["--cluster-json", "/nonexistent/cluster.json"],
    ["--conf", "spark.io.encryption.enabled"],
    ["--conf", "spark.io.encryption.enabled=true", "--paths", "s3a:///no-bucket"],
    ["--format", "yaml", "--conf", "a=b"],
])
def test_usage_errors_exit_2(capsys, argv):
    try:
        code = main(["check-conf", *argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "check-conf" in err


def test_invalid_json_exit_2(capsys, tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"spark_conf": {')
    assert main(["check-conf", "--cluster-json", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_no_pyspark():
    """check-conf must not import PySpark (its speed is measured in benchmarks/run.py, not here)."""
    script = (
        "import sys\n"
        "from lakehouse_phi.cli import main\n"
        f"code = main(['check-conf', '--spark-conf', {str(CONF / 'spark-defaults.insecure.conf')!r},"
        f" '--cluster-json', {str(CONF / 'cluster-policy.insecure.json')!r}, '--paths', 's3a://phi-bronze/x'])\n"
        "assert code == 1, code\n"
        "assert 'pyspark' not in sys.modules and 'py4j' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
