"""The ingest pre-flight on a session that only *looks* like Databricks serverless (a Spark Connect session that
exposes no cluster-level settings and no cluster id, with serverless' environment variables): it is not a Databricks
Connect session, so it is refused like any local run (issue 23.7). Serverless recognised from a Databricks Connect
session: tests/unit/test_confcheck_compute.py."""

from __future__ import annotations

import json

import pytest

from lakehouse_phi import synth
from tests.helpers import EXAMPLE
from tests.spark.test_ingest import cli


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("serverless")
    synth.write_landing(root, {"claims": 50}, seed=5, malformed_rate=0.0)
    return root


def _ingest(root, name: str, env: dict):
    return cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", "sail", "--input",
               str(root / "landing" / "claims"), "--bronze", str(root / name), "--audit", str(root / f"{name}.jsonl"),
               "--format", "json", env=env)


@pytest.mark.parametrize("env", [{"DATABRICKS_RUNTIME_VERSION": "client.1.5"},
                                 {"DATABRICKS_RUNTIME_VERSION": "client.4.2", "IS_SERVERLESS": "TRUE"},
                                 {"IS_SERVERLESS": "true"}], ids=["client-1.5", "client+is-serverless", "flag"])
def test_serverless_environment_alone_does_not_make_a_local_run_serverless(landing, env):
    """Issue 23.7: the variables a serverless compute sets, exported around a local (pysail) run, do not switch the
    io/rpc rules off: the session is not a Databricks Connect session, so the run is refused as plain Spark."""
    name = "env-" + "-".join(sorted(env)).lower()
    out = _ingest(landing, name, env)
    assert out.returncode == 1 and "io-encryption" in out.stderr and "allow-insecure" in out.stderr
    assert not (landing / name).exists()
    event = json.loads((landing / f"{name}.jsonl").read_text().splitlines()[-1])
    assert event["event"] == "ingest_refused"


def test_the_same_session_off_databricks_is_refused(landing):
    out = _ingest(landing, "local", {"DATABRICKS_RUNTIME_VERSION": ""})
    assert out.returncode == 1 and "io-encryption" in out.stderr
    assert not (landing / "local").exists()
