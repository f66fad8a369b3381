"""Audit events: what one run did, in counts and names only. An event never holds a data value, raw or masked.

An event is a plain JSON-safe ``dict`` so that it can be hashed (:mod:`lakehouse_phi.audit.chain`), written as a
JSON line or a Delta row (:mod:`lakehouse_phi.audit.sinks`), and read back by tools that know nothing of Python.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from lakehouse_phi.audit.chain import canonical_json


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds and ``Z``, e.g. ``2024-05-01T12:00:00.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event(*, run_id: str, actor: str, event: str, policy_name: str, policy_sha256: str, table: str,
              rows_read: int, rows_written: int, rows_quarantined: int,
              columns: dict[str, dict], details: dict | None = None) -> dict:
    """Build an (unsealed) audit event.

    Args:
        run_id: the ingest run this event belongs to.
        actor: who ran it (user or service principal name).
        event: what happened, e.g. ``ingest``, ``ingest_refused``.
        policy_name: the policy's ``name``.
        policy_sha256: SHA-256 of the policy file as loaded.
        table: the policy table name (never a row value).
        rows_read: rows read from the source.
        rows_written: rows written to bronze.
        rows_quarantined: rows sent to quarantine.
        columns: output column -> ``{"strategy": str, "key_version": int | None}``.
        details: free dict of counts and flags (quarantine reason counts, ``allow_insecure``, engine, format...).

    Returns:
        The event with a fresh ``event_id`` (uuid4) and ``ts`` (UTC, ms, ``Z``).

    Raises:
        ValueError: a field has the wrong type or shape; the message names the field, never a value.
    """
    _check_names(run_id=run_id, actor=actor, event=event, policy_name=policy_name, policy_sha256=policy_sha256,
                 table=table)
    counts = {"rows_read": rows_read, "rows_written": rows_written, "rows_quarantined": rows_quarantined}
    _check_counts(counts)
    cols = _checked_columns(columns)
    if details is not None and not isinstance(details, dict):
        raise ValueError("audit event field 'details' must be a dict of counts and flags")
    out = {
        "event_id": str(uuid.uuid4()), "run_id": run_id, "ts": utc_now_iso(), "actor": actor, "event": event,
        "policy_name": policy_name, "policy_sha256": policy_sha256, "table": table, **counts,
        "columns": cols, "details": dict(details or {}),
    }
    _check_plain_json(out)
    return out


def _check_names(**names: object) -> None:
    """The string fields are non-empty strings, and ``policy_sha256`` is a SHA-256 hex digest."""
    for name, value in names.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"audit event field {name!r} must be a non-empty string")
    if not _MACHINE_FIELDS["policy_sha256"].fullmatch(str(names["policy_sha256"])):
        raise ValueError("audit event field 'policy_sha256' must be 64 lowercase hex digits (LoadedPolicy.sha256)")


def _check_counts(counts: dict[str, int]) -> None:
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"audit event field {name!r} must be a non-negative integer")


def _checked_columns(columns: dict[str, dict]) -> dict[str, dict]:
    """``columns`` checked and normalised: every spec holds ``strategy`` and ``key_version``."""
    if not isinstance(columns, dict):
        raise ValueError("audit event field 'columns' must map output column -> {strategy, key_version}")
    cols: dict[str, dict] = {}
    for col, spec in columns.items():
        place = f"audit event columns.{col}"
        if not isinstance(col, str) or not isinstance(spec, dict):
            raise ValueError(f"{place}: must map a column name to {{strategy, key_version}}")
        strategy, key_version = spec.get("strategy"), spec.get("key_version")
        if not isinstance(strategy, str) or not strategy:
            raise ValueError(f"{place}.strategy must be a non-empty string")
        if key_version is not None and (isinstance(key_version, bool) or not isinstance(key_version, int)):
            raise ValueError(f"{place}.key_version must be an integer or null")
        cols[col] = {**spec, "strategy": strategy, "key_version": key_version}
    return cols


def _check_plain_json(event: dict) -> None:
    """Fail here, at the caller, rather than when the event is written."""
    try:
        canonical_json(event)
    except (TypeError, ValueError) as exc:
        raise ValueError("audit event holds a value that is not plain JSON (str, int, float, bool, None, "
                         f"list, dict) or is NaN/infinite: {type(exc).__name__}") from None


#: Top-level fields whose value is machine-made in a fixed format (uuid4, timestamp, hex digest) and cannot carry a
#: data value; skipped by :func:`check_no_values` when they have that format, so a short sampled value such as "42"
#: does not match their digits.
_MACHINE_FIELDS = {
    "event_id": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "ts": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    "policy_sha256": re.compile(r"[0-9a-f]{64}"),
    "prev_hash": re.compile(r"[0-9a-f]{64}"),
    "hash": re.compile(r"[0-9a-f]{64}"),
    "mac": re.compile(r"[0-9a-f]{64}"),
}


def _strings(obj: Any, place: str, hides: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    """Every (place, string) in a JSON-like value: dict keys and string leaves. A key for which ``hides`` is true
    is shown in places as ``<key>`` so that the place never repeats a value."""
    if isinstance(obj, str):
        yield place, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            shown = "<key>" if hides(str(key)) else str(key)
            sub = f"{place}.{shown}" if place else shown
            if not place and key in _MACHINE_FIELDS and isinstance(value, str) and \
                    _MACHINE_FIELDS[key].fullmatch(value):
                continue
            yield (f"{sub} (a key)", str(key))
            yield from _strings(value, sub, hides)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _strings(value, f"{place}[{i}]", hides)


def check_no_values(event: dict, forbidden: Iterable[str], *, min_length: int = 1) -> None:
    """Defence in depth: refuse an event in which any of ``forbidden`` (sampled data values) occurs.

    Every dict key and string value, at any depth, is searched for each forbidden string as a substring. Not
    searched: numbers (counts and key versions; a sampled ``"42"`` would otherwise match a count by accident) and
    the machine-made ``event_id``, ``ts``, ``policy_sha256``, ``prev_hash`` and ``hash`` when they have their fixed
    format (uuid, timestamp, hex digest: no room for a data value). ``None``, empty strings and values shorter than
    ``min_length`` in ``forbidden`` are ignored (very short values match names by chance); other non-strings are
    compared by ``str()``.

    Raises:
        ValueError: naming where in the event a value occurs, never the value itself.
    """
    needles = {str(v) for v in forbidden if v is not None and len(str(v)) >= max(min_length, 1)}
    if not needles:
        return

    def hides(text: str) -> bool:
        return any(needle in text for needle in needles)

    for place, text in _strings(event, "", hides):
        if hides(text):
            raise ValueError(f"audit event: a data value occurs at {place}; the audit trail must never hold data "
                             "values - fix the code that put it into the event")
