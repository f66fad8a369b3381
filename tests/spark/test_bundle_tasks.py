"""The bundle's serverless ingest tasks, each through the wheel's entry point (``console_main``) with its own
parameters, as far as a laptop allows. What is replaced, and why:

* ``${var.landing_volume}`` -> a local folder with synthetic landing files (no UC volume here);
* ``--bronze CATALOG.SCHEMA.TABLE`` -> a local path (pysail has no Unity Catalog);
* ``--engine active`` -> ``sail`` (no Databricks session here; pysail is a Spark Connect server with Delta);
* Databricks' ``pyspark.dbutils.DBUtils`` (absent here) is stood in for by a module whose ``secrets.get`` serves the
  secret scope from a dict: every key, the audit key included, reaches the job only through the task's own
  ``--key NAME=databricks:SCOPE/KEY`` parameters and the policy's databricks keys (no key variable is set);
* ``--allow-insecure`` is added: a local pysail session is not a Databricks Connect session, and since issue 23.7
  the environment variables of serverless compute alone no longer make a run "serverless" (the platform-managed
  outcome needs a session connected to a workspace: ``tests/spark/test_confcheck_serverless.py``), so the local run
  says it is insecure, explicitly and audited, instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lakehouse_phi import synth
from lakehouse_phi.cli import build_parser
from lakehouse_phi.keys.local import local_var
from lakehouse_phi.keys.overrides import parse_key_overrides
from lakehouse_phi.policy import load_policy
from tests.bundle import ROOT, load, substitute, tasks
from tests.helpers import demo_env

pytestmark = pytest.mark.spark

DRIVER = """
import json, os, sys, types
store = json.loads(os.environ.pop("LHP_TEST_SECRET_SCOPES"))  # "scope/key" -> base64 material


class _Secrets:
    def get(self, scope, key):
        return store[scope + "/" + key]


class DBUtils:  # the runtime's pyspark.dbutils.DBUtils(spark): only dbutils.secrets is used
    def __init__(self, spark):
        self.secrets = _Secrets()


stand_in = types.ModuleType("pyspark.dbutils")
stand_in.DBUtils = DBUtils
sys.modules["pyspark.dbutils"] = stand_in
from lakehouse_phi.cli import console_main
codes = {}
for key, argv in json.loads(sys.argv[1]).items():
    sys.argv = ["lakehouse-phi", *argv]
    try:
        console_main()
    except SystemExit as exc:
        codes[key] = exc.code
print("CODES=" + json.dumps(codes))
"""


def test_serverless_ingest_tasks_run_through_the_entry_point(tmp_path):
    env_keys, _ = demo_env()
    policy = load_policy(ROOT / "conf" / "policy.yaml").policy
    synth.write_landing(tmp_path, {"patients": 40, "encounters": 40, "claims": 40}, seed=11, malformed_rate=0.05)
    from lakehouse_phi.synth.fhir import write_fhir

    write_fhir(tmp_path, 20, 2, seed=11)  # the FHIR tables' landing (landing/fhir/<Resource>)
    bundle = load()
    local = {"workspace.file_path": str(ROOT), "var.landing_volume": str(tmp_path / "landing"),
             "bundle.target": "dev"}
    runs = {}
    for job, _, task in tasks(bundle):
        if job != "bronze_ingest":
            continue
        argv = substitute(task["python_wheel_task"]["parameters"], bundle, local)
        table = argv[argv.index("--table") + 1]
        argv[argv.index("--bronze") + 1] = str(tmp_path / "bronze" / table)
        argv[argv.index("--engine") + 1] = "sail"
        runs[task["task_key"]] = [*argv, "--allow-insecure", "--format", "json"]
    assert set(runs) == {f"ingest_{t}" for t in policy.tables}
    # the secret scope: each key's material under the scope/key the task (or the policy) reads it from
    scopes = {}
    for argv in runs.values():
        specs = {**policy.keys, **parse_key_overrides(build_parser(argv).parse_args(argv).key, policy)}
        for name, spec in specs.items():
            if spec.provider == "databricks":
                declared = policy.keys[name]
                material = env_keys[declared.ref if declared.provider == "env" else local_var(name)]
                scopes["/".join(spec.databricks_scope_key)] = material
    env = {k: v for k, v in os.environ.items() if k not in env_keys}  # no key variable reaches the job
    env.update({"PYSPARK_PYTHON": sys.executable, "DATABRICKS_RUNTIME_VERSION": "client.4.2",
                "PYTHONPATH": str(ROOT), "LHP_TEST_SECRET_SCOPES": json.dumps(scopes)})
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], check=False, capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=900)
    codes = json.loads(done.stdout.split("CODES=")[-1])
    assert codes == dict.fromkeys(runs, 0), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    from lakehouse_phi.deltars import read_delta

    events = [r for r in read_delta(tmp_path / "bronze" / "_lakehouse_phi_audit").to_pylist()
              if r["event"] == "ingest"]  # each run: its pending ingest_started, then its closing ingest event
    assert sorted(e["table"] for e in events) == sorted(policy.tables)
    for row in events:
        e = json.loads(row["record"])  # the sealed event, as canonical JSON
        # keyed trail (issue 26): sealed under the policy's audit key, which came from the secret scope
        assert e["seal_key"] == policy.audit.key and e["mac"], sorted(e)
        details = e["details"]
        assert details["allow_insecure"] is True and "io-encryption" in details["conf_errors"]
        assert len(read_delta(tmp_path / "bronze" / e["table"]).to_pylist()) == e["rows_written"] > 0
