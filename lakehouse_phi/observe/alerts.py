"""``alerts:`` in the policy: thresholds on what a run counted, checked before anything is written.

An alert that fires with ``action: warn`` is logged and printed, and recorded in the run's closing audit event
(``details.alerts``); with ``action: fail`` the run is refused before its first write and the refusal is audited
(``ingest_refused``, reason ``alert``, ``details.alerts``). Only counts and names are involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from lakehouse_phi.errors import JobRefused
from lakehouse_phi.observe.counts import RunCounts
from lakehouse_phi.policy.model import AlertRule, AlertsSpec


class AlertRefused(JobRefused):
    """A ``fail`` alert fired: the run writes nothing (audited with reason ``alert``)."""


@dataclass(frozen=True)
class Fired:
    """An alert that fired: its name, the measured value, the threshold and the action."""

    alert: str
    value: float
    max: float
    action: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def message(self, table: str) -> str:
        return (f"alert {self.alert} ({self.action}) on {table}: {self.detail}, above alerts.{self.alert}.max "
                f"{self.max:g}")


def per_tag(by_column: dict[str, dict[str, int]] | None) -> dict[str, int]:
    """``details.scrub`` (replacements per scrub_text column and tag) summed per tag."""
    out: dict[str, int] = {}
    for tags in (by_column or {}).values():
        for tag, n in (tags.items() if isinstance(tags, dict) else ()):
            if isinstance(n, int):
                out[tag] = out.get(tag, 0) + n
    return out


def scrub_rate(rows_read: int, scrub: dict[str, int] | None) -> float | None:
    """scrub_text replacements per row read, or None when nothing was read."""
    if not rows_read or scrub is None:
        return None
    return sum(int(n) for n in scrub.values() if isinstance(n, int)) / rows_read


def previous_scrub_rate(events: Iterable[dict], table: str) -> float | None:
    """The replacements per row of the table's last completed run in the trail that recorded them
    (``details.scrub``)."""
    rate = None
    for ev in events:
        details = ev.get("details") if isinstance(ev.get("details"), dict) else {}
        scrub = details.get("scrub") if details else None
        if ev.get("event") == "ingest" and ev.get("table") == table and isinstance(scrub, dict):
            rows = ev.get("rows_read")
            rate = scrub_rate(rows if isinstance(rows, int) else 0, per_tag(scrub))
    return rate


def evaluate(spec: AlertsSpec, counts: RunCounts, previous_rate: float | None = None) -> list[Fired]:
    """Every configured alert that the run's counts exceed."""
    fired: list[Fired] = []

    def check(name: str, rule: AlertRule | None, value: float | None, detail: str) -> None:
        if rule is not None and value is not None and value > rule.max:
            fired.append(Fired(name, round(value, 6), rule.max, rule.action, detail))

    hits = sum(n for per in counts.phi_scan.values() for n in per.values())
    check("phi_scan_hits", spec.phi_scan_hits, hits,
          f"{hits} value(s) that look like PHI in columns not declared PHI")
    rate = counts.rows_quarantined / counts.rows_read if counts.rows_read else 0.0
    check("quarantine_rate", spec.quarantine_rate, rate,
          f"{counts.rows_quarantined} of {counts.rows_read} rows quarantined ({rate:.4f})")
    current = scrub_rate(counts.rows_read, counts.scrub_replacements)
    if spec.scrub_replacements_drop is not None and previous_rate and current is not None:
        drop = max(0.0, 1 - current / previous_rate)
        check("scrub_replacements_drop", spec.scrub_replacements_drop, drop,
              f"scrub_text replacements per row fell {drop:.0%} ({current:.3f} against {previous_rate:.3f} in the "
              "previous run)")
    return fired


def needs_history(spec: AlertsSpec) -> bool:
    return spec.scrub_replacements_drop is not None
