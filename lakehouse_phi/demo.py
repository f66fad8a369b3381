"""The demo's pipeline: the whole story on synthetic data, locally (``lakehouse-phi demo``, which
:mod:`lakehouse_phi.commands.demo` runs and reports on).

Generated landing data for every table -> the config validator -> bronze ingest of each table (real Delta tables
on pysail; Parquet on a Spark without Delta) -> the audit trail verified -> the governance SQL compiled -> the HTML
compliance report (``demo_output/report.html``). Keys are random, made for this process only. Runs from any folder:
the example policy ships inside the package (``lakehouse_phi/examples/policy.yaml``) and the data is generated.
Progress goes to stderr; what was made is returned (:class:`DemoRun`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse_phi.audit.chain import VerifyResult
    from lakehouse_phi.policy import LoadedPolicy
    from lakehouse_phi.policy.model import KeySpec
    from lakehouse_phi.spark.batch import IngestResult

#: Patients in the demo's FHIR export (with two encounters each): modest, so the demo stays fast.
FHIR_PATIENTS = 200

#: the demo's measured risk, as ``lakehouse-phi risk --format json`` writes it (one document, every table)
RISK_FILE = "risk.json"


@dataclass
class DemoRun:
    """What :func:`run_demo` made: the pipeline's outputs, the trail key's file, and how long it took."""

    loaded: LoadedPolicy
    root: Path
    done: DemoOutputs
    key_file: Path | None
    seconds: float


def run_demo(policy: str, out: str, *, patients: int = 50_000, malformed_rate: float = 0.02, seed: int = 7,
             engine: str = "auto") -> DemoRun:
    """Generate the landing data under ``out`` (its earlier demo folders removed first), make random keys for this
    process (``os.environ``), ingest every table of ``policy``, verify the trail, compile the SQL and write the
    report, with a progress bar on stderr."""
    from lakehouse_phi.keys.local import local_keys
    from lakehouse_phi.policy import load_policy

    started = time.perf_counter()
    loaded = load_policy(policy)
    root = Path(out).resolve()
    for sub in ("landing", "bronze", "quarantine", "audit", "sql", "keys"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for name in ("report.html", RISK_FILE):
        (root / name).unlink(missing_ok=True)
    env, overrides = local_keys(loaded.policy)  # random, for this process only
    os.environ.update(env)
    key_file = _write_audit_key(loaded, root, env, overrides)
    done = _pipeline(policy, loaded, root, overrides, patients=patients, malformed_rate=malformed_rate, seed=seed,
                     engine=engine)
    return DemoRun(loaded, root, done, key_file, time.perf_counter() - started)


def _write_audit_key(loaded: LoadedPolicy, root: Path, env: Mapping[str, str],
                     overrides: Mapping[str, KeySpec]) -> Path | None:
    """The trail key made for this run, written where the user can find it (``keys/<name>.key``, mode 600, standard
    base64 as the ``file`` provider reads it); None when the policy seals nothing."""
    name = loaded.policy.audit_key
    if name is None:
        return None
    spec = overrides.get(name) or loaded.policy.keys[name]
    path = root / "keys" / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(env[spec.ref] + "\n")
    return path


@dataclass
class DemoOutputs:
    """What the demo's pipeline produced."""

    spark: Any
    fmt: str
    conf_errors: list[str]
    results: dict[str, IngestResult]
    audit: str
    verified: VerifyResult
    compiled: list[str]
    report_path: Path
    #: table -> its measured risk (``RiskReport.to_dict()`` without the smallest classes' values)
    risk: dict[str, dict[str, Any]]


