"""Alerts and metrics on real ingest runs (pysail, Delta): a ``fail`` alert refuses the run before anything is
written and the refusal is audited with reason ``alert``; a ``warn`` alert lets it write, is printed and recorded in
the closing event; scrub_text replacements are counted per detector and a drop against the previous run fires
``scrub_replacements_drop``; every run's counts reach an OpenTelemetry meter provider; and a policy without
``audit.key`` is warned about in the run's output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lakehouse_phi import synth
from lakehouse_phi.audit import read_trail
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.policy import load_policy
from lakehouse_phi.spark.ingest import run_ingest
from tests.helpers import EXAMPLE
from tests.spark.test_ingest import cli, options

pytest.importorskip("opentelemetry.sdk.metrics")


def _policy(tmp: Path, table: str, alerts: str, *, unkeyed: bool = False) -> Path:
    """The worked example with ``alerts`` for one table (and, with ``unkeyed``, no audit key)."""
    text = EXAMPLE.read_text()
    anchor = {"claims": "    record_key: [claim_id]\n", "encounters": "    record_key: [encounter_id]\n"}[table]
    assert anchor in text
    text = text.replace(anchor, anchor + f"    alerts: {alerts}\n", 1)
    if unkeyed:
        text = re.sub(r"\naudit:\n  key: audit-trail\n  retention_days: 2190\n", "\n", text)
        assert "key: audit-trail" not in text
    path = tmp / f"policy-{table}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def reader():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from lakehouse_phi.observe import metrics

    r = InMemoryMetricReader()
    metrics.use_meter_provider(MeterProvider(metric_readers=[r]))
    yield r
    metrics.use_meter_provider(None)


def _sums(reader) -> dict[tuple[str, tuple], float]:
    out = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    out[(m.name, tuple(sorted(p.attributes.items())))] = getattr(p, "value", getattr(p, "sum", None))
    return out


def _claims_with_phones(tmp: Path) -> None:
    claims = synth.generate("claims", 300, seed=4)
    claims = synth.inject(claims, "payer", "call 555-201-7788", list(range(0, 300, 10)))
    synth.write_tables(tmp, {"claims": claims})


def test_a_fail_alert_refuses_the_run_and_is_audited(sail, tmp_path, reader):
    _claims_with_phones(tmp_path)
    loaded = load_policy(_policy(tmp_path, "claims", "{phi_scan_hits: {max: 0, action: fail}}"))
    with pytest.raises(JobRefused, match=r"alert phi_scan_hits \(fail\) on claims: 30 value\(s\)"):
        run_ingest(sail, loaded, "claims", options(tmp_path, "claims"))
    assert not (tmp_path / "bronze" / "claims").exists()
    last = read_trail(str(tmp_path / "audit"))[-1]
    assert last["event"] == "ingest_refused" and last["details"]["reason"] == "alert"
    assert last["details"]["alerts"] == [{"alert": "phi_scan_hits", "value": 30, "max": 0.0, "action": "fail",
                                          "detail": "30 value(s) that look like PHI in columns not declared PHI"}]
    assert "555-201-7788" not in json.dumps(last)
    sums = _sums(reader)
    refused = (("engine", "spark-connect"), ("outcome", "refused"), ("policy", "clinical-lakehouse"),
               ("table", "claims"), ("table_format", "delta"))
    assert sums[("lakehouse_phi.ingest.runs", refused)] == 1
    assert sums[("lakehouse_phi.ingest.rows_read", refused)] == 300
    assert sums[("lakehouse_phi.ingest.phi_scan_hits", tuple(sorted(refused + (("column", "payer"),
                                                                              ("detector", "phone")))))] == 30


def test_a_warn_alert_writes_says_and_records_it_and_the_run_is_measured(sail, tmp_path, reader):
    synth.write_landing(tmp_path, {"claims": 400}, seed=9, malformed_rate=0.05)
    loaded = load_policy(_policy(tmp_path, "claims", "{quarantine_rate: {max: 0.01}}"))
    result = run_ingest(sail, loaded, "claims", options(tmp_path, "claims"))
    assert result.rows_written > 0 and result.rows_quarantined > 4
    assert any(w.startswith("alert quarantine_rate (warn) on claims:") for w in result.warnings)
    closing = read_trail(str(tmp_path / "audit"))[-1]
    assert closing["event"] == "ingest" and closing["details"]["alerts"][0]["alert"] == "quarantine_rate"
    sums = _sums(reader)
    ok = (("engine", "spark-connect"), ("outcome", "ok"), ("policy", "clinical-lakehouse"), ("table", "claims"),
          ("table_format", "delta"))
    assert sums[("lakehouse_phi.ingest.rows_read", ok)] == 400
    assert sums[("lakehouse_phi.ingest.rows_written", ok)] == result.rows_written
    assert sums[("lakehouse_phi.ingest.rows_quarantined", ok)] == result.rows_quarantined
    assert sum(v for (name, attrs), v in sums.items() if name == "lakehouse_phi.ingest.quarantine_reasons"
               and ("outcome", "ok") in attrs) == sum(result.quarantine_reasons.values())
    assert {dict(a)["phase"] for (name, a) in sums if name == "lakehouse_phi.ingest.duration"} == \
        {"tally", "write", "total"}


def test_scrub_replacements_are_counted_and_a_drop_fires(sail, tmp_path):
    synth.write_landing(tmp_path, {"encounters": 300}, seed=3, malformed_rate=0.0)
    loaded = load_policy(_policy(tmp_path, "encounters", "{scrub_replacements_drop: {max: 0.5, action: warn}}"))
    first = run_ingest(sail, loaded, "encounters", options(tmp_path, "encounters"))
    scrub = read_trail(str(tmp_path / "audit"))[-1]["details"]["scrub"]["note"]
    assert scrub.get("DATE", 0) + scrub.get("NAME", 0) > 0 and not first.warnings
    # the same source whose notes lost every identifier: replacements per row fall to zero
    later = synth.generate("encounters", 300, seed=4)
    later = synth.inject(later, "note", "Stable, follow up in two weeks.", list(range(300)))
    synth.write_tables(tmp_path / "later", {"encounters": later})
    second = run_ingest(sail, loaded, "encounters", options(tmp_path, "encounters",
                                                            input_path=str(tmp_path / "later" / "landing" /
                                                                           "encounters")))
    assert any("alert scrub_replacements_drop (warn) on encounters: scrub_text replacements per row fell 100%" in w
               for w in second.warnings)


def test_a_policy_without_an_audit_key_is_warned_about_in_the_runs_output(tmp_path):
    synth.write_landing(tmp_path, {"claims": 50}, seed=5, malformed_rate=0.0)
    policy = _policy(tmp_path, "claims", "{}", unkeyed=True)
    out = cli("ingest", str(policy), "--table", "claims", "--engine", "sail", "--allow-insecure",
              "--input", str(tmp_path / "landing" / "claims"), "--bronze", str(tmp_path / "bronze"),
              "--audit", str(tmp_path / "audit.jsonl"), "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warning: audit.key is not set" in out.stderr
    assert json.loads(out.stdout)["warnings"][0].startswith("audit.key is not set")
