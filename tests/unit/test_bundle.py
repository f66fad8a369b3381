"""The Asset Bundle: it validates against the Databricks CLI's bundle schema, every path it names exists, every
ingest task and pipeline gets all its keys (the audit key included) from the secret scope with no environment
variable, the classic job cluster starts (no ``spark.authenticate`` without its secret) and passes the config
validator, prod separates the ingest and governance identities, and each task's entry point runs locally with the
task's parameters where local means allow it: the governance apply task against a loopback Statement Execution API
(here), the ingest tasks on local Spark (``tests/spark/test_bundle_tasks.py``), the pipeline notebook on local Spark
(``tests/spark/test_notebook_dlt.py``)."""

from __future__ import annotations

import copy
import importlib
import json
import shlex
import sys

import pytest
import yaml

from lakehouse_phi.audit.sealing import seal_key
from lakehouse_phi.cli import build_parser
from lakehouse_phi.confcheck import check, detect
from lakehouse_phi.confcheck.sources import clusters_from_json
from lakehouse_phi.keys.overrides import parse_key_overrides
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.mask import resolve_keys
from lakehouse_phi.sql import compile_policy
from tests.bundle import ROOT, config_files, entry_point, load, schema_errors, schema_validator, substitute, tasks
from tests.unit.test_databricks_apply import TOKEN, warehouse  # noqa: F401 - the loopback warehouse fixture

LOCAL = {"workspace.file_path": str(ROOT), "workspace.artifact_path": "/Workspace/Users/me/.bundle/artifacts",
         "bundle.target": "dev", "bundle.name": "lakehouse_phi"}


@pytest.fixture(scope="module")
def bundle():
    return load()


def test_bundle_shape(bundle):
    assert bundle["bundle"]["name"] == "lakehouse_phi"
    assert set(bundle["targets"]) == {"dev", "prod"} and bundle["targets"]["dev"].get("default") is True
    assert bundle["targets"]["prod"]["mode"] == "production"
    assert {"catalog", "bronze_schema", "warehouse_id", "policy_sha256", "secret_scope", "ingest_sp",
            "governance_sp"} <= set(bundle["variables"])
    [artifact] = bundle["artifacts"].values()
    assert artifact["type"] == "whl"
    # a redeploy of changed code gets a new wheel version, never a cached older 0.1.0
    assert artifact["dynamic_version"] is True
    assert set(bundle["resources"]["jobs"]) == {"bronze_ingest", "bronze_ingest_classic", "governance_apply"}
    assert set(bundle["resources"]["pipelines"]) == {"bronze_dlt_patients"}


@pytest.fixture(scope="module")
def validator():
    return schema_validator()


def test_every_configuration_file_validates_against_the_cli_bundle_schema(validator):
    """What ``databricks bundle validate`` checks first: each file against the CLI's JSON schema (vendored,
    tests/vendor/databricks_cli)."""
    files = config_files()
    assert {f.name for f in files} == {"databricks.yml", "jobs.yml", "pipelines.yml"}
    for f in files:
        assert schema_errors(yaml.safe_load(f.read_text()), validator) == [], f.name


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["artifacts"]["lakehouse_phi_wheel"].update(dynamic_version="yes"), "dynamic_version"),
    (lambda d: d["targets"]["prod"]["resources"]["jobs"]["governance_apply"]["run_as"].update(
        service_principal="x"), "run_as"),
    (lambda d: d["variables"]["catalog"].update(defualt="main"), "catalog"),
])
def test_the_schema_check_catches_a_broken_bundle(validator, mutate, where):
    doc = yaml.safe_load((ROOT / "databricks.yml").read_text())
    mutate(doc)
    errors = schema_errors(doc, validator)
    assert errors and any(where in e for e in errors), errors


@pytest.mark.parametrize("mutate", [
    lambda r: r["resources"]["jobs"]["bronze_ingest"]["tasks"][0]["python_wheel_task"].update(entrypoint="x"),
    lambda r: r["resources"]["jobs"]["bronze_ingest"]["environments"][0]["spec"].update(environment_version=4),
    lambda r: r["resources"]["jobs"]["bronze_ingest_classic"]["job_clusters"][0]["new_cluster"].update(
        data_security_mode="SHARED_ISH"),
])
def test_the_schema_check_catches_a_broken_job(validator, mutate):
    doc = yaml.safe_load((ROOT / "resources" / "jobs.yml").read_text())
    broken = copy.deepcopy(doc)
    mutate(broken)
    assert schema_errors(broken, validator)


class _Secrets:
    """``dbutils.secrets`` over a dict, recording each read (scope, key)."""

    def __init__(self, store: dict[tuple[str, str], str]) -> None:
        self.store, self.reads = store, []

    def get(self, scope: str, key: str) -> str:
        self.reads.append((scope, key))
        return self.store[(scope, key)]


class _Dbutils:
    def __init__(self, store: dict[tuple[str, str], str]) -> None:
        self.secrets = _Secrets(store)


