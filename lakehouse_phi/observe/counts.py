"""What one run counted, in one plain record: the input of the metrics export and of the alerts. Names and counts
only (columns, rules, detectors): never a value."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunCounts:
    """One ingest run (or one micro-batch of a streaming run).

    Attributes:
        outcome: ``ok`` (written) or ``refused`` (nothing, or not everything, written).
        quarantine_reasons: ``column:rule`` -> rows.
        phi_scan: non-PHI column -> detector -> values that look like PHI.
        scrub_replacements: scrub_text tag -> replacements (``SSN``, ``NAME``...).
        durations: phase -> seconds (``total``, ``tally``: read, mask and count; ``write``: quarantine and bronze).
    """

    policy: str
    table: str
    outcome: str = "ok"
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    phi_scan: dict[str, dict[str, int]] = field(default_factory=dict)
    scrub_replacements: dict[str, int] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    engine: str | None = None
    table_format: str | None = None
