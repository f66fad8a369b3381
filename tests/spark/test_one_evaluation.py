"""One evaluation per run (issue 22.4): the mask pass runs exactly once over every landed row, on classic Spark,
pysail and local Spark Connect, whatever writer; refusals, counts and writes all read the staged copy.

The pass is counted by a pass that appends its batch sizes to a file (no accumulator: Spark Connect has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakehouse_phi.spark.mask as mask_module
from lakehouse_phi import synth
from lakehouse_phi.deltars import read_delta
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.batch import run_ingest
from lakehouse_phi.spark.job import IngestOptions
from tests.helpers import EXAMPLE, ROOT, demo_env
from tests.spark.passcount import counting_build_plan, rows_processed

pytest.importorskip("deltalake")
ENV, OVERRIDES = demo_env()


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("once")
    synth.write_landing(root, {"claims": 240}, seed=5, malformed_rate=0.03)
    return root / "landing" / "claims"


def _options(tmp: Path, landing: Path, **kw) -> IngestOptions:
    return IngestOptions(input_path=str(landing), bronze=str(tmp / "bronze"), quarantine=str(tmp / "quarantine"),
                         audit=str(tmp / "audit.jsonl"), key_overrides=OVERRIDES, allow_insecure=True, **kw)


@pytest.mark.parametrize("engine,writer,fmt", [("spark", "delta-rs", "delta"), ("spark", "spark", "parquet"),
                                               ("sail", "delta-rs", "delta"), ("sail", "spark", "delta")])
def test_the_mask_pass_runs_once_per_run(request, engine, writer, fmt, landing, tmp_path, monkeypatch):
    session = request.getfixturevalue(engine)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    log = tmp_path / "pass.log"
    monkeypatch.setattr(mask_module, "build_plan", counting_build_plan(log))
    loaded = load_policy(EXAMPLE)
    result = run_ingest(session, loaded, "claims", _options(tmp_path, landing, writer=writer, table_format=fmt))
    assert result.rows_quarantined > 0 and result.writer == writer
    # every landed row went through the pass exactly once: tally, refusals, both writes read the staged copy
    assert rows_processed(log) == result.rows_read == result.rows_written + result.rows_quarantined
    if fmt == "delta":
        assert read_delta(tmp_path / "bronze").num_rows == result.rows_inserted == result.rows_written
    # a rerun: the pass runs once more (not once per action), and nothing is written twice
    again = run_ingest(session, loaded, "claims", _options(tmp_path, landing, writer=writer, table_format=fmt))
    assert rows_processed(log) == 2 * result.rows_read
    assert again.rows_inserted == 0 and again.rows_unchanged == again.rows_written


_CONNECT_SCRIPT = r"""
import json, sys
from pathlib import Path
import lakehouse_phi.spark.mask as mask_module
from tests.spark.passcount import counting_build_plan, rows_processed
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.batch import run_ingest
from lakehouse_phi.spark.job import IngestOptions
from lakehouse_phi.spark.session import is_connect, local_connect_session
from tests.helpers import EXAMPLE, demo_env

landing, out = Path(sys.argv[1]), Path(sys.argv[2])
log = out / "pass.log"
mask_module.build_plan = counting_build_plan(log)
spark = local_connect_session("once")
assert is_connect(spark)
_, overrides = demo_env()
opts = IngestOptions(input_path=str(landing), bronze=str(out / "bronze"), audit=str(out / "audit.jsonl"),
                     table_format="parquet", key_overrides=overrides, allow_insecure=True)
r = run_ingest(spark, load_policy(EXAMPLE), "claims", opts)
print(json.dumps({"processed": rows_processed(log), "read": r.rows_read, "written": r.rows_written,
                  "quarantined": r.rows_quarantined}))
"""


def test_the_mask_pass_runs_once_on_local_spark_connect(landing, tmp_path):
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _CONNECT_SCRIPT, str(landing), str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["processed"] == counts["read"] == counts["written"] + counts["quarantined"]
    assert counts["quarantined"] > 0


def test_without_localcheckpoint_the_pass_is_spooled_once(sail, landing, tmp_path, monkeypatch):
    """An engine without ``localCheckpoint`` (as some Spark Connect servers): the masked batch is staged in a local
    Parquet spool instead, still one evaluation."""
    from pyspark.sql.connect.dataframe import DataFrame as ConnectFrame

    def no_checkpoint(self, eager=True, storageLevel=None):
        raise RuntimeError("localCheckpoint is not supported here")

    monkeypatch.setattr(ConnectFrame, "localCheckpoint", no_checkpoint)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    log = tmp_path / "pass.log"
    monkeypatch.setattr(mask_module, "build_plan", counting_build_plan(log))
    result = run_ingest(sail, load_policy(EXAMPLE), "claims", _options(tmp_path, landing, writer="spark"))
    assert rows_processed(log) == result.rows_read == result.rows_written + result.rows_quarantined > 0
    assert read_delta(tmp_path / "bronze").num_rows == result.rows_inserted


def test_rows_that_differ_from_the_tally_are_refused_before_their_commit(sail, landing, tmp_path, monkeypatch):
    """The tally decides the refusals; the delta-rs writer counts the rows it is about to commit and refuses a
    difference (here a tally that claims one valid row more) before that commit, naming the run."""
    import dataclasses

    from lakehouse_phi.errors import JobRefused
    from lakehouse_phi.spark import staging

    real = staging.tally_spark

    def lying(masked, scan_columns):
        t = real(masked, scan_columns)
        return dataclasses.replace(t, rows_read=t.rows_read + 1)

    monkeypatch.setattr(staging, "tally_spark", lying)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(JobRefused, match="tally counted") as err:
        run_ingest(sail, load_policy(EXAMPLE), "claims", _options(tmp_path, landing, writer="delta-rs",
                                                                  run_id="run-lying-tally"))
    assert "run-lying-tally" in str(err.value)
    assert not (tmp_path / "bronze").exists()  # the bronze commit never happened
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "ingest_refused" and "ingest" not in [e["event"] for e in events]