def _scope_store(policy, overrides) -> dict[tuple[str, str], str]:
    """Key material under the (scope, key) each key is read from: the ``--key`` override, else the policy's own
    databricks ref."""
    import base64
    import hashlib

    store = {}
    for name, spec in {**policy.keys, **overrides}.items():
        if spec.provider == "databricks":
            store[spec.databricks_scope_key] = base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()
    return store


def test_every_ingest_task_reads_all_its_keys_from_the_secret_scope_with_no_environment(bundle):
    """Serverless has no compute environment variables and the policy's `env` keys are set by nobody: each task's
    own ``--key`` parameters (and the policy's databricks keys) must resolve every key its table needs, and the
    audit key that seals its trail, from Databricks secrets alone."""
    loaded = load_policy(ROOT / "conf" / "policy.yaml")
    policy = loaded.policy
    scope = bundle["variables"]["secret_scope"]["default"]
    # the governance SQL decrypts with secret(<phi-dek's scope>, ...): the bundle's scope is the same one
    assert policy.keys["phi-dek"].provider == "databricks"
    assert policy.keys["phi-dek"].databricks_scope_key[0] == scope
    ingest = [(j, t) for j, _, t in tasks(bundle) if t["python_wheel_task"]["parameters"][0] == "ingest"]
    assert len(ingest) == 2 * len(policy.tables)
    for job, task in ingest:
        argv = substitute(task["python_wheel_task"]["parameters"], bundle, LOCAL)
        args = build_parser(argv).parse_args(argv)
        overrides = parse_key_overrides(args.key, policy)
        assert all(spec.provider == "databricks" and spec.databricks_scope_key[0] == scope
                   for spec in overrides.values()), (job, task["task_key"])
        dbutils = _Dbutils(_scope_store(policy, overrides))
        fetchers = Fetchers(environ={}, dbutils=lambda d=dbutils: d)  # no environment variable at all
        ring = resolve_keys(loaded, args.table, key_overrides=overrides, fetchers=fetchers)
        assert len(ring) >= 1
        if policy.audit is not None and policy.audit.key:  # the trail is keyed, from the same scope
            assert seal_key(policy, overrides, fetchers) is not None
        assert dbutils.secrets.reads and {s for s, _ in dbutils.secrets.reads} == {scope}
    # and the same parameters without the overrides fail: the env keys are what the bundle replaces
    argv = substitute(ingest[0][1]["python_wheel_task"]["parameters"], bundle, LOCAL)
    table = argv[argv.index("--table") + 1]
    with pytest.raises(Exception, match="environment variable"):
        resolve_keys(loaded, table, fetchers=Fetchers(environ={}, dbutils=lambda: _Dbutils({})))


def test_the_bundle_jobs_use_an_audit_key(bundle):
    """Issue 26: the bundle's trail is keyed (tamper-evident), its key from the secret scope."""
    policy = load_policy(ROOT / "conf" / "policy.yaml").policy
    assert policy.audit is not None and policy.audit.key, "the example policy names no audit.key"
    for _, _, task in tasks(bundle):
        argv = substitute(task["python_wheel_task"]["parameters"], bundle, LOCAL)
        if argv[0] != "ingest":
            continue
        overrides = parse_key_overrides(build_parser(argv).parse_args(argv).key, policy)
        spec = overrides.get(policy.audit.key, policy.keys[policy.audit.key])
        assert spec.provider == "databricks", task["task_key"]


def test_the_pipeline_reads_its_keys_from_the_secret_scope(bundle):
    loaded = load_policy(ROOT / "conf" / "policy.yaml")
    [pipeline] = bundle["resources"]["pipelines"].values()
    conf = substitute(pipeline["configuration"], bundle, LOCAL)
    items = [k.strip() for k in conf["lakehouse_phi.keys"].split(",") if k.strip()]
    overrides = parse_key_overrides(items, loaded.policy)
    dbutils = _Dbutils(_scope_store(loaded.policy, overrides))
    resolve_keys(loaded, conf["lakehouse_phi.table"], key_overrides=overrides,
                 fetchers=Fetchers(environ={}, dbutils=lambda: dbutils))
    assert conf["lakehouse_phi.table"] in loaded.policy.tables
    assert conf["lakehouse_phi.landing"].startswith("/Volumes/")
    assert conf["lakehouse_phi.wheel"].endswith("/.internal")  # where the CLI uploads the bundle's wheels
    [library] = pipeline["libraries"]
    assert (ROOT / "resources" / library["notebook"]["path"]).resolve() == ROOT / "notebooks" / "03_bronze_dlt.py"
    assert pipeline["serverless"] is True


