"""The README's first-ingest walkthrough as a newcomer follows it: its CSV and policy blocks written to an empty
folder, its shell commands run as processes, then every Python block of the README run in that folder."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import subprocess
import sys

from lakehouse_phi.deltars import read_delta
from tests.helpers import ROOT
from tests.readme import blocks, commands

SECTION = "Your first ingest of your own CSV"


def _cli(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse_phi", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_the_walkthrough_and_the_python_snippets_run(tmp_path, monkeypatch):
    (csv_block,) = blocks("csv", SECTION)
    (yaml_block,) = blocks("yaml", SECTION)
    (tmp_path / "visits.csv").write_text(csv_block)
    (tmp_path / "my_policy.yaml").write_text(yaml_block)
    steps = commands(blocks("bash", SECTION)[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MY_PSEUDONYM_KEY", None)

    # before the key is exported, the job stops with the message the README quotes, and writes nothing
    ingest = next(shlex.split(s)[1:] for s in steps if s.startswith("lakehouse-phi ingest"))
    done = _cli(ingest, tmp_path, env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    quoted = re.search(r"says so: `(key 'pseudonym'.*?)`", " ".join(
        open(ROOT / "README.md", encoding="utf-8").read().split())).group(1)
    assert quoted in " ".join(done.stderr.split())
    assert not (tmp_path / "out" / "bronze").exists()

    for step in steps:
        if step.startswith("export "):
            name = re.match(r"export (\w+)=", step).group(1)
            env[name] = base64.b64encode(secrets.token_bytes(32)).decode()
            continue
        done = _cli(shlex.split(step)[1:], tmp_path, env)
        assert done.returncode == 0, (step, done.stderr[-2000:])
        assert "Traceback" not in done.stderr

    bronze = read_delta(str(tmp_path / "out" / "bronze" / "visits"))
    assert bronze.num_rows == 2 and "name" in bronze.column_names
    assert set(bronze.column("name").to_pylist()) == {None}  # suppressed
    assert read_delta(str(tmp_path / "out" / "bronze" / "visits_quarantine")).num_rows == 1
    page = (tmp_path / "out" / "report.html").read_text()
    assert "my-first-policy" in page and "mrn: pattern" in page
    assert "Ada Park" not in page and "MRN0000001" not in page

    # every Python block of the README, in the same folder, with the key the walkthrough exported
    snippets = blocks("python")
    assert snippets
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_PSEUDONYM_KEY", env["MY_PSEUDONYM_KEY"])
    for snippet in snippets:
        namespace: dict = {}
        exec(compile(snippet, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (3, 2, 1)
    assert result.rows_inserted == 0  # merged on record_key: nothing new
    assert result.quarantine_reasons == {"mrn:pattern": 1}
