"""Serverless-aware pre-flight: what the platform manages is an explicit outcome, what the user controls is still
refused."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi.confcheck import check, detect
from lakehouse_phi.confcheck.compute import CLASSIC, DEDICATED, SERVERLESS, SPARK, STANDARD
from lakehouse_phi.errors import JobRefused

#: what a serverless session exposes: a handful of SQL settings, no cluster-level ones
SERVERLESS_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true"}
SERVERLESS_ENV = {"DATABRICKS_RUNTIME_VERSION": "client.4.2", "IS_SERVERLESS": "TRUE"}
MANAGED = {"io-encryption", "io-encryption-key-size", "rpc-encryption", "local-disk-encryption"}


def test_serverless_records_platform_managed_instead_of_errors():
    compute = detect(SERVERLESS_ENV, SERVERLESS_CONF)
    assert compute.kind == SERVERLESS
    report = check(SERVERLESS_CONF, compute=compute)
    assert report.ok and report.errors == [] and report.warnings == []
    assert {p.rule for p in report.platform_managed} == MANAGED
    assert all(p.compute == SERVERLESS and "platform" in p.reason for p in report.platform_managed)
    doc = json.loads(report.to_json())
    assert doc["compute"]["kind"] == SERVERLESS and {p["rule"] for p in doc["platform_managed"]} == MANAGED
    # without the compute, the same session is refused, as before
    assert {f.rule for f in check(SERVERLESS_CONF).errors} == {"io-encryption"}


@pytest.mark.parametrize("env", [{"DATABRICKS_RUNTIME_VERSION": "client.1.13"},
                                 {"DATABRICKS_RUNTIME_VERSION": "16.4", "IS_SERVERLESS": "true"}])
def test_serverless_evidence(env):
    assert detect(env, SERVERLESS_CONF).kind == SERVERLESS


def test_serverless_still_refuses_what_the_user_controls():
    conf = {**SERVERLESS_CONF, "spark.hadoop.fs.s3a.access.key": "AKIAEXAMPLEEXAMPLE12",
            "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-S3"}
    report = check(conf, paths=["s3a://phi-bronze/patients"], compute=detect(SERVERLESS_ENV, conf))
    assert {f.rule for f in report.errors} == {"s3a-static-credentials", "s3a-sse-kms", "s3a-kms-key"}
    assert "AKIAEXAMPLE" not in report.to_json()
    with pytest.raises(JobRefused):
        report.raise_on_errors()


def test_a_visible_cluster_id_means_a_classic_cluster_whatever_the_environment_says():
    """IS_SERVERLESS set through a classic cluster's spark_env_vars does not switch the checks off."""
    conf = {**SERVERLESS_CONF, "spark.databricks.clusterUsageTags.clusterId": "0101-123456-abcdef"}
    compute = detect(SERVERLESS_ENV, conf)
    assert compute.kind == CLASSIC and compute.platform_managed == {}
    report = check(conf, compute=compute)
    assert "io-encryption" in {f.rule for f in report.errors} and report.platform_managed == ()


@pytest.mark.parametrize("mode,kind", [("USER_ISOLATION", STANDARD), ("DATA_SECURITY_MODE_STANDARD", STANDARD),
                                       ("SINGLE_USER", DEDICATED), ("NONE", CLASSIC)])
def test_standard_and_dedicated_access_are_recognised_and_still_checked(mode, kind):
    env = {"DATABRICKS_RUNTIME_VERSION": "17.3"}
    conf = {"spark.databricks.clusterUsageTags.clusterId": "0101-1", "spark.master": "spark://10.0.0.1:7077"}
    compute = detect(env, conf, cluster_spec={"data_security_mode": mode})
    assert compute.kind == kind
    assert detect(env, {**conf, "spark.databricks.clusterUsageTags.dataSecurityMode": mode}).kind == kind
    report = check(conf, compute=compute)
    assert {"io-encryption"} <= {f.rule for f in report.errors}  # the user writes a classic cluster's spec
    assert report.platform_managed == ()
    secure = {**conf, "spark.io.encryption.enabled": "true", "spark.io.encryption.keySizeBits": "256",
              "spark.authenticate": "true", "spark.network.crypto.enabled": "true"}
    assert check(secure, compute=compute).ok


def test_not_on_databricks():
    assert detect({}, {}).kind == SPARK
    assert detect({"DATABRICKS_RUNTIME_VERSION": ""}, SERVERLESS_CONF).platform_managed == {}
