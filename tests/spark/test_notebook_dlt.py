"""``notebooks/03_bronze_dlt.py`` run on local classic Spark, with the bundle's own pipeline configuration.

Stand-ins (``tests/notebook.py``), each recording what the notebook asks of it: ``pyspark.pipelines`` (``dp``:
datasets and expectations, whose graph the test then runs once, streaming tables with an available-now trigger),
Auto Loader (the plain streaming file source, all columns strings plus ``_rescued_data``), ``dbutils`` (secrets,
``library.restartPython``), ``pip`` (``subprocess.check_call``) and the workspace folder the bundle uploads its
wheels to. What is real: the notebook's code, ``lakehouse_phi.mask`` and Spark.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import lakehouse_phi
from lakehouse_phi import synth
from lakehouse_phi.keys.overrides import parse_key_overrides
from lakehouse_phi.policy import load_policy
from tests.bundle import load, substitute
from tests.notebook import ExpectationFailed, run_pipeline

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_bronze_dlt.py"
ARTIFACTS = "/Workspace/Users/me/.bundle/lakehouse_phi/dev/artifacts"


def _configuration(tmp: Path, policy: Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """The bundle's pipeline configuration (resources/pipelines.yml, variables filled as a deployment would, the
    landing volume a local folder) and a secret scope holding every key it names."""
    bundle = load()
    pipeline = bundle["resources"]["pipelines"]["bronze_dlt_patients"]
    conf = substitute(pipeline["configuration"], bundle, {
        "workspace.file_path": str(ROOT), "workspace.artifact_path": ARTIFACTS, "bundle.target": "dev",
        "var.landing_volume": str(tmp / "landing"), "var.catalog": "main", "var.policy_path": str(policy)})
    loaded = load_policy(policy)
    overrides = parse_key_overrides(conf["lakehouse_phi.keys"].split(","), loaded.policy)
    secrets = {}
    for name, spec in {**loaded.policy.keys, **overrides}.items():
        if spec.provider == "databricks":
            secrets[spec.databricks_scope_key] = base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()
    return conf, secrets


@pytest.fixture
def workspace(monkeypatch, tmp_path):
    """The bundle's artifact folder (``ARTIFACTS/.internal``) as a local folder, and ``pip`` recorded."""
    folder = tmp_path / "internal"
    folder.mkdir()
    real_listdir, real_isfile = os.listdir, os.path.isfile

    def local(p):
        p = os.fspath(p)
        return str(folder) + p[len(ARTIFACTS + "/.internal"):] if p.startswith(ARTIFACTS + "/.internal") else p

    monkeypatch.setattr(os, "listdir", lambda p=".": real_listdir(local(p)))
    monkeypatch.setattr(os.path, "isfile", lambda p: real_isfile(local(p)))
    pip: list[list[str]] = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: pip.append(list(cmd)) or 0)
    return folder, pip


def _wheels(folder: Path, *versions: str) -> None:
    for v in versions:
        (folder / f"lakehouse_phi-{v}-py3-none-any.whl").write_bytes(b"")
    (folder / "other_pkg-9.9-py3-none-any.whl").write_bytes(b"")


