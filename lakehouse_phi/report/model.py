"""What the report shows, gathered from the policy, audit trails and risk results into plain data.

Only whitelisted fields are copied: names from the policy (tables, columns, strategies, keys, groups), counts and
versions from events, and figures from risk results. Free-text fields of events (refusal messages, dropped column
names, which come from the source and may carry PHI) are never copied; a quarantine reason is shown only when its
column is declared in the policy and its rule is a plain identifier.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lakehouse_phi.errors import UsageError
from lakehouse_phi.policy.load import LoadedPolicy

#: strategy parameters that describe a protection (never the key material, a tweak or a replacement constant)
_SHOWN_PARAMS = ("key", "normalize", "to", "cap", "max_days", "subject", "keep_first", "keep_last", "keep_domain")
_RULE_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_FIGURE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: figures of a risk result shown in the report: scalar counts and targets only (never the smallest classes, which
#: hold quasi-identifier values)
RISK_FIGURES = ("k", "l", "k_target", "l_target", "k_required", "l_required", "classes", "records",
                "classes_below_k", "records_below_k", "classes_below_l", "records_below_l", "suppressed", "ok")
#: ingest event kinds that close a run (the pending ``ingest_started`` marker does not)
CLOSING_EVENTS = ("ingest", "ingest_refused")


@dataclass(frozen=True)
class ColumnRow:
    table: str
    column: str
    source_column: str
    type: str
    phi: str | None
    strategy: str
    params: str
    key: str | None
    key_version: int | None
    justification: str | None


@dataclass(frozen=True)
class Run:
    ts: datetime
    table: str
    event: str
    run_id: str
    rows_read: int
    rows_written: int
    rows_quarantined: int
    allow_insecure: bool
    conf_errors: tuple[str, ...]
    refusal: str | None
    #: alerts that fired in the run, as ``name (action)`` (names from the policy schema only)
    alerts: tuple[str, ...] = ()


#: the alert names a run's ``details.alerts`` may name (``policy.model.AlertsSpec``)
ALERT_NAMES = ("phi_scan_hits", "quarantine_rate", "scrub_replacements_drop")


def _alerts_of(details: dict[str, Any]) -> tuple[str, ...]:
    items = details.get("alerts")
    return tuple(f"{a['alert']} ({a['action']})" for a in (items if isinstance(items, list) else ())
                 if isinstance(a, dict) and a.get("alert") in ALERT_NAMES and a.get("action") in ("warn", "fail"))


@dataclass(frozen=True)
class TrailStatus:
    trail: str
    ok: bool
    events: int
    reason: str
    first_bad: int | None
    last_hash: str | None
    #: the key the policy seals its trail with (None: the trail is not sealed), how many seals were checked, and
    #: the key version the report could not read (the seals were then not checked)
    seal_key: str | None = None
    sealed: int = 0
    missing_key: str | None = None

    @property
    def broken(self) -> bool:
        """Tampered or unreadable (a seal that could not be checked for want of its key is not broken)."""
        return not self.ok and self.missing_key is None


@dataclass(frozen=True)
class RiskFigure:
    table: str
    source: str
    figures: dict[str, float | int | bool]
    target_k: int | None
    target_l: int | None


@dataclass
class ReportData:
    policy_name: str
    policy_sha256: str
    policy_path: str
    generated_at: datetime
    columns: list[ColumnRow]
    governance: list[dict[str, Any]]
    runs: list[Run] = field(default_factory=list)
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)
    trails: list[TrailStatus] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)
    risk: list[RiskFigure] = field(default_factory=list)
    risk_targets: dict[str, dict[str, int]] = field(default_factory=dict)
    #: table -> output column -> the key version the latest ingest run recorded
    run_key_versions: dict[str, dict[str, int]] = field(default_factory=dict)


def _describe_params(params: dict[str, Any]) -> str:
    shown = [f"{k}={params[k]}" for k in _SHOWN_PARAMS if k in params and k != "key"
             and isinstance(params[k], (str, int, bool))]
    return ", ".join(shown)


def policy_columns(loaded: LoadedPolicy) -> list[ColumnRow]:
    """One row per bronze output column (derived columns included): PHI category, strategy, key and version."""
    rows = []
    policy = loaded.policy
    for tname, table in policy.tables.items():
        for cname, col in table.columns.items():
            # a struct column: one row per leaf, named by its path (name[].family); the column itself has none
            own = [(cname + path, leaf, leaf.effective_ingest) for path, leaf in col.fields.items()] if col.fields \
                else [(cname, col, col.effective_ingest)]
            for out, spec, rule in [*own, *((d, col, r) for d, r in col.derive.items())]:
                key = rule.params.get("key")
                key = key if isinstance(key, str) else None
                version = policy.keys[key].version if key in policy.keys else None
                rows.append(ColumnRow(table=tname, column=out, source_column=cname, type=spec.type, phi=spec.phi,
                                      strategy=rule.strategy, params=_describe_params(rule.params), key=key,
                                      key_version=version, justification=rule.justification))
    return rows


def governance_rows(loaded: LoadedPolicy) -> list[dict[str, Any]]:
    """Per governed table and masked column: who sees what rendering (group names and rendering kinds only)."""
    gov = loaded.policy.governance
    if gov is None:
        return []
    out = []
    for tname, table in gov.tables.items():
        for cname, mask in table.masks.items():
            leaves = [(cname + path, leaf) for path, leaf in mask.fields.items()] or [(cname, mask)]
            for column, leaf in leaves:
                rules = [(", ".join(r.to), r.show.kind) for r in leaf.rules]
                out.append({"table": tname, "column": column, "rules": rules, "otherwise": leaf.otherwise.kind})
        if table.row_filter is not None:
            out.append({"table": tname, "column": "(row filter on " + ", ".join(table.row_filter.columns) + ")",
                        "rules": [(", ".join(r.to), "rows matching a condition") for r in table.row_filter.rules],
                        "otherwise": "all rows" if table.row_filter.otherwise == "true" else "no rows"})
    return out


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _rule_ids(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return tuple(sorted({v for v in items if isinstance(v, str) and _RULE_RE.fullmatch(v)}))


def _risk_from(table: str, source: str, doc: dict[str, Any], targets: dict[str, dict[str, int]]) -> RiskFigure:
    figures = {k: doc[k] for k in RISK_FIGURES
               if k in doc and isinstance(doc[k], (int, float, bool)) and _FIGURE_RE.fullmatch(k)}
    t = targets.get(table, {})
    return RiskFigure(table=table, source=source, figures=figures, target_k=t.get("k"), target_l=t.get("l"))


def add_events(data: ReportData, loaded: LoadedPolicy, events: list[dict]) -> None:
    """Runs, quarantine reasons, config findings and risk figures of a trail's events, whitelisted."""
    outputs = {(r.table, r.column) for r in data.columns}
    latest: dict[str, datetime] = {}
    for ev in events:
        head = _event_head(ev, loaded)
        if head is None:
            continue
        table, kind, ts, details = head
        if kind == "risk":
            data.risk.append(_risk_from(table, "audit trail", {**details, **{k: ev[k] for k in RISK_FIGURES
                                                                             if k in ev}}, data.risk_targets))
        elif kind == "ingest_unfinished":  # a note the next run wrote about an earlier one, not a run itself
            continue
        elif kind.startswith("ingest"):
            data.runs.append(_run_of(ev, table, kind, ts, details))
            versions = _key_versions(ev, table, kind, outputs)
            if versions and ts >= latest.get(table, ts):
                latest[table] = ts
                data.run_key_versions[table] = versions
            _add_quarantine_reasons(data, table, details, outputs)
    data.runs = _outcomes(data.runs)
    data.runs.sort(key=lambda r: r.ts)


