"""The README's spark-submit example passes the job's own config check (the same rules, read the way spark-submit
reads its arguments), before anyone submits it."""

from __future__ import annotations

import shlex

from lakehouse_phi.cli import main
from tests.helpers import ROOT
from tests.readme import blocks, commands


def _submit_commands() -> list[str]:
    return [c for b in blocks("bash") for c in commands(b) if c.startswith("spark-submit")]


def test_the_spark_submit_example_passes_the_config_check(monkeypatch, capsys):
    submits = _submit_commands()
    assert len(submits) == 1
    argv = shlex.split(submits[0])
    job = argv.index("jobs/bronze_ingest.py")
    assert (ROOT / argv[job]).is_file() and (ROOT / argv[job + 1]).is_file()
    job_args = argv[job + 1:]
    source = job_args[job_args.index("--input") + 1]
    bronze = job_args[job_args.index("--bronze") + 1]
    monkeypatch.chdir(ROOT)  # the example's relative paths (--properties-file) are the repository's
    code = main(["check-conf", "--spark-submit", submits[0], "--paths", source, bronze, f"{bronze}_quarantine"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "spark-defaults.secure.conf" in out and "phi-landing" in out and "phi-bronze" in out


def test_the_old_example_would_have_been_refused(monkeypatch, capsys):
    """The check is not vacuous: the example as it was (two --conf settings) is refused."""
    old = ("spark-submit --master yarn --conf spark.io.encryption.enabled=true "
           "--conf spark.io.encryption.keySizeBits=256 "
           "jobs/bronze_ingest.py conf/policy.yaml --table patients --input s3a://phi-landing/patients")
    monkeypatch.chdir(ROOT)
    assert main(["check-conf", "--spark-submit", old, "--paths", "s3a://phi-landing/patients"]) == 1
    capsys.readouterr()
