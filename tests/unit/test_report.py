"""The HTML compliance report: what it shows (protection per column, runs, quarantine reasons, findings, chain
status, risk figures), that it is one self-contained page, and that it never shows a data value: sentinels are
planted in every free-text place of the trail, the risk result and the check-conf report."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from lakehouse_phi.cli import main
from lakehouse_phi.policy import load_policy
from tests.helpers import EXAMPLE, demo_env

SENTINEL = "SENTINEL-123-45-6789"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def policy(tmp_path):
    text = EXAMPLE.read_text().replace(
        "zip:        {type: string, phi: zip, ingest: zip3}",
        "zip:        {type: string, phi: zip, ingest: zip3, quasi_identifier: true}")
    text = text.replace("    risk: {k: 11}\n", "    risk: {k: 5}\n", 1)
    assert "    risk: {k: 5}\n" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    load_policy(path)  # still valid
    return path


def _event(loaded, **kw):
    base = dict(run_id="r", actor="etl", event="ingest", policy_name=loaded.name, policy_sha256=loaded.sha256,
                table="patients", rows_read=0, rows_written=0, rows_quarantined=0, columns={})
    return new_event(**{**base, **kw})


@pytest.fixture
def trail(tmp_path, policy, monkeypatch):
    from lakehouse_phi.audit.sealing import seal_key

    env, _ = demo_env()
    for var, value in env.items():  # the example policy seals its trail under audit-trail: the report checks seals
        monkeypatch.setenv(var, value)
    loaded = load_policy(policy)
    sink = JsonlSink(tmp_path / "audit.jsonl", seal_key(loaded.policy))
    sink.append(_event(loaded, run_id="run-1", rows_read=1000, rows_written=990, rows_quarantined=10,
                       columns={"ssn": {"strategy": "encrypt", "key_version": 2}},
                       details={"quarantine_reasons": {"ssn:pattern": 7, f"{SENTINEL}:type": 2, f"mrn:{SENTINEL}": 1},
                                "dropped_columns": [SENTINEL], "conf_errors": ["io-encryption", SENTINEL],
                                "allow_insecure": True, "note": SENTINEL}))
    sink.append(_event(loaded, run_id="run-2", event="ingest_refused",
                       details={"reason": "key", "message": f"value {SENTINEL} refused"}))
    sink.append(_event(loaded, run_id="run-3", rows_read=2000, rows_written=2000,
                       columns={"ssn": {"strategy": "encrypt", "key_version": 3}}))
    sink.append(_event(loaded, run_id="run-4", event="risk",
                       details={"k": 3, "l": 1, "classes": 40, "records": 2000, "records_below_k": 12,
                                "smallest_classes": [{"zip": SENTINEL, "count": 3}], "label": SENTINEL}))
    return sink.path


def _report(tmp_path, policy, *extra: str) -> tuple[int, str]:
    out = tmp_path / "report.html"
    code = main(["report", str(policy), *extra, "--out", str(out)])
    return code, out.read_text(encoding="utf-8")


def test_the_report_shows_protection_runs_reasons_findings_chain_and_risk(tmp_path, policy, trail, capsys):
    risk = tmp_path / "risk.json"
    risk.write_text(json.dumps({"table": "patients", "k": 6, "l": 1, "classes": 50, "records": 2000,
                                "smallest_classes": [{"zip": SENTINEL, "k": 6}]}))
    assert main(["check-conf", "--conf", f"spark.io.encryption.enabled={SENTINEL}", "--format", "json"]) == 1
    conf = tmp_path / "conf.json"
    conf.write_text(capsys.readouterr().out)

    code, page = _report(tmp_path, policy, "--audit", str(trail), "--risk", str(risk), "--conf-report", str(conf))
    assert code == 0
    text = re.sub(r"<[^>]+>", " ", page)
    assert SENTINEL not in page  # nowhere: not a reason, dropped column, note, message, risk class or conf value
    # protection per column: PHI category, strategy, key and version (the last run's version where it differs)
    assert re.search(r"ssn\s+string\s+ssn\s+encrypt\s+phi-dek\s+3", text)
    assert re.search(r"member_id\s+string\s+health_plan_number\s+fpe\s+fpe-key\s+2", text)
    assert "clinical dosing needs exact age" in text  # a keep on PHI shows its justification
    # runs, the refused one included, and the quarantine reasons that are safe to name
    assert "ingest_refused" in text and "(key)" in text
    assert re.search(r"ssn: pattern\s+7", text) and re.search(r"\(other\)\s+3", text)
    # config findings from the trail and the check-conf report (rule and fix, never the value)
    assert "io-encryption" in text and "set spark.io.encryption.enabled=true" in text
    # chain status and risk: the trail's k=3 is below the policy's 5, the file's 6 meets it
    assert "BROKEN" not in text and re.search(r"intact\s*, 4 seals checked under\s+audit-trail", text)
    # every measured figure (k, l, records, classes, records in classes below k), red where it breaks the policy
    assert re.search(r"patients\s+audit trail\s+3\s+\(below policy\)\s+1\s+2,000\s+40\s+12\s+\(below policy\)"
                     r"\s+5\s+1\s+BREAKS the policy", text)
    assert re.search(r"patients\s+risk.json\s+6\s+1\s+2,000\s+50\s+-\s+5\s+1\s+meets the policy", text)
    assert re.search(r'<span class="bad" data-figure="k" data-table="patients">3</span>', page)
    assert re.search(r'<span class="fig" data-figure="k" data-table="patients">6</span>', page)
    assert "lakehouse-phi export" in text  # what happens to a table below its k
    # one self-contained page with the runs chart as inline SVG
    assert "<script" not in page and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    svg = ElementTree.fromstring(re.search(r"<svg.*?</svg>", page, re.S).group(0))
    assert len(svg.findall(f"{SVG}polyline")) == 3
    assert len(svg.findall(f"{SVG}circle")) == 3 * 2  # two ingest runs, three series


def test_a_broken_chain_exits_1_and_the_page_says_where(tmp_path, policy, trail, capsys):
    lines = trail.read_text().splitlines()
    lines[2] = lines[2].replace('"rows_read":2000', '"rows_read":2001')
    trail.write_text("\n".join(lines) + "\n")
    code, page = _report(tmp_path, policy, "--audit", str(trail))
    assert code == 1 and "BROKEN" in page and "at position 2" in page
    assert "BROKEN" in capsys.readouterr().err


def test_without_a_trail_the_report_still_shows_the_policy(tmp_path, policy):
    code, page = _report(tmp_path, policy)
    assert code == 0 and "No ingest run" in page and "not measured yet" in page and "<svg" not in page


def test_names_are_escaped(tmp_path):
    from lakehouse_phi.report import build_report_data, render_html

    text = EXAMPLE.read_text().replace("      payer:          {type: string, required: true}",
                                       '      "<img src=x>":  {type: string, required: true}')
    path = tmp_path / "p.yaml"
    path.write_text(text)
    page = render_html(build_report_data(load_policy(path)))
    assert "<img" not in page and "&lt;img src=x&gt;" in page
