"""What one mask pass saw, counted: rows, quarantined rows, reasons (``column:rule``) and PHI-scan hits
(``column:detector``). Counts only, never a value.

:func:`tally_spark` is one aggregation over the evaluated (staged) pass, so counting never re-runs the pass;
:func:`tally_arrow` counts an Arrow table of the pass (the engine without Spark: tests, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.engine.plan import SCAN_DETECTORS
from lakehouse_phi.policy import columns
from lakehouse_phi.spark.session import functions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass
class Tally:
    """What the pass saw, counted once: no value, only counts."""

    rows_read: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    phi_scan: dict[str, dict[str, int]] = field(default_factory=dict)
    #: rows counted on the valid side of the split (equals ``rows_read - rows_quarantined`` unless the split is
    #: broken; checked before anything is committed)
    rows_valid_counted: int | None = None

    @property
    def rows_valid(self) -> int:
        return self.rows_read - self.rows_quarantined


def _from_tags(tags: dict[str, int], scan_columns: list[str]) -> Tally:
    t = Tally(rows_quarantined=tags.get("q", 0), rows_valid_counted=tags.get("v", 0))
    t.rows_read = t.rows_quarantined + tags.get("v", 0)
    for tag, n in sorted(tags.items()):
        kind, _, rest = tag.partition("|")
        if kind == "r":
            t.reasons[rest] = t.reasons.get(rest, 0) + n
        elif kind == "s":
            col, _, det = rest.rpartition(":")
            t.phi_scan.setdefault(col, {})[det] = n
    for c in scan_columns:
        found = t.phi_scan.setdefault(c, {})
        for det in SCAN_DETECTORS:
            found.setdefault(det, 0)
    return t


def tally_arrow(table: pa.Table, scan_columns: list[str]) -> Tally:
    """Count an Arrow table of the pass (with ``_phi_errors`` and ``_phi_scan_hits``)."""
    errors = table.column(columns.ERRORS)
    n_err = pc.list_value_length(errors)
    q = int(pc.sum(pc.greater(n_err, 0)).as_py() or 0)
    tags = {"q": q, "v": table.num_rows - q}
    flat = pc.list_flatten(errors)
    if len(flat):
        labels = pc.binary_join_element_wise(pc.struct_field(flat, "column"), pc.struct_field(flat, "rule"), ":")
        for item in pc.value_counts(labels).to_pylist():
            tags[f"r|{item['values']}"] = item["counts"]
    hits = pc.list_flatten(table.column(columns.SCAN_HITS))
    if len(hits):
        for item in pc.value_counts(hits).to_pylist():
            tags[f"s|{item['values']}"] = item["counts"]
    return _from_tags(tags, scan_columns)


def tally_spark(masked: DataFrame, scan_columns: list[str]) -> Tally:
    """One aggregation over the evaluated pass: valid/quarantined, reasons and scan hits as tags."""
    F = functions(masked.sparkSession)
    errors, scan = F.col(columns.ERRORS), F.col(columns.SCAN_HITS)
    tags = F.concat(
        F.array(F.when(F.size(errors) > 0, F.lit("q")).otherwise(F.lit("v"))),
        F.transform(errors, lambda e: F.concat(F.lit("r|"), e["column"], F.lit(":"), e["rule"])),
        F.transform(scan, lambda s: F.concat(F.lit("s|"), s)))
    rows = masked.select(F.explode(tags).alias("tag")).groupBy("tag").count().collect()
    return _from_tags({r[0]: int(r[1]) for r in rows}, scan_columns)
