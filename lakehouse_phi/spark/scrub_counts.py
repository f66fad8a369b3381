"""``details.scrub`` of the ingest audit event: per ``scrub_text`` column, how many identifiers each detector (and
each ``row_values``/``known`` category) replaced, counted as tags in the masked output. Counts only: no value, no
position, no row. Arrow for the delta-rs flow, one Spark aggregation (over the persisted frame) for the Spark
flow."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.engine.plan import TablePlan
from lakehouse_phi.spark.session import functions
from lakehouse_phi.transforms.detectors import TAGS


def scrub_columns(plan: TablePlan) -> dict[str, list[str]]:
    """``scrub_text`` output column -> the tags it may write (detectors, then phi categories of the table)."""
    phis = sorted({f"[{(s.phi or 'other').upper()}]" for s in plan.spec.columns.values()})
    return {o.name: sorted(set(TAGS.values()) | set(phis)) for o in plan.outputs if o.strategy.name == "scrub_text"}


def _named(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {c: {t.strip("[]"): n for t, n in sorted(tags.items()) if n} for c, tags in counts.items()}


def scrub_counts_arrow(table: pa.Table, plan: TablePlan) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for column, tags in scrub_columns(plan).items():
        if column in table.column_names:
            values = table.column(column)
            out[column] = {t: int(pc.sum(pc.count_substring(values, t)).as_py() or 0) for t in tags}
    return _named(out)


def scrub_counts_spark(masked: Any, plan: TablePlan) -> dict[str, dict[str, int]]:
    columns = {c: tags for c, tags in scrub_columns(plan).items() if c in masked.columns}
    if not columns:
        return {}
    F = functions(masked.sparkSession)
    exprs, names = [], []
    for column, tags in columns.items():
        col = F.coalesce(F.col(f"`{column}`"), F.lit(""))
        for t in tags:
            exprs.append(F.sum((F.length(col) - F.length(F.regexp_replace(col, re.escape(t), ""))) / len(t)))
            names.append((column, t))
    row = masked.agg(*exprs).collect()[0]
    out: dict[str, dict[str, int]] = {}
    for (column, t), v in zip(names, row):
        out.setdefault(column, {})[t] = int(v or 0)
    return _named(out)
