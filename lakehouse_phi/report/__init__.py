"""The HTML compliance report (``lakehouse-phi report``): what the policy protects and how the runs went, on one
self-contained page, for a compliance officer. Built from the policy and the audit trail only, which hold names,
counts and versions: the report never shows a data value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lakehouse_phi.errors import UsageError
from lakehouse_phi.policy import load_policy
from lakehouse_phi.report.html import render_html
from lakehouse_phi.report.model import ReportData, build_report_data

__all__ = ["ReportData", "build_report_data", "render_html", "write_report"]


def write_report(policy: str, out: str, trails: Sequence[str] = (), risk: Sequence[str] = (),
                 conf_reports: Sequence[str] = (),
                 seal_keys: Mapping[tuple[str, int], bytes] | None = None) -> tuple[Path, bool]:
    """Write the page; return its path and whether no chain given is broken (seals that could not be checked for
    want of the key are said on the page, not counted as broken)."""
    loaded = load_policy(policy)
    data = build_report_data(loaded, trails, risk, conf_reports, seal_keys=seal_keys)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(data), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc.strerror or type(exc).__name__}); check the folder "
                         "exists and is writable", place="--out") from None
    return path, not any(t.broken for t in data.trails)

