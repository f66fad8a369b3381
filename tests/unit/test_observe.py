"""Run metrics and alerts (issue 26.4): the policy's ``alerts:``, their evaluation on a run's counts, and the
OpenTelemetry export: through the SDK's in-memory reader, and over OTLP/HTTP to a receiver on loopback, configured
by the standard OTEL_* variables alone (a fresh interpreter); without them, or without the SDK, nothing happens."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.observe import RunCounts
from lakehouse_phi.observe.alerts import evaluate, previous_scrub_rate
from lakehouse_phi.policy.load import policy_from_data
from lakehouse_phi.policy.model import AlertsSpec
from tests.helpers import ROOT

pytest.importorskip("opentelemetry.sdk.metrics")  # the [otel] extra (installed with [test])

def _counts(**kw) -> RunCounts:
    base = dict(policy="clinic", table="claims", rows_read=1000, rows_written=950, rows_quarantined=50,
                quarantine_reasons={"mrn:pattern": 30, "amount:type": 20},
                phi_scan={"payer": {"ssn": 0, "phone": 3, "email": 1}},
                scrub_replacements={"SSN": 40, "NAME": 160}, durations={"total": 2.5, "tally": 1.5, "write": 1.0},
                engine="spark-connect", table_format="delta")
    return RunCounts(**{**base, **kw})


def _policy(alerts: dict, table_alerts: dict | None = None):
    table = {"source": {"format": "csv", "path": "x"}, "bronze": "/tmp/b", "fingerprint_key": "k",
             "columns": {"payer": {"type": "string"}}}
    if table_alerts is not None:
        table["alerts"] = table_alerts
    return policy_from_data({"version": 1, "name": "clinic", "alerts": alerts, "tables": {"claims": table},
                             "keys": {"k": {"provider": "env", "ref": "K"}}})


def test_alerts_in_the_policy_and_a_tables_own_win():
    policy = _policy({"phi_scan_hits": {"max": 0, "action": "fail"}, "quarantine_rate": {"max": 0.01}},
                     {"quarantine_rate": {"max": 0.2, "action": "fail"}})
    spec = policy.alerts_for("claims")
    assert spec.phi_scan_hits is not None and spec.phi_scan_hits.action == "fail"
    assert spec.quarantine_rate is not None and (spec.quarantine_rate.max, spec.quarantine_rate.action) == (0.2, "fail")
    with pytest.raises(PolicyError, match="quarantine_rate.max is a share between 0 and 1"):
        _policy({"quarantine_rate": {"max": 5}})
    with pytest.raises(PolicyError, match="alerts"):
        _policy({"phi_scan_hit": {"max": 0}})  # a misspelt alert is an error, not ignored


def test_evaluate_fires_what_the_counts_exceed():
    spec = AlertsSpec.model_validate({"phi_scan_hits": {"max": 3, "action": "fail"},
                                      "quarantine_rate": {"max": 0.04}, "scrub_replacements_drop": {"max": 0.5}})
    fired = {f.alert: f for f in evaluate(spec, _counts(), previous_rate=0.2)}
    assert set(fired) == {"phi_scan_hits", "quarantine_rate"}  # 4 hits > 3; 5% > 4%; 0.2/row did not drop
    assert (fired["phi_scan_hits"].value, fired["phi_scan_hits"].action) == (4, "fail")
    assert fired["quarantine_rate"].value == 0.05 and fired["quarantine_rate"].action == "warn"
    dropped = evaluate(spec, _counts(scrub_replacements={"SSN": 10}), previous_rate=0.2)
    drop = next(f for f in dropped if f.alert == "scrub_replacements_drop")
    assert drop.value == 0.95 and "fell 95%" in drop.message("claims")
    assert not [f for f in evaluate(spec, _counts(), previous_rate=None) if f.alert == "scrub_replacements_drop"]


def test_the_previous_rate_is_the_tables_last_completed_run():
    events = [
        {"event": "ingest", "table": "claims", "rows_read": 100, "details": {"scrub": {"note": {"SSN": 50}}}},
        {"event": "ingest", "table": "patients", "rows_read": 10, "details": {"scrub": {"note": {"SSN": 1}}}},
        {"event": "ingest_refused", "table": "claims", "rows_read": 0, "details": {}},
        {"event": "ingest", "table": "claims", "rows_read": 200,
         "details": {"scrub": {"note": {"SSN": 20, "NAME": 10}, "memo": {"NAME": 10}}}},
    ]
    assert previous_scrub_rate(events, "claims") == 0.2
    assert previous_scrub_rate(events, "encounters") is None


def _points(reader) -> dict[str, list[tuple[dict, float]]]:
    out: dict[str, list[tuple[dict, float]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    value = p.sum if hasattr(p, "sum") else p.value
                    out.setdefault(m.name, []).append((dict(p.attributes), value))
    return out


def test_a_run_in_memory(monkeypatch):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from lakehouse_phi.observe import metrics

    reader = InMemoryMetricReader()
    metrics.use_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        assert metrics.record_run(_counts()) is True
        assert metrics.record_run(_counts(outcome="refused", rows_written=0, table="patients")) is True
    finally:
        metrics.use_meter_provider(None)
    points = _points(reader)
    base = {"policy": "clinic", "table": "claims", "outcome": "ok", "engine": "spark-connect", "table_format": "delta"}
    assert (base, 1000) in points["lakehouse_phi.ingest.rows_read"]
    assert (base, 950) in points["lakehouse_phi.ingest.rows_written"]
    assert (base, 50) in points["lakehouse_phi.ingest.rows_quarantined"]
    assert ({**base, "reason": "mrn:pattern"}, 30) in points["lakehouse_phi.ingest.quarantine_reasons"]
    assert ({**base, "column": "payer", "detector": "phone"}, 3) in points["lakehouse_phi.ingest.phi_scan_hits"]
    assert ({**base, "detector": "name"}, 160) in points["lakehouse_phi.ingest.scrub_replacements"]
    assert ({**base, "phase": "total"}, 2.5) in points["lakehouse_phi.ingest.duration"]
    assert ({**base, "outcome": "refused", "table": "patients"}, 1) in points["lakehouse_phi.ingest.runs"]


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


SCRIPT = """
from lakehouse_phi.observe import RunCounts
from lakehouse_phi.observe.metrics import record_run
print(record_run(RunCounts(policy="clinic", table="claims", rows_read=7, rows_written=6, rows_quarantined=1,
                           quarantine_reasons={"mrn:pattern": 1}, scrub_replacements={"SSN": 2},
                           durations={"total": 0.5})))
