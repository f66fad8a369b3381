"""Run metrics through OpenTelemetry: rows read/written/quarantined, quarantine reasons, PHI-scan hits, scrub_text
replacements per detector and durations, for every ingest run (and every micro-batch of a stream).

Optional and standard: with the ``otel`` extra (``opentelemetry-api``, ``-sdk``, ``-exporter-otlp-proto-http``)
installed, the export is configured by the standard variables alone: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` (plus ``_HEADERS``, ``_TIMEOUT``...), ``OTEL_METRICS_EXPORTER``
(``otlp``/``none``), ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SDK_DISABLED``. An application that
set its own meter provider (``opentelemetry.metrics.set_meter_provider``) gets the metrics there. Without the
packages or any of this configuration, nothing happens. Each run's metrics are flushed when it ends, so a short
command-line run exports before it exits.

Attributes are names only: policy, table, outcome, engine, table format, ``column:rule``, column and detector. Never
a value.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from lakehouse_phi.observe.counts import RunCounts

log = logging.getLogger(__name__)

METER = "lakehouse_phi"
#: instrument name -> (kind, unit, description)
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "lakehouse_phi.ingest.runs": ("counter", "{run}", "ingest runs (and stream micro-batches) by outcome"),
    "lakehouse_phi.ingest.rows_read": ("counter", "{row}", "rows read from the source"),
    "lakehouse_phi.ingest.rows_written": ("counter", "{row}", "rows written to bronze"),
    "lakehouse_phi.ingest.rows_quarantined": ("counter", "{row}", "rows sent to quarantine"),
    "lakehouse_phi.ingest.quarantine_reasons": ("counter", "{row}", "quarantine reasons (column:rule)"),
    "lakehouse_phi.ingest.phi_scan_hits": ("counter", "{value}", "PHI-looking values in non-PHI columns"),
    "lakehouse_phi.ingest.scrub_replacements": ("counter", "{replacement}", "scrub_text replacements per detector"),
    "lakehouse_phi.ingest.duration": ("histogram", "s", "run duration by phase"),
}

_lock = threading.Lock()
_state: dict[str, Any] = {"provider": None, "owned": False, "instruments": None, "for": None}


def _env_provider() -> Any:
    """A MeterProvider exporting over OTLP/HTTP as the OTEL_* variables say, or None (not configured or the SDK
    or exporter is not installed)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = {e.strip().lower() for e in os.environ.get("OTEL_METRICS_EXPORTER", "").split(",") if e.strip()}
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if "none" in exporters or not (endpoint or "otlp" in exporters):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        log.warning("OTEL_* variables ask for a metrics export, but the OpenTelemetry SDK or its OTLP/HTTP exporter "
                    "is not installed: pip install 'lakehouse-phi[otel]'")
        return None
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: lakehouse-phi exports metrics over http/protobuf", protocol)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "lakehouse-phi"})
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return MeterProvider(resource=resource, metric_readers=[reader])


def _provider() -> tuple[Any, bool]:
    """(the meter provider to record with, whether this module made it and so flushes it), or (None, False)."""
    try:
        from opentelemetry import metrics as otel
    except ImportError:
        return None, False
    with _lock:
        if _state["provider"] is not None:
            return _state["provider"], _state["owned"]
        current = otel.get_meter_provider()
        if type(current).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
            _state.update(provider=current, owned=False)  # the application's own
        else:
            made = _env_provider()
            if made is None:
                return None, False
            _state.update(provider=made, owned=True)
            atexit.register(made.shutdown)
        return _state["provider"], _state["owned"]


def use_meter_provider(provider: Any) -> None:
    """Record with ``provider`` from now on (an application's, or a test's in-memory reader); None: decide again
    from the global provider and the OTEL_* variables."""
    with _lock:
        _state.update(provider=provider, owned=False, instruments=None, **{"for": None})


def _instruments(provider: Any) -> dict[str, Any]:
    if _state["for"] is provider and _state["instruments"] is not None:
        return _state["instruments"]
    from lakehouse_phi import __version__

    meter = provider.get_meter(METER, __version__)
    made = {}
    for name, (kind, unit, description) in INSTRUMENTS.items():
        create = meter.create_histogram if kind == "histogram" else meter.create_counter
        made[name] = create(name, unit=unit, description=description)
    _state.update(instruments=made, **{"for": provider})
    return made


def record_run(counts: RunCounts) -> bool:
    """Export one run's counts; True when a meter provider took them. Never raises: metrics must not fail a run
    (a failure is logged)."""
    try:
        provider, owned = _provider()
        if provider is None:
            return False
        ins = _instruments(provider)
        base = {"policy": counts.policy, "table": counts.table, "outcome": counts.outcome}
        if counts.engine:
            base["engine"] = counts.engine
        if counts.table_format:
            base["table_format"] = counts.table_format
        ins["lakehouse_phi.ingest.runs"].add(1, base)
        ins["lakehouse_phi.ingest.rows_read"].add(counts.rows_read, base)
        ins["lakehouse_phi.ingest.rows_written"].add(counts.rows_written, base)
        ins["lakehouse_phi.ingest.rows_quarantined"].add(counts.rows_quarantined, base)
        for reason, n in sorted(counts.quarantine_reasons.items()):
            ins["lakehouse_phi.ingest.quarantine_reasons"].add(n, {**base, "reason": reason})
        for column, per in sorted(counts.phi_scan.items()):
            for detector, n in sorted(per.items()):
                ins["lakehouse_phi.ingest.phi_scan_hits"].add(n, {**base, "column": column, "detector": detector})
        for tag, n in sorted(counts.scrub_replacements.items()):
            ins["lakehouse_phi.ingest.scrub_replacements"].add(n, {**base, "detector": tag.lower()})
        for phase, seconds in sorted(counts.durations.items()):
            ins["lakehouse_phi.ingest.duration"].record(seconds, {**base, "phase": phase})
        if owned:
            provider.force_flush(timeout_millis=10_000)
        return True
    except Exception as exc:  # noqa: BLE001 - an exporter's failure is reported, never the run's
        log.warning("could not export the run's metrics (%s)", type(exc).__name__)
        return False
