"""The compliance report as a person sees it: rendered by a real headless Chromium (Debian's ``chromium``, installed
by the test set-up: ``.ci/run`` and ``make test``), not read as HTML source.

The report is built the way the demo builds it, on small data: a sealed trail with three completed ingest runs (each
a pending ``ingest_started`` marker then its closing ``ingest`` event), one refused run and one that never closed,
plus the demo's risk file, where ``patients`` measured k = 1 against the policy's 11. A copy of the page gets a
script that reads what the browser rendered (each card's visible text, the computed colour of the k figure) into
the DOM, which ``--dump-dom`` prints. Without Chromium the test is skipped on a workstation, and FAILS in CI
(``CI=true``), so CI cannot skip it silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from lakehouse_phi.audit import JsonlSink, new_event
from lakehouse_phi.audit.sealing import seal_key
from lakehouse_phi.policy import load_policy
from lakehouse_phi.report import write_report
from tests.helpers import EXAMPLE, demo_env

SENTINEL = "SENTINEL-987-65-4321"
#: the report's colour for a figure that breaks the policy (``.bad`` in report/html.py)
RED = "rgb(180, 35, 24)"
PROBE = """
<script>
const seen = {cards: {}, k: null};
document.querySelectorAll('.card').forEach(c => {
  const b = c.querySelector('b');
  seen.cards[c.dataset.card] = {text: b.innerText, colour: getComputedStyle(b).color};
});
const k = document.querySelector('[data-figure="k"][data-table="patients"]');
seen.k = {text: k.innerText, colour: getComputedStyle(k).color, visible: k.getBoundingClientRect().width > 0};
const risk = [...document.querySelectorAll('h2')].find(h => h.innerText.startsWith('Re-identification'));
seen.risk = risk.parentElement.innerText;
const alert = [...document.querySelectorAll('td span')].find(s => s.innerText.includes('phi_scan_hits'));
seen.alert = {text: alert.innerText, colour: getComputedStyle(alert).color};
const pre = document.createElement('pre'); pre.id = 'seen'; pre.textContent = JSON.stringify(seen);
document.body.appendChild(pre);
</script>
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed, and CI must not skip the browser test: .ci/run installs it "
                    "(apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")


def headless(binary: str, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=180)


def _event(loaded, run_id: str, event: str, **kw) -> dict:
    base = dict(run_id=run_id, actor="etl", event=event, policy_name=loaded.name, policy_sha256=loaded.sha256,
                table="patients", rows_read=0, rows_written=0, rows_quarantined=0, columns={})
    return new_event(**{**base, **kw})


@pytest.fixture
def report(tmp_path, monkeypatch):
    env, _ = demo_env()
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    loaded = load_policy(EXAMPLE)
    trail = tmp_path / "audit.jsonl"
    sink = JsonlSink(trail, seal_key(loaded.policy))
    for i in range(3):  # completed runs: a pending marker, then the closing event
        counts = {"rows_read": 100, "rows_quarantined": 2}
        sink.append(_event(loaded, f"run-{i}", "ingest_started", **counts, details={"pending": True}))
        sink.append(_event(loaded, f"run-{i}", "ingest", rows_written=98, **counts,
                           details={"quarantine_reasons": {"mrn:pattern": 2}}))
    sink.append(_event(loaded, "run-refused", "ingest_refused",
                       details={"reason": "alert", "message": f"value {SENTINEL}",
                                "alerts": [{"alert": "phi_scan_hits", "value": 3, "max": 0, "action": "fail",
                                            "detail": SENTINEL}]}))
    sink.append(_event(loaded, "run-crashed", "ingest_started", rows_read=100, details={"pending": True}))
    risk = tmp_path / "risk.json"  # as the demo writes it: RiskReport.to_dict() without the smallest classes
    risk.write_text(json.dumps({"tables": {"patients": {
        "table": "patients", "source": "demo_output/bronze/patients", "quasi_identifiers": ["birth_year", "sex"],
        "sensitive": [], "records": 294, "classes": 240, "k": 1, "l": None, "k_required": 11, "l_required": 1,
        "classes_below_k": 240, "records_below_k": 294, "classes_below_l": 0, "records_below_l": 0, "ok": False}}}))
    path, intact = write_report(str(EXAMPLE), str(tmp_path / "report.html"), [str(trail)], [str(risk)])
    assert intact
    return path


def test_a_person_sees_the_refused_runs_and_a_red_k(tmp_path, report):
    binary = chromium()
    page = report.read_text(encoding="utf-8")
    assert SENTINEL not in page and "<script" not in page
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = headless(binary, tmp_path / "profile", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(re.search(r'<pre id="seen">(.*?)</pre>', done.stdout, re.S).group(1)
                      .replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    cards = {name: card["text"] for name, card in seen["cards"].items()}
    assert cards["ingest runs"] == "3"  # three runs, not six events
    assert cards["refused runs"] == "1"  # the one refusal, not each ingest_started marker
    assert seen["cards"]["refused runs"]["colour"] == RED
    assert cards["unfinished runs"] == "1"
    assert cards["audit chain"] == "intact"
    assert cards["tables below their k/l"] == "1" and seen["cards"]["tables below their k/l"]["colour"] == RED
    # the measured k of patients, shown and red, with every other figure the run produced
    assert seen["k"] == {"text": "1", "colour": RED, "visible": True}
    risk = re.sub(r"\s+", " ", seen["risk"])
    assert "records in classes below k" in risk and "294 (below policy)" in risk
    assert "BREAKS the policy" in risk and "lakehouse-phi export" in risk
    assert seen["alert"] == {"text": "phi_scan_hits (fail)", "colour": RED}  # the alert that refused the run

    shot = tmp_path / "report.png"
    done = headless(binary, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2400",
                    report.as_uri())
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
