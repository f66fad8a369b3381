"""The config validator on live sessions: classic local Spark and Spark Connect (pysail), via ``spark.conf.getAll``."""

from __future__ import annotations

import pytest

from lakehouse_phi.confcheck import check_session

pytestmark = pytest.mark.spark

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RUNTIME = {  # settings a running session accepts; removed again afterwards (the session is shared)
    "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS",
    "spark.hadoop.fs.s3a.encryption.key": ARN,
    "fs.s3a.bucket.phi-confcheck-raw.encryption.algorithm": " sse-s3 ",  # bare key: reaches Hadoop from a session
    "spark.hadoop.fs.s3a.secret.key": SECRET,
}
PATHS = ["s3a://phi-confcheck-raw/in/", "s3a://phi-confcheck-bronze/out"]


def _check_with_runtime_settings(session):
    try:
        for key, value in RUNTIME.items():
            session.conf.set(key, value)
        return check_session(session, PATHS)
    finally:
        for key in RUNTIME:
            session.conf.unset(key)


def test_classic_local_session(spark):
    report = _check_with_runtime_settings(spark)
    got = sorted((f.rule, f.bucket, f.setting, f.value) for f in report.findings)
    io = spark.conf.get("spark.io.encryption.enabled", None)  # a static setting: whatever the fixture started with
    insecure_io = (io or "").strip().lower() != "true"
    expected = [("io-encryption", None, "spark.io.encryption.enabled", io)] if insecure_io else []
    assert [g for g in got if g[0] == "io-encryption"] == expected
    assert [g for g in got if g[0].startswith("s3a")] == [
        ("s3a-sse-kms", "phi-confcheck-raw", "fs.s3a.bucket.phi-confcheck-raw.encryption.algorithm", " sse-s3 "),
        ("s3a-static-credentials", None, "spark.hadoop.fs.s3a.secret.key", "***"),
    ]
    assert [n.rule for n in report.not_applied] == ["rpc-encryption", "local-disk-encryption"]
    assert "local[2]" in report.not_applied[0].reason
    assert SECRET not in report.to_json()
    assert "spark.hadoop.fs.s3a.secret.key" not in spark.conf.getAll  # cleaned up


def test_spark_connect_session(sail):
    report = _check_with_runtime_settings(sail)
    rules = sorted((f.rule, f.bucket) for f in report.findings)
    # Sail does not report spark.master, so the session counts as a cluster and rpc-encryption warns
    assert ("s3a-sse-kms", "phi-confcheck-raw") in rules and ("s3a-static-credentials", None) in rules
    assert ("s3a-sse-kms", "phi-confcheck-bronze") not in rules and ("s3a-kms-key", "phi-confcheck-raw") not in rules
    assert SECRET not in report.to_json()
