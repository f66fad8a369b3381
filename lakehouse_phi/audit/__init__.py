"""The tamper-evident audit trail: events (counts and names, never data values), a SHA-256 hash chain, and
append-only sinks (JSON lines, Delta)."""

from lakehouse_phi.audit.chain import GENESIS_HASH, VerifyResult, canonical_json, event_hash, seal, verify
from lakehouse_phi.audit.events import check_no_values, new_event
from lakehouse_phi.audit.sinks import (
    AuditSink,
    DeltaSink,
    JsonlSink,
    check_tail,
    open_audit,
    open_sink,
    read_trail,
    verify_trail,
)

__all__ = [
    "GENESIS_HASH", "AuditSink", "DeltaSink", "JsonlSink", "VerifyResult", "canonical_json", "check_no_values",
    "check_tail", "event_hash", "new_event", "open_audit", "open_sink", "read_trail", "seal", "verify", "verify_trail",
]