def test_pipeline_installs_the_wheel_masks_one_source_once_and_splits_it(spark, tmp_path, workspace, monkeypatch):
    folder, pip = workspace
    installed = metadata.version("lakehouse-phi")
    base = installed.partition("+")[0]
    # dynamic_version stamps: the newest by number (1000 > 900, which a string comparison would get wrong)
    _wheels(folder, f"{base}+900", f"{base}+1000", "0.0.1")
    synth.write_landing(tmp_path, {"patients": 120}, seed=21, malformed_rate=0.05)
    policy = ROOT / "conf" / "policy.yaml"
    conf, secrets = _configuration(tmp_path, policy)
    masks = []
    real_mask = lakehouse_phi.mask
    monkeypatch.setattr(lakehouse_phi, "mask", lambda *a, **kw: masks.append(a[2]) or real_mask(*a, **kw))

    ns = run_pipeline(NOTEBOOK, spark, conf, secrets, tmp_path / "tables")

    # install: the bundle's newest wheel by path, never the package name, then a Python restart
    assert pip == [[sys.executable, "-m", "pip", "install", "--quiet",
                    f"{ARTIFACTS}/.internal/lakehouse_phi-{base}+1000-py3-none-any.whl"]]
    assert ns["_dbutils"].library.restarts == 1
    # ONE Auto Loader source, from the configured landing path, masked once
    [load_] = ns["_spark"].loads
    assert load_["path"] == conf["lakehouse_phi.landing"] == str(tmp_path / "landing" / "patients")
    assert load_["cloudFiles.format"] == "csv" and load_["cloudFiles.schemaEvolutionMode"] == "failOnNewColumns"
    assert masks == ["patients"]
    # the graph: a private stage, bronze and quarantine under the configured names, the rate view
    datasets = ns["_dp"].datasets
    bronze, quarantine = conf["lakehouse_phi.bronze"], conf["lakehouse_phi.quarantine"]
    stage = f"{bronze}_lhp_masked"
    assert set(datasets) == {stage, bronze, quarantine, f"{bronze}_quarantine_rate"}
    assert datasets[stage].options["private"] is True and not datasets[bronze].options.get("private")
    assert datasets[f"{bronze}_quarantine_rate"].kind == "materialized_view"
    # the split: every landed row once, in bronze or quarantine
    rows = ns["_rows"]
    landed = spark.read.option("header", "true").csv(str(tmp_path / "landing" / "patients")).count()
    staged = rows[stage]
    assert len(staged) == landed == len(rows[bronze]) + len(rows[quarantine])
    assert rows[quarantine] and rows[bronze]
    assert all(r["_phi_errors"] for r in rows[quarantine])
    assert "_phi_errors" not in rows[bronze][0].asDict() and "_phi_scan_hits" not in rows[bronze][0].asDict()
    assert {r["_row_fingerprint"] for r in rows[bronze]}.isdisjoint({r["_row_fingerprint"] for r in rows[quarantine]})
    assert {r["_ingest_run_id"] for r in staged} == {ns["RUN_ID"]}
    # masked: no raw MRN (hmac) or SSN (encrypt, key from the secret scope) in either table
    raw_mrns = {r["mrn"] for r in spark.read.option("header", "true").csv(str(tmp_path / "landing" / "patients"))
                .collect() if r["mrn"]}
    out_values = {v for t in (bronze, quarantine) for r in rows[t] for v in r.asDict().values() if isinstance(v, str)}
    assert raw_mrns and raw_mrns.isdisjoint(out_values)
    assert ("phi-keys", "ssn-dek") in ns["_dbutils"].secrets.values
    # expectations: on bronze, on quarantine, and the quarantine rate, all held
    expectations = ns["_expectations"]
    assert {n for _, n, _ in expectations[bronze]} == {"fingerprinted", "run_recorded"}
    assert expectations[quarantine] == [("fail", "reason_recorded", 0)]
    rate = {n: (a, f) for a, n, f in expectations[f"{bronze}_quarantine_rate"]}
    assert rate["rate_recorded"] == ("fail", 0)
    [counts] = rows[f"{bronze}_quarantine_rate"]
    assert counts["rows"] == len(staged) and counts["quarantined"] == len(rows[quarantine])


def test_the_quarantine_rate_expectation_fails_the_update(spark, tmp_path, workspace):
    folder, pip = workspace
    _wheels(folder, metadata.version("lakehouse-phi"))  # already installed: no pip, no restart
    synth.write_landing(tmp_path, {"patients": 80}, seed=22, malformed_rate=0.2)
    data = yaml.safe_load((ROOT / "conf" / "policy.yaml").read_text())
    data["tables"]["patients"]["max_quarantine_rate"] = 0.01
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    conf, secrets = _configuration(tmp_path, policy)
    with pytest.raises(ExpectationFailed, match="quarantine_rate_within_policy"):
        run_pipeline(NOTEBOOK, spark, conf, secrets, tmp_path / "tables")
    assert pip == []


def test_a_wheel_outside_volumes_and_workspace_is_refused(spark, tmp_path, workspace):
    conf, secrets = _configuration(tmp_path, ROOT / "conf" / "policy.yaml")
    for where in ("lakehouse-phi", "https://example.invalid/lakehouse_phi-0.1.0-py3-none-any.whl", "/tmp/x.whl"):
        with pytest.raises(ValueError, match="never installed by name"):
            run_pipeline(NOTEBOOK, spark, {**conf, "lakehouse_phi.wheel": where}, secrets, tmp_path / "t")
    assert workspace[1] == []
