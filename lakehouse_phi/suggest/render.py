"""The draft policy as YAML text: the worked example's layout, one line per column with its evidence as a comment
(shares and the header name only), and a banner that says it is a draft to review."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from lakehouse_phi.suggest.classify import Suggestion

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _key(name: str) -> str:
    """A mapping key as YAML reads it back: bare when it is a plain identifier, else a JSON (double-quoted)
    string."""
    return name if _PLAIN.fullmatch(name) and name.lower() not in _RESERVED_WORDS else json.dumps(name)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED_WORDS:
        return text
    if _CONTROL.search(text):  # a line break or control character: a JSON (double-quoted) string keeps it
        return json.dumps(text)
    return "'" + text.replace("'", "''") + "'"


def _comment(text: str) -> str:
    """One comment line: a header's control characters (a line break would end the comment) shown as ``?``."""
    return _CONTROL.sub("?", text)


def _flow(mapping: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_flow(v) if isinstance(v, dict) else _scalar(v)}" for k, v in mapping.items()) \
        + "}"


def _policy_name(table: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", table).strip("-._") or "source"
    return f"{name}-draft"[:128]


def render_draft(table: str, source: str, fmt: str, rows: int, sampled: int,
                 suggestions: Sequence[Suggestion]) -> str:
    """The whole draft."""
    phi = [s for s in suggestions if s.phi]
    options = {"header": "true"} if fmt == "csv" else {}
    source_spec: dict[str, Any] = {"format": fmt, "path": source}
    if options:
        source_spec["options"] = options
    lines = [
        f"# DRAFT policy for {_comment(source)} written by `lakehouse-phi suggest` ({rows:,} rows profiled, "
        f"{sampled:,} sampled).",
        "# REVIEW IT BEFORE USE: every phi category, strategy and pattern below is a guess from the share of values",
        "# the scrub_text detectors match and from the header names. Each column's comment gives that evidence as",
        "# shares only: no value of the source is written here. Columns without phi: are kept as they are at ingest.",
        f"# {len(phi)} of {len(suggestions)} columns look like PHI. Check with: lakehouse-phi validate FILE",
        "version: 1",
        f"name: {_scalar(_policy_name(table))}",
        "",
        "keys:",
    ]
    lines.append("  pseudonym:   {provider: env, ref: LAKEHOUSE_PHI_PSEUDONYM_KEY, version: 1}  "
                 "# HMAC: joinable tokens, row fingerprints (production: a secret scope)")
    lines += [
        "  audit-trail: {provider: env, ref: LAKEHOUSE_PHI_AUDIT_KEY, version: 1}      "
        "# HMAC: seals every audit event",
        "",
        "audit: {key: audit-trail, retention_days: 2190}   # a sealed trail, kept six years",
        "",
        "tables:",
        f"  {_key(table)}:",
        f"    source: {_flow(source_spec)}",
        f"    bronze: {_scalar('bronze/' + re.sub(r'[^A-Za-z0-9_.-]+', '_', table))}   "
        "# review: a table name (catalog.schema.table) or a path",
        "    on_unclassified: fail        # a column that appears later and is not below stops the job",
        "    fingerprint_key: pseudonym   # _row_fingerprint: a re-delivered row is not written twice",
        "    # record_key: [COLUMN]       # review: the column(s) that identify a record (re-delivery adds no "
        "duplicate)",
        "    columns:",
    ]
    width = max((len(_key(s.name)) for s in suggestions), default=0) + 1
    for s in suggestions:
        spec: dict[str, Any] = {"type": s.type}
        if s.pattern:
            spec["pattern"] = s.pattern
        if s.phi:
            spec["phi"] = s.phi
            spec["ingest"] = s.ingest
        comment = _comment("; ".join(s.evidence) or "no evidence")
        lines.append(f"      {(_key(s.name) + ':').ljust(width)} {_flow(spec)}  # {comment}")
    return "\n".join(lines) + "\n"
