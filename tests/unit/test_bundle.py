"""The Asset Bundle: it loads, every path it names exists, the classic job cluster passes the config validator, and
each task's entry point runs locally with the task's parameters where local means allow it: the governance apply
task against a loopback Statement Execution API (here), the ingest tasks on local Spark
(``tests/spark/test_bundle_tasks.py``)."""

from __future__ import annotations

import importlib
import json
import shlex
import sys

import pytest

from lakehouse_phi.cli import build_parser
from lakehouse_phi.confcheck import check, detect
from lakehouse_phi.confcheck.sources import clusters_from_json
from lakehouse_phi.policy import load_policy
from lakehouse_phi.sql import compile_policy
from tests.bundle import ROOT, entry_point, load, substitute, tasks
from tests.unit.test_databricks_apply import TOKEN, warehouse  # noqa: F401 - the loopback warehouse fixture

LOCAL = {"workspace.file_path": str(ROOT), "bundle.target": "dev", "bundle.name": "lakehouse_phi"}


@pytest.fixture(scope="module")
def bundle():
    return load()


def test_bundle_shape(bundle):
    assert bundle["bundle"]["name"] == "lakehouse_phi"
    assert set(bundle["targets"]) == {"dev", "prod"} and bundle["targets"]["dev"].get("default") is True
    assert bundle["targets"]["prod"]["mode"] == "production" and "run_as" in bundle["targets"]["prod"]
    assert {"catalog", "bronze_schema", "warehouse_id", "policy_sha256"} <= set(bundle["variables"])
    [artifact] = bundle["artifacts"].values()
    assert artifact["type"] == "whl"
    assert set(bundle["resources"]["jobs"]) == {"bronze_ingest", "bronze_ingest_classic", "governance_apply"}


def test_every_path_it_names_exists(bundle):
    [artifact] = bundle["artifacts"].values()
    assert (ROOT / artifact["path"] / "pyproject.toml").is_file()
    # the wheel the tasks install is what the artifact's build writes: `-w dist` -> ./dist/*.whl
    build = shlex.split(artifact["build"])
    assert build[:4] == ["python", "-m", "pip", "wheel"] and build[build.index("-w") + 1] == "dist"
    for pattern in bundle["sync"]["include"]:
        assert list(ROOT.glob(pattern)), f"sync.include {pattern!r} matches nothing"
    wheels = []
    for _, job, task in tasks(bundle):
        wheels += [lib["whl"] for lib in task.get("libraries", [])]
        params = substitute(task["python_wheel_task"]["parameters"], bundle, LOCAL)
        assert (ROOT / "conf" / "policy.yaml").samefile(params[1])
        if "environment_key" in task:
            env = next(e for e in job["environments"] if e["environment_key"] == task["environment_key"])
            wheels += [d for d in env["spec"]["dependencies"] if d.endswith(".whl")]
        else:
            assert any(c["job_cluster_key"] == task["job_cluster_key"] for c in job["job_clusters"])
    assert wheels and set(wheels) == {"./dist/*.whl"}


def test_every_task_runs_the_console_entry_point_with_parameters_the_cli_accepts(bundle):
    policy = load_policy(ROOT / "conf" / "policy.yaml").policy
    for job_key, _, task in tasks(bundle):
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "lakehouse_phi"
        module, func = entry_point(wheel_task["entry_point"]).split(":")
        assert (module, func) == ("lakehouse_phi.cli", "console_main")
        assert callable(getattr(importlib.import_module(module), func))
        argv = substitute(wheel_task["parameters"], bundle, {**LOCAL, "var.warehouse_id": "wh",
                                                            "var.policy_sha256": "0" * 64})
        args = build_parser(argv).parse_args(argv)  # exits 2 on an unknown option
        if args.command == "ingest":
            assert args.table in policy.tables and task["task_key"] == f"ingest_{args.table}"
            assert args.engine == "active" and args.bronze.endswith(f".bronze.{args.table}")
    keys = {t["task_key"] for j, _, t in tasks(bundle) if j == "bronze_ingest"}
    assert keys == {f"ingest_{t}" for t in policy.tables}


def test_classic_job_cluster_passes_the_config_validator(bundle):
    job = bundle["resources"]["jobs"]["bronze_ingest_classic"]
    [settings] = clusters_from_json(job, "databricks.yml bronze_ingest_classic")
    report = check(settings)
    assert report.ok and report.findings == (), [str(f) for f in report.findings]
    spec = job["job_clusters"][0]["new_cluster"]
    assert detect({"DATABRICKS_RUNTIME_VERSION": "17.3"}, {}, cluster_spec=spec).kind == "databricks-standard"
    # and the checker is not trivially happy: the same cluster without local-disk encryption is refused
    insecure = {**spec, "enable_local_disk_encryption": False}
    [bad] = clusters_from_json({"new_cluster": insecure}, "insecure")
    assert {f.rule for f in check(bad).errors} == {"local-disk-encryption"}


def test_governance_apply_task_runs_against_a_warehouse(bundle, warehouse, monkeypatch, capsys):  # noqa: F811
    """The task's own parameters (variables filled as a deployment would), through ``console_main``."""
    sha = load_policy(ROOT / "conf" / "policy.yaml").sha256
    [task] = bundle["resources"]["jobs"]["governance_apply"]["tasks"]
    argv = substitute(task["python_wheel_task"]["parameters"], bundle,
                      {**LOCAL, "var.warehouse_id": "wh-123", "var.policy_sha256": sha})
    for k in [k for k in list(__import__("os").environ) if k.startswith("DATABRICKS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("DATABRICKS_HOST", warehouse.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    monkeypatch.setattr(sys, "argv", ["lakehouse-phi", *argv])
    module, func = entry_point(task["python_wheel_task"]["entry_point"]).split(":")
    with pytest.raises(SystemExit) as exit_:
        getattr(importlib.import_module(module), func)()
    assert exit_.value.code == 0, capsys.readouterr().err
    assert warehouse.statements[1:] == [s.sql for s in compile_policy(load_policy(ROOT / "conf" / "policy.yaml"),
                                                                       "databricks").apply]
    # a refused run exits non-zero (a wheel task that *returned* 1 would look successful)
    monkeypatch.setattr(sys, "argv", ["lakehouse-phi", *argv[:-1], "0" * 64])
    with pytest.raises(SystemExit) as exit_:
        getattr(importlib.import_module(module), func)()
    assert exit_.value.code == 1


def test_console_main_exits_with_mains_code(monkeypatch, capsys):
    from lakehouse_phi.cli import console_main

    monkeypatch.setattr(sys, "argv", ["lakehouse-phi", "compile", str(ROOT / "conf" / "policy.yaml"), "--check"])
    with pytest.raises(SystemExit) as exit_:
        console_main()
    assert exit_.value.code == 2  # --check without --out: usage
    monkeypatch.setattr(sys, "argv", ["lakehouse-phi", "compile", str(ROOT / "conf" / "policy.yaml"), "--format",
                                      "json"])
    with pytest.raises(SystemExit) as exit_:
        console_main()
    assert exit_.value.code == 0 and json.loads(capsys.readouterr().out)["name"] == "clinical-lakehouse"