def _outcomes(runs: list[Run]) -> list[Run]:
    """One row per outcome: a run's ``ingest_started`` marker goes when the run closed (``ingest``, or
    ``ingest_refused`` after it started writing); a marker nothing closed is the run's outcome, ``unfinished``."""
    closed = {r.run_id for r in runs if r.event in CLOSING_EVENTS}
    out = []
    for r in runs:
        if r.event == "ingest_started":
            if r.run_id in closed:
                continue
            r = dataclasses.replace(r, event="unfinished", refusal=None)
        out.append(r)
    return out


def _event_head(ev: Any, loaded: LoadedPolicy) -> tuple[str, str, datetime, dict[str, Any]] | None:
    """An event's table, kind, time and details; None for one that is not a dict, or whose table is not in the
    policy, or that has no kind or time."""
    if not isinstance(ev, dict):
        return None
    table, kind, ts = ev.get("table"), ev.get("event"), _ts(ev.get("ts"))
    if not isinstance(table, str) or table not in loaded.policy.tables or not isinstance(kind, str) or ts is None:
        return None
    raw_details = ev.get("details")
    return table, kind, ts, raw_details if isinstance(raw_details, dict) else {}


def _run_of(ev: dict, table: str, kind: str, ts: datetime, details: dict[str, Any]) -> Run:
    reason = details.get("reason")
    return Run(
        ts=ts, table=table, event=kind if _RULE_RE.fullmatch(kind) else "other",
        run_id=str(ev.get("run_id", ""))[:36], rows_read=_count(ev.get("rows_read")),
        rows_written=_count(ev.get("rows_written")), rows_quarantined=_count(ev.get("rows_quarantined")),
        allow_insecure=details.get("allow_insecure") is True, conf_errors=_rule_ids(details.get("conf_errors")),
        refusal=(reason if isinstance(reason, str) and _RULE_RE.fullmatch(reason) else "refused")
        if kind == "ingest_refused" else None, alerts=_alerts_of(details))


