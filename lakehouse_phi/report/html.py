"""One self-contained HTML page: inline CSS and an inline SVG chart, no script, no link to anything outside.

Every string that reaches the page goes through :func:`html.escape`; what reaches it at all is decided in
:mod:`lakehouse_phi.report.model` (names, counts, versions; never a data value).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from lakehouse_phi import __version__
from lakehouse_phi.report.model import ReportData, RiskFigure, Run, TrailStatus

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2733;margin:0;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d5dbe3;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5a6878;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #d5dbe3;border-radius:6px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 10px}
th,td{border:1px solid #d5dbe3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}
.muted{color:#5a6878}code{font-size:12px}
svg{background:#fff;border:1px solid #d5dbe3;border-radius:6px}
@media print{body{background:#fff}main{padding:0}}
"""

_SERIES = (("rows_read", "read", "#3b6fb6"), ("rows_written", "written to bronze", "#1a7f37"),
           ("rows_quarantined", "quarantined", "#b42318"))


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: Iterable[int] = ()) -> str:
    """``rows`` cells are already-escaped HTML."""
    nums = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in nums else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def runs_chart(runs: list[Run], width: int = 1000, height: int = 260) -> str:
    """Rows read, written and quarantined per ingest run over time, as an inline SVG."""
    runs = [r for r in runs if r.event == "ingest"]
    if not runs:
        return '<p class="muted">No ingest run in the audit trail(s) given (pass --audit TRAIL).</p>'
    left, right, top, bottom = 70, 20, 20, 50
    w, h = width - left - right, height - top - bottom
    t0, t1 = runs[0].ts.timestamp(), runs[-1].ts.timestamp()
    peak = max(max(r.rows_read, r.rows_written, r.rows_quarantined) for r in runs) or 1

    def x(i: int, r: Run) -> float:
        if t1 > t0:
            return left + w * (r.ts.timestamp() - t0) / (t1 - t0)
        return left + (w * i / (len(runs) - 1) if len(runs) > 1 else w / 2)

    def y(v: int) -> float:
        return top + h - h * v / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="rows per ingest run over time">',
             "<title>Rows read, written to bronze and quarantined per ingest run</title>"]
    for k in range(5):  # y grid and labels
        v = round(peak * k / 4)
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e8ee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#5a6878">{v:,}</text>')
    for i in sorted({0, len(runs) - 1}):  # x labels: first and last run
        parts.append(f'<text x="{x(i, runs[i]):.1f}" y="{top + h + 18}" font-size="11" text-anchor="middle" '
                     f'fill="#5a6878">{_e(runs[i].ts.strftime("%Y-%m-%d %H:%M"))}</text>')
    for field, label, colour in _SERIES:
        points = " ".join(f"{x(i, r):.1f},{y(getattr(r, field)):.1f}" for i, r in enumerate(runs))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        for i, r in enumerate(runs):
            parts.append(f'<circle cx="{x(i, r):.1f}" cy="{y(getattr(r, field)):.1f}" r="3" fill="{colour}">'
                         f"<title>{_e(r.table)} {_e(r.ts.isoformat(timespec='seconds'))}: {label} "
                         f"{getattr(r, field):,}</title></circle>")
    for j, (_, label, colour) in enumerate(_SERIES):  # legend
        lx = left + j * 170
        parts.append(f'<rect x="{lx}" y="{height - 16}" width="12" height="4" fill="{colour}"/>'
                     f'<text x="{lx + 18}" y="{height - 11}" font-size="12" fill="#1d2733">{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def run_counts(data: ReportData) -> dict[str, int]:
    """Runs by outcome, each run counted once (a streaming run's micro-batches are one run): ``completed``
    (closed by an ``ingest`` event), ``refused`` (an ``ingest_refused`` event: stopped before or while writing),
    ``unfinished`` (started writing, never closed)."""
    def runs(kind: str) -> int:
        return len({r.run_id for r in data.runs if r.event == kind})
    return {"completed": runs("ingest"), "refused": runs("ingest_refused"), "unfinished": runs("unfinished")}


def _summary(data: ReportData) -> str:
    protected = [c for c in data.columns if c.phi]
    ingests = [r for r in data.runs if r.event == "ingest"]
    counts = run_counts(data)
    cards = [("tables", f"{len({c.table for c in data.columns}):,}", ""),
             ("PHI columns", f"{len(protected):,}", ""),
             ("ingest runs", f"{counts['completed']:,}", ""),
             ("refused runs", f"{counts['refused']:,}", "bad" if counts["refused"] else ""),
             ("rows read", f"{sum(r.rows_read for r in ingests):,}", ""),
             ("rows quarantined", f"{sum(r.rows_quarantined for r in ingests):,}", "")]
    if counts["unfinished"]:
        cards.insert(4, ("unfinished runs", f"{counts['unfinished']:,}", "warn"))
    below = [r.table for r in data.risk if not _risk_ok(r)]
    if data.risk:
        cards.append(("tables below their k/l", f"{len(set(below)):,}", "bad" if below else "ok"))
    html = "".join(f'<div class="card" data-card="{_e(label)}">{_e(label)}<b class="{cls}">{_e(v)}</b></div>'
                   for label, v, cls in cards)
    if data.trails:
        broken = any(t.broken for t in data.trails)
        unchecked = any(t.missing_key for t in data.trails)
        unsealed = any(t.seal_key is None for t in data.trails)
        cls, text = (("bad", "BROKEN") if broken else ("warn", "seals not checked") if unchecked
                     else ("warn", "intact, not sealed") if unsealed else ("ok", "intact"))
        html += f'<div class="card" data-card="audit chain">audit chain<b class="{cls}">{text}</b></div>'
    else:
        html += '<div class="card" data-card="audit chain">audit chain<b class="muted">not given</b></div>'
    return f'<div class="cards">{html}</div>'


def _protection(data: ReportData) -> str:
    out = []
    for table in dict.fromkeys(c.table for c in data.columns):
        rows = []
        for c in (c for c in data.columns if c.table == table):
            protection = _e(c.strategy) + (f' <span class="muted">({_e(c.params)})</span>' if c.params else "")
            if c.justification:
                protection += f'<br><span class="warn">kept as is:</span> {_e(c.justification)}'
            derived = "" if c.column == c.source_column else f' <span class="muted">from {_e(c.source_column)}</span>'
            version = "-" if c.key_version is None else _e(c.key_version)
            used = data.run_key_versions.get(table, {}).get(c.column)
            if used is not None and used != c.key_version:
                version += f' <span class="warn">(last run: {_e(used)})</span>'
            rows.append([f"<code>{_e(c.column)}</code>{derived}", _e(c.type), _e(c.phi or "-"), protection,
                         _e(c.key or "-"), version])
        out.append(f"<h3>{_e(table)}</h3>" + _table(("column", "type", "PHI category", "protection", "key",
                                                       "key version"), rows))
    return "".join(out)


def _governance(data: ReportData) -> str:
    if not data.governance:
        return '<p class="muted">The policy has no governance section.</p>'
    rows = [[_e(g["table"]), f"<code>{_e(g['column'])}</code>",
             "<br>".join(f"{_e(to)}: {_e(kind)}" for to, kind in g["rules"]) or "-", _e(g["otherwise"])]
            for g in data.governance]
    return _table(("table", "column", "groups: rendering", "everyone else"), rows)


def _runs(data: ReportData) -> str:
    if not data.runs:
        return ""
    rows = [[_e(r.ts.strftime("%Y-%m-%d %H:%M:%S")), _e(r.table),
             _e(r.event) if r.event == "ingest" else
             f'<span class="{"warn" if r.event == "unfinished" else "bad"}">{_e(r.event)}</span>'
             + (f" ({_e(r.refusal)})" if r.refusal else ""),
             f"{r.rows_read:,}", f"{r.rows_written:,}", f"{r.rows_quarantined:,}",
             '<span class="warn">yes</span>' if r.allow_insecure else "no", _e(", ".join(r.conf_errors) or "-"),
             (f'<span class="{"bad" if any(a.endswith("(fail)") for a in r.alerts) else "warn"}">'
              f'{_e(", ".join(r.alerts))}</span>' if r.alerts else "-"),
             f"<code>{_e(r.run_id[:8])}</code>"] for r in data.runs[-100:]]
    more = f'<p class="muted">The last 100 of {len(data.runs):,} runs.</p>' if len(data.runs) > 100 else ""
    return more + _table(("time (UTC)", "table", "event", "read", "bronze", "quarantined", "--allow-insecure",
                          "config errors", "alerts", "run"), rows, numeric=(3, 4, 5))


def _quarantine(data: ReportData) -> str:
    if not data.quarantine:
        return '<p class="muted">No quarantined rows in the runs given.</p>'
    rows = [[_e(t), _e(reason), f"{n:,}"] for t, per in data.quarantine.items()
            for reason, n in sorted(per.items(), key=lambda kv: -kv[1])]
    return _table(("table", "column: rule", "rows"), rows, numeric=(2,))


def _findings(data: ReportData) -> str:
    parts = []
    insecure = [r for r in data.runs if r.allow_insecure or r.conf_errors]
    if insecure:
        rows = [[_e(r.ts.strftime("%Y-%m-%d %H:%M:%S")), _e(r.table), _e(", ".join(r.conf_errors) or "-"),
                 '<span class="warn">yes</span>' if r.allow_insecure else "no"] for r in insecure[-50:]]
        parts.append("<p>Runs whose Spark configuration had error findings at pre-flight:</p>"
                     + _table(("time (UTC)", "table", "rules", "ran with --allow-insecure"), rows))
    elif data.runs:
        parts.append('<p class="ok">No run had a config error finding at pre-flight.</p>')
    if data.findings:
        rows = [[f'<span class="{"bad" if f["severity"] == "error" else "warn"}">{_e(f["severity"])}</span>',
                 _e(f["rule"]), f"<code>{_e(f['setting'])}</code>", _e(f["bucket"] or "-"), _e(f["fix"])]
                for f in data.findings]
        parts.append("<p>From the check-conf report(s) given:</p>"
                     + _table(("severity", "rule", "setting", "bucket", "fix"), rows))
    return "".join(parts) or '<p class="muted">No runs or check-conf report given.</p>'


def _trail_status(t: TrailStatus) -> str:
    if t.broken:
        return f'<span class="bad">BROKEN</span> at position {_e(t.first_bad)}: {_e(t.reason)}'
    if t.missing_key:
        return (f'<span class="warn">chain intact; seals not checked</span>: the events are sealed under '
                f"<code>{_e(t.missing_key)}</code>, which this report could not read (run <code>lakehouse-phi audit "
                "verify --policy</code> where the key is available)")
    if t.seal_key is None:
        return ('<span class="warn">intact, not sealed</span>: the policy sets no audit.key, so whoever can write '
                "the trail can rewrite it and recompute every hash")
    return f'<span class="ok">intact</span>, {t.sealed:,} seals checked under <code>{_e(t.seal_key)}</code>'


def _trails(data: ReportData) -> str:
    if not data.trails:
        return '<p class="muted">No audit trail given (pass --audit TRAIL).</p>'
    rows = [[f"<code>{_e(t.trail)}</code>", _trail_status(t), f"{t.events:,}",
             f"<code>{_e(t.last_hash or '-')}</code>"] for t in data.trails]
    return (_table(("trail", "chain", "events", "last hash"), rows, numeric=(2,))
            + '<p class="muted">A chain cannot show that its last events were cut off: compare the last hash with '
              "the bronze table's <code>lakehouse_phi.audit_hash</code> property.</p>")


def _risk_ok(r: RiskFigure) -> bool:
    return not any(_breaks(r, name) for name in ("k", "l", "records_below_k", "records_below_l"))


def _breaks(r: RiskFigure, name: str) -> bool:
    """Whether figure ``name`` of ``r`` breaks the policy's target (k or l below it, records in classes below it)."""
    value = r.figures.get(name)
    if name not in ("k", "l", "records_below_k", "records_below_l") or not isinstance(value, (int, float)) \
            or isinstance(value, bool):
        return False
    target = r.target_k if name in ("k", "records_below_k") else r.target_l
    if target is None or (name.startswith("records") and target <= 1):
        return False
    return value < target if name in ("k", "l") else value > 0


#: the measured figures of a risk result, as the risk table shows them
_RISK_COLUMNS = (("k", "k"), ("l", "l"), ("records", "records"), ("classes", "classes"),
                 ("records_below_k", "records in classes below k"), ("classes_below_k", "classes below k"),
                 ("records_below_l", "records in classes below l"), ("classes_below_l", "classes below l"))


def _risk(data: ReportData) -> str:
    if not data.risk and not data.risk_targets:
        return '<p class="muted">No table declares risk targets (tables.&lt;t&gt;.risk).</p>'
    shown = [(name, label) for name, label in _RISK_COLUMNS if any(name in r.figures for r in data.risk)] \
        or list(_RISK_COLUMNS[:2])
    rows = []
    for r in data.risk:
        cells = []
        for name, _ in shown:
            value = r.figures.get(name)
            text = "-" if value is None else f"{value:,}" if isinstance(value, int) else _e(value)
            bad = _breaks(r, name)
            cells.append(f'<span class="{"bad" if bad else "fig"}" data-figure="{_e(name)}" '
                         f'data-table="{_e(r.table)}">{text}</span>' + (" (below policy)" if bad else ""))
        verdict = ('<span class="ok">meets the policy</span>' if _risk_ok(r)
                   else '<span class="bad">BREAKS the policy</span>')
        rows.append([_e(r.table), _e(r.source), *cells, _e(r.target_k or "-"), _e(r.target_l or "-"), verdict])
    for table, t in data.risk_targets.items():
        if not any(r.table == table for r in data.risk):
            rows.append([_e(table), "-", *["-"] * len(shown), _e(t["k"]), _e(t["l"]),
                         '<span class="muted">not measured yet</span>'])
    headers = ("table", "source", *(label for _, label in shown), "policy k", "policy l", "verdict")
    note = ('<p>A table below its k (or l) is not released as is: <code>lakehouse-phi export</code> writes only the '
            "records of classes that reach the policy's k and l (the others are suppressed and counted in the signed "
            "manifest), and <code>lakehouse-phi risk</code> exits 1 for it.</p>"
            if any(not _risk_ok(r) for r in data.risk) else "")
    return _table(headers, rows, numeric=range(2, 2 + len(shown))) + note


def render_html(data: ReportData) -> str:
    """The whole page."""
    title = f"PHI compliance report: {data.policy_name}"
    sections = [
        ("Summary", _summary(data)),
        ("Runs over time", runs_chart(data.runs)),
        ("Protection per column (bronze)", _protection(data)),
        ("Who sees what (governance)", _governance(data)),
        ("Quarantine reasons", _quarantine(data)),
        ("Configuration findings", _findings(data)),
        ("Audit trail", _trails(data)),
        ("Re-identification risk", _risk(data)),
        ("Runs", _runs(data) or '<p class="muted">No runs.</p>'),
    ]
    body = "".join(f"<section><h2>{_e(h)}</h2>{content}</section>" for h, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{_e(title)}</h1>"
            f'<p class="meta">policy <code>{_e(data.policy_path)}</code> · sha256 <code>{_e(data.policy_sha256)}</code>'
            f" · generated {_e(data.generated_at.strftime('%Y-%m-%d %H:%M UTC'))} by lakehouse-phi {_e(__version__)}"
            " · this page holds names, counts and versions, never a data value</p>"
            f"{body}</main></body></html>\n")
