"""``lakehouse-phi demo`` as a new user runs it: from an empty folder outside the repository, ending with
``demo_output/report.html``, which holds no data value of the landing files."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from xml.etree import ElementTree

from lakehouse_phi.examples import EXAMPLE_POLICY
from tests.helpers import ROOT

PHI_COLUMNS = ("mrn", "ssn", "first_name", "last_name", "phone", "email", "address", "member_id", "zip", "dob")


def test_demo_runs_from_any_folder_and_writes_the_report(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lakehouse_phi", "demo", "--patients", "2000", "--format", "json"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    out = tmp_path / "demo_output"
    assert summary["schema_version"] == 1 and summary["audit_ok"] is True
    assert summary["report"] == str(out / "report.html") and summary["out"] == str(out)
    assert summary["tables"]["patients"]["rows_read"] == 2000

    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "clinical-lakehouse" in page
    assert "intact" in page and "Runs over time" in page
    # self-contained: no script, no stylesheet or image from elsewhere
    assert "<script" not in page and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert len(ElementTree.fromstring(svg).findall("{http://www.w3.org/2000/svg}polyline")) == 3
    # never a data value: every PHI value of the landing patients (6+ characters) is absent
    landing = next((out / "landing" / "patients").glob("*.csv"))
    with landing.open(newline="") as f:
        values = {row[c] for row in csv.DictReader(f) for c in PHI_COLUMNS if len(row.get(c) or "") >= 6}
    assert len(values) > 5000
    leaked = [v for v in values if v in page]
    assert not leaked, f"{len(leaked)} landing values in the report"

    # a keyed trail out of the box: sealed under the key the demo made (mode 600, where it said), so verifying it
    # without the key exits 2, with it 0; the Delta trail keeps its history six years and is append-only
    key_file = out / "keys" / "audit-trail.key"
    assert summary["audit_key_file"] == str(key_file) and summary["audit_sealed"] == summary["audit_events"] > 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    trail = summary["audit"]
    verify = [sys.executable, "-m", "lakehouse_phi", "audit", "verify", trail]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    without = subprocess.run(verify, capture_output=True, text=True, env=env, timeout=120)
    assert without.returncode == 2, without.stderr
    assert "without its key" in without.stderr
    keyed = subprocess.run([*verify, "--key", f"audit-trail=file:{key_file}"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert keyed.returncode == 0 and "intact" in keyed.stdout, keyed.stderr
    if summary["table_format"] == "delta":
        from deltalake import DeltaTable

        conf = DeltaTable(trail).metadata().configuration
        assert conf["delta.appendOnly"] == "true"
        assert conf["delta.logRetentionDuration"] == conf["delta.deletedFileRetentionDuration"] == \
            "interval 2190 days"
    # the report and the summary tell the truth: no run was refused, patients' measured k breaks the policy's 11
    assert re.search(r'refused runs<b class="">0</b>', page)
    assert re.search(r'<span class="bad" data-figure="k" data-table="patients">1</span>', page)
    assert summary["tables"]["patients"]["risk"]["k"] < 11 and "patients" in summary["risk_breaks_policy"]
    assert "smallest" not in summary["tables"]["patients"]["risk"]
    said = re.sub(r"\s+", " ", done.stderr)
    assert "patients breaks its k: k = " in said and "where the policy asks for 11" in said
    assert f"lakehouse-phi export {EXAMPLE_POLICY} --table patients --out DIR` releases only the records" in said