"""


def _run(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})


def test_otlp_http_export_to_a_loopback_receiver_configured_by_otel_variables():
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    _Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        done = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "phi-ingest-test"})
        assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
    finally:
        server.shutdown()
    assert _Receiver.bodies and all(path == "/v1/metrics" for path, _ in _Receiver.bodies)
    request = ExportMetricsServiceRequest()
    request.ParseFromString(_Receiver.bodies[0][1])
    rm = request.resource_metrics[0]
    resource = {a.key: a.value.string_value for a in rm.resource.attributes}
    assert resource["service.name"] == "phi-ingest-test"
    metrics = {m.name: m for sm in rm.scope_metrics for m in sm.metrics}
    rows = metrics["lakehouse_phi.ingest.rows_read"].sum.data_points[0]
    assert rows.as_int == 7 and {a.key: a.value.string_value for a in rows.attributes}["table"] == "claims"
    scrub = metrics["lakehouse_phi.ingest.scrub_replacements"].sum.data_points[0]
    assert scrub.as_int == 2 and {a.key: a.value.string_value for a in scrub.attributes}["detector"] == "ssn"
    assert metrics["lakehouse_phi.ingest.duration"].histogram.data_points[0].sum == 0.5


NOWHERE = "http://127.0.0.1:9"


@pytest.mark.parametrize("env", [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_SDK_DISABLED": "true"},
                                 {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_METRICS_EXPORTER": "none"}])
def test_without_configuration_nothing_is_exported(env):
    done = _run(env)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_an_unreachable_collector_does_not_fail_the_run():
    done = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr  # recorded; the export failed quietly