def _pipeline(policy: str, loaded: LoadedPolicy, root: Path, overrides: Mapping[str, KeySpec], *, patients: int,
              malformed_rate: float, seed: int, engine: str) -> DemoOutputs:
    """Landing data -> Spark -> config validator -> ingest of each table -> audit check -> SQL -> report, with a
    progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from lakehouse_phi.audit.sinks import verify_trail
    from lakehouse_phi.audit.verify import policy_seal_keys
    from lakehouse_phi.report import write_report
    from lakehouse_phi.spark.batch import run_ingest
    from lakehouse_phi.spark.job import IngestOptions
    from lakehouse_phi.spark.session import get_session
    from lakehouse_phi.storage.tables import default_table_format
    from lakehouse_phi.synth import write_landing
    from lakehouse_phi.synth.fhir import FHIR_LANDING, write_fhir

    err = Console(stderr=True)
    tables = list(loaded.policy.tables)
    results = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        step = progress.add_task("generating landing data", total=3 + len(tables))

        def describe(table: str) -> Callable[[str], None]:
            return lambda msg: progress.update(step, description=f"{table}: {msg}")
        rows = {"patients": patients, "encounters": 3 * patients, "claims": 2 * patients}
        fhir_paths = {path: resource for resource, path in FHIR_LANDING.items()}
        resources = {t: fhir_paths[sp.source.path] for t, sp in loaded.policy.tables.items()
                     if sp.source.path in fhir_paths}
        landing = write_landing(root, {t: rows.get(t, patients) for t in tables if t not in resources},
                                seed=seed, malformed_rate=malformed_rate)
        if resources:  # FHIR Patient and Encounter ndjson: a modest export, masked leaf by leaf
            written = write_fhir(root, min(patients, FHIR_PATIENTS), 2, seed=seed)
            landing.update({t: written[r] for t, r in resources.items()})
        progress.update(step, advance=1, description="starting Spark")
        spark = get_session(engine, app="lakehouse-phi-demo")
        fmt = default_table_format(spark)
        progress.update(step, advance=1, description="checking the Spark configuration")
        conf_errors = _check_conf(spark, root, err)
        audit = str(root / "audit" / ("trail" if fmt == "delta" else "trail.jsonl"))
        for table in tables:
            progress.update(step, description=f"ingesting {table}")
            results[table] = run_ingest(spark, loaded, table, IngestOptions(
                input_path=str(landing[table]), bronze=str(root / "bronze" / table),
                quarantine=str(root / "quarantine" / table), audit=audit, table_format=fmt,
                allow_insecure=True, key_overrides=overrides,
                progress=describe(table)))
            progress.update(step, advance=1)
        progress.update(step, description="measuring re-identification risk")
        risk = _measure_risk(spark, loaded, results)
        (root / RISK_FILE).write_text(json.dumps({"tables": risk}, indent=2, sort_keys=True), encoding="utf-8")
        progress.update(step, description="verifying the audit trail and compiling governance SQL")
        seal_keys, expect = policy_seal_keys(loaded, key_specs=overrides)
        verified = verify_trail(audit, keys=seal_keys, expect_key=expect)
        compiled = _compile(loaded, root / "sql")
        progress.update(step, description="writing the compliance report")
        report_path, _ = write_report(policy, str(root / "report.html"), [audit], [str(root / RISK_FILE)],
                                      seal_keys=seal_keys)
        progress.update(step, advance=1, description="done")
    return DemoOutputs(spark, fmt, conf_errors, results, audit, verified, compiled, report_path, risk)


def _measure_risk(spark: Any, loaded: LoadedPolicy, results: Mapping[str, IngestResult]) -> dict[str, dict[str, Any]]:
    """k, l and the records in classes below them, for every table with ``risk:``, over its bronze; the smallest
    classes (their quasi-identifier values) are left out: the report and the summary show figures only."""
    from lakehouse_phi.release.risk import risk_of_table

    out = {}
    for table, spec in loaded.policy.tables.items():
        if spec.risk and table in results:
            doc = risk_of_table(spark, spec, table, results[table].bronze).to_dict()
            doc.pop("smallest", None)
            out[table] = doc
    return out


def _check_conf(spark: Any, root: Path, err: Console) -> list[str]:
    """The config validator's error rules on this engine; said, not enforced (the demo runs --allow-insecure)."""
    from lakehouse_phi.confcheck import check_session

    report = check_session(spark, [str(root)])
    conf_errors = sorted({f.rule for f in report.errors})
    if conf_errors:
        err.print(f"[yellow]config validator:[/] {len(report.errors)} error finding(s) on this local engine "
                  f"({', '.join(conf_errors)}). A cluster job would stop here; the demo is local, so it runs with "
                  "--allow-insecure, which the audit event records.")
    return conf_errors


def _compile(loaded: Any, out: Path) -> list[str]:
    """The governance SQL for every target, as ``lakehouse-phi compile --out`` writes it."""
    from lakehouse_phi.sql.compile import compile_policy, write
    from lakehouse_phi.sql.dialects import TARGETS

    return [str(p) for target in TARGETS for p in write(compile_policy(loaded, target).files(), out)]