def test_prod_runs_ingest_and_governance_as_separate_service_principals(bundle):
    """The identity that writes PHI and reads the keys is not the one that binds masks: it cannot drop them."""
    prod = bundle["targets"]["prod"]
    assert "run_as" not in prod  # no bundle-wide identity
    jobs = prod["resources"]["jobs"]
    ingest_ids = {jobs[j]["run_as"]["service_principal_name"] for j in ("bronze_ingest", "bronze_ingest_classic")}
    ingest_ids |= {p["run_as"]["service_principal_name"] for p in prod["resources"]["pipelines"].values()}
    assert ingest_ids == {"${var.ingest_sp}"}
    assert jobs["governance_apply"]["run_as"] == {"service_principal_name": "${var.governance_sp}"}
    # every job and pipeline of the bundle has its prod identity
    assert set(jobs) == set(bundle["resources"]["jobs"])
    assert set(prod["resources"]["pipelines"]) == set(bundle["resources"]["pipelines"])


def test_every_path_it_names_exists(bundle):
    [artifact] = bundle["artifacts"].values()
    assert (ROOT / artifact["path"] / "pyproject.toml").is_file()
    # the wheel the tasks install is what the artifact's build writes: `-w dist` -> ./dist/*.whl
    build = shlex.split(artifact["build"])
    assert build[:4] == ["python", "-m", "pip", "wheel"] and build[build.index("-w") + 1] == "dist"
    for pattern in bundle["sync"]["include"]:
        assert list(ROOT.glob(pattern)), f"sync.include {pattern!r} matches nothing"
    for pipeline in bundle["resources"]["pipelines"].values():
        for library in pipeline["libraries"]:
            assert (ROOT / "resources" / library["notebook"]["path"]).is_file()
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
    for _, _, task in tasks(bundle):
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


def test_no_cluster_sets_spark_authenticate_without_its_secret(bundle):
    """Spark requires spark.authenticate.secret with spark.authenticate=true outside YARN/Kubernetes/local masters:
    a Databricks job cluster with one and not the other does not start."""
    clusters = [c["new_cluster"] for _, job, _ in tasks(bundle) for c in job.get("job_clusters", [])]
    clusters += [t["new_cluster"] for _, _, t in tasks(bundle) if "new_cluster" in t]
    assert clusters
    for spec in clusters:
        conf = {k: str(v).strip().lower() for k, v in spec.get("spark_conf", {}).items()}
        if conf.get("spark.authenticate") == "true":
            assert "spark.authenticate.secret" in conf or spec.get("init_scripts"), spec


def test_classic_job_cluster_passes_the_config_validator(bundle):
    job = bundle["resources"]["jobs"]["bronze_ingest_classic"]
    [settings] = clusters_from_json(job, "databricks.yml bronze_ingest_classic")
    spec = job["job_clusters"][0]["new_cluster"]
    compute = detect({"DATABRICKS_RUNTIME_VERSION": "17.3"}, {}, cluster_spec=spec)
    assert compute.kind == "databricks-standard"
    report = check(settings, compute=compute)
    assert report.ok and report.findings == (), [str(f) for f in report.findings]
    # the pre-flight says who encrypts the traffic between nodes: the instance type, not spark.authenticate
    [managed] = report.platform_managed
    assert managed.rule == "rpc-encryption" and spec["node_type_id"] in managed.reason
    # a live session on that cluster reports its node types: the same outcome
    session = detect({"DATABRICKS_RUNTIME_VERSION": "17.3"},
                     {"spark.databricks.clusterUsageTags.clusterId": "0101-abc",
                      "spark.databricks.clusterUsageTags.clusterNodeType": spec["node_type_id"],
                      "spark.databricks.clusterUsageTags.dataSecurityMode": "USER_ISOLATION"})
    assert "rpc-encryption" in session.platform_managed
    # and the checker is not trivially happy: the same cluster without local-disk encryption is refused, and on
    # an instance type that does not encrypt in transit the missing RPC encryption is reported
    insecure = {**spec, "enable_local_disk_encryption": False}
    [bad] = clusters_from_json({"new_cluster": insecure}, "insecure")
    assert {f.rule for f in check(bad, compute=compute).errors} == {"local-disk-encryption"}
    plain = {**spec, "node_type_id": "i3.xlarge"}
    [other] = clusters_from_json({"new_cluster": plain}, "i3")
    found = check(other, compute=detect({"DATABRICKS_RUNTIME_VERSION": "17.3"}, {}, cluster_spec=plain)).findings
    assert {(f.rule, f.severity) for f in found} == {("rpc-encryption", "warn")}
    mixed = {**spec, "driver_node_type_id": "i3.xlarge"}  # every node must encrypt
    assert "rpc-encryption" not in detect({"DATABRICKS_RUNTIME_VERSION": "17.3"}, {}, cluster_spec=mixed
                                          ).platform_managed


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
    compiled = compile_policy(load_policy(ROOT / "conf" / "policy.yaml"), "databricks")
    waiting = {s.sql for s in compiled.apply if s.requires is not None}  # grants on bronze wait for its tables
    assert warehouse.modifying() == [s.sql for s in compiled.apply if s.sql not in waiting]
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
