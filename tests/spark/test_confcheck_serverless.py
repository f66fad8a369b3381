"""The ingest pre-flight on a session that looks like Databricks serverless (a Spark Connect session that exposes no
cluster-level settings and no cluster id, with serverless' environment): no ``--allow-insecure`` needed, and the
audit event records the compute and each platform-managed rule. The same run without that environment is refused."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi import synth
from tests.helpers import EXAMPLE
from tests.spark.test_ingest import cli

SERVERLESS_ENV = {"DATABRICKS_RUNTIME_VERSION": "client.4.2"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("serverless")
    synth.write_landing(root, {"claims": 50}, seed=5, malformed_rate=0.0)
    return root


def _ingest(root, name: str, env: dict):
    return cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", "sail", "--input",
               str(root / "landing" / "claims"), "--bronze", str(root / name), "--audit", str(root / f"{name}.jsonl"),
               "--format", "json", env=env)


def test_serverless_runs_without_allow_insecure_and_audits_platform_managed(landing):
    out = _ingest(landing, "serverless", SERVERLESS_ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "allow-insecure" not in out.stderr
    details = json.loads((landing / "serverless.jsonl").read_text().splitlines()[-1])["details"]
    assert details["compute"] == "databricks-serverless" and details["allow_insecure"] is False
    assert details["conf_platform_managed"] == ["io-encryption", "io-encryption-key-size", "local-disk-encryption",
                                                "rpc-encryption"]
    assert details["conf_errors"] == []


def test_the_same_session_off_databricks_is_refused(landing):
    out = _ingest(landing, "local", {"DATABRICKS_RUNTIME_VERSION": ""})
    assert out.returncode == 1 and "io-encryption" in out.stderr
    assert not (landing / "local").exists()
