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
#: what connect_workspace reads from a Databricks Connect session's channel
WORKSPACE = "dbc-1a2b3c4d-5e6f.cloud.databricks.com"


def test_serverless_records_platform_managed_instead_of_errors():
    compute = detect(SERVERLESS_ENV, SERVERLESS_CONF, workspace=WORKSPACE)
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
    assert detect(env, SERVERLESS_CONF, workspace=WORKSPACE).kind == SERVERLESS
    assert detect({}, SERVERLESS_CONF, workspace=WORKSPACE).kind == SERVERLESS  # Databricks Connect from outside
    # issue 23.7: the environment alone (a local run with serverless' variables exported) is not serverless
    alone = detect(env, SERVERLESS_CONF)
    assert alone.kind == SPARK and alone.platform_managed == {}
    assert "not a Databricks Connect session" in " ".join(alone.evidence)
    assert {"io-encryption"} <= {f.rule for f in check(SERVERLESS_CONF, compute=alone).errors}


def test_serverless_still_refuses_what_the_user_controls():
    conf = {**SERVERLESS_CONF, "spark.hadoop.fs.s3a.access.key": "AKIAEXAMPLEEXAMPLE12",
            "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-S3"}
    report = check(conf, paths=["s3a://phi-bronze/patients"], compute=detect(SERVERLESS_ENV, conf, workspace=WORKSPACE))
    assert {f.rule for f in report.errors} == {"s3a-static-credentials", "s3a-sse-kms", "s3a-kms-key"}
    assert "AKIAEXAMPLE" not in report.to_json()
    with pytest.raises(JobRefused):
        report.raise_on_errors()


def test_a_visible_cluster_id_means_a_classic_cluster_whatever_the_environment_says():
    """IS_SERVERLESS set through a classic cluster's spark_env_vars does not switch the checks off."""
    conf = {**SERVERLESS_CONF, "spark.databricks.clusterUsageTags.clusterId": "0101-123456-abcdef"}
    compute = detect(SERVERLESS_ENV, conf, workspace=WORKSPACE)
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


# --------------------------------------------------------------- Databricks Connect, read from the session (23.7)
def test_connect_workspace_reads_the_session_channel_not_the_environment(monkeypatch):
    """PySpark's own Spark Connect channel builder, for a Databricks workspace URL and for a local server (building
    it contacts nothing): the first is recognised by its host, the second is not, whatever the environment says."""
    pytest.importorskip("pyspark.sql.connect.client")
    from pyspark.sql.connect.client import DefaultChannelBuilder

    from lakehouse_phi.storage.engines import connect_workspace

    class Client:  # what a pyspark.sql.connect SparkSession's .client holds: the channel builder it connected with
        def __init__(self, url: str) -> None:
            self._builder = DefaultChannelBuilder(url)

    class Session:
        def __init__(self, url: str) -> None:
            self.client = Client(url)

    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.1.5")
    monkeypatch.setenv("DATABRICKS_HOST", "https://dbc-1a2b3c4d-5e6f.cloud.databricks.com")
    assert connect_workspace(Session("sc://localhost:15002")) is None
    assert connect_workspace(Session("sc://127.0.0.1:15002/;user_id=x")) is None
    assert connect_workspace(Session("sc://dbc-1a2b3c4d-5e6f.cloud.databricks.com:443/;token=t;use_ssl=true")) \
        == "dbc-1a2b3c4d-5e6f.cloud.databricks.com"
    assert connect_workspace(Session("sc://adb-123.4.azuredatabricks.net:443/;token=t;use_ssl=true")) \
        == "adb-123.4.azuredatabricks.net"
    assert connect_workspace(Session("sc://cloud.databricks.com.evil.example:443/;token=t;use_ssl=true")) is None
    assert connect_workspace(object()) is None