def _key_versions(ev: dict, table: str, kind: str, outputs: set[tuple[str, str]]) -> dict[str, int]:
    """The key version of each policy output column an ``ingest`` event names."""
    raw_columns = ev.get("columns")
    columns: dict[str, Any] = raw_columns if kind == "ingest" and isinstance(raw_columns, dict) else {}
    return {c: v["key_version"] for c, v in columns.items() if (table, c) in outputs and isinstance(v, dict)
            and isinstance(v.get("key_version"), int) and not isinstance(v.get("key_version"), bool)}


def _add_quarantine_reasons(data: ReportData, table: str, details: dict[str, Any],
                            outputs: set[tuple[str, str]]) -> None:
    """Quarantine counts per ``column: rule``; a column not in the policy or an odd rule counts as ``(other)``."""
    reasons = details.get("quarantine_reasons")
    for key, n in (reasons.items() if isinstance(reasons, dict) else ()):
        col, _, rule = str(key).partition(":")
        label = f"{col}: {rule}" if (table, col) in outputs and _RULE_RE.fullmatch(rule) else "(other)"
        per = data.quarantine.setdefault(table, {})
        per[label] = per.get(label, 0) + _count(n)


def _read_json_result(path: str, option: str, command: str) -> Any:
    """The JSON document a ``command ... --format json`` run wrote to ``path`` (given with ``option``); a clear
    error naming the option and how to write the file when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file; write one with `{command} --format json > FILE`",
                         place=option) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option} {path}: not a JSON file ({type(exc).__name__})", place=option) from None


def read_risk_file(path: str, data: ReportData, loaded: LoadedPolicy) -> None:
    """A ``lakehouse-phi risk --format json`` result (one table, or ``{"tables": {...}}``)."""
    doc = _read_json_result(path, "--risk", "lakehouse-phi risk POLICY --table T")
    per_table: dict[Any, Any] = {}
    if isinstance(doc, dict):
        tables = doc.get("tables")
        per_table = tables if isinstance(tables, dict) else {doc.get("table"): doc}
    for table, result in per_table.items():
        if isinstance(table, str) and table in loaded.policy.tables and isinstance(result, dict):
            data.risk.append(_risk_from(table, Path(path).name, result, data.risk_targets))


def read_findings_file(path: str, data: ReportData) -> None:
    """A ``lakehouse-phi check-conf --format json`` result: rule, severity, setting and fix (never the value)."""
    doc = _read_json_result(path, "--conf-report", "lakehouse-phi check-conf ...")
    for f in doc.get("findings", []) if isinstance(doc, dict) else []:
        if isinstance(f, dict):
            data.findings.append({k: str(f.get(k) or "") for k in ("severity", "rule", "setting", "bucket", "fix")})


def build_report_data(loaded: LoadedPolicy, trails: Sequence[str] = (), risk_files: Sequence[str] = (),
                      conf_reports: Sequence[str] = (), spark: Any = None,
                      seal_keys: Mapping[tuple[str, int], bytes] | None = None) -> ReportData:
    """Gather everything the report shows. A keyed trail's seals are checked with ``seal_keys`` (default: every
    version of the policy's ``audit.key``, as ``audit verify --policy`` resolves it; KeyMaterialError naming it when
    it cannot be read).

    Raises:
        UsageError: a trail, risk or check-conf file is missing or unreadable.
    """
    from lakehouse_phi.audit.sinks import read_trail
    from lakehouse_phi.audit.verify import policy_seal_keys, verify_audit

    data = ReportData(policy_name=loaded.name, policy_sha256=loaded.sha256, policy_path=loaded.path,
                      generated_at=datetime.now(timezone.utc), columns=policy_columns(loaded),
                      governance=governance_rows(loaded),
                      risk_targets={t: {"k": s.risk.k, "l": s.risk.l} for t, s in loaded.policy.tables.items()
                                    if s.risk is not None})
    # the policy's audit.key (KeyMaterialError naming it when missing), as `audit verify --policy` resolves it
    keys, expect = policy_seal_keys(loaded) if trails and seal_keys is None else (seal_keys or {}, [])
    if seal_keys is not None and loaded.policy.audit_key:
        expect = [loaded.policy.audit_key]
    for trail in trails:
        verdict = verify_audit(trail, keys, expect, spark=spark,  # `audit verify`'s own check; UsageError: missing
                               retention_days=loaded.policy.audit_retention_days)
        result = verdict.result
        data.trails.append(TrailStatus(trail=str(trail), ok=verdict.ok, events=result.events, reason=verdict.reason,
                                       first_bad=result.first_bad, last_hash=result.last_hash,
                                       seal_key=loaded.policy.audit_key, sealed=result.sealed,
                                       missing_key=result.missing_key))
        try:
            events = read_trail(trail, spark)
        except UsageError:  # a line that is no JSON object: the status above says the chain is broken
            events = []
        add_events(data, loaded, events)
    for path in risk_files:
        read_risk_file(path, data, loaded)
    for path in conf_reports:
        read_findings_file(path, data)
    return data
